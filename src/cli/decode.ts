/**
 * `tickcast decode --broker zerodha|angel HEX…` (or hex lines on stdin): turns captured broker
 * frames into readable ticks, one JSON object per line. Problems go to stderr, one line per
 * frame, and the exit code is 1 if any frame could not be decoded.
 */
import { createInterface } from 'node:readline';
import type { Command } from 'commander';
import { decodeAngelBinary, decodeAngelText } from '../adapters/angel/decoder.js';
import { tickJson } from '../adapters/tick-json.js';
import { decodeKiteBinary, decodeKiteText } from '../adapters/zerodha/decoder.js';
import { EXIT_FAILURE, type Io, UsageError } from './common.js';

type Broker = 'zerodha' | 'angel';

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

/** Decodes one frame; returns the lines for stdout, or an error for stderr. */
export function decodeFrameLines(broker: Broker, frame: Buffer): { lines: string[]; warnings?: string[] } | { error: string } {
  const text = looksLikeText(frame) ? frame.toString('utf8') : undefined;
  if (broker === 'zerodha') {
    const decoded = text !== undefined ? decodeKiteText(text) : decodeKiteBinary(frame);
    switch (decoded.kind) {
      case 'ticks': {
        const lines = decoded.ticks.map((tick) => JSON.stringify(tickJson(tick)));
        // Packets that could not be read are skipped, as the adapter skips them.
        if (lines.length === 0 && decoded.rejected.length > 0) return { error: decoded.rejected.join('; ') };
        return { lines, warnings: decoded.rejected.map((reason) => `skipped a packet: ${reason}`) };
      }
      case 'heartbeat':
        return { lines: [JSON.stringify({ heartbeat: true })] };
      case 'text':
        return { lines: [JSON.stringify({ text: decoded.type, data: decoded.data })] };
      case 'invalid':
        return { error: decoded.reason };
    }
  }
  const decoded = text !== undefined ? decodeAngelText(text) : decodeAngelBinary(frame);
  switch (decoded.kind) {
    case 'tick':
      return { lines: [JSON.stringify(tickJson(decoded.tick))] };
    case 'pong':
      return { lines: [JSON.stringify({ pong: true })] };
    case 'text':
      return { lines: [JSON.stringify({ text: decoded.data })] };
    case 'invalid':
      return { error: decoded.reason };
  }
}

export function registerDecodeCommand(program: Command, io: Io, setExit: (code: number) => void, stdin: NodeJS.ReadableStream = process.stdin): void {
  program
    .command('decode')
    .description('Decode captured broker WebSocket frames (hex) into readable ticks, one JSON object per line')
    .requiredOption('--broker <broker>', 'zerodha or angel')
    .argument('[hex...]', 'frames as hex; without any, hex lines are read from standard input')
    .action(async (hex: string[], flags: { broker: string }) => {
      const broker = flags.broker.toLowerCase();
      if (broker !== 'zerodha' && broker !== 'angel') throw new UsageError(`--broker "${flags.broker}" is not valid: expected zerodha or angel`);
      let failed = 0;
      let frames = 0;
      const handle = (input: string): void => {
        if (input.trim() === '') return;
        frames++;
        const frame = parseHex(input);
        const result = typeof frame === 'string' ? { error: frame } : decodeFrameLines(broker, frame);
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
