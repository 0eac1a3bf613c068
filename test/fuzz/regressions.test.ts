/**
 * Faults the fuzzers found, each pinned by the smallest input that showed it.
 */
import { describe, expect, it } from 'vitest';
import { decodeKiteBinary, decodeKiteText } from '../../src/adapters/zerodha/decoder.js';
import { BatchEncoder, decodeBatch } from '../../src/bus/batch.js';
import { MAX_REQUEST_DEPTH, decodeFrame, parseSubscribe, resolveAction } from '../../src/protocol/requests.js';
import { clientPipeline } from './targets/requests.js';

const nested = (depth: number, open = '[', close = ']') => `${open.repeat(depth)}1${close.repeat(depth)}`;

describe('client requests nested thousands deep', () => {
  // Found: {"action": [[[…3000 levels…]]]} made resolveAction's Python-style repr overflow the
  // stack, and an echoed request_id or symbol that deep would have broken the reply's
  // JSON.stringify. OpenAlgo's json.loads refuses such nesting with this RecursionError text.
  it('refuses nesting deeper than MAX_REQUEST_DEPTH with SERVER_ERROR and Python\'s message', () => {
    for (const field of ['action', 'request_id', 'symbol', 'mode']) {
      const frame = `{"action":"subscribe","${field}":${nested(3073)}}`;
      expect(decodeFrame(frame)).toEqual({
        ok: false,
        error: { code: 'SERVER_ERROR', message: 'maximum recursion depth exceeded while decoding a JSON array from a unicode string' },
      });
    }
    expect(decodeFrame(`{"a":${nested(MAX_REQUEST_DEPTH, '{"b":', '}')}}`)).toMatchObject({
      ok: false,
      error: { code: 'SERVER_ERROR', message: 'maximum recursion depth exceeded while decoding a JSON object from a unicode string' },
    });
  });

  it('still reads requests exactly MAX_REQUEST_DEPTH deep, through every step that walks them', () => {
    const frame = `{"action":${nested(MAX_REQUEST_DEPTH - 1)}}`;
    const decoded = decodeFrame(frame);
    if (!decoded.ok) throw new Error(decoded.error.message);
    const action = resolveAction(decoded.value);
    expect(action.ok).toBe(false);
    if (!action.ok) expect(action.error.message).toBe(`Invalid action: ${'['.repeat(MAX_REQUEST_DEPTH - 1)}1${']'.repeat(MAX_REQUEST_DEPTH - 1)}`);
    const deepSymbol = decodeFrame(`{"action":"subscribe","symbol":${nested(MAX_REQUEST_DEPTH - 1)},"exchange":"NSE","request_id":${nested(MAX_REQUEST_DEPTH - 1)}}`);
    if (!deepSymbol.ok) throw new Error(deepSymbol.error.message);
    const parsed = parseSubscribe(deepSymbol.value);
    expect(parsed.ok).toBe(true);
    // What the reply echoes serialises.
    expect(() => JSON.stringify(parsed)).not.toThrow();
    expect(clientPipeline(frame).errors).toHaveLength(1);
  });

  it('does not count brackets inside strings', () => {
    const frame = `{"action":"${'['.repeat(5000)}"}`;
    expect(resolveAction((decodeFrame(frame) as { ok: true; value: Record<string, unknown> }).value)).toMatchObject({
      ok: false,
      error: { code: 'INVALID_ACTION' },
    });
  });
});

describe('float modes', () => {
  // Found: marking `"mode": 3.` as a float literal made invalid JSON valid; OpenAlgo's
  // json.loads refuses `3.`, `02.0` and `1.e5`, so the answer is INVALID_JSON.
  it('leaves numbers JSON does not allow for JSON.parse to refuse', () => {
    for (const mode of ['3.', '02.0', '1.e5', '-.5', '+1.0']) {
      expect(decodeFrame(`{"action":"subscribe","mode":${mode}}`), mode).toEqual({ ok: false, error: { code: 'INVALID_JSON', message: 'Invalid JSON message' } });
    }
    for (const mode of ['2.0', '-0.0', '1E+0', '0.5e-1']) {
      const decoded = decodeFrame(`{"mode":${mode},"symbol":"A","exchange":"NSE"}`);
      if (!decoded.ok) throw new Error(decoded.error.message);
      expect(parseSubscribe(decoded.value), mode).toMatchObject({ ok: false, error: { code: 'INVALID_MODE', message: 'Mode must be int or str, got float' } });
    }
  });
});

describe('Kite frames', () => {
  // Found: the adapter JSON.stringifies a text frame's `data` to log it; 4101 levels overflowed.
  it('refuses a text frame nested thousands deep, and still reads ordinary ones', () => {
    expect(decodeKiteText(`{"type":"error","data":${nested(4101)}}`)).toEqual({ kind: 'invalid', reason: 'text frame nests deeper than 1000 levels' });
    expect(decodeKiteText('{"type":"error","data":[[["Invalid access token."]]]}')).toEqual({ kind: 'text', type: 'error', data: [[['Invalid access token.']]] });
  });

  // Found: a 64 KiB frame claiming 65535 empty packets gave a 1.5 MB reason (one clause per
  // packet), which the adapter logs whole.
  it('keeps the reason of a frame with a forged packet count short', () => {
    const frame = Buffer.alloc(64 * 1024);
    frame.writeUInt16BE(0xffff, 0);
    const decoded = decodeKiteBinary(frame);
    expect(decoded.kind).toBe('invalid');
    if (decoded.kind !== 'invalid') return;
    expect(decoded.reason.length).toBeLessThan(400);
    expect(decoded.reason).toBe(
      'packet 1 of 65535: unknown packet length 0; packet 2 of 65535: unknown packet length 0; ' +
        'packet 3 of 65535: unknown packet length 0; … 32764 more; truncated: packet 32768 of 65535 has no length (frame is 65536 bytes)',
    );
  });
});

describe('bus batches', () => {
  // Found: a topic over 65535 bytes made take() throw and stay in the batch, so every later
  // take() threw as well (a publisher would never send again).
  it('refuses an unencodable topic at add, and the batch goes on', () => {
    const encoder = new BatchEncoder();
    encoder.add('NSE_A_LTP', '{"ltp":1}');
    expect(() => encoder.add('x'.repeat(0x10000), '{}')).toThrow(RangeError);
    expect(() => encoder.add('€'.repeat(0x5556), '{}')).toThrow('topic longer than 65535 bytes');
    encoder.add('€'.repeat(0x5555), '{}');
    const entries: string[] = [];
    expect(decodeBatch(encoder.take(), (topic) => entries.push(topic))).toBeNull();
    expect(entries).toEqual(['NSE_A_LTP', '€'.repeat(0x5555)]);
    encoder.add('NSE_B_LTP', '{}');
    expect(encoder.take().length).toBe(6 + 'NSE_B_LTP'.length + 2);
  });
});
