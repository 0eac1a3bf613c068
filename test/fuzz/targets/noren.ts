/**
 * Noren feed messages (src/adapters/noren/decoder.ts). Contract: no throw for any input; a
 * message is market data, a connect answer, a heartbeat, an order update, an acknowledgement or
 * invalid with a short reason; the book keeps at most maxTokens tokens and only known fields,
 * and every tick it makes has finite numbers and at most five depth levels a side.
 */
import { equal, ok } from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import type { BrokerTick } from '../../../src/adapters/broker.js';
import { NorenBook, decodeNorenText, type NorenDecoded } from '../../../src/adapters/noren/decoder.js';
import { HOSTILE_SHARE, assertReason, assertSerialisable, bounded, fuzzCase, sizeOf, type FuzzCase } from '../harness.js';
import { mutated } from '../mutate.js';

interface Vector {
  name: string;
  direction: string;
  text: string;
}

// The broker vectors (test/fixtures/vectors/README.md says where they come from).
const VECTORS = JSON.parse(readFileSync(new URL('../../fixtures/vectors/noren.json', import.meta.url), 'utf8')) as Vector[];
const TEXT = VECTORS.filter((v) => v.direction === 'server->client').map((v) => Buffer.from(v.text));
const MAX_TOKENS = 8;
const KINDS = new Set(['market', 'connect', 'heartbeat', 'order', 'ack', 'invalid']);

function assertTick(tick: BrokerTick): void {
  ok(tick.broker === 'shoonya' || tick.broker === 'flattrade');
  ok(tick.token.length > 0 && tick.exchange.length > 0);
  ok(tick.mode === 'quote' || tick.mode === 'full', `mode ${tick.mode}`);
  for (const [field, value] of Object.entries(tick)) {
    if (typeof value === 'number') ok(Number.isFinite(value), `${field} = ${value}`);
  }
  if (tick.depth) {
    ok(tick.depth.buy.length <= 5 && tick.depth.sell.length <= 5, 'more than 5 depth levels');
    for (const level of [...tick.depth.buy, ...tick.depth.sell]) ok(Number.isFinite(level.price) && level.quantity >= 0);
  }
}

function assertDecoded(text: string, decoded: NorenDecoded): void {
  ok(KINDS.has(decoded.kind), decoded.kind);
  if (decoded.kind === 'invalid') assertReason(decoded.reason);
  if (decoded.kind === 'connect') assertReason(decoded.message);
  if (decoded.kind === 'order') assertSerialisable(decoded.data, 'an order update');
  if (decoded.kind === 'market') {
    ok(sizeOf(decoded) <= 4 * text.length + 256, `output of ~${sizeOf(decoded)} bytes from ${text.length}`);
    for (const value of Object.values(decoded.fields)) ok(typeof value === 'string' || Number.isFinite(value));
  }
}

function feed(book: NorenBook, text: string): void {
  const decoded = decodeNorenText(text);
  assertDecoded(text, decoded);
  if (decoded.kind !== 'market') return;
  const applied = book.apply(decoded);
  if (applied.kind === 'invalid') assertReason(applied.reason);
  else assertTick(applied.tick);
  ok(book.size <= MAX_TOKENS, `book holds ${book.size} tokens`);
}

const decimal = fc.oneof(
  fc.tuple(fc.nat({ max: 99_999_999 }), fc.nat({ max: 9999 })).map(([i, f]) => `${i}.${String(f).padStart(2, '0')}`),
  fc.constantFrom('0', '0.00', '', '-', '1e5', 'NaN', '-1.5', '١٢٣'),
  fc.double().map(String),
  fc.string(),
);
const FIELDS = ['lp', 'pc', 'v', 'o', 'h', 'l', 'c', 'ap', 'oi', 'poi', 'toi', 'ltq', 'tbq', 'tsq', 'uc', 'lc', 'ft', 'ltt', 'ts',
  ...[1, 2, 3, 4, 5].flatMap((i) => [`bp${i}`, `bq${i}`, `bo${i}`, `sp${i}`, `sq${i}`, `so${i}`]), 'zz'];
const marketMessage = fc
  .record({
    t: fc.constantFrom('tk', 'tf', 'dk', 'df'),
    e: fc.constantFrom('NSE', 'NFO', 'CDS', 'MCX', 'BSE'),
    tk: fc.constantFrom('1', '2', '3', '22', '2885', '26000', '35001', '99', '100', '101', '102', '103'),
    fields: fc.dictionary(fc.constantFrom(...FIELDS), fc.oneof({ arbitrary: decimal, weight: 5 }, { arbitrary: fc.jsonValue(), weight: 1 })),
  })
  .map(({ t, e, tk, fields }) => JSON.stringify({ t, e, tk, ...fields }));

export const norenCases: FuzzCase[] = [
  fuzzCase(
    'random strings never throw; every message is one of the known kinds',
    fc.property(fc.string({ unit: 'binary', maxLength: 600 }), (text) => {
      assertDecoded(text, decodeNorenText(text));
    }),
  ),
  fuzzCase(
    'random JSON values never throw',
    fc.property(fc.jsonValue(), (value) => {
      const text = JSON.stringify(value) ?? '';
      assertDecoded(text, decodeNorenText(text));
    }),
  ),
  fuzzCase(
    'mutated vector messages never throw',
    fc.property(mutated(fc.constantFrom(...TEXT)), (buffer) => {
      const text = buffer.toString('utf8');
      assertDecoded(text, decodeNorenText(text));
    }),
  ),
  fuzzCase(
    'sequences of market messages merge into finite ticks; the book stays bounded',
    fc.property(fc.array(marketMessage, { maxLength: 40 }), (texts) => {
      const book = new NorenBook({ maxTokens: MAX_TOKENS });
      for (const text of texts) feed(book, text);
    }),
  ),
  fuzzCase(
    'a valid acknowledgement then updates: the last price is the last one sent',
    fc.property(fc.array(fc.nat({ max: 10_000_000 }), { minLength: 1, maxLength: 20 }), (prices) => {
      const book = new NorenBook();
      let last: BrokerTick | undefined;
      prices.forEach((paise, i) => {
        const lp = (paise / 100).toFixed(2);
        const decoded = decodeNorenText(JSON.stringify({ t: i === 0 ? 'tk' : 'tf', e: 'NSE', tk: '2885', lp, v: String(i) }));
        if (decoded.kind !== 'market') throw new Error(decoded.kind);
        const applied = book.apply(decoded);
        if (applied.kind === 'tick') last = applied.tick;
      });
      equal(last!.ltp, Number((prices[prices.length - 1]! / 100).toFixed(2)));
      equal(last!.volume, prices.length - 1);
    }),
  ),
  fuzzCase(
    'huge and deeply nested messages: bounded work',
    fc.property(fc.integer({ min: 1, max: 30_000 }), fc.constantFrom('tk', 'om', 'ck'), (depth, t) => {
      const text = `{"t":"${t}","e":"NSE","tk":"1","lp":"1.00","x":${'['.repeat(depth)}${']'.repeat(depth)}}`;
      assertDecoded(text, bounded('deep Noren message', () => decodeNorenText(text)));
    }),
    HOSTILE_SHARE,
  ),
];
