/**
 * Encoding and validation of control-channel messages. Decoding never throws: anything a peer
 * sends either becomes a well-typed message (rebuilt from its known fields only) or an error
 * saying what is wrong with it, so one bad peer cannot break the channel.
 */
import type { FeedStatus } from '../adapters/adapter.js';
import type { Mode } from '../protocol/modes.js';
import type { AdapterMessage, ControlMessage, GatewayMessage, Hello } from './protocol.js';

/** Largest message accepted (bytes of JSON); real ones are a few hundred bytes. */
export const MAX_MESSAGE_BYTES = 64 * 1024;
/** Longest feed id, broker, instance or registry id. */
export const MAX_NAME_LENGTH = 128;
/** Longest exchange or symbol. */
export const MAX_SYMBOL_LENGTH = 256;
/** Longest free-text message; senders clip theirs with `clipText`. */
export const MAX_TEXT_LENGTH = 2000;
/** Most brokers one hello may list. */
export const MAX_BROKERS = 256;

export type Decoded<T> = { ok: true; message: T } | { ok: false; error: string };

const FEED_STATUSES: ReadonlySet<string> = new Set<FeedStatus>(['live', 'reconnecting', 'stale', 'down']);

export function encodeMessage(message: ControlMessage): string {
  return JSON.stringify(message);
}

/** Cuts free text to what the receiving side accepts. */
export function clipText(text: string): string {
  return text.length <= MAX_TEXT_LENGTH ? text : `${text.slice(0, MAX_TEXT_LENGTH - 1)}…`;
}

/** Thrown inside this module only, to unwind a failed validation; never escapes a decode. */
class Invalid extends Error {}

type Fields = Record<string, unknown>;

function fail(message: string): never {
  throw new Invalid(message);
}

function parseObject(data: Buffer | string): Fields {
  const size = typeof data === 'string' ? Buffer.byteLength(data) : data.length;
  if (size > MAX_MESSAGE_BYTES) fail(`message of ${size} bytes exceeds the ${MAX_MESSAGE_BYTES}-byte limit`);
  let value: unknown;
  try {
    value = JSON.parse(typeof data === 'string' ? data : data.toString('utf8'));
  } catch {
    fail('not JSON');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) fail('not a JSON object');
  const fields = value as Fields;
  if (typeof fields.type !== 'string') fail('"type" must be a string');
  return fields;
}

function name(fields: Fields, key: string, maxLength = MAX_NAME_LENGTH): string {
  const value = fields[key];
  if (typeof value !== 'string' || value.length === 0 || value.length > maxLength) {
    fail(`${fields.type}.${key} must be a non-empty string of at most ${maxLength} characters`);
  }
  return value;
}

function optionalName(fields: Fields, key: string): string | undefined {
  return fields[key] === undefined ? undefined : name(fields, key);
}

function text(fields: Fields, key: string): string {
  const value = fields[key];
  if (typeof value !== 'string' || value.length > MAX_TEXT_LENGTH) {
    fail(`${fields.type}.${key} must be a string of at most ${MAX_TEXT_LENGTH} characters`);
  }
  return value;
}

function optionalText(fields: Fields, key: string): string | undefined {
  return fields[key] === undefined ? undefined : text(fields, key);
}

/** A non-negative safe integer (`min` raises the floor). */
function integer(fields: Fields, key: string, min = 0): number {
  const value = fields[key];
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min) {
    fail(`${fields.type}.${key} must be an integer ≥ ${min}`);
  }
  return value;
}

function boolean(fields: Fields, key: string): boolean {
  const value = fields[key];
  if (typeof value !== 'boolean') fail(`${fields.type}.${key} must be true or false`);
  return value;
}

function mode(fields: Fields): Mode {
  const value = fields.mode;
  if (value !== 1 && value !== 2 && value !== 3) fail(`${fields.type}.mode must be 1, 2 or 3`);
  return value;
}

function status(fields: Fields): FeedStatus {
  const value = fields.status;
  if (typeof value !== 'string' || !FEED_STATUSES.has(value)) {
    fail(`${fields.type}.status must be one of ${[...FEED_STATUSES].join(', ')}`);
  }
  return value as FeedStatus;
}

function brokers(fields: Fields): string[] | '*' {
  const value = fields.brokers;
  if (value === '*') return '*';
  if (!Array.isArray(value) || value.length > MAX_BROKERS) {
    fail(`hello.brokers must be "*" or a list of at most ${MAX_BROKERS} broker names`);
  }
  return value.map((broker: unknown) => {
    if (typeof broker !== 'string' || broker.length === 0 || broker.length > MAX_NAME_LENGTH) {
      fail(`hello.brokers must hold non-empty strings of at most ${MAX_NAME_LENGTH} characters`);
    }
    return broker;
  });
}

function hello(fields: Fields): Hello {
  const message: Hello = {
    type: 'hello',
    protocol: integer(fields, 'protocol', 1),
    feed: name(fields, 'feed'),
    broker: name(fields, 'broker'),
    brokers: brokers(fields),
    pid: integer(fields, 'pid', 1),
    session: integer(fields, 'session'),
    heartbeatMs: integer(fields, 'heartbeatMs', 1),
    status: status(fields),
  };
  const instance = optionalName(fields, 'instance');
  const entryId = optionalName(fields, 'entryId');
  if (instance !== undefined) message.instance = instance;
  if (entryId !== undefined) message.entryId = entryId;
  return message;
}

function adapterMessage(fields: Fields): AdapterMessage {
  switch (fields.type) {
    case 'hello':
      return hello(fields);
    case 'heartbeat':
      return { type: 'heartbeat' };
    case 'bye':
      return { type: 'bye' };
    case 'reply': {
      const id = integer(fields, 'id');
      if (!boolean(fields, 'ok')) return { type: 'reply', id, ok: false, message: text(fields, 'message') };
      if (fields.depth === undefined) return { type: 'reply', id, ok: true };
      return { type: 'reply', id, ok: true, depth: integer(fields, 'depth') };
    }
    case 'status': {
      const message = optionalText(fields, 'message');
      return message === undefined
        ? { type: 'status', status: status(fields) }
        : { type: 'status', status: status(fields), message };
    }
    default:
      return fail(`unknown adapter message type ${JSON.stringify(fields.type).slice(0, 64)}`);
  }
}

function gatewayMessage(fields: Fields): GatewayMessage {
  switch (fields.type) {
    case 'welcome':
      return { type: 'welcome', session: integer(fields, 'session'), heartbeatMs: integer(fields, 'heartbeatMs', 1) };
    case 'refused':
      return { type: 'refused', session: integer(fields, 'session'), message: text(fields, 'message') };
    case 'heartbeat':
      return { type: 'heartbeat' };
    case 'bye':
      return { type: 'bye' };
    case 'reset':
      return { type: 'reset', message: text(fields, 'message') };
    case 'subscribe':
      return {
        type: 'subscribe',
        id: integer(fields, 'id'),
        exchange: name(fields, 'exchange', MAX_SYMBOL_LENGTH),
        symbol: name(fields, 'symbol', MAX_SYMBOL_LENGTH),
        mode: mode(fields),
        depth: integer(fields, 'depth'),
      };
    case 'unsubscribe':
      return {
        type: 'unsubscribe',
        id: integer(fields, 'id'),
        exchange: name(fields, 'exchange', MAX_SYMBOL_LENGTH),
        symbol: name(fields, 'symbol', MAX_SYMBOL_LENGTH),
      };
    default:
      return fail(`unknown gateway message type ${JSON.stringify(fields.type).slice(0, 64)}`);
  }
}

function decode<T>(data: Buffer | string, build: (fields: Fields) => T): Decoded<T> {
  try {
    return { ok: true, message: build(parseObject(data)) };
  } catch (error) {
    if (error instanceof Invalid) return { ok: false, error: error.message };
    // Not expected (validation only throws Invalid), but a decoder must never throw.
    return { ok: false, error: `undecodable: ${(error as Error).message}` };
  }
}

/** What the gateway receives. */
export function decodeAdapterMessage(data: Buffer | string): Decoded<AdapterMessage> {
  return decode(data, adapterMessage);
}

/** What an adapter receives. */
export function decodeGatewayMessage(data: Buffer | string): Decoded<GatewayMessage> {
  return decode(data, gatewayMessage);
}
