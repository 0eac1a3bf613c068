import { unpack } from 'msgpackr';
import { describe, expect, it } from 'vitest';
import { FanOut, type TickRoute } from '../../src/gateway/fan-out.js';
import { type Extensions, OPENALGO_EXTENSIONS, WireEncoder } from '../../src/protocol/encoding.js';
import type { Session } from '../../src/gateway/session.js';
import { streamKey } from '../../src/feed.js';
import { SubscriptionIndex } from '../../src/gateway/subscription-index.js';

/** The payload of an unmasked server WebSocket frame (RFC 6455 §5.2). */
function unframe(frame: Buffer): Buffer {
  const n = frame[1]! & 0x7f;
  return frame.subarray(n < 126 ? 2 : n === 126 ? 4 : 10);
}

type FakeSession = Session & { frames: Buffer[]; raw: Buffer[]; use(extensions: Partial<Extensions>): void };

function fakeSession(broker: string): FakeSession {
  const frames: Buffer[] = [];
  const raw: Buffer[] = [];
  const session = {
    broker,
    frames,
    raw,
    extensions: { ...OPENALGO_EXTENSIONS },
    variant: `json|${broker}`,
    ordersSubscribed: false,
    deliver: (frame: Buffer) => {
      raw.push(frame);
      frames.push(session.extensions.batch ? frame : unframe(frame));
    },
    use(extensions: Partial<Extensions>) {
      session.extensions = { ...session.extensions, ...extensions };
      session.variant = JSON.stringify(session.extensions) + broker;
    },
  };
  return session as unknown as FakeSession;
}

const tick = (feed: string, mode: 1 | 2 | 3, payload = '{"ltp":1.0}'): [TickRoute, string] => [
  { feed, exchange: 'NSE', symbol: 'TCS', key: streamKey('NSE', 'TCS'), mode },
  payload,
];

function fakeClock(start = 1_000_000): { now(): number; advance(ms: number): void } {
  let t = start;
  return { now: () => t, advance: (ms) => void (t += ms) };
}

const BROKERS: Record<string, string> = { a: 'zerodha', b: 'angel', sim: 'simulator' };

function fanOutFor(index: SubscriptionIndex<Session>, clock = fakeClock()): FanOut {
  return new FanOut(index, new WireEncoder(), { clock, brokerOf: (feed) => BROKERS[feed] ?? '' });
}

const DEPTH = '{"symbol":"TCS","exchange":"NSE","mode":"full","ltp":1418.0,"ltt":1,"timestamp":2,"volume":10,"depth":{"buy":[],"sell":[]}}';
const QUOTE = '{"symbol":"TCS","exchange":"NSE","mode":"quote","ltp":1418.0,"ltt":1,"timestamp":2,"volume":10}';
const LTP = '{"symbol":"TCS","exchange":"NSE","mode":"ltp","ltp":1418.0,"ltt":1,"timestamp":2}';

const messages = (session: FakeSession): Array<{ mode: number; data: string; seq?: number }> =>
  session.frames.map((frame) => {
    const text = frame.toString();
    const message = JSON.parse(text);
    // The payload text as sent (numbers keep their spelling).
    const data = text.slice(text.indexOf('"data":') + 7, text.lastIndexOf(',"broker"'));
    return { mode: message.mode, data, ...(message.seq !== undefined ? { seq: message.seq } : {}) };
  });

describe('FanOut', () => {
  it("delivers a feed's ticks only to that feed's clients, the shared feed's too", () => {
    const index = new SubscriptionIndex<Session>();
    const onA = fakeSession('zerodha');
    const onB = fakeSession('angel');
    const shared = fakeSession('fyers');
    index.add('a', 'NSE', 'TCS', 1, onA);
    index.add('b', 'NSE', 'TCS', 1, onB);
    index.add('', 'NSE', 'TCS', 1, shared);
    const fanOut = fanOutFor(index);

    fanOut.deliver(...tick('a', 1));
    expect([onA.frames.length, onB.frames.length, shared.frames.length]).toEqual([1, 0, 0]);
    fanOut.deliver(...tick('c', 1));
    expect([onA.frames.length, onB.frames.length, shared.frames.length]).toEqual([1, 0, 0]);
    fanOut.deliver(...tick('', 1));
    expect([onA.frames.length, onB.frames.length, shared.frames.length]).toEqual([1, 0, 1]);
    expect(JSON.parse(shared.frames[0]!.toString()).broker).toBe('fyers');
  });

  it('one message per mode held at or below the tick, each with that mode\'s fields, built once per (mode, broker)', () => {
    const index = new SubscriptionIndex<Session>();
    const ltp1 = fakeSession('zerodha');
    const ltp2 = fakeSession('zerodha');
    const all = fakeSession('zerodha');
    const ltpAndDepth = fakeSession('zerodha');
    const quoteOnly = fakeSession('zerodha');
    index.add('a', 'NSE', 'TCS', 1, ltp1);
    index.add('a', 'NSE', 'TCS', 1, ltp2);
    for (const mode of [1, 2, 3] as const) index.add('a', 'NSE', 'TCS', mode, all);
    index.add('a', 'NSE', 'TCS', 1, ltpAndDepth);
    index.add('a', 'NSE', 'TCS', 3, ltpAndDepth);
    index.add('a', 'NSE', 'TCS', 2, quoteOnly);
    const fanOut = fanOutFor(index);

    fanOut.deliver(...tick('a', 3, DEPTH));
    expect(messages(ltp1)).toEqual([{ mode: 1, data: LTP }]);
    expect(ltp1.raw[0]).toBe(ltp2.raw[0]); // the same bytes, not a copy per client
    expect(ltp1.raw[0]![0]).toBe(0x81); // a complete text frame: FIN + opcode 1
    expect(messages(all)).toEqual([{ mode: 1, data: LTP }, { mode: 2, data: QUOTE }, { mode: 3, data: DEPTH }]);
    expect(all.raw[0]).toBe(ltp1.raw[0]);
    expect(messages(ltpAndDepth)).toEqual([{ mode: 1, data: LTP }, { mode: 3, data: DEPTH }]);
    expect(messages(quoteOnly)).toEqual([{ mode: 2, data: QUOTE }]);
    expect(fanOut.deliveries).toBe(2 + 3 + 2 + 1);

    // A Quote tick reaches no Depth-only holder, and makes no Depth message.
    fanOut.deliver(...tick('a', 2, QUOTE));
    expect(messages(ltpAndDepth).map((m) => m.mode)).toEqual([1, 3, 1]);
    expect(messages(all).slice(3)).toEqual([{ mode: 1, data: LTP }, { mode: 2, data: QUOTE }]);
  });

  it("a publisher of every mode's topic (OpenAlgo's adapters): each message comes from its own tick, never twice", () => {
    const index = new SubscriptionIndex<Session>();
    const ltpAndDepth = fakeSession('fyers');
    const ltpOnly = fakeSession('fyers');
    index.add('', 'NSE', 'TCS', 1, ltpAndDepth);
    index.add('', 'NSE', 'TCS', 3, ltpAndDepth);
    index.add('', 'NSE', 'TCS', 1, ltpOnly);
    const clock = fakeClock();
    const fanOut = fanOutFor(index, clock);
    // Trade by trade: the LTP topic first, then Depth (and the other order further down).
    for (let trade = 0; trade < 5; trade++) {
      fanOut.deliver(...tick('', 1, `{"ltp":${trade}.5}`));
      fanOut.deliver(...tick('', 3, `{"ltp":${trade}.5,"depth":{}}`));
      clock.advance(500);
    }
    expect(messages(ltpOnly).map((m) => m.data)).toEqual(['{"ltp":0.5}', '{"ltp":1.5}', '{"ltp":2.5}', '{"ltp":3.5}', '{"ltp":4.5}']);
    expect(messages(ltpAndDepth).map((m) => m.mode)).toEqual([1, 3, 1, 3, 1, 3, 1, 3, 1, 3]);

    const other = fanOutFor(index, clock);
    const before = ltpOnly.frames.length;
    for (let trade = 0; trade < 5; trade++) {
      other.deliver(...tick('', 3, `{"ltp":${trade}.25,"depth":{}}`));
      other.deliver(...tick('', 1, `{"ltp":${trade}.25}`));
      clock.advance(500);
    }
    // Depth first: only the very first Depth tick, before any LTP tick was seen, makes an LTP too.
    expect(ltpOnly.frames.length - before).toBe(6);

    // The publisher stops sending the LTP topic: the next Depth ticks make the LTP messages again.
    clock.advance(500);
    other.deliver(...tick('', 3, '{"ltp":9.5,"depth":{}}'));
    clock.advance(500);
    other.deliver(...tick('', 3, '{"ltp":9.75,"depth":{}}'));
    expect(messages(ltpOnly).at(-1)).toEqual({ mode: 1, data: '{"ltp":9.75}' });
  });
});

describe('FanOut extensions', () => {
  it('encodes once per variant: JSON verbatim, JSON with seq, MessagePack', async () => {
    const { unpack } = await import('msgpackr');
    const index = new SubscriptionIndex<Session>();
    const plain = fakeSession('zerodha');
    const withSeq = fakeSession('zerodha');
    withSeq.use({ seq: true });
    const packed = fakeSession('zerodha');
    packed.use({ encoding: 'msgpack' });
    const packed2 = fakeSession('zerodha');
    packed2.use({ encoding: 'msgpack' });
    for (const s of [plain, withSeq, packed, packed2]) index.add('', 'NSE', 'TCS', 1, s);
    const fanOut = fanOutFor(index);

    fanOut.deliver(...tick('', 1, '{"ltp": 1418.0}'));
    fanOut.deliver(...tick('', 1, '{"ltp": 1419.5}'));
    expect(plain.frames[0]!.toString()).toBe('{"type":"market_data","symbol":"TCS","exchange":"NSE","mode":1,"data":{"ltp": 1418.0},"broker":"zerodha"}');
    expect(withSeq.frames.map((f) => JSON.parse(f.toString()).seq)).toEqual([1, 2]);
    expect(unpack(packed.frames[1]!)).toStrictEqual({ type: 'market_data', symbol: 'TCS', exchange: 'NSE', mode: 1, data: { ltp: 1419.5 }, broker: 'zerodha' });
    expect(packed.raw[0]).toBe(packed2.raw[0]);
    expect(packed.raw[0]![0]).toBe(0x82); // binary frame
  });

  it('every mode in MessagePack and batched, seq numbered per mode', async () => {
    const { unpack } = await import('msgpackr');
    const index = new SubscriptionIndex<Session>();
    const packed = fakeSession('zerodha');
    packed.use({ encoding: 'msgpack', seq: true, batch: true });
    const ltpOnly = fakeSession('zerodha');
    ltpOnly.use({ seq: true });
    index.add('a', 'NSE', 'TCS', 1, packed);
    index.add('a', 'NSE', 'TCS', 3, packed);
    index.add('a', 'NSE', 'TCS', 1, ltpOnly);
    const fanOut = fanOutFor(index);
    fanOut.deliver(...tick('a', 3, DEPTH));
    fanOut.deliver(...tick('a', 3, DEPTH));
    // An LTP tick of its own: from now on the LTP messages come from the LTP ticks.
    fanOut.deliver(...tick('a', 1, LTP));
    fanOut.deliver(...tick('a', 3, DEPTH));
    const decoded = packed.frames.map((f) => unpack(f) as { mode: number; seq: number; data: Record<string, unknown> });
    expect(decoded.map(({ mode, seq }) => [mode, seq])).toEqual([[1, 1], [3, 1], [1, 2], [3, 2], [1, 3], [3, 3]]);
    expect(decoded[0]!.data).toStrictEqual(JSON.parse(LTP));
    expect(decoded[1]!.data).toStrictEqual(JSON.parse(DEPTH));
    expect(ltpOnly.frames.map((f) => JSON.parse(f.toString()).seq)).toEqual([1, 2, 3]);
  });

  it("snapshots a mode's last message, from its own feed only, projected, and only when current", () => {
    const index = new SubscriptionIndex<Session>();
    const clock = fakeClock();
    const fanOut = fanOutFor(index, clock);
    fanOut.deliver(...tick('sim', 3, DEPTH));
    fanOut.deliver(...tick('', 1, '{"ltp":2.0}'));
    clock.advance(10);
    const always = (): boolean => true;
    const ltp = fakeSession('b');
    expect(fanOut.snapshot(ltp, tick('sim', 1)[0], always)).toBe(true);
    expect(messages(ltp)).toEqual([{ mode: 1, data: LTP }]);
    const depth = fakeSession('b');
    fanOut.snapshot(depth, tick('sim', 3)[0], always);
    expect(messages(depth)).toEqual([{ mode: 3, data: DEPTH }]);
    const none = fakeSession('b');
    expect(fanOut.snapshot(none, { ...tick('nothing', 1)[0], key: 'NSE\u0000OTHER' }, always)).toBe(false);
    expect(fanOut.snapshot(none, tick('other', 1)[0], always)).toBe(false); // not another feed's value
    const arrivals: number[] = [];
    expect(fanOut.snapshot(none, tick('sim', 1)[0], (at) => (arrivals.push(at), false))).toBe(false);
    expect(arrivals).toEqual([clock.now() - 10]);
    expect(none.frames).toHaveLength(0);
  });
});

describe('FanOut recovery', () => {
  const route = (mode: 1 | 2 | 3): TickRoute => ({ feed: 'sim', exchange: 'NSE', symbol: 'TCS', key: streamKey('NSE', 'TCS'), mode });
  const parsed = (session: FakeSession): Array<Record<string, unknown>> => session.frames.map((frame) => JSON.parse(frame.toString()));

  it('holds live messages back while recovering, then resends everything after since in order, marked recovered', () => {
    const index = new SubscriptionIndex<Session>();
    const fanOut = fanOutFor(index);
    for (let i = 1; i <= 5; i++) fanOut.deliver(route(3), DEPTH);
    const session = fakeSession('simulator');
    session.use({ seq: true });
    session.feed = 'sim';
    index.add('sim', 'NSE', 'TCS', 2, session);
    expect(fanOut.startRecovery(session, route(2))).toBe(5);
    // Live ticks while the subscribe is being answered: held back.
    fanOut.deliver(route(3), DEPTH);
    fanOut.deliver(route(3), DEPTH);
    expect(session.frames).toHaveLength(0);
    fanOut.recover(session, route(2), 3, 5, undefined);
    const sent = parsed(session);
    expect(sent.map((m) => [m.type, m.seq, m.recovered])).toEqual([
      ['market_data', 4, true],
      ['market_data', 5, true],
      ['market_data', 6, true],
      ['market_data', 7, true],
      ['recovered', undefined, undefined],
    ]);
    // Projected to the mode, as live Quote messages are: no book.
    expect(sent[0]!.mode).toBe(2);
    expect((sent[0]!.data as Record<string, unknown>).depth).toBeUndefined();
    expect(sent[4]).toEqual({ type: 'recovered', symbol: 'TCS', exchange: 'NSE', mode: 2, from: 4, to: 7, count: 4 });
    expect(session.recovering).toBeUndefined();
    fanOut.deliver(route(3), DEPTH);
    expect(parsed(session).at(-1)).toMatchObject({ type: 'market_data', seq: 8 });
    expect(parsed(session).at(-1)!.recovered).toBeUndefined();
  });

  it('answers gap (epoch, history, ahead) and then sends the live messages it held back', () => {
    const index = new SubscriptionIndex<Session>();
    const fanOut = new FanOut(index, new WireEncoder(), { clock: fakeClock(), brokerOf: () => 'simulator', recovery: { ticks: 3 } });
    for (let i = 1; i <= 10; i++) fanOut.deliver(route(1), LTP);
    const session = fakeSession('simulator');
    session.use({ seq: true });
    session.feed = 'sim';
    index.add('sim', 'NSE', 'TCS', 1, session);

    const marked = fanOut.startRecovery(session, route(1));
    fanOut.deliver(route(1), LTP);
    fanOut.recover(session, route(1), 2, marked, undefined);
    expect(parsed(session)).toEqual([
      expect.objectContaining({ type: 'gap', mode: 1, since: 2, reason: 'history', next: 11, oldest: 9, message: 'messages after seq 2 are no longer held (held from seq 9); resync' }),
      expect.objectContaining({ type: 'market_data', seq: 11 }),
    ]);
    session.frames.length = 0;
    fanOut.recover(session, route(1), 99, fanOut.startRecovery(session, route(1)), undefined);
    expect(parsed(session)).toEqual([expect.objectContaining({ type: 'gap', reason: 'ahead', since: 99, next: 12 })]);
    session.frames.length = 0;
    fanOut.recover(session, route(1), 10, fanOut.startRecovery(session, route(1)), 'another process');
    expect(parsed(session)).toEqual([expect.objectContaining({ type: 'gap', reason: 'epoch', message: 'another process' })]);
    expect(fanOut.recoveryGaps).toBe(3);
    expect(session.recovering).toBeUndefined();
  });

  it('with recovery off (ticks 0) keeps no ring, holds nothing back and answers history', () => {
    const index = new SubscriptionIndex<Session>();
    const fanOut = new FanOut(index, new WireEncoder(), { clock: fakeClock(), brokerOf: () => 'simulator', recovery: { ticks: 0 } });
    fanOut.deliver(route(1), LTP);
    fanOut.deliver(route(1), LTP);
    expect(fanOut.recentTicks).toBeUndefined();
    const session = fakeSession('simulator');
    session.use({ seq: true });
    session.feed = 'sim';
    expect(fanOut.startRecovery(session, route(1))).toBeUndefined();
    fanOut.recover(session, route(1), 1, undefined, undefined);
    expect(parsed(session)).toEqual([expect.objectContaining({ type: 'gap', reason: 'history', next: 3 })]);
    session.frames.length = 0;
    fanOut.recover(session, route(1), 2, undefined, undefined);
    expect(parsed(session)).toEqual([{ type: 'recovered', symbol: 'TCS', exchange: 'NSE', mode: 1, from: 3, to: 2, count: 0 }]);
  });

  it('builds recovered messages as live ones for MessagePack and batching clients, and the recovered message with them', () => {
    const index = new SubscriptionIndex<Session>();
    const fanOut = fanOutFor(index);
    for (let i = 1; i <= 3; i++) fanOut.deliver(route(2), QUOTE);
    const packed = fakeSession('simulator');
    packed.use({ seq: true, encoding: 'msgpack' });
    packed.feed = 'sim';
    const batched = fakeSession('simulator');
    batched.use({ seq: true, batch: true });
    batched.feed = 'sim';
    for (const session of [packed, batched]) {
      index.add('sim', 'NSE', 'TCS', 2, session);
      fanOut.recover(session, route(2), 1, fanOut.startRecovery(session, route(2)), undefined);
    }
    expect(packed.frames.map((frame) => unpack(frame))).toEqual([
      expect.objectContaining({ type: 'market_data', mode: 2, seq: 2, recovered: true, data: expect.objectContaining({ ltp: 1418 }) }),
      expect.objectContaining({ type: 'market_data', seq: 3, recovered: true }),
      { type: 'recovered', symbol: 'TCS', exchange: 'NSE', mode: 2, from: 2, to: 3, count: 2 },
    ]);
    // A batching client gets bare messages (the batch frames them): the same content as JSON.
    expect(batched.frames.map((frame) => JSON.parse(frame.toString()))).toEqual([
      expect.objectContaining({ seq: 2, recovered: true }),
      expect.objectContaining({ seq: 3, recovered: true }),
      expect.objectContaining({ type: 'recovered', count: 2 }),
    ]);
  });
});
