/**
 * `tickcast frames list|decode`: the raw broker frames TICKCAST_RECORD_FRAMES kept
 * (history/frame-store.ts). `list` shows the sockets of a range with their counts; `decode` runs
 * each broker's own decoder module (the one its adapter uses, through `tickcast decode`'s frame
 * decoders) over every frame received, one JSON line per packet. A damaged day is said on stderr
 * and the other days are read; a range with no frames exits 1 naming the days held.
 */
import type { Command } from 'commander';
import { type Parsed, iso, parseList, parseRange } from '../adapters/replay/replay-source.js';
import { type ConnectionSummary, type FrameQuery, FrameStore } from '../history/frame-store.js';
import type { DayProblem } from '../history/store.js';
import { historyDir } from '../wiring.js';
import { EXIT_FAILURE, type Io, UsageError, addConfigFlags, configFrom } from './common.js';
import { DECODE_BROKERS, type FrameDecoder, frameDecoder } from './decode.js';

const FRAMES_FLAGS = ['envFile', 'instance', 'dataDir', 'logLevel'];

interface FramesFlags {
  from?: string;
  to?: string;
  connection?: string;
  broker?: string;
  historyDir?: string;
}

function check<T>(parsed: Parsed<T>): T {
  if (!parsed.ok) throw new UsageError(parsed.message);
  return parsed.value;
}

/** The store and query the flags name; UsageError for flags that do not make one. */
function selection(flags: FramesFlags): { store: FrameStore; query: FrameQuery; rangeText: string } {
  if (flags.from === undefined) throw new UsageError('--from is required: a date (2024-01-02, that UTC day), a date and time with a zone, or epoch milliseconds');
  const range = check(parseRange(flags.from, flags.to));
  const connections = flags.connection === undefined ? undefined : check(parseList('--connection', flags.connection));
  const brokers = flags.broker === undefined ? undefined : check(parseList('--broker', flags.broker.toLowerCase()));
  const unknown = (brokers ?? []).filter((broker) => !(DECODE_BROKERS as readonly string[]).includes(broker));
  if (unknown.length > 0) throw new UsageError(`--broker ${unknown.map((b) => JSON.stringify(b)).join(', ')} is not valid: expected one of ${DECODE_BROKERS.join(', ')}`);
  const dir = flags.historyDir ?? historyDir(configFrom(flags as Record<string, unknown>));
  const rangeText = `from ${iso(range.from)} to ${iso(range.to)}${connections ? ` of connection ${connections.join(',')}` : ''}${brokers ? ` of broker ${brokers.join(',')}` : ''}`;
  return { store: new FrameStore({ dir, readonly: true }), query: { from: range.from, to: range.to, ...(connections ? { connections } : {}), ...(brokers ? { brokers } : {}) }, rangeText };
}

/** Says each damaged day once on stderr. */
function problemReporter(io: Io): (problem: DayProblem) => void {
  const told = new Set<string>();
  return ({ day, message }) => {
    if (told.has(day)) return;
    told.add(day);
    io.err(`tickcast frames: ${message}; reading the other days\n`);
  };
}

/** "no frames …: it holds the days …", and exit 1. */
function nothingRecorded(io: Io, setExit: (code: number) => void, store: FrameStore, what: string, rangeText: string): void {
  const days = store.days().map((d) => d.day);
  const held = days.length === 0 ? 'it holds no days' : `it holds ${days.length === 1 ? 'the day' : 'the days'} ${summarizeDays(days)}`;
  io.err(`tickcast frames: no ${what} recorded ${rangeText} in ${store.dir}: ${held}\n`);
  setExit(EXIT_FAILURE);
}

function summarizeDays(days: readonly string[]): string {
  if (days.length <= 6) return days.join(', ');
  return `${days.slice(0, 3).join(', ')}, … ${days.at(-1)} (${days.length} days)`;
}

function table(rows: ConnectionSummary[]): string {
  const header = ['CONNECTION', 'BROKER', 'FEED', 'OPENED', 'IN', 'OUT', 'BYTES', 'SOCKET'];
  const cells = rows.map((r) => [r.id, r.broker, r.feed, iso(r.openedAt), String(r.framesIn), String(r.framesOut), String(r.bytes), r.socket]);
  const widths = header.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i]!.length)));
  const line = (cols: string[]): string =>
    cols.map((col, i) => (i === cols.length - 1 ? col : i >= 4 && i <= 6 ? col.padStart(widths[i]!) : col.padEnd(widths[i]!))).join('  ') + '\n';
  return line(header) + cells.map(line).join('');
}

function withRange(command: Command): Command {
  return command
    .option('--from <time>', 'start of the range: a date (2024-01-02, that whole UTC day), a date and time with a zone (2024-01-02T09:15:00+05:30) or epoch ms')
    .option('--to <time>', 'end of the range (a date includes that day; default: the end of the --from day)')
    .option('--history-dir <dir>', "the history directory holding frames-YYYY-MM-DD.db (default: TICKCAST_HISTORY_DIR, else `history` in the instance's data directory)");
}

export function registerFramesCommand(program: Command, io: Io, setExit: (code: number) => void): void {
  const frames = program.command('frames').description('Raw broker frames recorded with TICKCAST_RECORD_FRAMES: list the sockets, or decode what the brokers sent');

  addConfigFlags(
    withRange(frames.command('list').description('The broker sockets recorded in a range: id, broker, feed, open time, frames in and out, bytes'))
      .option('--connection <ids>', 'only these connections (comma-separated, as listed: zerodha.alice#1)')
      .option('--broker <brokers>', `only these brokers (${DECODE_BROKERS.join(', ')})`)
      .action((flags: FramesFlags) => {
        const { store, query, rangeText } = selection(flags);
        const rows = store.connections(query, problemReporter(io));
        if (rows.length === 0) return nothingRecorded(io, setExit, store, 'broker frames', rangeText);
        io.out(table(rows));
      }),
    FRAMES_FLAGS,
  );

  addConfigFlags(
    withRange(frames.command('decode').description("Re-run each broker's decoder on the frames it sent in a range: one JSON line per packet (or per frame the decoder rejects)"))
      .option('--connection <ids>', 'only these connections (comma-separated, as `tickcast frames list` shows them)')
      .option('--broker <brokers>', `only these brokers (${DECODE_BROKERS.join(', ')})`)
      .action((flags: FramesFlags) => {
        const { store, query, rangeText } = selection(flags);
        const onProblem = problemReporter(io);
        // One decoder per socket: Noren's merges a socket's messages per instrument, as its adapter does.
        const decoders = new Map<string, FrameDecoder>();
        let read = 0;
        for (const frame of store.read({ ...query, direction: 'in' }, onProblem)) {
          read++;
          const { connection } = frame;
          const key = `${connection.id}\u0000${connection.openedAt}`;
          let decode = decoders.get(key);
          if (!decode) {
            const broker = connection.broker as (typeof DECODE_BROKERS)[number];
            decode = DECODE_BROKERS.includes(broker) ? frameDecoder(broker) : () => ({ error: `no decoder for broker ${connection.broker}` });
            decoders.set(key, decode);
          }
          const head = `{"connection":${JSON.stringify(connection.id)},"received_at":${frame.receivedAt}`;
          const result = decode(frame.data, frame.binary);
          if ('error' in result) {
            io.out(`${head},"error":${JSON.stringify(result.error)}}\n`);
            continue;
          }
          for (const line of result.lines) io.out(`${head},"decoded":${line}}\n`);
          for (const warning of result.warnings ?? []) io.out(`${head},"skipped":${JSON.stringify(warning)}}\n`);
        }
        if (read === 0) nothingRecorded(io, setExit, store, 'frames from a broker', rangeText);
      }),
    FRAMES_FLAGS,
  );
}
