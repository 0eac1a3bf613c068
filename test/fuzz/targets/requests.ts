/**
 * The client request path: everything a text or binary frame goes through before the gateway
 * acts (websocket-server.ts decodes, request-handler.ts resolves and parses). Contract: no
 * function on it throws; every refusal is a ProtocolError with a code from src/errors.ts and a
 * message; what replies echo back (request_id, symbols) can be serialised.
 */
import { equal, ok } from 'node:assert/strict';
import fc from 'fast-check';
import { OPENALGO_EXTENSIONS, parseExtensions } from '../../../src/protocol/encoding.js';
import {
  type JsonObject,
  type ProtocolError,
  apiKeyOf,
  checkItem,
  decodeFrame,
  parsePing,
  parseSubscribe,
  parseUnsubscribe,
  requestIdOf,
  resolveAction,
} from '../../../src/protocol/requests.js';
import { HOSTILE_SHARE, assertProtocolError, assertSerialisable, bounded, fuzzCase, type FuzzCase } from '../harness.js';
import { HOSTILE_BYTES, hostile, mutated, randomBytes } from '../mutate.js';

const ACTION_NAMES = [
  'authenticate', 'auth', 'subscribe', 'unsubscribe', 'unsubscribe_all', 'subscribe_orders', 'unsubscribe_orders',
  'get_broker_info', 'get_supported_brokers', 'ping',
];
const MAX_NAME_LENGTH = 128;

interface PipelineOutcome {
  errors: ProtocolError[];
  /** Items that passed checkItem. */
  accepted: Array<{ exchange: string; symbol: string }>;
  /** Per-item refusals (checkItem, or an unsubscribe item's mode). */
  itemMessages: string[];
  items: number;
}

/** The pure part of request-handler.ts, in its order, for one frame. */
export function clientPipeline(frame: string | Buffer): PipelineOutcome {
  const outcome: PipelineOutcome = { errors: [], accepted: [], itemMessages: [], items: 0 };
  const decoded = decodeFrame(frame);
  if (!decoded.ok) {
    outcome.errors.push(decoded.error);
    return outcome;
  }
  const request: JsonObject = decoded.value;
  // Replies echo request_id and the items verbatim: the request must serialise.
  assertSerialisable(request, 'the decoded request');
  requestIdOf(request);
  const action = resolveAction(request);
  if (!action.ok) {
    outcome.errors.push(action.error);
    return outcome;
  }
  const check = (item: { symbol: unknown; exchange: unknown }): void => {
    const checked = checkItem(item);
    if ('message' in checked) outcome.itemMessages.push(checked.message);
    else {
      equal(checked.symbol, item.symbol);
      equal(checked.exchange, item.exchange);
      outcome.accepted.push(checked);
    }
  };
  switch (action.value) {
    case 'authenticate': {
      apiKeyOf(request);
      const negotiated = parseExtensions(request, OPENALGO_EXTENSIONS);
      if (!negotiated.ok) outcome.errors.push(negotiated.error);
      break;
    }
    case 'subscribe': {
      const parsed = parseSubscribe(request);
      if (!parsed.ok) outcome.errors.push(parsed.error);
      else {
        ok([1, 2, 3].includes(parsed.value.mode), `mode ${parsed.value.mode}`);
        outcome.items = parsed.value.items.length;
        parsed.value.items.forEach(check);
      }
      break;
    }
    case 'unsubscribe': {
      const parsed = parseUnsubscribe(request);
      if (!parsed.ok) outcome.errors.push(parsed.error);
      else if (!parsed.value.all) {
        outcome.items = parsed.value.items.length;
        for (const item of parsed.value.items) {
          if (item.mode.ok) {
            ok([1, 2, 3].includes(item.mode.mode), `mode ${item.mode.mode}`);
            check(item);
          } else outcome.itemMessages.push(item.mode.message);
        }
      }
      break;
    }
    case 'ping':
      parsePing(request);
      break;
    default:
      break;
  }
  return outcome;
}

/** The properties every frame's outcome has, whatever the frame. */
function assertOutcome(frame: string | Buffer, outcome: PipelineOutcome): void {
  const bytes = typeof frame === 'string' ? Buffer.byteLength(frame) : frame.length;
  for (const error of outcome.errors) {
    assertProtocolError(error);
    // Messages quote the client's value (Python repr escapes a control character as 4 chars).
    ok(error.message.length <= 4 * bytes + 128, `error message of ${error.message.length} chars for ${bytes} bytes`);
  }
  for (const message of outcome.itemMessages) ok(typeof message === 'string' && message.length > 0 && message.length <= 4 * bytes + 128);
  for (const { exchange, symbol } of outcome.accepted) {
    for (const name of [exchange, symbol]) {
      ok(typeof name === 'string' && name.length > 0 && name.length <= MAX_NAME_LENGTH, `accepted name ${JSON.stringify(name)}`);
      // eslint-disable-next-line no-control-regex
      ok(!/[\u0000-\u001f\u007f]/.test(name), 'accepted name holds a control character');
    }
  }
  // An item needs at least `{"symbol":x,"exchange":y}` (25 bytes) of the frame.
  ok(outcome.items * 25 <= bytes, `${outcome.items} items from ${bytes} bytes`);
}

// ---- Generators ---------------------------------------------------------------------------

const odd = fc.constantFrom<unknown>(null, true, false, 0, 1, 2, 3, 4, -1, 1.5, 1e308, '', ' ', 'LTP', ' quote ', 'DEPTH', 'x', [], {}, [1], { a: 1 });
const value: fc.Arbitrary<unknown> = fc.oneof(odd, fc.string({ maxLength: 12 }), fc.string({ unit: 'binary', maxLength: 200 }), fc.jsonValue({ maxDepth: 3 }));
const name = fc.oneof(
  fc.stringMatching(/^[A-Z][A-Z0-9&-]{0,15}$/),
  fc.string({ unit: 'binary', maxLength: 140 }),
  value,
);
const item = fc.oneof(
  { arbitrary: fc.record({ symbol: name, exchange: name, mode: value }, { requiredKeys: [] }), weight: 4 },
  { arbitrary: value, weight: 1 },
);

const requestObject = fc.record(
  {
    action: fc.oneof(fc.constantFrom(...ACTION_NAMES), value),
    type: fc.oneof(fc.constantFrom(...ACTION_NAMES), value),
    api_key: value,
    apikey: value,
    encoding: fc.oneof(fc.constantFrom('json', 'msgpack', 'cbor'), value),
    batch: value,
    seq: value,
    snapshot: value,
    symbols: fc.oneof(fc.array(item, { maxLength: 8 }), value),
    symbol: name,
    exchange: name,
    depth: value,
    request_id: value,
    timestamp: value,
    _pingId: value,
  },
  { requiredKeys: [] },
);

/** `mode` as raw JSON text: float literals (2.0, 1e0) are read differently from integers. */
const modeText = fc.oneof(
  fc.constantFrom('1', '2', '3', '2.0', '1e0', '3.', '02.0', '1.e5', '-0.0', '1E+0', '2.5', '0', '4', '1e400', '"LTP"', '" Depth "', 'null', 'true', '[]', '{}', '"\\u0000float"'),
  fc.jsonValue({ maxDepth: 2 }).map((v) => JSON.stringify(v)),
);

/** A request frame as text: a random request object, often with a raw `mode` literal spliced in. */
const requestText = fc
  .tuple(requestObject, fc.option(modeText, { nil: undefined }), fc.constantFrom('', ' ', '\n'))
  .map(([object, mode, space]) => {
    const text = JSON.stringify(object);
    if (mode === undefined) return text;
    return text === '{}' ? `{"mode":${space}${mode}}` : `${text.slice(0, -1)},"mode"${space}:${space}${mode}}`;
  });

/** A subscribe or unsubscribe a real client sends: these must be accepted. */
const wellFormed = fc
  .record({
    action: fc.constantFrom('subscribe', 'unsubscribe'),
    mode: fc.constantFrom<unknown>(1, 2, 3, 'LTP', 'quote', ' Depth '),
    symbols: fc.array(
      fc.record({
        symbol: fc.stringMatching(/^[A-Z0-9][A-Z0-9&_-]{0,20}$/),
        exchange: fc.constantFrom('NSE', 'BSE', 'NFO', 'NSE_INDEX', 'MCX', 'CDS'),
      }),
      { minLength: 1, maxLength: 10 },
    ),
    request_id: fc.option(fc.string({ maxLength: 10 }), { nil: undefined }),
  });

/**
 * 64 KiB frames built to hurt: deep nesting, wide lists, long runs the regular expressions see.
 * Generated as a description (a failure prints that, not 64 KiB), built in the property.
 */
const hostileFrame = fc.record({
  field: fc.constantFrom('action', 'type', 'mode', 'symbols', 'symbol', 'request_id', 'api_key', 'encoding'),
  shape: fc.constantFrom('[', '{"a":', '[{}', '{"mode":', '"\\u0000', '\\"', '0', '1.', '"mode":1 ', '{"symbol":"A","exchange":"B"},', ' '),
  action: fc.constantFrom('subscribe', 'unsubscribe', 'authenticate', 'ping', 'nope'),
  close: fc.boolean(),
});

function buildHostile({ field, shape, action, close }: { field: string; shape: string; action: string; close: boolean }): Buffer {
  const head = `{"action":"${action}","symbol":"A","exchange":"B","${field}":`;
  const body = hostile(Buffer.from(head), Buffer.from(shape), HOSTILE_BYTES - 64);
  // Half of them are closed where possible, so they parse and reach the later steps.
  return close ? Buffer.concat([body, Buffer.from(shape === '[' ? ']' : '}')]) : body;
}

const deepFrame = fc.record({
  depth: fc.integer({ min: 1, max: 30_000 }),
  open: fc.constantFrom('[', '{"a":'),
  field: fc.constantFrom('action', 'type', 'mode', 'symbols', 'symbol', 'request_id'),
});

function buildDeep({ depth, open, field }: { depth: number; open: string; field: string }): string {
  const close = open === '[' ? ']' : '}';
  return `{"action":"subscribe","exchange":"NSE","symbol":"A","${field}":${open.repeat(depth)}1${close.repeat(depth)}}`;
}

export const requestCases: FuzzCase[] = [
  fuzzCase(
    'random text and bytes never throw; every refusal has a code and a message',
    fc.property(fc.oneof(fc.string({ unit: 'binary' }), fc.string({ unit: 'binary-ascii' }), randomBytes(512, [0x7b, 0x5b])), (frame) => {
      assertOutcome(frame, clientPipeline(frame));
    }),
  ),
  fuzzCase(
    'random request objects (any field, any type, float mode literals) never throw',
    fc.property(requestText, (frame) => {
      assertOutcome(frame, clientPipeline(frame));
    }),
  ),
  fuzzCase(
    'mutated valid requests (flipped, cut, extended, spliced bytes) never throw',
    fc.property(mutated(requestText.map((text) => Buffer.from(text))), (frame) => {
      assertOutcome(frame, clientPipeline(frame));
      assertOutcome(frame.toString('latin1'), clientPipeline(frame.toString('latin1')));
    }),
  ),
  fuzzCase(
    'decodeFrame refuses as INVALID_JSON exactly the texts JSON.parse refuses (float-mode marking keeps validity)',
    fc.property(fc.oneof(requestText, mutated(requestText.map((text) => Buffer.from(text))).map((b) => b.toString('utf8'))), (text) => {
      let valid = true;
      try {
        JSON.parse(text);
      } catch {
        valid = false;
      }
      const decoded = decodeFrame(text);
      equal(!decoded.ok && decoded.error.code === 'INVALID_JSON', !valid, `decodeFrame ${JSON.stringify(decoded)} for ${valid ? 'valid' : 'invalid'} JSON`);
    }),
  ),
  fuzzCase(
    'well-formed subscribe/unsubscribe requests are accepted item by item',
    fc.property(wellFormed, (request) => {
      const frame = JSON.stringify(request);
      const outcome = clientPipeline(frame);
      assertOutcome(frame, outcome);
      equal(outcome.errors.length, 0, JSON.stringify(outcome.errors));
      equal(outcome.accepted.length, request.symbols.length);
      equal(outcome.itemMessages.length, 0);
    }),
  ),
  fuzzCase(
    'nesting of any depth is refused or handled, never a stack overflow',
    fc.property(deepFrame, (shape) => {
      const frame = buildDeep(shape);
      assertOutcome(frame, bounded('deep frame', () => clientPipeline(frame)));
    }),
    0.2,
  ),
  fuzzCase(
    '64 KiB hostile frames: bounded work, output bounded by input',
    fc.property(hostileFrame, (shape) => {
      const frame = buildHostile(shape);
      assertOutcome(frame, bounded('hostile frame', () => clientPipeline(frame)));
    }),
    HOSTILE_SHARE,
  ),
];
