/**
 * `tickcast decode --broker BROKER HEX…` (or hex lines on stdin): turns captured broker frames
 * into readable ticks, one JSON object per line. Problems go to stderr, one line per frame, and
 * the exit code is 1 if any frame could not be decoded. Noren's messages (Shoonya, Flattrade)
 * carry only what changed: the frames of one run are merged per instrument, in order, as the
 * adapter does, so give them in the order they were captured.
 */
import { createInterface } from 'node:readline';
import type { Command } from 'commander';
import { decodeAngelBinary, decodeAngelText } from '../adapters/angel/decoder.js';
import { type DhanPacket, decodeDhanDepth20, decodeDhanFeed, decodeDhanText } from '../adapters/dhan/decoder.js';
import { NorenBook, decodeNorenText } from '../adapters/noren/decoder.js';
import { tickJson } from '../adapters/tick-json.js';
import { decodeUpstoxFeed } from '../adapters/upstox/decoder.js';
import { decodeKiteBinary, decodeKiteText } from '../adapters/zerodha/decoder.js';
import { EXIT_FAILURE, type Io, UsageError } from './common.js';

/** Brokers whose frames tickcast decodes. */
export const DECODE_BROKERS = ['zerodha', 'angel', 'dhan', 'upstox', 'shoonya', 'flattrade'] as const;
type Broker = (typeof DECODE_BROKERS)[number];

type Decoded = { lines: string[]; warnings?: string[] } | { error: string };
/**
 * Decodes one captured frame (state kept between the frames of a run, for Noren). `binary` is the
 * WebSocket frame type when it is known (recorded frames); a pasted capture's is guessed.
 */
export type FrameDecoder = (frame: Buffer, binary?: boolean) => Decoded;

/** Hex with optional spaces, colons or a 0x prefix, as people paste it from captures. */
function parseHex(text: string): Buffer | string {
  const compact = text.trim().replace(/^0x/i, '').replace(/[\s:]/g, '');
  if (compact === '') return 'empty input';
  if (!/^[0-9a-fA-F]*$/.test(compact)) return `not hexadecimal: "${text.trim().slice(0, 40)}${text.trim().length > 40 ? '…' : ''}"`;
  if (compact.length % 2 !== 0) return `odd number of hex digits (${compact.length})`;
  return Buffer.from(compact, 'hex');
}

/** A frame that is UTF-8 text starting with `{` or `pong` was a text frame on the wire. */
function looksLikeText(frame: Buffer): boolean {
  const text = frame.toString('utf8');
  return /^\s*(\{|pong\s*$)/.test(text) && !text.includes('\uFFFD');
}

const line = (value: unknown): string => JSON.stringify(value);

/** Whether to read `frame` as a text frame. */
const isText = (frame: Buffer, binary: boolean | undefined): boolean => (binary === undefined ? looksLikeText(frame) : !binary);

function kiteFrame(frame: Buffer, binary?: boolean): Decoded {
  const decoded = isText(frame, binary) ? decodeKiteText(frame.toString('utf8')) : decodeKiteBinary(frame);
  switch (decoded.kind) {
    case 'ticks': {
      const lines = decoded.ticks.map((tick) => line(tickJson(tick)));
      // Packets that could not be read are skipped, as the adapter skips them.
      if (lines.length === 0 && decoded.rejected.length > 0) return { error: decoded.rejected.join('; ') };
      return { lines, warnings: decoded.rejected.map((reason) => `skipped a packet: ${reason}`) };
    }
    case 'heartbeat':
      return { lines: [line({ heartbeat: true })] };
    case 'text':
      return { lines: [line({ text: decoded.type, data: decoded.data })] };
    case 'invalid':
      return { error: decoded.reason };
  }
}

function angelFrame(frame: Buffer, binary?: boolean): Decoded {
  const decoded = isText(frame, binary) ? decodeAngelText(frame.toString('utf8')) : decodeAngelBinary(frame);
  switch (decoded.kind) {
    case 'tick':
      return { lines: [line(tickJson(decoded.tick))] };
    case 'pong':
      return { lines: [line({ pong: true })] };
    case 'text':
      return { lines: [line({ text: decoded.data })] };
    case 'invalid':
      return { error: decoded.reason };
  }
}

/** Dhan: a live-feed message, or else a message of its 20-level depth feed (each side on its own line). */
function dhanFrame(frame: Buffer, binary?: boolean): Decoded {
  if (isText(frame, binary)) {
    const decoded = decodeDhanText(frame.toString('utf8'));
    return decoded.kind === 'text' ? { lines: [line({ text: decoded.text })] } : { error: decoded.reason };
  }
  let packets = decodeDhanFeed(frame);
  if (packets.every((packet) => packet.kind === 'invalid')) {
    const depth = decodeDhanDepth20(frame);
    if (depth.some((packet) => packet.kind !== 'invalid')) packets = depth;
  }
  return packetLines(packets);
}

function packetLines(packets: DhanPacket[]): Decoded {
  const lines: string[] = [];
  const warnings: string[] = [];
  for (const packet of packets) {
    if (packet.kind === 'invalid') warnings.push(`skipped a packet: ${packet.reason}`);
    else if (packet.kind === 'tick') lines.push(line(tickJson(packet.tick)));
    else lines.push(line(packet));
  }
  return lines.length === 0 ? { error: warnings.join('; ') } : { lines, warnings };
}

function upstoxFrame(frame: Buffer): Decoded {
  const decoded = decodeUpstoxFeed(frame);
  if (decoded.kind === 'invalid') return { error: decoded.reason };
  const lines = decoded.ticks.map(({ tick, requestMode, greeks, iv }) => line({ ...tickJson(tick), request_mode: requestMode, ...(greeks ? { greeks } : {}), ...(iv === undefined ? {} : { iv }) }));
  if (decoded.marketStatus) lines.push(line({ market_status: decoded.marketStatus }));
  if (lines.length === 0 && decoded.skipped.length > 0) return { error: decoded.skipped.join('; ') };
  return { lines, warnings: decoded.skipped.map((reason) => `skipped a feed: ${reason}`) };
}

/** Noren (Shoonya, Flattrade): each message merged into the run's book, then the instrument's whole state. */
function norenFrames(broker: 'shoonya' | 'flattrade'): FrameDecoder {
  const book = new NorenBook({ broker });
  return (frame) => {
    const decoded = decodeNorenText(frame.toString('utf8'));
    switch (decoded.kind) {
      case 'market': {
        const applied = book.apply(decoded);
        return applied.kind === 'tick' ? { lines: [line(tickJson(applied.tick))] } : { error: applied.reason };
      }
      case 'invalid':
        return { error: decoded.reason };
      default:
        return { lines: [line(decoded)] };
    }
  };
}

/** The frame decoder of one run for `broker`. */
export function frameDecoder(broker: Broker): FrameDecoder {
  switch (broker) {
    case 'zerodha':
      return kiteFrame;
    case 'angel':
      return angelFrame;
    case 'dhan':
      return dhanFrame;
    case 'upstox':
      return upstoxFrame;
    case 'shoonya':
    case 'flattrade':
      return norenFrames(broker);
  }
}

export function registerDecodeCommand(program: Command, io: Io, setExit: (code: number) => void, stdin: NodeJS.ReadableStream = process.stdin): void {
  program
    .command('decode')
    .description('Decode captured broker WebSocket frames (hex) into readable ticks, one JSON object per line')
    .requiredOption('--broker <broker>', DECODE_BROKERS.join(', '))
    .argument('[hex...]', 'frames as hex; without any, hex lines are read from standard input')
    .action(async (hex: string[], flags: { broker: string }) => {
      const broker = flags.broker.toLowerCase() as Broker;
      if (!DECODE_BROKERS.includes(broker)) throw new UsageError(`--broker "${flags.broker}" is not valid: expected one of ${DECODE_BROKERS.join(', ')}`);
      const decode = frameDecoder(broker);
      let failed = 0;
      let frames = 0;
      const handle = (input: string): void => {
        if (input.trim() === '') return;
        frames++;
        const frame = parseHex(input);
        const result = typeof frame === 'string' ? { error: frame } : decode(frame);
        if ('error' in result) {
          failed++;
          io.err(`tickcast decode: frame ${frames}: ${result.error}\n`);
        } else {
          for (const line of result.lines) io.out(line + '\n');
          for (const warning of result.warnings ?? []) io.err(`tickcast decode: frame ${frames}: ${warning}\n`);
        }
      };
      if (hex.length > 0) {
        for (const input of hex) handle(input);
      } else {
        for await (const line of createInterface({ input: stdin, crlfDelay: Infinity })) handle(line);
      }
      if (frames === 0) throw new UsageError('no frames given: pass hex arguments or hex lines on standard input');
      if (failed > 0) setExit(EXIT_FAILURE);
    });
}
