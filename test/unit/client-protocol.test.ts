/** The client SDK's pure protocol logic: instruments, modes, requests, frame decoding, replies. */
import { pack } from 'msgpackr';
import { describe, expect, it } from 'vitest';
import { TickcastClientError } from '../../src/client/client-error.js';
import { parseInstrument, parseInstruments, parseMode, streamKey } from '../../src/client/instruments.js';
import {
  authenticateRequest,
  decodeFrame,
  isPush,
  readAuthReply,
  readMarketData,
  readSubscribeReply,
  subscribeRequests,
  unsubscribeRequests,
} from '../../src/client/messages.js';

function thrown(fn: () => unknown): TickcastClientError {
  try {
    fn();
  } catch (error) {
    return error as TickcastClientError;
  }
  throw new Error('expected a throw');
}

describe('instruments and modes', () => {
  it('reads EXCHANGE:SYMBOL strings and objects; the exchange ends at the first colon', () => {
    expect(parseInstrument('NSE:RELIANCE')).toEqual({ exchange: 'NSE', symbol: 'RELIANCE' });
    expect(parseInstrument('NSE_INDEX:NIFTY')).toEqual({ exchange: 'NSE_INDEX', symbol: 'NIFTY' });
    expect(parseInstrument('NSE:TCS:20')).toEqual({ exchange: 'NSE', symbol: 'TCS:20' });
    expect(parseInstrument({ exchange: 'BSE', symbol: 'SENSEX', extra: 1 })).toEqual({ exchange: 'BSE', symbol: 'SENSEX' });
    expect(streamKey({ exchange: 'NSE', symbol: 'TCS:20' })).toBe('NSE:TCS:20');
  });

  it('refuses malformed instruments with INVALID_ARGUMENT and a message naming the input', () => {
    for (const bad of ['RELIANCE', ':RELIANCE', 'NSE:', '', { exchange: 'NSE' }, { exchange: 1, symbol: 'X' }, null, 42, ['NSE', 'X'], 'NSE:A\u0001B', `NSE:${'X'.repeat(129)}`]) {
      const error = thrown(() => parseInstrument(bad));
      expect(error).toBeInstanceOf(TickcastClientError);
      expect(error.code).toBe('INVALID_ARGUMENT');
    }
    expect(thrown(() => parseInstrument('RELIANCE')).message).toBe('instrument "RELIANCE" must be EXCHANGE:SYMBOL, for example NSE:RELIANCE');
  });

  it('lists: one or many, duplicates dropped in order, empty refused', () => {
    expect(parseInstruments('NSE:A')).toEqual([{ exchange: 'NSE', symbol: 'A' }]);
    expect(parseInstruments(['NSE:A', { exchange: 'NSE', symbol: 'B' }, 'NSE:A'])).toEqual([
      { exchange: 'NSE', symbol: 'A' },
      { exchange: 'NSE', symbol: 'B' },
    ]);
    expect(thrown(() => parseInstruments([])).message).toBe('at least one instrument is required');
  });

  it('modes by number or name in any case; anything else refused', () => {
    expect([1, 2, 3, 'ltp', 'Quote', ' DEPTH '].map(parseMode)).toEqual([1, 2, 3, 1, 2, 3]);
    for (const bad of [0, 4, 1.5, '1', 'full', null, undefined, true]) expect(thrown(() => parseMode(bad)).code).toBe('INVALID_ARGUMENT');
  });
});

describe('requests', () => {
  it('authenticate asks for the extensions, always with seq', () => {
    expect(authenticateRequest({ apiKey: 'k', encoding: 'msgpack', batch: false, snapshot: true })).toStrictEqual({
      action: 'authenticate',
      api_key: 'k',
      encoding: 'msgpack',
      batch: false,
      seq: true,
      snapshot: true,
    });
  });

  it('subscribe and unsubscribe use the bulk form; unsubscribe items carry their mode', () => {
    const list = [{ exchange: 'NSE', symbol: 'A' }, { exchange: 'NSE_INDEX', symbol: 'NIFTY' }];
    expect(subscribeRequests(list, 3)).toStrictEqual([
      { action: 'subscribe', symbols: [{ symbol: 'A', exchange: 'NSE' }, { symbol: 'NIFTY', exchange: 'NSE_INDEX' }], mode: 3, depth: 5 },
    ]);
    expect(unsubscribeRequests(list, 1)).toStrictEqual([
      { action: 'unsubscribe', symbols: [{ symbol: 'A', exchange: 'NSE', mode: 1 }, { symbol: 'NIFTY', exchange: 'NSE_INDEX', mode: 1 }], mode: 1 },
    ]);
  });

  it('large lists are split so no request exceeds the size given, keeping every instrument once', () => {
    const list = Array.from({ length: 2000 }, (_, i) => ({ exchange: 'NSE', symbol: `SYMBOL${i}` }));
    const requests = subscribeRequests(list, 2);
    expect(requests.length).toBeGreaterThan(1);
    for (const request of requests) expect(JSON.stringify(request).length).toBeLessThan(32 * 1024 + 100);
    expect(requests.flatMap((r) => (r.symbols as Array<{ symbol: string }>).map((s) => s.symbol))).toEqual(list.map((i) => i.symbol));
    expect(subscribeRequests(list.slice(0, 3), 2, 10)).toHaveLength(3);
  });
});

describe('frames', () => {
  const tick = { type: 'market_data', symbol: 'A', exchange: 'NSE', mode: 1, data: { ltp: 1.5 }, broker: 'b', seq: 4 };

  it('decodes JSON text, JSON binary, MessagePack, and batches of each', () => {
    expect(decodeFrame(JSON.stringify(tick))).toEqual({ ok: true, messages: [tick] });
    expect(decodeFrame(new TextEncoder().encode(JSON.stringify([tick, tick])))).toEqual({ ok: true, messages: [tick, tick] });
    const packed = pack(tick);
    expect(decodeFrame(packed)).toEqual({ ok: true, messages: [tick] });
    const arrayBuffer = packed.buffer.slice(packed.byteOffset, packed.byteOffset + packed.byteLength);
    expect(decodeFrame(arrayBuffer)).toEqual({ ok: true, messages: [tick] });
    expect(decodeFrame(pack([tick, { type: 'feed_status', status: 'live' }]))).toEqual({ ok: true, messages: [tick, { type: 'feed_status', status: 'live' }] });
  });

  it('reports undecodable frames as PROTOCOL_ERROR instead of throwing', () => {
    for (const bad of ['not json', '42', '[1,2]', new Uint8Array([0x82, 0xa1]), new Uint8Array(), pack(7), {}]) {
      const decoded = decodeFrame(bad);
      expect(decoded.ok).toBe(false);
      if (!decoded.ok) expect(decoded.code).toBe('PROTOCOL_ERROR');
    }
  });

  it('pushes are market data, feed status and order updates; the rest are replies', () => {
    expect(['market_data', 'feed_status', 'order_update'].map((type) => isPush({ type }))).toEqual([true, true, true]);
    expect([{ type: 'subscribe' }, { type: 'pong' }, { status: 'error', code: 'X' }].map(isPush)).toEqual([false, false, false]);
  });

  it('market data is read only when well formed', () => {
    expect(readMarketData(tick)).toEqual({ exchange: 'NSE', symbol: 'A', mode: 1, seq: 4, data: { ltp: 1.5 } });
    expect(readMarketData({ ...tick, seq: undefined })?.seq).toBeUndefined();
    expect(readMarketData({ ...tick, mode: 4 })).toBeUndefined();
    expect(readMarketData({ ...tick, data: [1] })).toBeUndefined();
    expect(readMarketData({ ...tick, symbol: 3 })).toBeUndefined();
  });
});

describe('replies', () => {
  const success = { type: 'auth', status: 'success', message: 'Authentication successful', broker: 'simulator', user_id: 'u', supported_features: {} };

  it('auth: the echoed extensions, or none from a gateway that does not know them', () => {
    expect(readAuthReply({ ...success, encoding: 'msgpack', batch: true, seq: true, snapshot: false })).toEqual({
      ok: true,
      broker: 'simulator',
      userId: 'u',
      extensions: { encoding: 'msgpack', batch: true, seq: true, snapshot: false },
    });
    expect(readAuthReply(success)).toMatchObject({ ok: true, extensions: { encoding: 'json', batch: false, seq: false, snapshot: false } });
  });

  it('auth: the error envelope keeps the gateway code; anything else is a protocol error', () => {
    expect(readAuthReply({ status: 'error', code: 'AUTHENTICATION_ERROR', message: 'Invalid API key' })).toEqual({ ok: false, code: 'AUTHENTICATION_ERROR', message: 'Invalid API key' });
    expect(readAuthReply({ type: 'pong' })).toMatchObject({ ok: false, code: 'PROTOCOL_ERROR' });
  });

  it('subscribe: one outcome per requested instrument, matched by name', () => {
    const requested = [{ exchange: 'NSE', symbol: 'A' }, { exchange: 'NSE', symbol: 'B' }, { exchange: 'NSE', symbol: 'C' }];
    const reply = {
      type: 'subscribe',
      status: 'partial',
      subscriptions: [
        { symbol: 'B', exchange: 'NSE', status: 'error', message: 'Token not found for B on NSE', broker: 'x' },
        { symbol: 'A', exchange: 'NSE', status: 'success', mode: 'Quote', depth: 5, broker: 'x' },
      ],
    };
    const { error, outcomes } = readSubscribeReply(reply, requested);
    expect(error).toBeUndefined();
    expect(Object.fromEntries(outcomes)).toEqual({
      'NSE:A': { ok: true, depth: 5 },
      'NSE:B': { ok: false, message: 'Token not found for B on NSE' },
      'NSE:C': { ok: false, message: 'the gateway did not answer for this instrument' },
    });
  });

  it('subscribe: an error envelope fails every instrument with its message', () => {
    const { error, outcomes } = readSubscribeReply({ status: 'error', code: 'LIMIT_EXCEEDED', message: 'Too many subscribe requests (limit 20 per second)' }, [{ exchange: 'NSE', symbol: 'A' }]);
    expect(error).toEqual({ code: 'LIMIT_EXCEEDED', message: 'Too many subscribe requests (limit 20 per second)' });
    expect(outcomes.get('NSE:A')).toEqual({ ok: false, message: 'Too many subscribe requests (limit 20 per second)' });
  });
});
