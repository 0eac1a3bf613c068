/**
 * Decoding cost per frame, per broker: every frame of the broker's test vectors
 * (test/fixtures/vectors/<broker>.json, the frames the broker sends) decoded in a tight loop, in
 * this one process. Reports the median over rounds of ns per frame and per tick, and each
 * broker's ratio to Kite's (the baseline, measured in the same rounds).
 *
 *   npm run bench:decode -- [--rounds 7] [--ms 400]
 */
import { readFileSync } from 'node:fs';
import { decodeAngelBinary } from '../src/adapters/angel/decoder.js';
import { decodeDhanFeed } from '../src/adapters/dhan/decoder.js';
import { NorenBook, decodeNorenText } from '../src/adapters/noren/decoder.js';
import { decodeUpstoxFeed } from '../src/adapters/upstox/decoder.js';
import { decodeKiteBinary } from '../src/adapters/zerodha/decoder.js';

const arg = (name: string, fallback: number): number => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : fallback;
};
const ROUNDS = arg('rounds', 7);
const MS = arg('ms', 400);

interface Vector {
  name: string;
  frame: 'binary' | 'text';
  direction: string;
  hex?: string;
  text?: string;
  /** Dhan's: which of its two feeds the frame belongs to. */
  feed?: string;
}

/** One broker: its frames from the broker, and a decode that returns how many ticks a frame held. */
interface Subject {
  broker: string;
  frames: Array<Buffer | string>;
  decode(frame: Buffer | string): number;
}

/** The frames of `file`'s vectors that the broker sends, of one kind (and those `keep` takes). */
function brokerFrames(file: string, frame: 'binary' | 'text', keep: (vector: Vector) => boolean = () => true): Array<Buffer | string> {
  const vectors = JSON.parse(readFileSync(new URL(`../test/fixtures/vectors/${file}`, import.meta.url), 'utf8')) as Vector[];
  return vectors
    .filter((v) => v.direction === 'server->client' && v.frame === frame && keep(v))
    .map((v) => (frame === 'binary' ? Buffer.from(v.hex!, 'hex') : (v.text ?? Buffer.from(v.hex!, 'hex').toString('utf8'))));
}

/** Ticks in a decoder's answer: a list (`ticks`), one (`tick`), or none. */
const ticksOf = (decoded: { kind: string; ticks?: unknown[] }): number => (Array.isArray(decoded.ticks) ? decoded.ticks.length : decoded.kind === 'tick' ? 1 : 0);

const SUBJECTS: Subject[] = [
  { broker: 'zerodha', frames: brokerFrames('zerodha.json', 'binary'), decode: (frame) => ticksOf(decodeKiteBinary(frame as Buffer)) },
  { broker: 'angel', frames: brokerFrames('angel.json', 'binary'), decode: (frame) => ticksOf(decodeAngelBinary(frame as Buffer)) },
  // Dhan's live feed (its separate 20-level depth feed pairs bid and ask messages: not timed here).
  { broker: 'dhan', frames: brokerFrames('dhan.json', 'binary', (v) => v.feed === 'marketfeed'), decode: (frame) => decodeDhanFeed(frame as Buffer).filter((packet) => packet.kind === 'tick').length },
  { broker: 'upstox', frames: brokerFrames('upstox.json', 'binary'), decode: (frame) => ticksOf(decodeUpstoxFeed(frame as Buffer)) },
  { broker: 'noren', frames: brokerFrames('noren.json', 'text'), decode: norenDecode() },
];

/** Noren's messages carry only what changed: each is decoded and merged into a token book, as the adapter will. */
function norenDecode(): (frame: Buffer | string) => number {
  const book = new NorenBook();
  return (frame) => {
    const decoded = decodeNorenText(frame as string);
    return decoded.kind === 'market' && book.apply(decoded).kind === 'tick' ? 1 : 0;
  };
}

/** Decodes the broker's frames round-robin for `ms`; returns ns per frame and ticks per frame. */
function measure(subject: Subject, ms: number): { nsPerFrame: number; ticksPerFrame: number } {
  const { frames, decode } = subject;
  let decoded = 0;
  let ticks = 0;
  const start = process.hrtime.bigint();
  const deadline = start + BigInt(ms) * 1_000_000n;
  let now = start;
  while (now < deadline) {
    for (let i = 0; i < 1000; i++) ticks += decode(frames[(decoded + i) % frames.length]!);
    decoded += 1000;
    now = process.hrtime.bigint();
  }
  return { nsPerFrame: Number(now - start) / decoded, ticksPerFrame: ticks / decoded };
}

const median = (values: number[]): number => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
};

// Warm-up: let the JIT settle every decoder before anything is timed.
for (const subject of SUBJECTS) measure(subject, 200);
const results = new Map<string, Array<{ nsPerFrame: number; ticksPerFrame: number }>>();
for (let round = 0; round < ROUNDS; round++) {
  for (const subject of SUBJECTS) results.set(subject.broker, [...(results.get(subject.broker) ?? []), measure(subject, MS)]);
}
const baseline = median(results.get('zerodha')!.map((r) => r.nsPerFrame));
console.log(`decode cost, median of ${ROUNDS} rounds of ${MS} ms each (node ${process.version})`);
console.log('| broker | frames in the set | ns per frame | ticks per frame | ns per tick | ÷ Kite |');
console.log('|---|---|---|---|---|---|');
for (const subject of SUBJECTS) {
  const rounds = results.get(subject.broker)!;
  const ns = median(rounds.map((r) => r.nsPerFrame));
  const perFrame = rounds[0]!.ticksPerFrame;
  console.log(`| ${subject.broker} | ${subject.frames.length} | ${ns.toFixed(0)} | ${perFrame.toFixed(2)} | ${perFrame > 0 ? (ns / perFrame).toFixed(0) : '-'} | ${(ns / baseline).toFixed(2)} |`);
}
