/** Recording holds: which streams TICKCAST_RECORD has held upstream, and how a hold keeps its state. */
import { describe, expect, it } from 'vitest';
import type { SubscribeResult } from '../../src/feed.js';
import { Hub } from '../../src/cluster/hub.js';
import { type HoldPort, RecordingHolds, recordingHolds } from '../../src/history/holds.js';
import { parseRecordSelection } from '../../src/history/selection.js';
import type { Logger } from '../../src/observability/logger.js';
import { silentLogger } from '../../src/observability/logger.js';
import { SHARED_FEED } from '../../src/protocol/topics.js';
import { KeepingAdapter } from '../helpers/keeping-adapter.js';

function selection(raw: string) {
  const parsed = parseRecordSelection(raw);
  if (!parsed.ok) throw new Error(parsed.error);
  return parsed.selection;
}

const names = (raw: string, marketFeed?: string): string[] => recordingHolds(selection(raw), marketFeed).map((hold) => hold.name);

/** A logger that keeps (level, message) pairs. */
function recordingLogger(): { logger: Logger; lines: Array<[string, string]> } {
  const lines: Array<[string, string]> = [];
  const logger = {
    info: (_: unknown, msg: string) => lines.push(['info', msg]),
    warn: (_: unknown, msg: string) => lines.push(['warn', msg]),
    error: (_: unknown, msg: string) => lines.push(['error', msg]),
    debug: () => {},
    child: () => logger,
  } as unknown as Logger;
  return { logger, lines };
}

const settle = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, 0));

describe('recordingHolds: which items give which holds', () => {
  it('holds a stream named with one feed on that feed, the shared feed included', () => {
    expect(recordingHolds(selection('simulator/NSE:RELIANCE, shared/NSE_INDEX:NIFTY, zerodha.alice/NFO:NIFTY28MAR24FUT'))).toEqual([
      { feed: 'simulator', exchange: 'NSE', symbol: 'RELIANCE', name: 'simulator/NSE:RELIANCE' },
      { feed: SHARED_FEED, exchange: 'NSE_INDEX', symbol: 'NIFTY', name: 'shared/NSE_INDEX:NIFTY' },
      { feed: 'zerodha.alice', exchange: 'NFO', symbol: 'NIFTY28MAR24FUT', name: 'zerodha.alice/NFO:NIFTY28MAR24FUT' },
    ]);
  });

  it('holds a stream named for every feed on the market feed, and nowhere without one', () => {
    expect(names('NSE:RELIANCE', 'simulator')).toEqual(['simulator/NSE:RELIANCE']);
    expect(names('NSE:RELIANCE')).toEqual([]);
  });

  it('holds nothing for feeds, all, off, or streams of PREFIX* feeds', () => {
    for (const raw of ['all', 'off', 'simulator', 'zerodha.*', 'zerodha.*/NSE:INFY', '*/NSE:INFY', 'simulator, zerodha.*, all']) {
      expect(names(raw, 'simulator'), raw).toEqual([]);
    }
  });

  it('holds each stream once, in the order named', () => {
    expect(names('NSE:TCS, simulator, simulator/NSE:RELIANCE, NSE:RELIANCE, simulator/NSE:TCS, sim2/NSE:TCS', 'simulator')).toEqual([
      'simulator/NSE:TCS',
      'simulator/NSE:RELIANCE',
      'sim2/NSE:TCS',
    ]);
  });
});

/** A port whose feeds are live when listed in `live`, refusing symbols listed in `refuse`. */
function fakePort(live: Set<string>, refuse: Map<string, string>): HoldPort & { asked: string[]; held: Set<string>; dropped: string[] } {
  const asked: string[] = [];
  const held = new Set<string>();
  const dropped: string[] = [];
  return {
    asked,
    held,
    dropped,
    live: (feed) => live.has(feed),
    acquire: async (feed, exchange, symbol) => {
      asked.push(`${feed}/${exchange}:${symbol}`);
      const refusal = refuse.get(symbol);
      if (refusal !== undefined) return { ok: false, message: refusal };
      held.add(`${feed}/${exchange}:${symbol}`);
      return { ok: true };
    },
    drop: (feed, exchange, symbol) => {
      dropped.push(`${feed}/${exchange}:${symbol}`);
      held.delete(`${feed}/${exchange}:${symbol}`);
    },
  };
}

describe('RecordingHolds', () => {
  it('waits for its feed, holds it once live, and shows each state', async () => {
    const { logger } = recordingLogger();
    const holds = new RecordingHolds(recordingHolds(selection('simulator/NSE:RELIANCE, zerodha.alice/NSE:INFY')), logger);
    expect(holds.figures().map((f) => f.state)).toEqual(['waiting', 'waiting']);
    const live = new Set(['simulator']);
    const port = fakePort(live, new Map());
    holds.attach(port);
    await settle();
    expect(port.asked).toEqual(['simulator/NSE:RELIANCE']);
    expect(holds.figures()).toEqual([
      { stream: 'simulator/NSE:RELIANCE', state: 'held' },
      { stream: 'zerodha.alice/NSE:INFY', state: 'waiting', message: 'waiting for feed zerodha.alice to be live here' },
    ]);
    // The user's feed started (by the user's clients) and went live.
    live.add('zerodha.alice');
    holds.feedUp('zerodha.alice');
    await settle();
    expect(port.asked).toEqual(['simulator/NSE:RELIANCE', 'zerodha.alice/NSE:INFY']);
    expect(holds.figures()[1]).toEqual({ stream: 'zerodha.alice/NSE:INFY', state: 'held' });
    expect(() => holds.attach(port)).toThrow();
  });

  it('a refused stream is logged once per reason, shown, and tried again only when its feed comes up', async () => {
    const { logger, lines } = recordingLogger();
    const holds = new RecordingHolds(recordingHolds(selection('simulator/NSE:NOPE, simulator/NSE:TCS')), logger);
    const refuse = new Map([['NOPE', 'Token not found for NOPE on NSE']]);
    const port = fakePort(new Set(['simulator']), refuse);
    holds.attach(port);
    await settle();
    expect(holds.figures()[0]).toEqual({ stream: 'simulator/NSE:NOPE', state: 'refused', message: 'Token not found for NOPE on NSE' });
    expect(holds.figures()[1]!.state).toBe('held');
    const warnings = () => lines.filter(([level]) => level === 'warn');
    expect(warnings()).toHaveLength(1);
    // Nothing is retried by itself.
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(port.asked.filter((s) => s.endsWith('NOPE'))).toHaveLength(1);
    // The feed restarts: tried again, refused for the same reason, not logged again.
    holds.feedUp('simulator');
    await settle();
    expect(port.asked.filter((s) => s.endsWith('NOPE'))).toHaveLength(2);
    expect(warnings()).toHaveLength(1);
    // Another restart knows the symbol now.
    refuse.delete('NOPE');
    holds.feedUp('simulator');
    await settle();
    expect(holds.figures().map((f) => f.state)).toEqual(['held', 'held']);
  });

  it('a held stream a restarted feed refuses is dropped from the index and shown refused', async () => {
    const { logger } = recordingLogger();
    const holds = new RecordingHolds(recordingHolds(selection('simulator/NSE:TCS')), logger);
    const refuse = new Map<string, string>();
    const port = fakePort(new Set(['simulator']), refuse);
    holds.attach(port);
    await settle();
    expect(port.held.has('simulator/NSE:TCS')).toBe(true);
    refuse.set('TCS', 'delisted');
    holds.feedUp('simulator');
    await settle();
    expect(port.dropped).toEqual(['simulator/NSE:TCS']);
    expect(holds.figures()).toEqual([{ stream: 'simulator/NSE:TCS', state: 'refused', message: 'delisted' }]);
  });

  it('does not start a second try while one is under way', async () => {
    const holds = new RecordingHolds(recordingHolds(selection('simulator/NSE:TCS')), silentLogger());
    let asked = 0;
    let answer: (result: SubscribeResult) => void = () => {};
    holds.attach({
      live: () => true,
      acquire: () => {
        asked++;
        return new Promise((resolve) => (answer = resolve));
      },
      drop: () => {},
    });
    holds.feedUp('simulator');
    holds.feedUp('simulator');
    expect(asked).toBe(1);
    answer({ ok: true });
    await settle();
    expect(holds.figures()[0]!.state).toBe('held');
  });
});

describe('the primary’s hub holds the recorded streams', () => {
  it('as one more subscriber of the union: at Depth, through workers coming and going, and after a replay', async () => {
    const adapter = new KeepingAdapter('simulator');
    const holds = new RecordingHolds(recordingHolds(selection('NSE:RELIANCE, simulator/NSE:BAD'), 'simulator'), silentLogger());
    const hub = new Hub({ adapters: [{ adapter, brokers: '*' }], logger: silentLogger(), onStatus: () => {}, holds });
    expect(adapter.calls).toEqual([]);
    hub.startHolds();
    await settle();
    expect(adapter.held.get('RELIANCE')).toBe(3);
    expect(holds.figures()).toEqual([
      { stream: 'simulator/NSE:RELIANCE', state: 'held' },
      { stream: 'simulator/NSE:BAD', state: 'refused', message: 'unknown symbol' },
    ]);
    // A worker's client subscribes at LTP and leaves: the hold keeps Depth upstream.
    await hub.setInterest(1, 'simulator', 'NSE', 'RELIANCE', 1, 5);
    await hub.setInterest(1, 'simulator', 'NSE', 'RELIANCE', 0, 5);
    expect(await hub.dropWorker(1)).toBe(0);
    expect(adapter.held.get('RELIANCE')).toBe(3);
    expect(adapter.calls.filter((call) => call.includes('RELIANCE'))).toEqual(['sub RELIANCE 3']);
    // The adapter restarts holding nothing: the hold is replayed, the refused one tried again.
    adapter.held.clear();
    adapter.calls.length = 0;
    await hub.replay('simulator');
    await settle();
    expect(adapter.held.get('RELIANCE')).toBe(3);
    expect(adapter.calls.sort()).toEqual(['sub BAD 3', 'sub RELIANCE 3']);
  });

  it('a user’s own feed is held only once it is there and live, never started for it', async () => {
    const holds = new RecordingHolds(recordingHolds(selection('zerodha.alice/NSE:INFY')), silentLogger());
    const hub = new Hub({ adapters: [], logger: silentLogger(), onStatus: () => {}, holds });
    hub.startHolds();
    await settle();
    expect(holds.figures()[0]!.state).toBe('waiting');
    // The user's first client starts their feed: registered while it connects, then live.
    const feed = new KeepingAdapter('zerodha.alice', 'reconnecting');
    hub.add({ adapter: feed, brokers: [] }, false);
    await settle();
    expect(feed.calls).toEqual([]);
    feed.emit('live');
    await settle();
    expect(feed.held.get('INFY')).toBe(3);
    expect(holds.figures()).toEqual([{ stream: 'zerodha.alice/NSE:INFY', state: 'held' }]);
    // Down and live again (a reconnect): confirmed, not asked twice.
    feed.emit('down');
    feed.emit('live');
    await settle();
    expect(feed.calls).toEqual(['sub INFY 3']);
  });
});
