/**
 * The client's side of the wire protocol, pure: the requests it sends (OpenAlgo's JSON actions
 * plus tickcast's negotiated extensions) and the reading of what comes back — frames (JSON text,
 * JSON binary, MessagePack, single or batched), the auth reply and the subscribe reply.
 */
import { unpack } from 'msgpackr/unpack';
import { ClientErrorCode } from '../errors.js';
import { streamKey } from './instruments.js';
import type { Instrument, Mode, NegotiatedExtensions } from './types.js';

export type WireMessage = Record<string, unknown>;

export interface AuthenticateOptions {
  apiKey: string;
  encoding: 'json' | 'msgpack';
  batch: boolean;
  snapshot: boolean;
}

/** `seq` is always asked for: gap detection needs it and it costs a few bytes per tick. */
export function authenticateRequest(options: AuthenticateOptions): WireMessage {
  return {
    action: 'authenticate',
    api_key: options.apiKey,
    encoding: options.encoding,
    batch: options.batch,
    seq: true,
    snapshot: options.snapshot,
  };
}

/** The gateway refuses frames over 64 KiB by default; chunks stay well below. */
const MAX_REQUEST_BYTES = 32 * 1024;

function chunked(instruments: readonly Instrument[], itemOf: (instrument: Instrument) => WireMessage, maxBytes: number): WireMessage[][] {
  const chunks: WireMessage[][] = [];
  let current: WireMessage[] = [];
  let bytes = 0;
  for (const instrument of instruments) {
    const item = itemOf(instrument);
    // Characters, not bytes, but names are ASCII in practice and the margin is large.
    const size = JSON.stringify(item).length + 1;
    if (current.length > 0 && bytes + size > maxBytes) {
      chunks.push(current);
      current = [];
      bytes = 0;
    }
    current.push(item);
    bytes += size;
  }
  if (current.length > 0) chunks.push(current);
  return chunks;
}

/** What a reconnecting client asks the gateway to resend: the last seq seen per stream, in an epoch. */
export interface ResumeFrom {
  epoch: string;
  /** The last seq seen of the stream at the request's mode, if the client asks to recover it. */
  since(instrument: Instrument): number | undefined;
}

/**
 * One or more `subscribe` requests (split so none exceeds the gateway's message limit). With
 * `resume`, items carry `since` (and the request the `epoch`) for the streams it knows a seq of.
 */
export function subscribeRequests(instruments: readonly Instrument[], mode: Mode, maxBytes = MAX_REQUEST_BYTES, resume?: ResumeFrom): WireMessage[] {
  const itemOf = (i: Instrument): WireMessage => {
    const since = resume?.since(i);
    return since === undefined ? { symbol: i.symbol, exchange: i.exchange } : { symbol: i.symbol, exchange: i.exchange, since };
  };
  return chunked(instruments, itemOf, maxBytes).map((symbols) => {
    const request: WireMessage = { action: 'subscribe', symbols, mode, depth: 5 };
    if (resume && symbols.some((item) => item.since !== undefined)) request.epoch = resume.epoch;
    return request;
  });
}

/** `unsubscribe` requests; each item carries its mode, as OpenAlgo reads it per item. */
export function unsubscribeRequests(instruments: readonly Instrument[], mode: Mode, maxBytes = MAX_REQUEST_BYTES): WireMessage[] {
  return chunked(instruments, (i) => ({ symbol: i.symbol, exchange: i.exchange, mode }), maxBytes).map((symbols) => ({
    action: 'unsubscribe',
    symbols,
    mode,
  }));
}

export function pingRequest(timestamp: number): WireMessage {
  return { action: 'ping', timestamp };
}

/** Messages the gateway pushes on its own; everything else answers the oldest pending request. */
export function isPush(message: WireMessage): boolean {
  return message.type === 'market_data' || message.type === 'feed_status' || message.type === 'order_update' || message.type === 'recovered' || message.type === 'gap';
}

const OPEN_BRACE = 0x7b;
const OPEN_BRACKET = 0x5b;
const textDecoder = new TextDecoder();

function bytesOf(data: unknown): Uint8Array | undefined {
  if (data instanceof Uint8Array) return data; // includes Node's Buffer
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  return undefined;
}

export type Decoded = { ok: true; messages: WireMessage[] } | { ok: false; code: string; message: string };

/**
 * One received frame → its messages. Text frames are JSON. Binary frames are MessagePack, or
 * JSON when they start with `{` or `[` (a MessagePack message is always a map or an array, whose
 * first byte is never one of those). A batch (an array) yields each of its messages.
 */
export function decodeFrame(data: unknown): Decoded {
  let value: unknown;
  try {
    if (typeof data === 'string') {
      value = JSON.parse(data);
    } else {
      const bytes = bytesOf(data);
      if (!bytes || bytes.length === 0) return protocolError('an empty or unreadable frame');
      value = bytes[0] === OPEN_BRACE || bytes[0] === OPEN_BRACKET ? JSON.parse(textDecoder.decode(bytes)) : unpack(bytes);
    }
  } catch (error) {
    return protocolError(`an undecodable frame (${(error as Error).message})`);
  }
  const list = Array.isArray(value) ? value : [value];
  const messages: WireMessage[] = [];
  for (const item of list) {
    if (item === null || typeof item !== 'object' || Array.isArray(item)) return protocolError('a frame that holds something other than messages');
    messages.push(item as WireMessage);
  }
  return { ok: true, messages };
}

function protocolError(what: string): Decoded {
  return { ok: false, code: ClientErrorCode.PROTOCOL_ERROR, message: `the gateway sent ${what}` };
}

/** The error envelope `{"status":"error","code","message"}`, if `reply` is one. */
export function errorOf(reply: WireMessage): { code: string; message: string } | undefined {
  if (reply.status !== 'error') return undefined;
  return { code: typeof reply.code === 'string' ? reply.code : 'SERVER_ERROR', message: typeof reply.message === 'string' ? reply.message : 'request failed' };
}

export type AuthOutcome =
  | { ok: true; broker: string; userId: string; extensions: NegotiatedExtensions; /** tickcast's `seq_epoch`, with seq */ seqEpoch?: string }
  | { ok: false; code: string; message: string };

/**
 * Reads the auth reply. A gateway that does not echo the extensions (OpenAlgo's own proxy) gave
 * none of them: JSON, unbatched, no sequence numbers, no snapshots.
 */
export function readAuthReply(reply: WireMessage): AuthOutcome {
  const failure = errorOf(reply);
  if (failure) return { ok: false, ...failure };
  if (reply.type !== 'auth' || reply.status !== 'success') {
    return { ok: false, code: ClientErrorCode.PROTOCOL_ERROR, message: `unexpected reply to authenticate: ${JSON.stringify(reply).slice(0, 200)}` };
  }
  const echoed = typeof reply.encoding === 'string';
  return {
    ok: true,
    ...(typeof reply.seq_epoch === 'string' ? { seqEpoch: reply.seq_epoch } : {}),
    broker: String(reply.broker ?? ''),
    userId: String(reply.user_id ?? ''),
    extensions: echoed
      ? { encoding: reply.encoding === 'msgpack' ? 'msgpack' : 'json', batch: reply.batch === true, seq: reply.seq === true, snapshot: reply.snapshot === true }
      : { encoding: 'json', batch: false, seq: false, snapshot: false },
  };
}

export type ItemOutcome = { ok: true; depth?: number } | { ok: false; message: string };

/**
 * Reads a subscribe reply into one outcome per requested instrument (keyed `EXCHANGE:SYMBOL`).
 * An error envelope fails every instrument with its message; an instrument missing from the
 * reply failed too.
 */
export function readSubscribeReply(reply: WireMessage, requested: readonly Instrument[]): { error?: { code: string; message: string }; outcomes: Map<string, ItemOutcome> } {
  const outcomes = new Map<string, ItemOutcome>();
  const failure = errorOf(reply);
  if (failure) {
    for (const instrument of requested) outcomes.set(streamKey(instrument), { ok: false, message: failure.message });
    return { error: failure, outcomes };
  }
  const items = Array.isArray(reply.subscriptions) ? (reply.subscriptions as unknown[]) : [];
  for (const entry of items) {
    if (entry === null || typeof entry !== 'object') continue;
    const item = entry as WireMessage;
    if (typeof item.exchange !== 'string' || typeof item.symbol !== 'string') continue;
    const key = streamKey({ exchange: item.exchange, symbol: item.symbol });
    outcomes.set(
      key,
      item.status === 'success'
        ? typeof item.depth === 'number' ? { ok: true, depth: item.depth } : { ok: true }
        : { ok: false, message: typeof item.message === 'string' ? item.message : 'Subscription failed' },
    );
  }
  for (const instrument of requested) {
    const key = streamKey(instrument);
    if (!outcomes.has(key)) outcomes.set(key, { ok: false, message: 'the gateway did not answer for this instrument' });
  }
  return { outcomes };
}

/** A `market_data` message's stream, mode and seq, or undefined when it is malformed. */
export function readMarketData(message: WireMessage): { exchange: string; symbol: string; mode: Mode; seq: number | undefined; data: Record<string, unknown> } | undefined {
  const { exchange, symbol, mode, seq, data } = message;
  if (typeof exchange !== 'string' || typeof symbol !== 'string') return undefined;
  if (mode !== 1 && mode !== 2 && mode !== 3) return undefined;
  if (data === null || typeof data !== 'object' || Array.isArray(data)) return undefined;
  return { exchange, symbol, mode, seq: typeof seq === 'number' && Number.isInteger(seq) ? seq : undefined, data: data as Record<string, unknown> };
}

/** A `recovered` or `gap` message (recovery after reconnect), or undefined when it is malformed. */
export function readRecovery(
  message: WireMessage,
): { type: 'recovered'; exchange: string; symbol: string; mode: Mode; from: number; to: number; count: number } | { type: 'gap'; exchange: string; symbol: string; mode: Mode; since: number; next: number; reason: 'epoch' | 'history' | 'ahead'; message: string } | undefined {
  const { exchange, symbol, mode } = message;
  if (typeof exchange !== 'string' || typeof symbol !== 'string' || (mode !== 1 && mode !== 2 && mode !== 3)) return undefined;
  const int = (value: unknown): value is number => typeof value === 'number' && Number.isInteger(value);
  if (message.type === 'recovered') {
    const { from, to, count } = message;
    if (!int(from) || !int(to) || !int(count)) return undefined;
    return { type: 'recovered', exchange, symbol, mode, from, to, count };
  }
  const { since, next, reason } = message;
  if (!int(since) || !int(next) || (reason !== 'epoch' && reason !== 'history' && reason !== 'ahead')) return undefined;
  return { type: 'gap', exchange, symbol, mode, since, next, reason, message: typeof message.message === 'string' ? message.message : '' };
}
