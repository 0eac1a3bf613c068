/**
 * tickcast's opt-in wire extensions, negotiated per connection in `authenticate`:
 *
 *   {"action":"authenticate","api_key":"…","encoding":"msgpack","batch":true,"seq":true,"snapshot":false}
 *
 * - `encoding`: `json` (default, OpenAlgo's) or `msgpack`: every message after the auth reply is
 *   a binary MessagePack frame (the auth reply itself stays JSON text so a client can read it
 *   before switching). Requests stay JSON.
 * - `batch`: market data produced in one event-loop turn arrives as one frame holding an array
 *   of `market_data` messages (a JSON array, or a MessagePack array).
 * - `seq`: each `market_data` carries `seq`, counting the ticks of its stream, so gaps show; the
 *   auth reply then carries `seq_epoch`, with which a reconnecting client asks for what it
 *   missed (subscribe `since`, docs/protocol.md "Recovery after reconnect").
 * - `snapshot`: the last known value of a stream is sent right after subscribing (default on).
 * Clients that send none of these see exactly OpenAlgo's protocol. Pure: parsing and encoding.
 */
import { Packr } from 'msgpackr';
import { ProtocolErrorCode } from '../errors.js';
import type { Mode } from './modes.js';
import type { JsonObject, Parsed } from './requests.js';

export type Encoding = 'json' | 'msgpack';

export interface Extensions {
  encoding: Encoding;
  batch: boolean;
  seq: boolean;
  snapshot: boolean;
}

export const OPENALGO_EXTENSIONS: Readonly<Extensions> = { encoding: 'json', batch: false, seq: false, snapshot: true };

const FLAGS = ['batch', 'seq', 'snapshot'] as const;

/** Reads the extension fields of an `authenticate` request; `requested` is false when it has none. */
export function parseExtensions(request: JsonObject, defaults: Extensions): Parsed<{ extensions: Extensions; requested: boolean }> {
  const extensions = { ...defaults };
  let requested = false;
  if (request.encoding !== undefined) {
    if (request.encoding !== 'json' && request.encoding !== 'msgpack') {
      return { ok: false, error: { code: ProtocolErrorCode.INVALID_PARAMETERS, message: 'encoding must be "json" or "msgpack"' } };
    }
    extensions.encoding = request.encoding;
    requested = true;
  }
  for (const flag of FLAGS) {
    const value = request[flag];
    if (value === undefined) continue;
    if (typeof value !== 'boolean') {
      return { ok: false, error: { code: ProtocolErrorCode.INVALID_PARAMETERS, message: `${flag} must be true or false` } };
    }
    extensions[flag] = value;
    requested = true;
  }
  return { ok: true, value: { extensions, requested } };
}

/**
 * Encodes messages for the wire. One per gateway (MessagePack keeps scratch buffers). Standard
 * MessagePack only (no record extension), so any MessagePack library decodes it.
 */
export class WireEncoder {
  private readonly packr = new Packr({ useRecords: false });

  message(message: object, encoding: Encoding): Buffer | string {
    return encoding === 'json' ? JSON.stringify(message) : this.packr.pack(message);
  }

  /**
   * A `market_data` message. `payloadJson` is the publisher's JSON, kept verbatim in JSON frames;
   * `payload()` parses it (once per tick, by the caller) for MessagePack frames.
   */
  marketData(
    encoding: Encoding,
    symbol: string,
    exchange: string,
    mode: Mode,
    payloadJson: string,
    payload: () => unknown,
    broker: string,
    seq: number | undefined,
    /** Resent by recovery after reconnect: the message says `"recovered": true`. */
    recovered = false,
  ): Buffer {
    if (encoding === 'msgpack') {
      const message: Record<string, unknown> = { type: 'market_data', symbol, exchange, mode, data: payload(), broker };
      if (seq !== undefined) message.seq = seq;
      if (recovered) message.recovered = true;
      return this.packr.pack(message);
    }
    return Buffer.from(
      `{"type":"market_data","symbol":${JSON.stringify(symbol)},"exchange":${JSON.stringify(exchange)},` +
        `"mode":${mode},"data":${payloadJson},"broker":${JSON.stringify(broker)}${seq === undefined ? '' : `,"seq":${seq}`}${recovered ? ',"recovered":true' : ''}}`,
    );
  }

  /** Several encoded messages as one array frame. */
  batch(frames: readonly Buffer[], encoding: Encoding): Buffer {
    if (encoding === 'json') {
      const parts: Buffer[] = [OPEN];
      for (let i = 0; i < frames.length; i++) {
        if (i > 0) parts.push(COMMA);
        parts.push(frames[i]!);
      }
      parts.push(CLOSE);
      return Buffer.concat(parts);
    }
    return Buffer.concat([arrayHeader(frames.length), ...frames]);
  }
}

/**
 * A whole WebSocket message frame (RFC 6455 §5.2: FIN, text or binary opcode, unmasked as every
 * server frame is) around `payload`. Identical for every client, so it is built once per message
 * and written to each socket as it is.
 */
export function websocketFrame(payload: Buffer, binary: boolean): Buffer {
  const n = payload.length;
  const header = n < 126 ? 2 : n < 0x10000 ? 4 : 10;
  const frame = Buffer.allocUnsafe(header + n);
  frame[0] = binary ? 0x82 : 0x81;
  if (header === 2) {
    frame[1] = n;
  } else if (header === 4) {
    frame[1] = 126;
    frame.writeUInt16BE(n, 2);
  } else {
    frame[1] = 127;
    frame.writeBigUInt64BE(BigInt(n), 2);
  }
  payload.copy(frame, header);
  return frame;
}

const OPEN = Buffer.from('[');
const COMMA = Buffer.from(',');
const CLOSE = Buffer.from(']');

/** MessagePack array header for `n` elements (fixarray, array 16, array 32). */
function arrayHeader(n: number): Buffer {
  if (n < 16) return Buffer.from([0x90 | n]);
  if (n < 0x10000) return Buffer.from([0xdc, n >> 8, n & 0xff]);
  const header = Buffer.alloc(5);
  header[0] = 0xdd;
  header.writeUInt32BE(n, 1);
  return header;
}
