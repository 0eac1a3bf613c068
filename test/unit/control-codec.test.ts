import { describe, it, expect } from 'vitest';
import {
  MAX_MESSAGE_BYTES,
  MAX_TEXT_LENGTH,
  clipText,
  decodeAdapterMessage,
  decodeGatewayMessage,
  encodeMessage,
} from '../../src/control/codec.js';
import { PROTOCOL_VERSION, type AdapterMessage, type GatewayMessage, type Hello } from '../../src/control/protocol.js';

const hello: Hello = {
  type: 'hello',
  protocol: PROTOCOL_VERSION,
  feed: 'sim',
  broker: 'simulator',
  brokers: ['simulator', 'zerodha'],
  pid: 4242,
  instance: 'default',
  entryId: 'abc123',
  session: 3,
  heartbeatMs: 1000,
  status: 'live',
};

const adapterMessages: AdapterMessage[] = [
  hello,
  { ...hello, brokers: '*', instance: undefined, entryId: undefined },
  { type: 'heartbeat' },
  { type: 'reply', id: 0, ok: true },
  { type: 'reply', id: 7, ok: true, depth: 5 },
  { type: 'reply', id: 8, ok: false, message: 'Token not found for FOO on NSE' },
  { type: 'status', status: 'reconnecting' },
  { type: 'status', status: 'down', message: 'credentials refused' },
  { type: 'bye' },
];

const gatewayMessages: GatewayMessage[] = [
  { type: 'welcome', session: 3, heartbeatMs: 1000 },
  { type: 'refused', session: 3, message: 'feed id "sim" is already served by pid 1' },
  { type: 'heartbeat' },
  { type: 'subscribe', id: 1, exchange: 'NSE', symbol: 'RELIANCE', mode: 3, depth: 5 },
  { type: 'unsubscribe', id: 2, exchange: 'NSE', symbol: 'RELIANCE' },
  { type: 'reset', message: 'say hello again' },
  { type: 'bye' },
];

/** JSON round trip drops undefined fields; compare with that in mind. */
const plain = (value: unknown): unknown => JSON.parse(JSON.stringify(value));

function adapterError(value: unknown): string {
  const decoded = decodeAdapterMessage(typeof value === 'string' ? value : JSON.stringify(value));
  expect(decoded.ok).toBe(false);
  return decoded.ok ? '' : decoded.error;
}

function gatewayError(value: unknown): string {
  const decoded = decodeGatewayMessage(typeof value === 'string' ? value : JSON.stringify(value));
  expect(decoded.ok).toBe(false);
  return decoded.ok ? '' : decoded.error;
}

describe('control codec', () => {
  it('round-trips every adapter message, from a string and from a Buffer', () => {
    for (const message of adapterMessages) {
      const encoded = encodeMessage(message);
      expect(decodeAdapterMessage(encoded)).toEqual({ ok: true, message: plain(message) });
      expect(decodeAdapterMessage(Buffer.from(encoded))).toEqual({ ok: true, message: plain(message) });
    }
  });

  it('round-trips every gateway message', () => {
    for (const message of gatewayMessages) {
      expect(decodeGatewayMessage(Buffer.from(encodeMessage(message)))).toEqual({ ok: true, message: plain(message) });
    }
  });

  it('keeps only the known fields', () => {
    const decoded = decodeAdapterMessage(JSON.stringify({ type: 'heartbeat', extra: 'x'.repeat(100) }));
    expect(decoded).toEqual({ ok: true, message: { type: 'heartbeat' } });
    const raw = '{"type":"subscribe","id":1,"exchange":"NSE","symbol":"X","mode":1,"depth":0,"__proto__":{"evil":1},"more":1}';
    const sub = decodeGatewayMessage(raw);
    expect(sub.ok && Object.keys(sub.message).sort()).toEqual(['depth', 'exchange', 'id', 'mode', 'symbol', 'type']);
    expect(sub.ok && (sub.message as unknown as { evil?: number }).evil).toBeUndefined();
  });

  it('rejects what is not a JSON object', () => {
    expect(adapterError('not json')).toBe('not JSON');
    expect(adapterError('')).toBe('not JSON');
    expect(gatewayError('{"type":')).toBe('not JSON');
    expect(decodeAdapterMessage(Buffer.from([0xff, 0xfe, 0x00, 0x01]))).toMatchObject({ ok: false, error: 'not JSON' });
    for (const value of ['null', '42', '"hello"', '[]', '[{"type":"heartbeat"}]', 'true']) {
      expect(adapterError(value)).toBe('not a JSON object');
      expect(gatewayError(value)).toBe('not a JSON object');
    }
  });

  it('rejects a missing, non-string or unknown type', () => {
    expect(adapterError({})).toBe('"type" must be a string');
    expect(adapterError({ type: 7 })).toBe('"type" must be a string');
    expect(adapterError({ type: 'nope' })).toBe('unknown adapter message type "nope"');
    expect(gatewayError({ type: 'nope' })).toBe('unknown gateway message type "nope"');
    // Each direction has its own types.
    expect(adapterError({ type: 'welcome', session: 1, heartbeatMs: 1 })).toMatch(/unknown adapter message type/);
    expect(gatewayError(hello)).toMatch(/unknown gateway message type "hello"/);
    expect(gatewayError({ type: 'x'.repeat(1000) }).length).toBeLessThan(100);
  });

  it('rejects a hello with a wrong field', () => {
    const cases: Array<[Partial<Record<keyof Hello, unknown>>, RegExp]> = [
      [{ feed: '' }, /hello\.feed must be a non-empty string/],
      [{ feed: 5 }, /hello\.feed/],
      [{ feed: 'x'.repeat(129) }, /hello\.feed .*at most 128/],
      [{ broker: undefined }, /hello\.broker/],
      [{ brokers: 'simulator' }, /hello\.brokers must be "\*" or a list/],
      [{ brokers: ['ok', 3] }, /hello\.brokers must hold non-empty strings/],
      [{ brokers: [''] }, /hello\.brokers must hold non-empty strings/],
      [{ brokers: Array(257).fill('b') }, /at most 256 broker names/],
      [{ pid: 0 }, /hello\.pid must be an integer ≥ 1/],
      [{ pid: '12' }, /hello\.pid/],
      [{ pid: 1.5 }, /hello\.pid/],
      [{ protocol: 0 }, /hello\.protocol/],
      [{ session: -1 }, /hello\.session must be an integer ≥ 0/],
      [{ heartbeatMs: 0 }, /hello\.heartbeatMs must be an integer ≥ 1/],
      [{ status: 'ok' }, /hello\.status must be one of live, reconnecting, stale, down/],
      [{ status: undefined }, /hello\.status/],
      [{ instance: '' }, /hello\.instance/],
      [{ entryId: 12 }, /hello\.entryId/],
    ];
    for (const [change, error] of cases) expect(adapterError({ ...hello, ...change })).toMatch(error);
  });

  it('rejects replies and status messages with wrong fields', () => {
    expect(adapterError({ type: 'reply', id: -1, ok: true })).toBe('reply.id must be an integer ≥ 0');
    expect(adapterError({ type: 'reply', id: 1.5, ok: true })).toBe('reply.id must be an integer ≥ 0');
    expect(adapterError({ type: 'reply', id: '1', ok: true })).toBe('reply.id must be an integer ≥ 0');
    expect(adapterError({ type: 'reply', id: 2 ** 53, ok: true })).toBe('reply.id must be an integer ≥ 0');
    expect(adapterError({ type: 'reply', ok: true })).toBe('reply.id must be an integer ≥ 0');
    expect(adapterError({ type: 'reply', id: 1, ok: 'yes' })).toBe('reply.ok must be true or false');
    expect(adapterError({ type: 'reply', id: 1, ok: true, depth: -5 })).toBe('reply.depth must be an integer ≥ 0');
    expect(adapterError({ type: 'reply', id: 1, ok: false })).toMatch(/reply\.message must be a string/);
    expect(adapterError({ type: 'reply', id: 1, ok: false, message: 'x'.repeat(MAX_TEXT_LENGTH + 1) })).toMatch(
      /reply\.message .*at most 2000/,
    );
    expect(adapterError({ type: 'status', status: 'up' })).toMatch(/status\.status must be one of/);
    expect(adapterError({ type: 'status', status: 'down', message: 4 })).toMatch(/status\.message/);
  });

  it('rejects gateway commands with wrong fields', () => {
    const subscribe = gatewayMessages[3]!;
    for (const mode of [0, 4, '1', 1.5, null, 'LTP']) {
      expect(gatewayError({ ...subscribe, mode })).toBe('subscribe.mode must be 1, 2 or 3');
    }
    expect(gatewayError({ ...subscribe, id: -3 })).toBe('subscribe.id must be an integer ≥ 0');
    expect(gatewayError({ ...subscribe, id: 'x' })).toBe('subscribe.id must be an integer ≥ 0');
    expect(gatewayError({ ...subscribe, depth: 2.5 })).toBe('subscribe.depth must be an integer ≥ 0');
    expect(gatewayError({ ...subscribe, symbol: '' })).toMatch(/subscribe\.symbol must be a non-empty string/);
    expect(gatewayError({ ...subscribe, exchange: ['NSE'] })).toMatch(/subscribe\.exchange/);
    expect(gatewayError({ ...subscribe, symbol: 'S'.repeat(257) })).toMatch(/at most 256/);
    expect(gatewayError({ type: 'unsubscribe', id: 1, exchange: 'NSE' })).toMatch(/unsubscribe\.symbol/);
    expect(gatewayError({ type: 'welcome', session: 1, heartbeatMs: 0 })).toBe('welcome.heartbeatMs must be an integer ≥ 1');
    expect(gatewayError({ type: 'welcome', heartbeatMs: 100 })).toBe('welcome.session must be an integer ≥ 0');
    expect(gatewayError({ type: 'refused', session: 1 })).toMatch(/refused\.message/);
    expect(gatewayError({ type: 'reset' })).toMatch(/reset\.message/);
  });

  it('rejects oversized messages before parsing them', () => {
    const big = JSON.stringify({ type: 'heartbeat', pad: 'x'.repeat(MAX_MESSAGE_BYTES) });
    expect(adapterError(big)).toMatch(/exceeds the 65536-byte limit/);
    expect(decodeGatewayMessage(Buffer.alloc(MAX_MESSAGE_BYTES + 1, 0x20))).toMatchObject({ ok: false });
    // Multi-byte characters count as bytes, not characters.
    const wide = JSON.stringify({ type: 'heartbeat', pad: 'é'.repeat(MAX_MESSAGE_BYTES / 2) });
    expect(adapterError(wide)).toMatch(/exceeds/);
  });

  it('clips free text to what the other side accepts', () => {
    expect(clipText('short')).toBe('short');
    const clipped = clipText('x'.repeat(5000));
    expect(clipped.length).toBe(MAX_TEXT_LENGTH);
    const decoded = decodeAdapterMessage(encodeMessage({ type: 'reply', id: 1, ok: false, message: clipped }));
    expect(decoded.ok).toBe(true);
  });
});
