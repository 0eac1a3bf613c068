/**
 * What both control channels (ZeroMQ: codec.ts, NATS: nats-protocol.ts) check in a message:
 * size, JSON object shape, and each field's type and bounds. A decoder built on `decodeWith`
 * never throws: a message is rebuilt from its known fields only, or refused with what is wrong.
 */
import type { FeedStatus } from '../feed.js';
import type { Mode } from '../protocol/modes.js';

/** Largest message accepted (bytes of JSON); real ones are a few hundred bytes. */
export const MAX_MESSAGE_BYTES = 64 * 1024;
/** Longest feed id, broker, instance or registry id. */
export const MAX_NAME_LENGTH = 128;
/** Longest exchange or symbol. */
export const MAX_SYMBOL_LENGTH = 256;
/** Longest free-text message; senders clip theirs with `clipText` (codec.ts). */
export const MAX_TEXT_LENGTH = 2000;
/** Most brokers one announcement may list. */
export const MAX_BROKERS = 256;

export type Decoded<T> = { ok: true; message: T } | { ok: false; error: string };

/** A message's JSON object, `type` checked to be a string. */
export type Fields = Record<string, unknown>;

const FEED_STATUSES: ReadonlySet<string> = new Set<FeedStatus>(['live', 'reconnecting', 'stale', 'down']);

/** Thrown by the checks below to unwind a failed validation; `decodeWith` turns it into an error. */
class Invalid extends Error {}

export function fail(message: string): never {
  throw new Invalid(message);
}

function parseObject(data: Uint8Array | string): Fields {
  const size = typeof data === 'string' ? Buffer.byteLength(data) : data.length;
  if (size > MAX_MESSAGE_BYTES) fail(`message of ${size} bytes exceeds the ${MAX_MESSAGE_BYTES}-byte limit`);
  let value: unknown;
  try {
    value = JSON.parse(typeof data === 'string' ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString('utf8'));
  } catch {
    fail('not JSON');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) fail('not a JSON object');
  const fields = value as Fields;
  if (typeof fields.type !== 'string') fail('"type" must be a string');
  return fields;
}

/** Parses `data` and builds the message from its fields, or says what is wrong. Never throws. */
export function decodeWith<T>(data: Uint8Array | string, build: (fields: Fields) => T): Decoded<T> {
  try {
    return { ok: true, message: build(parseObject(data)) };
  } catch (error) {
    if (error instanceof Invalid) return { ok: false, error: error.message };
    // Not expected (validation only throws Invalid), but a decoder must never throw.
    return { ok: false, error: `undecodable: ${(error as Error).message}` };
  }
}

export function name(fields: Fields, key: string, maxLength = MAX_NAME_LENGTH): string {
  const value = fields[key];
  if (typeof value !== 'string' || value.length === 0 || value.length > maxLength) {
    fail(`${fields.type}.${key} must be a non-empty string of at most ${maxLength} characters`);
  }
  return value;
}

export function text(fields: Fields, key: string): string {
  const value = fields[key];
  if (typeof value !== 'string' || value.length > MAX_TEXT_LENGTH) {
    fail(`${fields.type}.${key} must be a string of at most ${MAX_TEXT_LENGTH} characters`);
  }
  return value;
}

export function optionalText(fields: Fields, key: string): string | undefined {
  return fields[key] === undefined ? undefined : text(fields, key);
}

/** A non-negative safe integer (`min` raises the floor). */
export function integer(fields: Fields, key: string, min = 0): number {
  const value = fields[key];
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min) {
    fail(`${fields.type}.${key} must be an integer ≥ ${min}`);
  }
  return value;
}

export function boolean(fields: Fields, key: string): boolean {
  const value = fields[key];
  if (typeof value !== 'boolean') fail(`${fields.type}.${key} must be true or false`);
  return value;
}

export function mode(fields: Fields): Mode {
  const value = fields.mode;
  if (value !== 1 && value !== 2 && value !== 3) fail(`${fields.type}.mode must be 1, 2 or 3`);
  return value;
}

export function status(fields: Fields): FeedStatus {
  const value = fields.status;
  if (typeof value !== 'string' || !FEED_STATUSES.has(value)) {
    fail(`${fields.type}.status must be one of ${[...FEED_STATUSES].join(', ')}`);
  }
  return value as FeedStatus;
}

/** The brokers an adapter serves: `"*"`, or a bounded list of names. */
export function brokers(fields: Fields): string[] | '*' {
  if (fields.brokers === '*') return '*';
  return brokerList(fields, 'brokers', '"*" or ');
}

/** A feed host's `hosts`: a bounded list of broker names, or undefined when absent. */
export function optionalHosts(fields: Fields): string[] | undefined {
  return fields.hosts === undefined ? undefined : brokerList(fields, 'hosts', '');
}

function brokerList(fields: Fields, key: string, alternative: string): string[] {
  const value = fields[key];
  if (!Array.isArray(value) || value.length > MAX_BROKERS) {
    fail(`${fields.type}.${key} must be ${alternative}a list of at most ${MAX_BROKERS} broker names`);
  }
  return value.map((broker: unknown) => {
    if (typeof broker !== 'string' || broker.length === 0 || broker.length > MAX_NAME_LENGTH) {
      fail(`${fields.type}.${key} must hold non-empty strings of at most ${MAX_NAME_LENGTH} characters`);
    }
    return broker;
  });
}
