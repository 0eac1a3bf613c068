/**
 * The recorded ticks of one simulated trading day, and the batch a recorder's main thread posts to
 * its writing thread.
 *
 * Ticks come from the project's own simulator: a SimulatorAdapter over a SimulatedMarket, with a
 * publisher that captures what it would put on the bus (topic, payload), driven by a fake clock
 * from 09:15 to 15:30 IST. The payload is the JSON text OpenAlgo clients get as `data`.
 *
 * A packed batch is one ArrayBuffer (transferred, not cloned): a u32 record count, then per
 * record u8 mode, u8 flags (bit 0: exchange timestamp present), f64 receive time, f64 exchange
 * time, u16 key length, u32 payload length, the stream key (`feed|EXCHANGE:SYMBOL`, UTF-8) and
 * the payload (UTF-8 JSON).
 */
import { parseInstrumentList, DEFAULT_INSTRUMENTS, type Instrument } from '../../src/adapters/simulator/instruments.js';
import { SimulatedMarket, createRng } from '../../src/adapters/simulator/market.js';
import { SimulatorAdapter } from '../../src/adapters/simulator/simulator-adapter.js';
import { silentLogger } from '../../src/observability/logger.js';
import type { Mode } from '../../src/protocol/modes.js';
import { parseTopic } from '../../src/protocol/topics.js';

export const FEED = 'simulator';
/** 09:15 IST on a Monday, as epoch ms; the session lasts until 15:30. */
export const DAY_START = Date.UTC(2026, 0, 5, 3, 45);
export const DAY_MS = (6 * 60 + 15) * 60_000;
/** The simulator's clock advances in steps of this many ms; ticks of one step share its time. */
const STEP_MS = 100;

/** One tick, as the bus hands it to a recorder. */
export interface Tick {
  /** `feed|EXCHANGE:SYMBOL` */
  key: string;
  mode: Mode;
  receivedAt: number;
  /** Kite sends an exchange timestamp in full (Depth) packets only. */
  exchangeTs: number | null;
  payload: string;
}

/**
 * A day of ticks, held in columns (payloads as one UTF-8 buffer) so millions of them cost the
 * heap a few arrays, not millions of strings.
 */
export interface Day {
  count: number;
  /** Stream keys, in the order the streams were subscribed; `stream` indexes them. */
  keys: string[];
  stream: Uint16Array;
  mode: Uint8Array;
  receivedAt: Float64Array;
  /** NaN when absent. */
  exchangeTs: Float64Array;
  /** Tick i's payload is bytes payloadAt[i] .. payloadAt[i + 1] of `payloads`. */
  payloadAt: Float64Array;
  payloads: Buffer;
  /** Mean payload size in bytes (all payloads are ASCII). */
  meanPayloadBytes: number;
}

export function tickOf(day: Day, i: number): Tick {
  const exchangeTs = day.exchangeTs[i]!;
  return {
    key: day.keys[day.stream[i]!]!,
    mode: day.mode[i] as Mode,
    receivedAt: day.receivedAt[i]!,
    exchangeTs: Number.isNaN(exchangeTs) ? null : exchangeTs,
    payload: day.payloads.toString('utf8', day.payloadAt[i]!, day.payloadAt[i + 1]!),
  };
}

export const streamKey = (feed: string, exchange: string, symbol: string): string => `${feed}|${exchange}:${symbol}`;
export function splitKey(key: string): { feed: string; exchange: string; symbol: string } {
  const bar = key.indexOf('|');
  const colon = key.indexOf(':', bar);
  return { feed: key.slice(0, bar), exchange: key.slice(bar + 1, colon), symbol: key.slice(colon + 1) };
}

/** The simulator's own instruments first, then made-up NSE names (as bench/workload.ts). */
function universe(size: number): Instrument[] {
  const list: Instrument[] = DEFAULT_INSTRUMENTS.slice(0, size).map((i) => ({ ...i }));
  const extra: string[] = [];
  for (let i = list.length; i < size; i++) extra.push(`NSE:BENCH${String(i).padStart(5, '0')}`);
  return extra.length ? [...list, ...parseInstrumentList(extra.join(','))] : list;
}

/**
 * `total` ticks spread evenly over `symbols` streams and one trading day. Each stream has one mode
 * drawn with weights 30 LTP / 50 Quote / 20 Depth. Deterministic for a given (total, symbols, seed).
 */
export function generateDay(total: number, symbols: number, seed: number): Day {
  const rng = createRng(seed);
  let now = DAY_START;
  const clock = { now: () => now };
  const instruments = universe(symbols);
  const market = new SimulatedMarket({ instruments, rng: createRng(seed + 1), now: () => now });
  const day: Day = {
    count: 0,
    keys: [],
    stream: new Uint16Array(total),
    mode: new Uint8Array(total),
    receivedAt: new Float64Array(total),
    exchangeTs: new Float64Array(total),
    payloadAt: new Float64Array(total + 1),
    payloads: Buffer.allocUnsafeSlow(total * 400),
    meanPayloadBytes: 0,
  };
  const streamOfTopic = new Map<string, { index: number; mode: Mode }>();
  const indexOfKey = new Map<string, number>();
  let bytes = 0;
  const publisher = {
    publish(topic: string, payload: string): void {
      const i = day.count;
      if (i >= total) return;
      let stream = streamOfTopic.get(topic);
      if (!stream) {
        const parsed = parseTopic(topic);
        if (parsed.kind !== 'market') throw new Error(`unexpected topic ${topic}`);
        const index = indexOfKey.get(streamKey(parsed.feed, parsed.exchange, parsed.symbol));
        if (index === undefined) throw new Error(`unexpected stream ${topic}`);
        stream = { index, mode: parsed.mode };
        streamOfTopic.set(topic, stream);
      }
      if (bytes + 3 * payload.length > day.payloads.length) {
        const grown = Buffer.allocUnsafeSlow(day.payloads.length * 2);
        day.payloads.copy(grown, 0, 0, bytes);
        day.payloads = grown;
      }
      bytes += day.payloads.write(payload, bytes, 'utf8');
      day.stream[i] = stream.index;
      day.mode[i] = stream.mode;
      day.receivedAt[i] = now;
      day.exchangeTs[i] = stream.mode === 3 ? now - 1 - Math.floor(rng() * 40) : NaN;
      day.payloadAt[i + 1] = bytes;
      day.count = i + 1;
    },
    close: async (): Promise<void> => {},
  };
  const adapter = new SimulatorAdapter({
    feed: FEED,
    broker: 'zerodha',
    market,
    publisher,
    ratePerSymbol: total / instruments.length / (DAY_MS / 1000),
    clock,
    logger: silentLogger(),
    random: rng,
  });
  for (const instrument of instruments) {
    const draw = rng() * 100;
    const mode: Mode = draw < 30 ? 1 : draw < 80 ? 2 : 3;
    void adapter.subscribe({ exchange: instrument.exchange, symbol: instrument.symbol }, mode, 5);
    indexOfKey.set(streamKey(FEED, instrument.exchange, instrument.symbol), day.keys.length);
    day.keys.push(streamKey(FEED, instrument.exchange, instrument.symbol));
  }
  while (day.count < total && now < DAY_START + DAY_MS + 3_600_000) {
    now += STEP_MS;
    adapter.emitDue(now);
  }
  day.meanPayloadBytes = bytes / day.count;
  return day;
}

const RECORD_HEAD = 1 + 1 + 8 + 8 + 2 + 4;

/**
 * Packs ticks from..to of the day into one transferable buffer: the main thread's work per posted
 * batch (a recorder would copy each tick's key and payload string the same way).
 */
export function packBatch(ticks: readonly Tick[]): ArrayBuffer {
  let size = 4;
  for (const t of ticks) size += RECORD_HEAD + t.key.length + t.payload.length;
  let buf = Buffer.allocUnsafeSlow(size);
  let at = 4;
  for (const t of ticks) {
    // Names are ASCII in practice; grow (UTF-8 takes up to 3 bytes per UTF-16 unit) if not.
    const need = RECORD_HEAD + 3 * (t.key.length + t.payload.length);
    if (at + need > buf.length) {
      const grown = Buffer.allocUnsafeSlow(Math.max(buf.length * 2, at + need));
      buf.copy(grown, 0, 0, at);
      buf = grown;
    }
    buf[at] = t.mode;
    buf[at + 1] = t.exchangeTs === null ? 0 : 1;
    buf.writeDoubleLE(t.receivedAt, at + 2);
    buf.writeDoubleLE(t.exchangeTs ?? 0, at + 10);
    const keyLen = buf.write(t.key, at + RECORD_HEAD, 'utf8');
    const payloadLen = buf.write(t.payload, at + RECORD_HEAD + keyLen, 'utf8');
    buf.writeUInt16LE(keyLen, at + 18);
    buf.writeUInt32LE(payloadLen, at + 20);
    at += RECORD_HEAD + keyLen + payloadLen;
  }
  buf.writeUInt32LE(ticks.length, 0);
  return at === buf.length ? buf.buffer : buf.buffer.slice(0, at);
}

/** The same batch packed straight from the day's columns (no strings): how ingest rounds are fed. */
const keyBytesOf = new WeakMap<Day, Buffer[]>();
export function packDayBatch(day: Day, from: number, to: number): ArrayBuffer {
  let keyBytes = keyBytesOf.get(day);
  if (!keyBytes) keyBytesOf.set(day, (keyBytes = day.keys.map((k) => Buffer.from(k, 'utf8'))));
  let size = 4;
  for (let i = from; i < to; i++) size += RECORD_HEAD + keyBytes[day.stream[i]!]!.length + (day.payloadAt[i + 1]! - day.payloadAt[i]!);
  const buf = Buffer.allocUnsafeSlow(size);
  let at = 4;
  for (let i = from; i < to; i++) {
    const key = keyBytes[day.stream[i]!]!;
    const exchangeTs = day.exchangeTs[i]!;
    buf[at] = day.mode[i]!;
    buf[at + 1] = Number.isNaN(exchangeTs) ? 0 : 1;
    buf.writeDoubleLE(day.receivedAt[i]!, at + 2);
    buf.writeDoubleLE(Number.isNaN(exchangeTs) ? 0 : exchangeTs, at + 10);
    key.copy(buf, at + RECORD_HEAD);
    const payloadLen = day.payloads.copy(buf, at + RECORD_HEAD + key.length, day.payloadAt[i]!, day.payloadAt[i + 1]!);
    buf.writeUInt16LE(key.length, at + 18);
    buf.writeUInt32LE(payloadLen, at + 20);
    at += RECORD_HEAD + key.length + payloadLen;
  }
  buf.writeUInt32LE(to - from, 0);
  return buf.buffer;
}

/** One record of a packed batch, as the writing thread sees it: the payload stays bytes. */
export interface PackedRecord {
  key: string;
  mode: number;
  receivedAt: number;
  exchangeTs: number | null;
  /** UTF-8 JSON, a view into the batch. */
  payload: Buffer;
}

export function* unpackBatch(batch: ArrayBuffer): Generator<PackedRecord> {
  const buf = Buffer.from(batch);
  const count = buf.readUInt32LE(0);
  let at = 4;
  for (let i = 0; i < count; i++) {
    const keyLen = buf.readUInt16LE(at + 18);
    const payloadLen = buf.readUInt32LE(at + 20);
    const keyAt = at + RECORD_HEAD;
    yield {
      key: buf.toString('utf8', keyAt, keyAt + keyLen),
      mode: buf[at]!,
      receivedAt: buf.readDoubleLE(at + 2),
      exchangeTs: buf[at + 1] ? buf.readDoubleLE(at + 10) : null,
      payload: buf.subarray(keyAt + keyLen, keyAt + keyLen + payloadLen),
    };
    at = keyAt + keyLen + payloadLen;
  }
}

/** What a structured-clone recorder would post instead: the ticks as plain objects. */
export function cloneRecords(ticks: readonly Tick[]): object[] {
  return ticks.map((t) => {
    const { feed, exchange, symbol } = splitKey(t.key);
    return { feed, exchange, symbol, mode: t.mode, exchangeTs: t.exchangeTs, receivedAt: t.receivedAt, payload: t.payload };
  });
}
