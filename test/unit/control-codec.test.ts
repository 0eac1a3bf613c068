import { describe, expect, it } from 'vitest';
import {
  MAX_BROKERS,
  MAX_MESSAGE_BYTES,
  MAX_NAME_LENGTH,
  MAX_SYMBOL_LENGTH,
  MAX_TEXT_LENGTH,
  clipText,
  decodeToAdapter,
  decodeToGateway,
  encodeFrame,
} from '../../src/control/codec.js';
import { authentic, mac, sessionKeys } from '../../src/control/keys.js';
import { PROTOCOL_VERSION, type Announce, type Register, type Registered, type ToAdapter, type ToGateway } from '../../src/control/protocol.js';

/** The example instance key of docs/control-protocol.md. */
const KEY = Buffer.from('000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f', 'hex');
const GATEWAY_NONCE = 'f0f889f42831745f6b152ee632ff93b873427e5b42a95ce75387126b0f8e983c';
const ADAPTER_NONCE = '4edaae841918d8001ad54de5b8b84058d57d3c86d5016606604af22e2d22c183';
const KEYS = sessionKeys(KEY, GATEWAY_NONCE, ADAPTER_NONCE);

const inSession = { gateway: 'gw-7f3a9c1e', session: 1, seq: 1 };

const announce: Announce = {
  type: 'announce',
  protocol: PROTOCOL_VERSION,
  feed: 'zerodha',
  broker: 'zerodha',
  brokers: ['zerodha', 'angel'],
  instance: 'default',
  pid: 4242,
  host: 'md-1',
  epoch: 3735928559,
  heartbeatMs: 1000,
};

const register: Register = {
  type: 'register',
  protocol: PROTOCOL_VERSION,
  gateway: 'gw-7f3a9c1e',
  session: 1,
  nonce: GATEWAY_NONCE,
  heartbeatMs: 1000,
  pid: 1717,
  host: 'gw-host',
};

const registered: Registered = {
  ...announce,
  type: 'registered',
  gateway: 'gw-7f3a9c1e',
  session: 1,
  gatewayNonce: GATEWAY_NONCE,
  nonce: ADAPTER_NONCE,
  status: 'live',
};

/** Messages both ends accept. */
const bothWays: Array<ToGateway & ToAdapter> = [
  { type: 'refused', message: 'feed zerodha is already served by pid 4100 on md-1' },
  { type: 'refused', epoch: 3735928559, message: 'feed zerodha is already served by pid 4100 on md-1' },
  { type: 'refused', gateway: 'gw-7f3a9c1e', session: 1, message: 'control protocol 3 is not supported: this adapter speaks 2' },
  { type: 'refused', gateway: 'g', session: 0, epoch: 0, message: '' },
];

const toGateway: ToGateway[] = [
  announce,
  { ...announce, brokers: '*', epoch: 0 },
  { ...announce, brokers: [] },
  { ...announce, feed: 'openalgo', broker: 'openalgo', brokers: [], hosts: ['dhan', 'fyers'] },
  { ...announce, brokers: [], hosts: [] },
  registered,
  { ...registered, brokers: [], hosts: ['upstox'] },
  { ...registered, status: 'down', message: 'credentials refused' },
  ...bothWays,
  { type: 'reset', gateway: 'gw-7f3a9c1e', session: 1, message: 'Feed "zerodha" does not know this registration; register again' },
  { type: 'heartbeat', ...inSession, resync: false, status: 'live' },
  { type: 'heartbeat', ...inSession, resync: true, status: 'stale', message: 'no ticks for 30 s' },
  { type: 'reply', ...inSession, id: 0, ok: true },
  { type: 'reply', ...inSession, id: 7, ok: true, depth: 5 },
  { type: 'reply', ...inSession, id: 8, ok: false, message: 'unknown symbol NSE:NOSUCH' },
  { type: 'status', ...inSession, seq: 9, status: 'reconnecting' },
  { type: 'status', ...inSession, status: 'down', message: 'broker websocket closed (1006)' },
  { type: 'status', ...inSession, status: 'live', feed: 'dhan.alice' },
  { type: 'bye', ...inSession, seq: Number.MAX_SAFE_INTEGER },
];

const toAdapter: ToAdapter[] = [
  register,
  ...bothWays,
  { type: 'heartbeat', ...inSession },
  { type: 'heartbeat', ...inSession, digest: { count: 0, sum: 0 } },
  { type: 'heartbeat', ...inSession, digest: { count: 2, sum: 0xffffffff } },
  { type: 'subscribe', ...inSession, id: 1, exchange: 'NSE', symbol: 'RELIANCE', mode: 1, depth: 0 },
  { type: 'subscribe', ...inSession, id: 2, exchange: 'NSE_INDEX', symbol: 'NIFTY 50', mode: 2, depth: 0 },
  { type: 'subscribe', ...inSession, id: 3, exchange: 'N'.repeat(MAX_SYMBOL_LENGTH), symbol: 'महिंद्रा😀', mode: 3, depth: 20 },
  { type: 'unsubscribe', ...inSession, id: 5, exchange: 'NSE', symbol: 'SBIN' },
  { type: 'subscribe', ...inSession, id: 6, exchange: 'NSE', symbol: 'SBIN', mode: 2, depth: 5, feed: 'dhan.alice' },
  { type: 'unsubscribe', ...inSession, id: 7, exchange: 'NSE', symbol: 'SBIN', feed: 'dhan.alice' },
  { type: 'open', ...inSession, id: 8, feed: 'dhan.alice', broker: 'dhan', user: 'alice' },
  { type: 'open', ...inSession, id: 9, feed: 'fyers.u0123456789abcdef', broker: 'fyers', user: 'u'.repeat(256) },
  { type: 'relogin', ...inSession, id: 10, feed: 'dhan.alice' },
  { type: 'bye', ...inSession },
];

type Decoder = typeof decodeToGateway | typeof decodeToAdapter;

/** The error of a frame that must be refused; its MAC is correct, so only the fields are wrong. */
function errorOf(decode: Decoder, value: unknown): string {
  const json = typeof value === 'string' ? value : JSON.stringify(value);
  const decoded = decode(`${mac(KEY, json)} ${json}`);
  expect(decoded.ok, json.slice(0, 200)).toBe(false);
  return decoded.ok ? '' : decoded.error;
}
const gatewayError = (value: unknown): string => errorOf(decodeToGateway, value);
const adapterError = (value: unknown): string => errorOf(decodeToAdapter, value);

function decodedMessage(decode: Decoder, value: unknown): Record<string, unknown> {
  const json = JSON.stringify(value);
  const decoded = decode(`${mac(KEY, json)} ${json}`);
  if (!decoded.ok) throw new Error(decoded.error);
  return decoded.message as unknown as Record<string, unknown>;
}

describe('control frames: round trips', () => {
  it('round-trips every message a gateway receives, from a string, a Buffer and a Uint8Array view', () => {
    for (const message of toGateway) {
      const frame = encodeFrame(message, KEY);
      const json = JSON.stringify(message);
      expect(frame).toBe(`${mac(KEY, json)} ${json}`);
      const bytes = Buffer.from(`xx${frame}yy`);
      for (const data of [frame, Buffer.from(frame), new Uint8Array(bytes.buffer, bytes.byteOffset + 2, bytes.length - 4)]) {
        const decoded = decodeToGateway(data);
        expect(decoded, json).toEqual({ ok: true, message, mac: frame.slice(0, 64), json });
        if (decoded.ok) expect(authentic(KEY, decoded.json, decoded.mac)).toBe(true);
      }
    }
  });

  it('round-trips every message an adapter receives', () => {
    for (const message of toAdapter) {
      const frame = encodeFrame(message, KEYS.toAdapter);
      const decoded = decodeToAdapter(Buffer.from(frame));
      expect(decoded, frame).toEqual({ ok: true, message, mac: frame.slice(0, 64), json: JSON.stringify(message) });
      if (!decoded.ok) continue;
      expect(authentic(KEYS.toAdapter, decoded.json, decoded.mac)).toBe(true);
      // Keyed for the adapter: the other direction's key and the instance key do not verify it.
      expect(authentic(KEYS.toGateway, decoded.json, decoded.mac)).toBe(false);
      expect(authentic(KEY, decoded.json, decoded.mac)).toBe(false);
    }
  });

  it('reads the worked exchange of the documentation exactly, and writes the same frames', () => {
    const exchange: Array<[Decoder, Buffer, string]> = [
      [decodeToGateway, KEY, 'c9e978da904635f2fc377bb5bf4908f0b1b5316f9be559d811bd756a3cb7cf57 {"type":"announce","protocol":2,"feed":"zerodha","broker":"zerodha","brokers":["zerodha"],"instance":"default","pid":4242,"host":"md-1","epoch":3735928559,"heartbeatMs":1000}'],
      [decodeToAdapter, KEY, `cc065b85e06b11f77a4834f43a53722df7f685a29bf19e8daa6331248d83ea17 {"type":"register","protocol":2,"gateway":"gw-7f3a9c1e","session":1,"nonce":"${GATEWAY_NONCE}","heartbeatMs":1000,"pid":1717,"host":"gw-host"}`],
      [decodeToGateway, KEY, `df502a52d848430e08190c25fa779b35bd70fe0e7f762d2f94e6046028f89406 {"type":"registered","protocol":2,"feed":"zerodha","broker":"zerodha","brokers":["zerodha"],"instance":"default","pid":4242,"host":"md-1","epoch":3735928559,"heartbeatMs":1000,"gateway":"gw-7f3a9c1e","session":1,"gatewayNonce":"${GATEWAY_NONCE}","nonce":"${ADAPTER_NONCE}","status":"live"}`],
      [decodeToAdapter, KEYS.toAdapter, '90eeb159ee4527c5ead95f914dfc554ce07b1e1012777840c14e1548690ad976 {"type":"subscribe","gateway":"gw-7f3a9c1e","session":1,"seq":1,"id":1,"exchange":"NSE","symbol":"RELIANCE","mode":1,"depth":0}'],
      [decodeToAdapter, KEYS.toAdapter, 'e3f97954f18c186f418621195e52cd27925ff29a6170abd0825a95384baf73b8 {"type":"heartbeat","gateway":"gw-7f3a9c1e","session":1,"seq":3}'],
      [decodeToGateway, KEYS.toGateway, 'fd09ef9bbd664bc5d2ed271a30ce6321f91172bf231eb83099fdc958946a63b9 {"type":"heartbeat","gateway":"gw-7f3a9c1e","session":1,"seq":1,"resync":false,"status":"live"}'],
      [decodeToGateway, KEYS.toGateway, 'ece8cd048d3917ca9537f5df4be800bfa0d60f470d8420fb0803c6367851f6a0 {"type":"reply","gateway":"gw-7f3a9c1e","session":1,"seq":2,"id":1,"ok":true}'],
      [decodeToAdapter, KEYS.toAdapter, 'c9de22913760b31e119b0bd444ca5e5b87f03fcf2c02d06db92cdd9431454fe2 {"type":"heartbeat","gateway":"gw-7f3a9c1e","session":1,"seq":4,"digest":{"count":2,"sum":1121468711}}'],
      [decodeToGateway, KEYS.toGateway, '49d489f91412f4bb0262010d31eb2b1529f5fa4bf5c5d70cdd24206e02cf67aa {"type":"reply","gateway":"gw-7f3a9c1e","session":1,"seq":5,"id":3,"ok":true,"depth":5}'],
      [decodeToGateway, KEYS.toGateway, '24db2837057bbd7c16235667908a10570f81913c0ee5170f6b9bc60b19cc19bb {"type":"reply","gateway":"gw-7f3a9c1e","session":1,"seq":6,"id":4,"ok":false,"message":"unknown symbol NSE:NOSUCH"}'],
      [decodeToAdapter, KEYS.toAdapter, '4a5b79c56e19bea87bf728d9ac6f44b578d42a7cc5f3edf042fb7c80dfa0ba70 {"type":"unsubscribe","gateway":"gw-7f3a9c1e","session":1,"seq":7,"id":5,"exchange":"NSE","symbol":"SBIN"}'],
      [decodeToGateway, KEYS.toGateway, 'b486bb65402eb34a1996fec417e81477b5d82badddf739b788183d518eb245ba {"type":"status","gateway":"gw-7f3a9c1e","session":1,"seq":8,"status":"reconnecting","message":"broker websocket closed (1006); retrying in 2 s"}'],
      [decodeToGateway, KEYS.toGateway, '3e463be604551852aa23071edaf4cde90697e21b94fe5e5644ef4c47817acdcd {"type":"bye","gateway":"gw-7f3a9c1e","session":1,"seq":10}'],
    ];
    for (const [decode, key, frame] of exchange) {
      const decoded = decode(frame);
      if (!decoded.ok) throw new Error(`${decoded.error}: ${frame}`);
      expect(decoded.mac).toBe(frame.slice(0, 64));
      expect(decoded.json).toBe(frame.slice(65));
      expect(authentic(key, decoded.json, decoded.mac), frame).toBe(true);
      expect(encodeFrame(decoded.message, key)).toBe(frame);
    }
  });

  it('leaves the MAC to the caller: a frame with a wrong MAC still decodes, and does not verify', () => {
    const bye = toAdapter.find((m) => m.type === 'bye')!;
    const json = JSON.stringify(bye);
    const decoded = decodeToAdapter(`${'0'.repeat(64)} ${json}`);
    expect(decoded).toMatchObject({ ok: true, mac: '0'.repeat(64), json });
    if (decoded.ok) expect(authentic(KEYS.toAdapter, decoded.json, decoded.mac)).toBe(false);
    // One changed character of the JSON: the MAC no longer covers it.
    const frame = encodeFrame(bye, KEYS.toAdapter).replace('"seq":1', '"seq":2');
    expect(frame).toContain('"seq":2');
    const altered = decodeToAdapter(frame);
    expect(altered.ok).toBe(true);
    if (altered.ok) expect(authentic(KEYS.toAdapter, altered.json, altered.mac)).toBe(false);
  });
});

describe('control frames: only known fields', () => {
  it('drops unknown fields of every message type', () => {
    for (const [decode, messages] of [[decodeToGateway, toGateway], [decodeToAdapter, toAdapter]] as const) {
      for (const message of messages) {
        const decoded = decodedMessage(decode, { ...message, extra: 'x'.repeat(100), evil: { a: 1 }, constructor: 1 });
        expect(decoded).toEqual(message);
        expect(Object.keys(decoded).sort()).toEqual(Object.keys(message).sort());
      }
    }
  });

  it('drops fields that belong to other messages or to the other direction', () => {
    // A reply that succeeded carries no message; one that failed carries no depth.
    expect(decodedMessage(decodeToGateway, { type: 'reply', ...inSession, id: 1, ok: true, message: 'x' })).toEqual({ type: 'reply', ...inSession, id: 1, ok: true });
    expect(decodedMessage(decodeToGateway, { type: 'reply', ...inSession, id: 1, ok: false, depth: 5, message: 'no' })).toEqual({ type: 'reply', ...inSession, id: 1, ok: false, message: 'no' });
    // A gateway's heartbeat has a digest, an adapter's a resync flag and a status.
    expect(decodedMessage(decodeToAdapter, { type: 'heartbeat', ...inSession, resync: true, status: 'live' })).toEqual({ type: 'heartbeat', ...inSession });
    expect(decodedMessage(decodeToGateway, { type: 'heartbeat', ...inSession, resync: true, status: 'live', digest: { count: 1, sum: 1 } })).toEqual({
      type: 'heartbeat',
      ...inSession,
      resync: true,
      status: 'live',
    });
    expect(decodedMessage(decodeToAdapter, { type: 'heartbeat', ...inSession, digest: { count: 1, sum: 2, extra: 3 } })).toEqual({ type: 'heartbeat', ...inSession, digest: { count: 1, sum: 2 } });
    expect(decodedMessage(decodeToAdapter, { type: 'bye', ...inSession, message: 'bye' })).toEqual({ type: 'bye', ...inSession });
  });

  it('does not let __proto__ through', () => {
    const json = `{"type":"subscribe","gateway":"g","session":1,"seq":1,"id":1,"exchange":"NSE","symbol":"X","mode":1,"depth":0,"__proto__":{"evil":1},"more":1}`;
    const decoded = decodeToAdapter(`${mac(KEY, json)} ${json}`);
    if (!decoded.ok) throw new Error(decoded.error);
    expect(Object.keys(decoded.message).sort()).toEqual(['depth', 'exchange', 'gateway', 'id', 'mode', 'seq', 'session', 'symbol', 'type']);
    expect((decoded.message as unknown as { evil?: number }).evil).toBeUndefined();
    expect(Object.getPrototypeOf(decoded.message)).toBe(Object.prototype);
  });
});

describe('control frames: field bounds', () => {
  it('refuses announce and registered fields out of bounds, naming the field', () => {
    const cases: Array<[Record<string, unknown>, string | RegExp]> = [
      [{ feed: '' }, `.feed must be a non-empty string of at most ${MAX_NAME_LENGTH} characters`],
      [{ feed: 5 }, /\.feed must be a non-empty string/],
      [{ feed: 'f'.repeat(MAX_NAME_LENGTH + 1) }, /\.feed must be .*at most 128 characters/],
      [{ broker: undefined }, /\.broker must be/],
      [{ instance: 'i'.repeat(129) }, /\.instance must be .*at most 128/],
      [{ host: 'h'.repeat(256) }, /\.host must be a non-empty string of at most 255 characters/],
      [{ brokers: 'zerodha' }, `.brokers must be "*" or a list of at most ${MAX_BROKERS} broker names`],
      [{ brokers: Array(MAX_BROKERS + 1).fill('b') }, /\.brokers must be "\*" or a list of at most 256 broker names/],
      [{ brokers: ['ok', 3] }, /\.brokers must hold non-empty strings of at most 128 characters/],
      [{ brokers: [''] }, /\.brokers must hold non-empty strings/],
      [{ brokers: ['b'.repeat(129)] }, /\.brokers must hold non-empty strings of at most 128/],
      [{ hosts: '*' }, `.hosts must be a list of at most ${MAX_BROKERS} broker names`],
      [{ hosts: Array(MAX_BROKERS + 1).fill('b') }, /\.hosts must be a list of at most 256 broker names/],
      [{ hosts: ['dhan', ''] }, /\.hosts must hold non-empty strings of at most 128 characters/],
      [{ protocol: 0 }, '.protocol must be an integer ≥ 1'],
      [{ pid: 0 }, '.pid must be an integer ≥ 1'],
      [{ pid: 1.5 }, '.pid must be an integer ≥ 1'],
      [{ pid: '12' }, '.pid must be an integer ≥ 1'],
      [{ epoch: -1 }, '.epoch must be an integer ≥ 0'],
      [{ epoch: 2 ** 53 }, '.epoch must be an integer ≥ 0'],
      [{ heartbeatMs: 0 }, '.heartbeatMs must be an integer ≥ 1'],
    ];
    for (const [change, error] of cases) {
      for (const message of [announce, registered]) {
        const reason = gatewayError({ ...message, ...change });
        if (typeof error === 'string') expect(reason).toBe(`${message.type}${error}`);
        else expect(reason).toMatch(new RegExp(`^${message.type}${error.source}`));
      }
    }
    // Exactly at the bounds: accepted.
    expect(decodedMessage(decodeToGateway, { ...announce, feed: 'f'.repeat(128), host: 'h'.repeat(255), brokers: Array(MAX_BROKERS).fill('b'.repeat(128)) })).toMatchObject({ feed: 'f'.repeat(128) });
  });

  it('refuses bad nonces, statuses and sessions in register and registered', () => {
    for (const bad of ['', GATEWAY_NONCE.toUpperCase(), GATEWAY_NONCE.slice(1), `${GATEWAY_NONCE}0`, `${GATEWAY_NONCE.slice(1)}g`, 42, null]) {
      expect(adapterError({ ...register, nonce: bad })).toBe('register.nonce must be 64 lower-case hex digits');
      expect(gatewayError({ ...registered, nonce: bad })).toBe('registered.nonce must be 64 lower-case hex digits');
      expect(gatewayError({ ...registered, gatewayNonce: bad })).toBe('registered.gatewayNonce must be 64 lower-case hex digits');
    }
    for (const bad of ['up', 'LIVE', '', 1, undefined]) {
      expect(gatewayError({ ...registered, status: bad })).toBe('registered.status must be one of live, reconnecting, stale, down');
    }
    expect(adapterError({ ...register, session: 0 })).toBe('register.session must be an integer ≥ 1');
    expect(gatewayError({ ...registered, session: 0 })).toBe('registered.session must be an integer ≥ 1');
    expect(adapterError({ ...register, gateway: 'g'.repeat(129) })).toMatch(/^register\.gateway must be .*at most 128/);
    expect(adapterError({ ...register, protocol: 1.5 })).toBe('register.protocol must be an integer ≥ 1');
    expect(adapterError({ ...register, heartbeatMs: -1000 })).toBe('register.heartbeatMs must be an integer ≥ 1');
    expect(gatewayError({ ...registered, message: 'm'.repeat(MAX_TEXT_LENGTH + 1) })).toBe(`registered.message must be a string of at most ${MAX_TEXT_LENGTH} characters`);
  });

  it('refuses refused and reset with wrong fields', () => {
    for (const decode of [gatewayError, adapterError]) {
      expect(decode({ type: 'refused' })).toBe('refused.message must be a string of at most 2000 characters');
      expect(decode({ type: 'refused', message: 'm'.repeat(MAX_TEXT_LENGTH + 1) })).toBe('refused.message must be a string of at most 2000 characters');
      expect(decode({ type: 'refused', message: 'no', epoch: -1 })).toBe('refused.epoch must be an integer ≥ 0');
      expect(decode({ type: 'refused', message: 'no', session: 0.5 })).toBe('refused.session must be an integer ≥ 0');
      expect(decode({ type: 'refused', message: 'no', gateway: '' })).toMatch(/^refused\.gateway must be a non-empty string/);
    }
    expect(gatewayError({ type: 'reset', gateway: 'g', session: 0, message: 'x' })).toBe('reset.session must be an integer ≥ 1');
    expect(gatewayError({ type: 'reset', gateway: 'g', session: 1 })).toBe('reset.message must be a string of at most 2000 characters');
    expect(gatewayError({ type: 'reset', session: 1, message: 'x' })).toMatch(/^reset\.gateway must be/);
  });

  it('refuses session messages without a valid registration and number', () => {
    const samples: Array<[Decoder, Record<string, unknown>]> = [
      ...toGateway.filter((m) => 'seq' in m).map((m): [Decoder, Record<string, unknown>] => [decodeToGateway, { ...m }]),
      ...toAdapter.filter((m) => 'seq' in m).map((m): [Decoder, Record<string, unknown>] => [decodeToAdapter, { ...m }]),
    ];
    expect(samples.length).toBeGreaterThan(10);
    for (const [decode, message] of samples) {
      const type = message.type as string;
      expect(errorOf(decode, { ...message, seq: 0 })).toBe(`${type}.seq must be an integer ≥ 1`);
      expect(errorOf(decode, { ...message, seq: undefined })).toBe(`${type}.seq must be an integer ≥ 1`);
      expect(errorOf(decode, { ...message, seq: 2 ** 53 })).toBe(`${type}.seq must be an integer ≥ 1`);
      expect(errorOf(decode, { ...message, session: 0 })).toBe(`${type}.session must be an integer ≥ 1`);
      expect(errorOf(decode, { ...message, session: -1 })).toBe(`${type}.session must be an integer ≥ 1`);
      expect(errorOf(decode, { ...message, gateway: '' })).toBe(`${type}.gateway must be a non-empty string of at most 128 characters`);
      expect(errorOf(decode, { ...message, gateway: 'g'.repeat(129) })).toBe(`${type}.gateway must be a non-empty string of at most 128 characters`);
    }
  });

  it('refuses adapter events with wrong fields', () => {
    const base = { ...inSession };
    expect(gatewayError({ type: 'reply', ...base, id: -1, ok: true })).toBe('reply.id must be an integer ≥ 0');
    expect(gatewayError({ type: 'reply', ...base, id: 1.5, ok: true })).toBe('reply.id must be an integer ≥ 0');
    expect(gatewayError({ type: 'reply', ...base, id: '1', ok: true })).toBe('reply.id must be an integer ≥ 0');
    expect(gatewayError({ type: 'reply', ...base, id: 2 ** 53, ok: true })).toBe('reply.id must be an integer ≥ 0');
    expect(gatewayError({ type: 'reply', ...base, ok: true })).toBe('reply.id must be an integer ≥ 0');
    expect(gatewayError({ type: 'reply', ...base, id: 1, ok: 'yes' })).toBe('reply.ok must be true or false');
    expect(gatewayError({ type: 'reply', ...base, id: 1, ok: true, depth: -5 })).toBe('reply.depth must be an integer ≥ 0');
    expect(gatewayError({ type: 'reply', ...base, id: 1, ok: false })).toBe('reply.message must be a string of at most 2000 characters');
    expect(gatewayError({ type: 'reply', ...base, id: 1, ok: false, message: 'x'.repeat(MAX_TEXT_LENGTH + 1) })).toBe('reply.message must be a string of at most 2000 characters');
    expect(gatewayError({ type: 'status', ...base, status: 'up' })).toBe('status.status must be one of live, reconnecting, stale, down');
    expect(gatewayError({ type: 'status', ...base, status: 'down', message: 4 })).toBe('status.message must be a string of at most 2000 characters');
    expect(gatewayError({ type: 'heartbeat', ...base, status: 'live' })).toBe('heartbeat.resync must be true or false');
    expect(gatewayError({ type: 'heartbeat', ...base, resync: false, status: 'ok' })).toBe('heartbeat.status must be one of live, reconnecting, stale, down');
    // Free text exactly at the limit is accepted.
    expect(decodedMessage(decodeToGateway, { type: 'status', ...base, status: 'down', message: 'x'.repeat(MAX_TEXT_LENGTH) })).toMatchObject({ message: 'x'.repeat(MAX_TEXT_LENGTH) });
  });

  it('refuses gateway commands with wrong fields', () => {
    const subscribe = toAdapter.find((m) => m.type === 'subscribe')!;
    for (const mode of [0, 4, '1', 1.5, null, 'LTP', undefined]) {
      expect(adapterError({ ...subscribe, mode })).toBe('subscribe.mode must be 1, 2 or 3');
    }
    for (const id of [-3, 'x', 1.5, 2 ** 53, null]) expect(adapterError({ ...subscribe, id })).toBe('subscribe.id must be an integer ≥ 0');
    expect(adapterError({ ...subscribe, depth: 2.5 })).toBe('subscribe.depth must be an integer ≥ 0');
    expect(adapterError({ ...subscribe, symbol: '' })).toBe(`subscribe.symbol must be a non-empty string of at most ${MAX_SYMBOL_LENGTH} characters`);
    expect(adapterError({ ...subscribe, symbol: 'S'.repeat(MAX_SYMBOL_LENGTH + 1) })).toBe('subscribe.symbol must be a non-empty string of at most 256 characters');
    expect(adapterError({ ...subscribe, exchange: ['NSE'] })).toBe('subscribe.exchange must be a non-empty string of at most 256 characters');
    expect(adapterError({ ...subscribe, exchange: 'E'.repeat(257) })).toBe('subscribe.exchange must be a non-empty string of at most 256 characters');
    expect(adapterError({ type: 'unsubscribe', ...inSession, id: 1, exchange: 'NSE' })).toBe('unsubscribe.symbol must be a non-empty string of at most 256 characters');
    expect(adapterError({ type: 'unsubscribe', ...inSession, id: -1, exchange: 'NSE', symbol: 'X' })).toBe('unsubscribe.id must be an integer ≥ 0');
    // A feed host's commands.
    expect(adapterError({ ...subscribe, feed: '' })).toBe('subscribe.feed must be a non-empty string of at most 128 characters');
    expect(adapterError({ type: 'unsubscribe', ...inSession, id: 1, exchange: 'NSE', symbol: 'X', feed: 7 })).toBe('unsubscribe.feed must be a non-empty string of at most 128 characters');
    const open = { type: 'open', ...inSession, id: 1, feed: 'dhan.alice', broker: 'dhan', user: 'alice' };
    expect(adapterError({ ...open, user: 'u'.repeat(257) })).toBe('open.user must be a non-empty string of at most 256 characters');
    expect(adapterError({ ...open, broker: undefined })).toBe('open.broker must be a non-empty string of at most 128 characters');
    expect(adapterError({ ...open, feed: null })).toBe('open.feed must be a non-empty string of at most 128 characters');
    expect(adapterError({ ...open, id: -1 })).toBe('open.id must be an integer ≥ 0');
    expect(adapterError({ type: 'relogin', ...inSession, id: 1 })).toBe('relogin.feed must be a non-empty string of at most 128 characters');
    // Digests.
    for (const digest of [null, 5, 'x', []]) {
      expect(adapterError({ type: 'heartbeat', ...inSession, digest })).toMatch(/^heartbeat\.digest/);
    }
    expect(adapterError({ type: 'heartbeat', ...inSession, digest: { count: -1, sum: 0 } })).toBe('heartbeat.digest.count must be an integer ≥ 0');
    expect(adapterError({ type: 'heartbeat', ...inSession, digest: { count: 1.5, sum: 0 } })).toBe('heartbeat.digest.count must be an integer ≥ 0');
    expect(adapterError({ type: 'heartbeat', ...inSession, digest: { count: 1, sum: 2 ** 32 } })).toBe('heartbeat.digest.sum must be a 32-bit unsigned integer');
    expect(adapterError({ type: 'heartbeat', ...inSession, digest: { count: 1, sum: -1 } })).toBe('heartbeat.digest.sum must be a 32-bit unsigned integer');
    expect(adapterError({ type: 'heartbeat', ...inSession, digest: { count: 1 } })).toBe('heartbeat.digest.sum must be a 32-bit unsigned integer');
  });

  it('refuses a missing, non-string or unknown type, and each direction keeps its own types', () => {
    expect(gatewayError({})).toBe('"type" must be a string');
    expect(adapterError({ type: 7 })).toBe('"type" must be a string');
    expect(gatewayError({ type: 'nope' })).toBe('unknown message type "nope" for a gateway');
    expect(adapterError({ type: 'nope' })).toBe('unknown message type "nope" for an adapter');
    expect(adapterError(announce)).toBe('unknown message type "announce" for an adapter');
    expect(adapterError(registered)).toBe('unknown message type "registered" for an adapter');
    expect(adapterError({ type: 'reset', gateway: 'g', session: 1, message: 'x' })).toBe('unknown message type "reset" for an adapter');
    expect(adapterError({ type: 'reply', ...inSession, id: 1, ok: true })).toBe('unknown message type "reply" for an adapter');
    expect(adapterError({ type: 'status', ...inSession, status: 'live' })).toBe('unknown message type "status" for an adapter');
    expect(gatewayError(register)).toBe('unknown message type "register" for a gateway');
    expect(gatewayError({ type: 'subscribe', ...inSession, id: 1, exchange: 'NSE', symbol: 'X', mode: 1, depth: 0 })).toBe('unknown message type "subscribe" for a gateway');
    expect(gatewayError({ type: 'unsubscribe', ...inSession, id: 1, exchange: 'NSE', symbol: 'X' })).toBe('unknown message type "unsubscribe" for a gateway');
    // Version 1 types are unknown.
    expect(gatewayError({ type: 'hello', protocol: 1, session: 7 })).toBe('unknown message type "hello" for a gateway');
    expect(adapterError({ type: 'welcome', session: 1, heartbeatMs: 1 })).toBe('unknown message type "welcome" for an adapter');
    // A huge type is not echoed whole.
    expect(gatewayError({ type: 'x'.repeat(100_000) }).length).toBeLessThan(120);
  });
});

describe('control frames: framing', () => {
  const json = JSON.stringify({ type: 'bye', ...inSession });
  const good = `${mac(KEY, json)} ${json}`;
  const notAFrame = 'not a control frame (expected 64 hex digits of MAC, a space, then JSON)';

  it('refuses a frame without `<64 hex digits> <space>` before its JSON', () => {
    expect(decodeToAdapter(good).ok).toBe(true);
    const frames = [
      '',
      ' ',
      'x',
      good.slice(0, 64),
      good.slice(0, 65),
      good.slice(1),
      `0${good}`,
      good.replace(' ', ''),
      good.replace(' ', '\t'),
      `${good.slice(0, 64).toUpperCase()}${good.slice(64)}`,
      `${'g'.repeat(64)} ${json}`,
      ` ${good}`,
      `${good.slice(0, 63)} ${json}`,
    ];
    for (const frame of frames) {
      for (const decode of [decodeToGateway, decodeToAdapter]) {
        const decoded = decode(frame);
        expect(decoded, JSON.stringify(frame)).toMatchObject({ ok: false });
        if (!decoded.ok) expect(decoded.legacy).toBeUndefined();
      }
    }
    expect(decodeToAdapter('')).toEqual({ ok: false, error: notAFrame });
    expect(decodeToAdapter(good.slice(1))).toEqual({ ok: false, error: notAFrame });
    expect(decodeToAdapter(good.replace(' ', '\t'))).toEqual({ ok: false, error: notAFrame });
    // The prefix is right but what follows is not one JSON object.
    expect(decodeToAdapter(`${good.slice(0, 65)}{`)).toEqual({ ok: false, error: 'not JSON' });
    expect(decodeToAdapter(`${good} ${json}`)).toEqual({ ok: false, error: 'not JSON' });
    for (const body of ['null', '42', '"bye"', '[]', `[${json}]`, 'true']) {
      expect(decodeToGateway(`${mac(KEY, body)} ${body}`)).toEqual({ ok: false, error: 'not a JSON object' });
    }
  });

  it(`refuses frames over ${MAX_MESSAGE_BYTES} bytes of JSON before parsing them, and accepts exactly that many`, () => {
    const message = { type: 'bye', ...inSession };
    const exact = JSON.stringify(message) + ' '.repeat(MAX_MESSAGE_BYTES - JSON.stringify(message).length);
    expect(Buffer.byteLength(exact)).toBe(MAX_MESSAGE_BYTES);
    expect(decodeToAdapter(`${mac(KEY, exact)} ${exact}`)).toMatchObject({ ok: true, message, json: exact });
    const over = `${exact} `;
    expect(decodeToAdapter(`${mac(KEY, over)} ${over}`)).toEqual({ ok: false, error: `message of ${MAX_MESSAGE_BYTES + 1} bytes exceeds the 65536-byte limit` });
    // Not parsed: invalid JSON over the limit is refused for its size, not its syntax.
    const junk = `{${'['.repeat(MAX_MESSAGE_BYTES)}`;
    expect(decodeToGateway(`${'0'.repeat(64)} ${junk}`)).toMatchObject({ ok: false, error: expect.stringMatching(/exceeds the 65536-byte limit/) });
    // Bytes, not characters: é is two bytes of UTF-8.
    const wide = JSON.stringify({ type: 'refused', message: 'é'.repeat(MAX_MESSAGE_BYTES / 2) });
    expect(wide.length).toBeLessThan(MAX_MESSAGE_BYTES);
    expect(decodeToGateway(Buffer.from(`${mac(KEY, wide)} ${wide}`))).toMatchObject({ ok: false, error: expect.stringMatching(/exceeds the 65536-byte limit/) });
  });

  it('reports an unauthenticated version-1 frame with its protocol and session', () => {
    const hello = JSON.stringify({ type: 'hello', protocol: 1, session: 7, feed: 'sim', broker: 'simulator', brokers: ['simulator'], pid: 4242, heartbeatMs: 1000, status: 'live' });
    for (const decode of [decodeToGateway, decodeToAdapter]) {
      for (const data of [hello, Buffer.from(hello)]) {
        const decoded = decode(data);
        expect(decoded).toMatchObject({ ok: false, legacy: { protocol: 1, session: 7 } });
        if (!decoded.ok) {
          expect(decoded.legacy).toEqual({ protocol: 1, session: 7 });
          expect(decoded.error).toMatch(/unauthenticated/);
        }
      }
    }
    // A version-2 message without its MAC is unauthenticated too, and never accepted.
    const bare = decodeToAdapter(JSON.stringify(register));
    expect(bare).toMatchObject({ ok: false, legacy: { protocol: 2, session: 1 } });
    // Without a usable protocol and session: no legacy details.
    for (const text of ['{', '{}', '{"type":"hello"}', '{"type":"hello","protocol":0,"session":7}', '{"type":"hello","protocol":1,"session":-1}', '{"protocol":1,"session":7}']) {
      const decoded = decodeToGateway(text);
      expect(decoded.ok, text).toBe(false);
      if (!decoded.ok) {
        expect(decoded.legacy, text).toBeUndefined();
        expect(decoded.error).toMatch(/unauthenticated/);
      }
    }
  });

  it('never throws on garbage, and always says why', () => {
    const inputs: Array<string | Uint8Array> = [
      Buffer.from([0xff, 0xfe, 0x00, 0x01]),
      Buffer.alloc(0),
      new Uint8Array(MAX_MESSAGE_BYTES * 2).fill(0x7b),
      Buffer.from(`${'a'.repeat(64)} \xff\xfe`, 'latin1'),
      `${'a'.repeat(64)} {"type":"heartbeat","digest":{"count":1,"sum":1},"gateway":"g","session":1,"seq":1,"x":${'['.repeat(5000)}${']'.repeat(5000)}}`,
      `${'a'.repeat(64)} {"type":"toString"}`,
      `${'a'.repeat(64)} {"type":"__proto__"}`,
      `${'a'.repeat(64)} {"type":"refused","message":"\\ud800"}`,
      `${'a'.repeat(64)} {"type":"subscribe","gateway":"g","session":1,"seq":1,"id":1e400,"exchange":"N","symbol":"S","mode":1,"depth":0}`,
      '{"type":"hello","protocol":1,"session":7',
      `{${'"a":{'.repeat(3000)}`,
      '\u0000'.repeat(100),
    ];
    for (const data of inputs) {
      for (const decode of [decodeToGateway, decodeToAdapter]) {
        let decoded: ReturnType<Decoder> | undefined;
        expect(() => (decoded = decode(data))).not.toThrow();
        if (decoded && !decoded.ok) expect(decoded.error.length).toBeGreaterThan(0);
      }
    }
  });
});

describe('clipText', () => {
  it('clips free text to what the other side accepts', () => {
    expect(clipText('short')).toBe('short');
    expect(clipText('')).toBe('');
    const exact = 'x'.repeat(MAX_TEXT_LENGTH);
    expect(clipText(exact)).toBe(exact);
    const clipped = clipText('y'.repeat(5000));
    expect(clipped).toHaveLength(MAX_TEXT_LENGTH);
    expect(clipped).toBe(`${'y'.repeat(MAX_TEXT_LENGTH - 1)}…`);
    expect(clipText('z'.repeat(MAX_TEXT_LENGTH + 1))).toHaveLength(MAX_TEXT_LENGTH);
    const message: ToGateway = { type: 'reply', ...inSession, id: 1, ok: false, message: clipped };
    expect(decodeToGateway(encodeFrame(message, KEY))).toMatchObject({ ok: true, message });
  });
});
