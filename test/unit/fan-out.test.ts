import { describe, expect, it } from 'vitest';
import { FanOut, type TickRoute } from '../../src/gateway/fan-out.js';
import { type Extensions, OPENALGO_EXTENSIONS, WireEncoder } from '../../src/protocol/encoding.js';
import type { Session } from '../../src/gateway/session.js';
import { SubscriptionIndex, streamKey } from '../../src/gateway/subscription-index.js';

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

describe('FanOut', () => {
  it('delivers a tagged feed only to that feed, the shared feed to all', () => {
    const index = new SubscriptionIndex<Session>();
    const onA = fakeSession('zerodha');
    const onB = fakeSession('angel');
    const shared = fakeSession('fyers');
    index.add('a', 'NSE', 'TCS', 1, onA);
    index.add('b', 'NSE', 'TCS', 1, onB);
    index.add('', 'NSE', 'TCS', 1, shared);
    const fanOut = new FanOut(index, new WireEncoder());

    fanOut.deliver(...tick('a', 1));
    expect([onA.frames.length, onB.frames.length, shared.frames.length]).toEqual([1, 0, 0]);
    fanOut.deliver(...tick('c', 1));
    expect([onA.frames.length, onB.frames.length, shared.frames.length]).toEqual([1, 0, 0]);
    fanOut.deliver(...tick('', 1));
    expect([onA.frames.length, onB.frames.length, shared.frames.length]).toEqual([2, 1, 1]);
    expect(JSON.parse(onB.frames[0]!.toString()).broker).toBe('angel');
  });

  it('tags each subscriber with its highest mode ≤ the tick, and serialises once per (mode, broker)', () => {
    const index = new SubscriptionIndex<Session>();
    const ltp1 = fakeSession('zerodha');
    const ltp2 = fakeSession('zerodha');
    const quoteAndLtp = fakeSession('zerodha');
    const depthOnly = fakeSession('zerodha');
    index.add('', 'NSE', 'TCS', 1, ltp1);
    index.add('', 'NSE', 'TCS', 1, ltp2);
    index.add('', 'NSE', 'TCS', 1, quoteAndLtp);
    index.add('', 'NSE', 'TCS', 2, quoteAndLtp);
    index.add('', 'NSE', 'TCS', 3, depthOnly);
    const fanOut = new FanOut(index, new WireEncoder());

    fanOut.deliver(...tick('', 2, '{"ltp": 1418.0}'));
    expect(JSON.parse(ltp1.frames[0]!.toString())).toStrictEqual({ type: 'market_data', symbol: 'TCS', exchange: 'NSE', mode: 1, data: { ltp: 1418 }, broker: 'zerodha' });
    expect(ltp1.raw[0]).toBe(ltp2.raw[0]); // the same bytes, not a copy per client
    expect(ltp1.raw[0]![0]).toBe(0x81); // a complete text frame: FIN + opcode 1
    expect(quoteAndLtp.frames).toHaveLength(1); // one message, tagged with the higher mode
    expect(JSON.parse(quoteAndLtp.frames[0]!.toString()).mode).toBe(2);
    expect(depthOnly.frames).toHaveLength(0); // a Quote tick is not delivered to a Depth-only subscriber
    expect(fanOut.deliveries).toBe(3);
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
    const fanOut = new FanOut(index, new WireEncoder());

    fanOut.deliver(...tick('', 1, '{"ltp": 1418.0}'));
    fanOut.deliver(...tick('', 1, '{"ltp": 1419.5}'));
    expect(plain.frames[0]!.toString()).toBe('{"type":"market_data","symbol":"TCS","exchange":"NSE","mode":1,"data":{"ltp": 1418.0},"broker":"zerodha"}');
    expect(withSeq.frames.map((f) => JSON.parse(f.toString()).seq)).toEqual([1, 2]);
    expect(unpack(packed.frames[1]!)).toStrictEqual({ type: 'market_data', symbol: 'TCS', exchange: 'NSE', mode: 1, data: { ltp: 1419.5 }, broker: 'zerodha' });
    expect(packed.raw[0]).toBe(packed2.raw[0]);
    expect(packed.raw[0]![0]).toBe(0x82); // binary frame
  });

  it('snapshots the newest value at or above the subscriber mode, from its feed or the shared feed', () => {
    const index = new SubscriptionIndex<Session>();
    const fanOut = new FanOut(index, new WireEncoder());
    fanOut.deliver(...tick('sim', 3, '{"ltp":1,"depth":{}}'));
    fanOut.deliver(...tick('', 1, '{"ltp":2}'));
    fanOut.deliver(...tick('other', 3, '{"ltp":3}'));
    const ltp = fakeSession('b');
    expect(fanOut.snapshot(ltp, { ...tick('sim', 1)[0] })).toBe(true);
    expect(JSON.parse(ltp.frames[0]!.toString())).toMatchObject({ mode: 1, data: { ltp: 2 } });
    const depth = fakeSession('b');
    fanOut.snapshot(depth, { ...tick('sim', 3)[0] });
    expect(JSON.parse(depth.frames[0]!.toString())).toMatchObject({ mode: 3, data: { ltp: 1 } });
    const none = fakeSession('b');
    expect(fanOut.snapshot(none, { ...tick('nothing', 1)[0], key: 'NSE\u0000OTHER' })).toBe(false);
  });
});
