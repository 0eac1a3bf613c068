import { describe, expect, it } from 'vitest';
import { DEEP_DEPTH_LEVELS, depthSuffix, requestedDepth } from '../../src/protocol/depth.js';
import { normalizeMode } from '../../src/protocol/modes.js';
import {
  apiKeyOf,
  checkItem,
  decodeFrame,
  checkSince,
  parseSubscribe,
  parseUnsubscribe,
  resolveAction,
  type JsonObject,
} from '../../src/protocol/requests.js';

const obj = (text: string): JsonObject => {
  const decoded = decodeFrame(text);
  if (!decoded.ok) throw new Error(`not an object: ${text}`);
  return decoded.value;
};

describe('decodeFrame', () => {
  it.each([
    ['not json', 'INVALID_JSON', 'Invalid JSON message'],
    ['{"action": "ping"', 'INVALID_JSON', 'Invalid JSON message'],
    ['', 'INVALID_JSON', 'Invalid JSON message'],
    ['[1, 2]', 'SERVER_ERROR', "'list' object has no attribute 'get'"],
    ['"text"', 'SERVER_ERROR', "'str' object has no attribute 'get'"],
    ['42', 'SERVER_ERROR', "'int' object has no attribute 'get'"],
    ['4.5', 'SERVER_ERROR', "'float' object has no attribute 'get'"],
    ['true', 'SERVER_ERROR', "'bool' object has no attribute 'get'"],
    ['null', 'SERVER_ERROR', "'NoneType' object has no attribute 'get'"],
  ])('%j → %s', (frame, code, message) => {
    expect(decodeFrame(frame)).toEqual({ ok: false, error: { code, message } });
  });

  it('accepts binary frames holding JSON', () => {
    expect(decodeFrame(Buffer.from('{"action":"ping"}'))).toEqual({ ok: true, value: { action: 'ping' } });
  });
});

describe('resolveAction', () => {
  it.each([
    ['{"action":"authenticate"}', 'authenticate'],
    ['{"action":"auth"}', 'authenticate'],
    ['{"type":"authenticate"}', 'authenticate'],
    ['{"action":"","type":"auth"}', 'authenticate'],
    ['{"action":"subscribe"}', 'subscribe'],
    ['{"action":"unsubscribe"}', 'unsubscribe'],
    ['{"action":"unsubscribe_all"}', 'unsubscribe'],
    ['{"type":"unsubscribe_all"}', 'unsubscribe'],
    ['{"action":"subscribe_orders"}', 'subscribe_orders'],
    ['{"action":"unsubscribe_orders"}', 'unsubscribe_orders'],
    ['{"action":"get_broker_info"}', 'get_broker_info'],
    ['{"action":"get_supported_brokers"}', 'get_supported_brokers'],
    ['{"action":"ping"}', 'ping'],
  ])('%s → %s', (frame, action) => {
    expect(resolveAction(obj(frame))).toEqual({ ok: true, value: action });
  });

  it.each([
    ['{}', 'Invalid action: None'],
    ['{"action":null}', 'Invalid action: None'],
    ['{"action":"fly"}', 'Invalid action: fly'],
    ['{"action":"Subscribe"}', 'Invalid action: Subscribe'],
    ['{"action":5}', 'Invalid action: 5'],
    ['{"action":true}', 'Invalid action: True'],
    ['{"action":["a", 1]}', "Invalid action: ['a', 1]"],
    ['{"action":{"x":"it\'s"}}', `Invalid action: {'x': "it's"}`],
    ['{"action":"constructor"}', 'Invalid action: constructor'],
    ['{"action":"__proto__"}', 'Invalid action: __proto__'],
  ])('%s → INVALID_ACTION %j', (frame, message) => {
    expect(resolveAction(obj(frame))).toEqual({ ok: false, error: { code: 'INVALID_ACTION', message } });
  });
});

describe('normalizeMode (OpenAlgo mode_utils messages)', () => {
  it.each([
    [1, 1], [2, 2], [3, 3],
    ['LTP', 1], ['ltp', 1], [' Quote ', 2], ['QUOTE', 2], ['depth', 3], ['Depth', 3],
  ])('%j → %d', (value, mode) => {
    expect(normalizeMode(value)).toEqual({ ok: true, mode });
  });

  it.each([
    [0, 'Invalid mode 0; expected 1 (LTP), 2 (Quote), or 3 (Depth)'],
    [4, 'Invalid mode 4; expected 1 (LTP), 2 (Quote), or 3 (Depth)'],
    [-1, 'Invalid mode -1; expected 1 (LTP), 2 (Quote), or 3 (Depth)'],
    ['foo', "Invalid mode 'foo'; expected 'LTP', 'Quote', or 'Depth' (case-insensitive)"],
    ['1', "Invalid mode '1'; expected 'LTP', 'Quote', or 'Depth' (case-insensitive)"],
    ['', "Invalid mode ''; expected 'LTP', 'Quote', or 'Depth' (case-insensitive)"],
    [null, 'Mode must be int or str, got NoneType'],
    [true, 'Mode must be int or str, got bool'],
    [1.5, 'Mode must be int or str, got float'],
    [[1], 'Mode must be int or str, got list'],
    [{}, 'Mode must be int or str, got dict'],
  ])('%j → %j', (value, message) => {
    expect(normalizeMode(value)).toEqual({ ok: false, message });
  });
});

describe('parseSubscribe', () => {
  it('reads the bulk form with the top-level mode and depth', () => {
    const parsed = parseSubscribe(obj('{"action":"subscribe","symbols":[{"symbol":"RELIANCE","exchange":"NSE","mode":3},{"symbol":"NIFTY","exchange":"NSE_INDEX"}],"mode":1,"depth":5,"request_id":"r1"}'));
    expect(parsed).toEqual({
      ok: true,
      value: {
        items: [
          { symbol: 'RELIANCE', exchange: 'NSE' },
          { symbol: 'NIFTY', exchange: 'NSE_INDEX' },
        ],
        mode: 1,
        depth: 5,
        requestId: 'r1',
      },
    });
  });

  it('reads the single form, defaulting mode to Quote and depth to 5', () => {
    expect(parseSubscribe(obj('{"action":"subscribe","symbol":"TCS","exchange":"NSE"}'))).toEqual({
      ok: true,
      value: { items: [{ symbol: 'TCS', exchange: 'NSE' }], mode: 2, depth: 5, requestId: undefined },
    });
  });

  it('skips bulk items without symbol or exchange', () => {
    const parsed = parseSubscribe(obj('{"symbols":[{"symbol":"A"},{"exchange":"NSE"},{"symbol":"","exchange":"NSE"},{"symbol":"B","exchange":"NSE"}],"mode":"LTP"}'));
    expect(parsed.ok && parsed.value.items).toEqual([{ symbol: 'B', exchange: 'NSE' }]);
  });

  it.each([
    ['{"symbols":[{"symbol":"A","exchange":"NSE"}],"mode":4}', 'INVALID_MODE', 'Invalid mode 4; expected 1 (LTP), 2 (Quote), or 3 (Depth)'],
    ['{"symbols":[{"symbol":"A","exchange":"NSE"}],"mode":2.0}', 'INVALID_MODE', 'Mode must be int or str, got float'],
    ['{"symbols":[{"symbol":"A","exchange":"NSE"}],"mode": 1e0 }', 'INVALID_MODE', 'Mode must be int or str, got float'],
    ['{"symbols":[{"symbol":"A","exchange":"NSE"}],"mode":null}', 'INVALID_MODE', 'Mode must be int or str, got NoneType'],
    ['{"symbols":[{"symbol":"A","exchange":"NSE"}],"mode":"1"}', 'INVALID_MODE', "Invalid mode '1'; expected 'LTP', 'Quote', or 'Depth' (case-insensitive)"],
    // mode is checked before the symbols, as OpenAlgo does
    ['{"mode":0}', 'INVALID_MODE', 'Invalid mode 0; expected 1 (LTP), 2 (Quote), or 3 (Depth)'],
    ['{}', 'INVALID_PARAMETERS', 'At least one symbol must be specified'],
    ['{"symbols":[]}', 'INVALID_PARAMETERS', 'At least one symbol must be specified'],
    ['{"symbol":"A"}', 'INVALID_PARAMETERS', 'At least one symbol must be specified'],
    ['{"symbols":[{"symbol":"A"}]}', 'INVALID_PARAMETERS', 'At least one symbol must be specified'],
    ['{"instruments":[{"symbol":"A","exchange":"NSE"}]}', 'INVALID_PARAMETERS', 'At least one symbol must be specified'],
    ['{"symbols":"RELIANCE"}', 'INVALID_PARAMETERS', 'symbols must be a list of {"symbol", "exchange"} objects'],
    ['{"symbols":["RELIANCE"]}', 'SERVER_ERROR', "'str' object has no attribute 'get'"],
  ])('%s → %s', (frame, code, message) => {
    expect(parseSubscribe(obj(frame))).toEqual({ ok: false, error: { code, message } });
  });

  it('reads depth_level (the name in OpenAlgo\'s docs) when depth is absent; depth wins when both are given', () => {
    const depthOf = (frame: string): unknown => {
      const parsed = parseSubscribe(obj(frame));
      return parsed.ok ? parsed.value.depth : parsed.error;
    };
    expect(depthOf('{"symbol":"TCS","exchange":"NSE","mode":3,"depth_level":20}')).toBe(20);
    expect(depthOf('{"symbol":"TCS","exchange":"NSE","mode":3,"depth":5,"depth_level":20}')).toBe(5);
    expect(depthOf('{"symbol":"TCS","exchange":"NSE","mode":3,"depth_level":20,"depth":30}')).toBe(30);
    // As OpenAlgo's data.get("depth", 5): a depth given as null is null (echoed), not the alias.
    expect(depthOf('{"symbol":"TCS","exchange":"NSE","mode":3,"depth":null,"depth_level":20}')).toBe(null);
    expect(depthOf('{"symbol":"TCS","exchange":"NSE","mode":3}')).toBe(5);
  });

  it('keeps a deep-book suffix in the symbol', () => {
    const parsed = parseSubscribe(obj('{"symbols":[{"symbol":"RELIANCE:20","exchange":"NSE"},{"symbol":"TCS:50","exchange":"NSE"}],"mode":3}'));
    expect(parsed.ok && parsed.value.items).toEqual([
      { symbol: 'RELIANCE:20', exchange: 'NSE' },
      { symbol: 'TCS:50', exchange: 'NSE' },
    ]);
  });

  it('does not mistake a float-looking mode inside a string for a float', () => {
    const parsed = parseSubscribe(obj('{"symbols":[{"symbol":"\\"mode\\": 2.0","exchange":"NSE"}],"mode":2}'));
    expect(parsed.ok && parsed.value.mode).toBe(2);
  });
});

describe('parseUnsubscribe', () => {
  it('reads per-item modes, defaulting to Quote', () => {
    const parsed = parseUnsubscribe(obj('{"symbols":[{"symbol":"A","exchange":"NSE","mode":1},{"symbol":"B","exchange":"NSE"}]}'));
    expect(parsed).toEqual({
      ok: true,
      value: {
        all: false,
        requestId: undefined,
        items: [
          { symbol: 'A', exchange: 'NSE', mode: { ok: true, mode: 1 } },
          { symbol: 'B', exchange: 'NSE', mode: { ok: true, mode: 2 } },
        ],
      },
    });
  });

  it('falls back to a top-level mode when an item has none (spec §7 item 3)', () => {
    const parsed = parseUnsubscribe(obj('{"symbols":[{"symbol":"A","exchange":"NSE"},{"symbol":"B","exchange":"NSE","mode":"Quote"}],"mode":"Depth","request_id":7}'));
    expect(parsed.ok && !parsed.value.all && parsed.value.items.map((i) => i.mode)).toEqual([
      { ok: true, mode: 3 },
      { ok: true, mode: 2 },
    ]);
    expect(parsed.ok && parsed.value.requestId).toBe(7);
  });

  it('reports an invalid per-item mode on that item only', () => {
    const parsed = parseUnsubscribe(obj('{"symbols":[{"symbol":"A","exchange":"NSE","mode":9}]}'));
    expect(parsed.ok && !parsed.value.all && parsed.value.items[0]!.mode).toEqual({
      ok: false,
      message: 'Invalid mode 9; expected 1 (LTP), 2 (Quote), or 3 (Depth)',
    });
  });

  it('reads the single form with the top-level mode', () => {
    const parsed = parseUnsubscribe(obj('{"symbol":"A","exchange":"NSE","mode":"ltp"}'));
    expect(parsed.ok && !parsed.value.all && parsed.value.items).toEqual([{ symbol: 'A', exchange: 'NSE', mode: { ok: true, mode: 1 } }]);
  });

  it.each(['{"action":"unsubscribe_all"}', '{"type":"unsubscribe_all"}', '{"action":"unsubscribe","type":"unsubscribe_all"}'])('%s is unsubscribe_all', (frame) => {
    expect(parseUnsubscribe(obj(frame))).toEqual({ ok: true, value: { all: true, requestId: undefined } });
  });

  it.each([
    ['{"symbol":"A","exchange":"NSE","mode":7}', 'INVALID_MODE', 'Invalid mode 7; expected 1 (LTP), 2 (Quote), or 3 (Depth)'],
    ['{"action":"unsubscribe"}', 'INVALID_PARAMETERS', 'Either symbols or unsubscribe_all is required'],
    ['{"symbols":[]}', 'INVALID_PARAMETERS', 'Either symbols or unsubscribe_all is required'],
  ])('%s → %s', (frame, code, message) => {
    expect(parseUnsubscribe(obj(frame))).toEqual({ ok: false, error: { code, message } });
  });
});

describe('apiKeyOf and checkItem', () => {
  it('reads api_key, falling back to apikey', () => {
    expect(apiKeyOf({ api_key: 'a' })).toBe('a');
    expect(apiKeyOf({ apikey: 'b' })).toBe('b');
    expect(apiKeyOf({ api_key: '', apikey: 'c' })).toBe('c');
    expect(apiKeyOf({})).toBeUndefined();
  });

  it.each([
    [{ symbol: 'RELIANCE', exchange: 'NSE' }, { symbol: 'RELIANCE', exchange: 'NSE' }],
    [{ symbol: 5, exchange: 'NSE' }, { message: 'symbol and exchange must be strings' }],
    [{ symbol: 'A\u0000B', exchange: 'NSE' }, { message: 'symbol and exchange must not contain control characters' }],
    [{ symbol: 'X'.repeat(129), exchange: 'NSE' }, { message: 'symbol and exchange must be at most 128 characters' }],
  ])('%j', (item, result) => {
    expect(checkItem(item)).toEqual(result);
  });
});

describe('depth of book (deep-book symbol suffixes and the request depth)', () => {
  it('reads the :20, :30 and :50 suffixes OpenAlgo\'s adapters and UI use', () => {
    expect(DEEP_DEPTH_LEVELS).toEqual([20, 30, 50]);
    expect(depthSuffix('RELIANCE:20')).toEqual({ base: 'RELIANCE', levels: 20 });
    expect(depthSuffix('NIFTY30DEC26FUT:30')).toEqual({ base: 'NIFTY30DEC26FUT', levels: 30 });
    expect(depthSuffix('TCS:50')).toEqual({ base: 'TCS', levels: 50 });
    expect(depthSuffix('BTC:USDT:50')).toEqual({ base: 'BTC:USDT', levels: 50 });
  });

  it.each(['RELIANCE', 'RELIANCE:5', 'RELIANCE:10', 'RELIANCE:020', 'RELIANCE:20.0', 'RELIANCE:', ':20', 'RELIANCE:20x', 'M&M'])('%s has none', (symbol) => {
    expect(depthSuffix(symbol)).toBeUndefined();
  });

  it('asks the adapter for the suffix\'s depth, else the request\'s when it is a positive integer, else 5', () => {
    expect(requestedDepth('RELIANCE:20', 5)).toBe(20);
    expect(requestedDepth('TCS:50', 20)).toBe(50);
    expect(requestedDepth('RELIANCE', 20)).toBe(20);
    for (const depth of [0, -5, 2.5, '20', null, undefined, true]) expect(requestedDepth('RELIANCE', depth)).toBe(5);
  });
});

describe('subscribe since and epoch (recovery after reconnect)', () => {
  it('reads since per item (or beside a single symbol) and the request epoch', () => {
    const parsed = parseSubscribe(obj('{"action":"subscribe","symbols":[{"symbol":"A","exchange":"NSE","since":41},{"symbol":"B","exchange":"NSE"},{"symbol":"C","exchange":"NSE","since":null}],"mode":2,"epoch":"e1"}'));
    expect(parsed.ok && parsed.value).toMatchObject({ epoch: 'e1', items: [{ symbol: 'A', since: 41 }, { symbol: 'B' }, { symbol: 'C' }] });
    expect(parsed.ok && 'since' in parsed.value.items[1]!).toBe(false);
    expect(parsed.ok && 'since' in parsed.value.items[2]!).toBe(false);
    const single = parseSubscribe(obj('{"action":"subscribe","symbol":"A","exchange":"NSE","since":0,"epoch":"e1"}'));
    expect(single.ok && single.value.items).toEqual([{ symbol: 'A', exchange: 'NSE', since: 0 }]);
  });

  it('refuses an epoch that is not a string with INVALID_PARAMETERS', () => {
    for (const epoch of ['7', '{}', 'true', `"${'x'.repeat(200)}"`]) {
      expect(parseSubscribe(obj(`{"action":"subscribe","symbol":"A","exchange":"NSE","since":1,"epoch":${epoch}}`))).toEqual({
        ok: false,
        error: { code: 'INVALID_PARAMETERS', message: 'epoch must be a string: the seq_epoch of the auth reply' },
      });
    }
  });

  it('checks since per item: an integer >= 0, with seq negotiated and an epoch', () => {
    expect(checkSince(undefined, undefined, false)).toEqual({ since: undefined });
    expect(checkSince(12, 'e', true)).toEqual({ since: 12 });
    expect(checkSince(0, 'e', true)).toEqual({ since: 0 });
    for (const bad of [-1, 1.5, '3', true, {}, [], 2 ** 60]) {
      expect(checkSince(bad, 'e', true)).toEqual({ message: 'since must be an integer >= 0: the last seq received of this stream at this mode' });
    }
    expect(checkSince(3, 'e', false)).toEqual({ message: 'since needs seq: authenticate with "seq": true, or subscribe without since' });
    expect(checkSince(3, undefined, true)).toMatchObject({ message: expect.stringContaining('"epoch"') });
  });
});
