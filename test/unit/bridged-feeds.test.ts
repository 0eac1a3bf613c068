/**
 * The gateway's side of the OpenAlgo bridge: which brokers' users it serves, and each user's
 * feed handle (HostedFeed) driving a feed host's registration (a real RemoteAdapter, attached to
 * a recording sender as GatewayControl would attach it).
 */
import { describe, expect, it } from 'vitest';
import { BridgedFeeds, bridgedBrokers, withBridge } from '../../src/bridge/bridged-feeds.js';
import type { Command } from '../../src/control/remote-adapter.js';
import { RemoteAdapter } from '../../src/control/remote-adapter.js';
import type { AdapterInfo } from '../../src/control/protocol.js';
import type { Adapter, BrokerAdapterFactory, FeedStatusEvent } from '../../src/feed.js';
import { createLogger } from '../../src/observability/logger.js';

const logger = createLogger('silent');

const HOST_INFO: AdapterInfo = { protocol: 2, feed: 'openalgo', broker: 'openalgo', brokers: [], hosts: ['dhan', 'fyers'], instance: 'default', pid: 4242, host: 'h', epoch: 1, heartbeatMs: 1000 };

/** Dhan is native in tickcast: these tests send its users to the bridge, as TICKCAST_BRIDGE_BROKERS=dhan does. */
function bridged(noBridge = 'the OpenAlgo bridge is starting'): BridgedFeeds {
  return new BridgedFeeds({ brokers: bridgedBrokers(['dhan']), credentials: { hasCredentials: () => true }, noBridge: () => noBridge, logger, hostWaitMs: 50 });
}

/** A feed host's handle, attached to a sender that answers every command ok and records it. */
function attachedHost(feeds: BridgedFeeds, replayed: string[]): { host: RemoteAdapter; sent: Array<Command & { id: number }> } {
  const host = new RemoteAdapter({ info: HOST_INFO, commandTimeoutMs: 1000, logger });
  feeds.attach(host, async (feed) => void replayed.push(feed));
  const sent: Array<Command & { id: number }> = [];
  host.attach({ ...HOST_INFO, status: 'live' }, async (command) => {
    sent.push(command);
    queueMicrotask(() => host.receiveReply(command.id, { ok: true, depth: 5 }));
    return true;
  });
  return { host, sent };
}

function statuses(adapter: Adapter): FeedStatusEvent[] {
  const seen: FeedStatusEvent[] = [];
  adapter.onStatus((event) => seen.push(event));
  return seen;
}

describe('which users the bridge serves', () => {
  it("is every broker OpenAlgo streams for except tickcast's native ones, unless those are named", () => {
    expect(bridgedBrokers()).toContain('fyers');
    expect(bridgedBrokers()).toContain('dhan_sandbox');
    for (const native of ['zerodha', 'angel', 'dhan', 'upstox', 'shoonya', 'flattrade']) expect(bridgedBrokers()).not.toContain(native);
    expect(bridgedBrokers(['zerodha', 'dhan'])).toEqual(expect.arrayContaining(['zerodha', 'dhan', 'fyers']));
    expect(bridgedBrokers(['zerodha'])).not.toContain('angel');
  });

  it('routes native brokers to the native factory and the rest to the bridge, the named native ones included', () => {
    const created: string[] = [];
    const native: BrokerAdapterFactory = { brokers: ['zerodha', 'angel'], hasCredentials: () => true, create: (user, broker) => (created.push(`native ${broker} ${user}`), {} as Adapter) };
    const plain = withBridge(native, bridged());
    plain.create('u', 'zerodha', 'zerodha.u');
    expect(plain.create('u', 'dhan', 'dhan.u').feed).toBe('dhan.u');
    expect(created).toEqual(['native zerodha u']);
    const forced = withBridge(native, new BridgedFeeds({ brokers: bridgedBrokers(['zerodha']), credentials: { hasCredentials: () => true }, noBridge: () => '', logger }));
    expect(forced.create('u', 'zerodha', 'zerodha.u').feed).toBe('zerodha.u');
    expect(created).toEqual(['native zerodha u']);
    expect(forced.brokers).toContain('angel');
  });
});

describe("a bridged user's feed", () => {
  it('fails a subscribe with the reason when no bridge attaches in time, and says so in its status', async () => {
    const feeds = bridged('the OpenAlgo bridge cannot run: no python3');
    const feed = feeds.create('alice', 'dhan', 'dhan.alice');
    await feed.start();
    expect(feed.status()).toBe('reconnecting');
    expect(feed.statusMessage!()).toBe('the OpenAlgo bridge cannot run: no python3');
    expect(await feed.subscribe({ exchange: 'NSE', symbol: 'SBIN' }, 2, 5)).toEqual({ ok: false, message: 'No market data feed for dhan user alice: the OpenAlgo bridge cannot run: no python3' });
    const seen = statuses(feed);
    feeds.unavailable('the OpenAlgo bridge cannot run: no python3');
    expect(feed.status()).toBe('down');
    expect(seen).toEqual([{ feed: 'dhan.alice', status: 'down', message: 'the OpenAlgo bridge cannot run: no python3' }]);
    // A feed made after that is down from the start, and does not wait for a bridge.
    const later = feeds.create('alice2', 'dhan', 'dhan.alice2');
    expect([later.status(), later.statusMessage!()]).toEqual(['down', 'the OpenAlgo bridge cannot run: no python3']);
    expect(await later.subscribe({ exchange: 'NSE', symbol: 'SBIN' }, 1, 5)).toEqual({ ok: false, message: 'No market data feed for dhan user alice2: the OpenAlgo bridge cannot run: no python3' });
  });

  it('is opened at the bridge on every registration, its streams replayed, and tagged with its feed id', async () => {
    const feeds = bridged();
    const alice = feeds.create('alice', 'dhan', 'dhan.alice');
    const bob = feeds.create('bob', 'fyers', 'fyers.bob');
    const replayed: string[] = [];
    const { host, sent } = attachedHost(feeds, replayed);
    expect(sent.map(({ id: _id, ...command }) => command)).toEqual([
      { type: 'open', feed: 'dhan.alice', broker: 'dhan', user: 'alice' },
      { type: 'open', feed: 'fyers.bob', broker: 'fyers', user: 'bob' },
    ]);
    expect(replayed).toEqual(['dhan.alice', 'fyers.bob']);

    expect(await alice.subscribe({ exchange: 'NSE', symbol: 'SBIN' }, 3, 20)).toEqual({ ok: true, depth: 5 });
    await bob.unsubscribe({ exchange: 'NSE', symbol: 'SBIN' });
    bob.credentialsChanged!();
    expect(sent.slice(2).map(({ id: _id, ...command }) => command)).toEqual([
      { type: 'subscribe', feed: 'dhan.alice', exchange: 'NSE', symbol: 'SBIN', mode: 3, depth: 20 },
      { type: 'unsubscribe', feed: 'fyers.bob', exchange: 'NSE', symbol: 'SBIN' },
      { type: 'relogin', feed: 'fyers.bob' },
    ]);

    // A restarted bridge registers again: everything is opened and replayed again.
    host.attach({ ...HOST_INFO, pid: 5000, status: 'live' }, async () => true);
    expect(replayed).toEqual(['dhan.alice', 'fyers.bob', 'dhan.alice', 'fyers.bob']);
  });

  it("takes the statuses the bridge reports for it, and is replayed each time it turns live", () => {
    const feeds = bridged();
    const alice = feeds.create('alice', 'dhan', 'dhan.alice');
    const bob = feeds.create('bob', 'fyers', 'fyers.bob');
    const [aliceSeen, bobSeen] = [statuses(alice), statuses(bob)];
    const replayed: string[] = [];
    const { host } = attachedHost(feeds, replayed);
    replayed.length = 0;
    host.receiveStatus('down', 'dhan: initialize failed: No authentication token found; retrying in 5 s', 'dhan.alice');
    host.receiveStatus('live', undefined, 'fyers.bob');
    expect(alice.status()).toBe('down');
    expect(aliceSeen.at(-1)).toEqual({ feed: 'dhan.alice', status: 'down', message: 'dhan: initialize failed: No authentication token found; retrying in 5 s' });
    expect(bob.status()).toBe('live');
    expect(replayed).toEqual(['fyers.bob']);
    host.receiveStatus('live', undefined, 'dhan.alice');
    host.receiveStatus('live', undefined, 'dhan.alice');
    expect(replayed).toEqual(['fyers.bob', 'dhan.alice']);
    // Another feed id the bridge names is nobody's here.
    host.receiveStatus('down', 'x', 'dhan.mallory');
    expect([alice.status(), bob.status()]).toEqual(['live', 'live']);

    // The bridge process is lost: every bridged feed waits for the next one, saying why.
    host.detach('Feed "openalgo" adapter (pid 4242) sent nothing for 3 s');
    expect([alice.status(), bob.status()]).toEqual(['reconnecting', 'reconnecting']);
    expect(bobSeen.at(-1)?.message).toBe('the OpenAlgo bridge is not connected (Feed "openalgo" adapter (pid 4242) sent nothing for 3 s); the OpenAlgo bridge is starting');
  });

  it('is refused at once for a broker the bridge has no adapter for', async () => {
    const feeds = bridged();
    const upstox = feeds.create('carl', 'upstox', 'upstox.carl');
    attachedHost(feeds, []);
    expect(upstox.status()).toBe('down');
    expect(await upstox.subscribe({ exchange: 'NSE', symbol: 'SBIN' }, 1, 5)).toEqual({ ok: false, message: 'No market data feed for upstox user carl: the feed host (pid 4242) has no adapter for upstox' });
  });
});
