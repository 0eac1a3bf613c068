/**
 * A minimal protobuf (proto3) wire-format reader, schema-driven, for the Upstox feed. Pure: no
 * I/O, no state, never throws for any input. Every read is bounds-checked against the end of the
 * enclosing message, and nested messages are refused beyond `maxDepth`.
 *
 * Wire types: 0 varint, 1 64-bit, 2 length-delimited, 5 32-bit. Groups (3, 4) and the
 * undefined 6, 7 make the message invalid (proto3 has no groups). Unknown field numbers are
 * skipped, as every protobuf runtime does, so a newer schema still decodes; a KNOWN field with
 * the wrong wire type makes the message invalid (the official runtime would keep it as an
 * unknown field and carry on; here it is taken as corruption).
 *
 * Semantics follow the protobuf runtime: the last value of a singular scalar wins; a singular
 * message field seen twice is merged; setting one member of a oneof clears the others; a map
 * entry replaces an earlier entry with the same key, and a missing key or value is its default.
 * Only fields present on the wire are set in the result (proto3 cannot tell an explicit zero
 * from an absent field either; callers decide what a zero means).
 */

export type ScalarType = 'double' | 'float' | 'int64' | 'uint64' | 'int32' | 'uint32' | 'bool' | 'enum' | 'string' | 'bytes';

export interface MessageSpec {
  readonly name: string;
  /** Field number → field. */
  readonly fields: Readonly<Record<number, FieldSpec>>;
}

export type FieldType = ScalarType | MessageSpec | (() => MessageSpec);

export interface FieldSpec {
  readonly name: string;
  readonly type: FieldType;
  /** Repeated (messages, strings and bytes only: packed scalars are not needed here). */
  readonly repeated?: boolean;
  /** map<string, type>: decoded to a Map in wire order, later keys replacing earlier ones. */
  readonly map?: boolean;
  /** The oneof group the field belongs to. */
  readonly oneof?: string;
}

export type ProtoValue = number | boolean | string | Uint8Array | ProtoMessage | ProtoValue[] | Map<string, ProtoValue>;
export type ProtoMessage = { [field: string]: ProtoValue };

export type DecodeResult = { ok: true; message: ProtoMessage } | { ok: false; reason: string };

export interface DecodeOptions {
  /** Deepest nesting of messages accepted (the top-level message is depth 1). Default 32. */
  maxDepth?: number;
}

export const DEFAULT_MAX_DEPTH = 32;
const TWO_POW_32 = 4294967296;
const UTF8 = new TextDecoder('utf-8', { fatal: true });

/** Decodes `bytes` as one `spec` message. */
export function decodeMessage(bytes: Uint8Array, spec: MessageSpec, options: DecodeOptions = {}): DecodeResult {
  const state: State = { bytes, maxDepth: options.maxDepth ?? DEFAULT_MAX_DEPTH, error: undefined };
  const message: ProtoMessage = {};
  decodeInto(state, message, spec, 0, bytes.length, 1);
  return state.error === undefined ? { ok: true, message } : { ok: false, reason: state.error };
}

interface State {
  readonly bytes: Uint8Array;
  readonly maxDepth: number;
  error: string | undefined;
}

/** A varint read into two unsigned 32-bit halves. */
export interface Varint {
  lo: number;
  hi: number;
  /** Position after the varint. */
  next: number;
}

/**
 * Reads a varint at `pos` that must end before `end`; undefined if it runs past `end` or is
 * longer than ten bytes.
 */
export function readVarint(bytes: Uint8Array, pos: number, end: number): Varint | undefined {
  let lo = 0;
  let hi = 0;
  for (let i = 0; i < 10; i++) {
    if (pos >= end) return undefined;
    const b = bytes[pos++]!;
    if (i < 4) lo |= (b & 0x7f) << (7 * i);
    else if (i === 4) {
      lo |= (b & 0x0f) << 28;
      hi |= (b & 0x7f) >>> 4;
    } else hi |= (b & 0x7f) << (7 * i - 32);
    if ((b & 0x80) === 0) return { lo: lo >>> 0, hi: hi >>> 0, next: pos };
  }
  return undefined;
}

/** A varint as a signed 64-bit integer: exact within ±2^53, nearest double beyond. */
export function int64(lo: number, hi: number): number {
  const high = hi | 0;
  const value = high * TWO_POW_32 + lo;
  if (Number.isSafeInteger(value)) return value;
  return Number(BigInt.asIntN(64, (BigInt(hi >>> 0) << 32n) | BigInt(lo >>> 0)));
}

/** A varint as an unsigned 64-bit integer: exact below 2^53, nearest double beyond. */
export function uint64(lo: number, hi: number): number {
  const value = (hi >>> 0) * TWO_POW_32 + (lo >>> 0);
  if (Number.isSafeInteger(value)) return value;
  return Number((BigInt(hi >>> 0) << 32n) | BigInt(lo >>> 0));
}

export function readDouble(bytes: Uint8Array, pos: number): number {
  return new DataView(bytes.buffer, bytes.byteOffset + pos, 8).getFloat64(0, true);
}

export function readFloat(bytes: Uint8Array, pos: number): number {
  return new DataView(bytes.buffer, bytes.byteOffset + pos, 4).getFloat32(0, true);
}

/** The UTF-8 text of bytes[start, end), or undefined if it is not valid UTF-8. */
export function readUtf8(bytes: Uint8Array, start: number, end: number): string | undefined {
  try {
    return UTF8.decode(bytes.subarray(start, end));
  } catch {
    return undefined;
  }
}

const WIRE_TYPE: Record<ScalarType, number> = {
  double: 1, float: 5, int64: 0, uint64: 0, int32: 0, uint32: 0, bool: 0, enum: 0, string: 2, bytes: 2,
};

function resolve(type: FieldType): ScalarType | MessageSpec {
  return typeof type === 'function' ? type() : type;
}

function fail(state: State, reason: string): false {
  state.error ??= reason;
  return false;
}

function decodeInto(state: State, target: ProtoMessage, spec: MessageSpec, start: number, end: number, depth: number): boolean {
  if (depth > state.maxDepth) return fail(state, `${spec.name} nested deeper than ${state.maxDepth} messages`);
  const { bytes } = state;
  let pos = start;
  while (pos < end) {
    const key = readVarint(bytes, pos, end);
    if (!key) return fail(state, `${spec.name}: truncated field key at byte ${pos}`);
    if (key.hi !== 0 || key.lo >>> 3 === 0) return fail(state, `${spec.name}: field number out of range at byte ${pos}`);
    pos = key.next;
    const number = key.lo >>> 3;
    const wire = key.lo & 7;
    // Where this field's value is: [valueStart, valueEnd).
    let valueStart = pos;
    let valueEnd: number;
    switch (wire) {
      case 0: {
        const v = readVarint(bytes, pos, end);
        if (!v) return fail(state, `${spec.name}: truncated varint in field ${number}`);
        valueEnd = v.next;
        break;
      }
      case 1:
        valueEnd = pos + 8;
        break;
      case 5:
        valueEnd = pos + 4;
        break;
      case 2: {
        const length = readVarint(bytes, pos, end);
        if (!length) return fail(state, `${spec.name}: truncated length in field ${number}`);
        if (length.hi !== 0 || length.lo > end - length.next) {
          return fail(state, `${spec.name}: field ${number} is longer than its message`);
        }
        valueStart = length.next;
        valueEnd = length.next + length.lo;
        break;
      }
      default:
        return fail(state, `${spec.name}: wire type ${wire} (field ${number}) is not proto3`);
    }
    if (valueEnd > end) return fail(state, `${spec.name}: field ${number} runs past the end`);
    pos = valueEnd;

    const field = spec.fields[number];
    if (field === undefined) continue; // unknown: skipped
    const type = resolve(field.type);
    const expectedWire = field.map || typeof type !== 'string' ? 2 : WIRE_TYPE[type];
    if (wire !== expectedWire) return fail(state, `${spec.name}.${field.name}: wire type ${wire}, expected ${expectedWire}`);

    if (field.oneof !== undefined) {
      for (const other of Object.values(spec.fields)) {
        if (other.oneof === field.oneof && other.name !== field.name) delete target[other.name];
      }
    }
    if (field.map) {
      if (!decodeMapEntry(state, target, field, type, valueStart, valueEnd, depth)) return false;
      continue;
    }
    if (typeof type !== 'string') {
      let child: ProtoMessage;
      if (field.repeated) {
        child = {};
        const list = target[field.name];
        if (Array.isArray(list)) list.push(child);
        else target[field.name] = [child];
      } else {
        const existing = target[field.name];
        child = isMessage(existing) ? existing : {};
        target[field.name] = child;
      }
      if (!decodeInto(state, child, type, valueStart, valueEnd, depth + 1)) return false;
      continue;
    }
    const value = scalar(state, spec, field, type, valueStart, valueEnd);
    if (value === undefined) return false;
    if (field.repeated) {
      const list = target[field.name];
      if (Array.isArray(list)) list.push(value);
      else target[field.name] = [value];
    } else target[field.name] = value;
  }
  return true;
}

function isMessage(value: ProtoValue | undefined): value is ProtoMessage {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && !(value instanceof Map) && !(value instanceof Uint8Array);
}

function scalar(state: State, spec: MessageSpec, field: FieldSpec, type: ScalarType, start: number, end: number): ProtoValue | undefined {
  const { bytes } = state;
  switch (type) {
    case 'double':
      return readDouble(bytes, start);
    case 'float':
      return readFloat(bytes, start);
    case 'string': {
      const text = readUtf8(bytes, start, end);
      if (text === undefined) {
        fail(state, `${spec.name}.${field.name}: not UTF-8`);
        return undefined;
      }
      return text;
    }
    case 'bytes':
      return bytes.slice(start, end);
    default: {
      // Varint types; the bounds were checked when the field was located.
      const v = readVarint(bytes, start, end)!;
      switch (type) {
        case 'int64':
          return int64(v.lo, v.hi);
        case 'uint64':
          return uint64(v.lo, v.hi);
        case 'uint32':
          return v.lo >>> 0;
        case 'bool':
          return v.lo !== 0 || v.hi !== 0;
        default: // int32, enum: the low 32 bits, signed
          return v.lo | 0;
      }
    }
  }
}

/** map<string, V> entry: key = field 1, value = field 2; either may be missing. */
function decodeMapEntry(state: State, target: ProtoMessage, field: FieldSpec, valueType: ScalarType | MessageSpec, start: number, end: number, depth: number): boolean {
  const entrySpec: MessageSpec = {
    name: `${field.name} entry`,
    fields: { 1: { name: 'key', type: 'string' }, 2: { name: 'value', type: valueType } },
  };
  const entry: ProtoMessage = {};
  if (!decodeInto(state, entry, entrySpec, start, end, depth + 1)) return false;
  let map = target[field.name];
  if (!(map instanceof Map)) {
    map = new Map<string, ProtoValue>();
    target[field.name] = map;
  }
  const key = typeof entry.key === 'string' ? entry.key : '';
  map.set(key, entry.value ?? defaultOf(valueType));
  return true;
}

function defaultOf(type: ScalarType | MessageSpec): ProtoValue {
  if (typeof type !== 'string') return {};
  switch (type) {
    case 'string':
      return '';
    case 'bytes':
      return new Uint8Array(0);
    case 'bool':
      return false;
    default:
      return 0;
  }
}
