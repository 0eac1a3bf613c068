/**
 * Frames of the control protocol (protocol.ts): `<mac> <json>`. Decoding never throws: a frame
 * becomes a well-typed message (rebuilt from its known fields only) with the text its MAC covers,
 * or an error saying what is wrong, so one bad peer cannot break the channel. Checking the MAC is
 * the caller's: which key applies depends on the message (keys.ts).
 */
import {
  type Decoded,
  type Fields,
  MAX_SYMBOL_LENGTH,
  MAX_TEXT_LENGTH,
  boolean,
  brokers,
  decodeWith,
  fail,
  integer,
  mode,
  name,
  optionalHosts,
  optionalText,
  status,
  text,
} from './fields.js';
import { mac } from './keys.js';
import { type AdapterEvent, type AdapterInfo, type ControlMessage, type Digest, type GatewayCommand, MAX_USER_LENGTH, type ToAdapter, type ToGateway } from './protocol.js';

export { type Decoded, MAX_BROKERS, MAX_MESSAGE_BYTES, MAX_NAME_LENGTH, MAX_SYMBOL_LENGTH, MAX_TEXT_LENGTH } from './fields.js';

/** A frame whose fields are valid; `mac` is still to be checked against `json` with the right key. */
export interface Frame<T> {
  message: T;
  mac: string;
  json: string;
}

export type DecodedFrame<T> =
  | ({ ok: true } & Frame<T>)
  /** `legacy`: an unauthenticated frame of protocol version 1, answered with a refusal in that version's words. */
  | { ok: false; error: string; legacy?: { protocol: number; session: number } };

const MAC_LENGTH = 64;
const HEX64 = /^[0-9a-f]{64}$/;

/** The frame of `message`, authenticated with `key`. */
export function encodeFrame(message: ControlMessage, key: Buffer): string {
  const json = JSON.stringify(message);
  return `${mac(key, json)} ${json}`;
}

/** Cuts free text to what the receiving side accepts. */
export function clipText(text: string): string {
  return text.length <= MAX_TEXT_LENGTH ? text : `${text.slice(0, MAX_TEXT_LENGTH - 1)}…`;
}

// ——— fields of each message ———

function info(f: Fields): AdapterInfo {
  const hosts = optionalHosts(f);
  const adapter: AdapterInfo = {
    protocol: integer(f, 'protocol', 1),
    feed: name(f, 'feed'),
    broker: name(f, 'broker'),
    brokers: brokers(f),
    instance: name(f, 'instance'),
    pid: integer(f, 'pid', 1),
    host: name(f, 'host', 255),
    epoch: integer(f, 'epoch'),
    heartbeatMs: integer(f, 'heartbeatMs', 1),
  };
  if (hosts !== undefined) adapter.hosts = hosts;
  return adapter;
}

/** `message` with the optional `feed` of a feed host's streams and statuses. */
function withFeed<T extends object>(message: T, f: Fields): T & { feed?: string } {
  return f.feed === undefined ? message : { ...message, feed: name(f, 'feed') };
}

function nonce(f: Fields, key: string): string {
  const value = f[key];
  if (typeof value !== 'string' || !HEX64.test(value)) fail(`${f.type}.${key} must be 64 lower-case hex digits`);
  return value;
}

function inSession(f: Fields): { gateway: string; session: number; seq: number } {
  return { gateway: name(f, 'gateway'), session: integer(f, 'session', 1), seq: integer(f, 'seq', 1) };
}

function withMessage<T extends object>(message: T, f: Fields): T & { message?: string } {
  const text = optionalText(f, 'message');
  return text === undefined ? message : { ...message, message: text };
}

function digest(f: Fields): Digest | undefined {
  const value = f.digest;
  if (value === undefined) return undefined;
  if (typeof value !== 'object' || value === null) fail('heartbeat.digest must be an object');
  const d = value as Fields;
  const { count, sum } = d;
  if (typeof count !== 'number' || !Number.isSafeInteger(count) || count < 0) fail('heartbeat.digest.count must be an integer ≥ 0');
  if (typeof sum !== 'number' || !Number.isInteger(sum) || sum < 0 || sum > 0xffffffff) fail('heartbeat.digest.sum must be a 32-bit unsigned integer');
  return { count, sum };
}

function refused(f: Fields): ToGateway & ToAdapter {
  const message: Extract<ToAdapter, { type: 'refused' }> = { type: 'refused', message: text(f, 'message') };
  if (f.epoch !== undefined) message.epoch = integer(f, 'epoch');
  if (f.gateway !== undefined) message.gateway = name(f, 'gateway');
  if (f.session !== undefined) message.session = integer(f, 'session');
  return message;
}

function adapterEvent(f: Fields): AdapterEvent {
  const base = inSession(f);
  switch (f.type) {
    case 'heartbeat':
      return withMessage({ type: 'heartbeat' as const, ...base, resync: boolean(f, 'resync'), status: status(f) }, f);
    case 'status':
      return withFeed(withMessage({ type: 'status' as const, ...base, status: status(f) }, f), f);
    case 'bye':
      return { type: 'bye', ...base };
    default: {
      // reply
      const id = integer(f, 'id');
      if (!boolean(f, 'ok')) return { type: 'reply', ...base, id, ok: false, message: text(f, 'message') };
      return f.depth === undefined ? { type: 'reply', ...base, id, ok: true } : { type: 'reply', ...base, id, ok: true, depth: integer(f, 'depth') };
    }
  }
}

function toGateway(f: Fields): ToGateway {
  switch (f.type) {
    case 'announce':
      return { type: 'announce', ...info(f) };
    case 'registered':
      return withMessage(
        { type: 'registered' as const, ...info(f), gateway: name(f, 'gateway'), session: integer(f, 'session', 1), gatewayNonce: nonce(f, 'gatewayNonce'), nonce: nonce(f, 'nonce'), status: status(f) },
        f,
      );
    case 'refused':
      return refused(f);
    case 'reset':
      return { type: 'reset', gateway: name(f, 'gateway'), session: integer(f, 'session', 1), message: text(f, 'message') };
    case 'heartbeat':
    case 'reply':
    case 'status':
    case 'bye':
      return adapterEvent(f);
    default:
      return fail(`unknown message type ${JSON.stringify(f.type).slice(0, 64)} for a gateway`);
  }
}

function gatewayCommand(f: Fields): GatewayCommand {
  const base = inSession(f);
  switch (f.type) {
    case 'heartbeat': {
      const d = digest(f);
      return d === undefined ? { type: 'heartbeat', ...base } : { type: 'heartbeat', ...base, digest: d };
    }
    case 'subscribe':
      return withFeed(
        {
          type: 'subscribe' as const,
          ...base,
          id: integer(f, 'id'),
          exchange: name(f, 'exchange', MAX_SYMBOL_LENGTH),
          symbol: name(f, 'symbol', MAX_SYMBOL_LENGTH),
          mode: mode(f),
          depth: integer(f, 'depth'),
        },
        f,
      );
    case 'unsubscribe':
      return withFeed({ type: 'unsubscribe' as const, ...base, id: integer(f, 'id'), exchange: name(f, 'exchange', MAX_SYMBOL_LENGTH), symbol: name(f, 'symbol', MAX_SYMBOL_LENGTH) }, f);
    case 'open':
      return { type: 'open', ...base, id: integer(f, 'id'), feed: name(f, 'feed'), broker: name(f, 'broker'), user: name(f, 'user', MAX_USER_LENGTH) };
    case 'relogin':
      return { type: 'relogin', ...base, id: integer(f, 'id'), feed: name(f, 'feed') };
    default:
      return { type: 'bye', ...base };
  }
}

function toAdapter(f: Fields): ToAdapter {
  switch (f.type) {
    case 'register':
      return {
        type: 'register',
        protocol: integer(f, 'protocol', 1),
        gateway: name(f, 'gateway'),
        session: integer(f, 'session', 1),
        nonce: nonce(f, 'nonce'),
        heartbeatMs: integer(f, 'heartbeatMs', 1),
        pid: integer(f, 'pid', 1),
        host: name(f, 'host', 255),
      };
    case 'refused':
      return refused(f);
    case 'heartbeat':
    case 'subscribe':
    case 'unsubscribe':
    case 'open':
    case 'relogin':
    case 'bye':
      return gatewayCommand(f);
    default:
      return fail(`unknown message type ${JSON.stringify(f.type).slice(0, 64)} for an adapter`);
  }
}

// ——— frames ———

function decodeFrame<T>(data: Uint8Array | string, build: (fields: Fields) => T): DecodedFrame<T> {
  const text = typeof data === 'string' ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString('utf8');
  if (text.startsWith('{')) return unauthenticated(text);
  const macText = text.slice(0, MAC_LENGTH);
  if (text.length < MAC_LENGTH + 2 || text[MAC_LENGTH] !== ' ' || !HEX64.test(macText)) {
    return { ok: false, error: 'not a control frame (expected 64 hex digits of MAC, a space, then JSON)' };
  }
  const json = text.slice(MAC_LENGTH + 1);
  const decoded: Decoded<T> = decodeWith(json, build);
  return decoded.ok ? { ok: true, message: decoded.message, mac: macText, json } : decoded;
}

/** A bare JSON object: an older peer (version 1 had no MAC). Its version and round, if it says them. */
function unauthenticated(text: string): DecodedFrame<never> {
  const error = 'unauthenticated frame (no MAC): a peer of control protocol 1, or not a tickcast peer';
  const fields = decodeWith(text, (f) => ({ protocol: integer(f, 'protocol', 1), session: integer(f, 'session') }));
  return fields.ok ? { ok: false, error, legacy: fields.message } : { ok: false, error };
}

/** What a gateway receives. */
export const decodeToGateway = (data: Uint8Array | string): DecodedFrame<ToGateway> => decodeFrame(data, toGateway);
/** What an adapter receives. */
export const decodeToAdapter = (data: Uint8Array | string): DecodedFrame<ToAdapter> => decodeFrame(data, toAdapter);
