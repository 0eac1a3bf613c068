/**
 * What recording raw broker frames costs the event loop (docs/history.md, "Raw broker frames"):
 * the broker session's frame path with recording off (one check of an absent recording) and on
 * (FrameRecorder.take: the frame copied into the batch being built), over `--frames` frames of
 * `--bytes` bytes, with a stand-in writer that acknowledges each batch at once, so only the
 * event loop's share is timed (the writer thread's is its own). Median ns per frame of `--rounds`.
 *
 *   npm run bench:frame-recording -- [--rounds 7] [--frames 2000000] [--bytes 184]
 */
import { parseArgs } from 'node:util';
import type { FrameConnection } from '../src/adapters/session/frame-sink.js';
import { FrameRecorder, type FrameWriterPort } from '../src/history/frame-recorder.js';
import type { FrameWriterReply, FrameWriterRequest } from '../src/history/frame-writer.js';
import { silentLogger } from '../src/observability/logger.js';

const { values } = parseArgs({ options: { rounds: { type: 'string', default: '7' }, frames: { type: 'string', default: '2000000' }, bytes: { type: 'string', default: '184' } } });
const ROUNDS = Number(values.rounds);
const FRAMES = Number(values.frames);
const frame = Buffer.alloc(Number(values.bytes), 7);

/** A writer that answers every batch as written, on the next turn (as a thread's reply would come). */
function standInWriter(): FrameWriterPort {
  const listeners: Array<(reply: FrameWriterReply) => void> = [];
  return {
    postMessage(request: FrameWriterRequest) {
      const reply: FrameWriterReply | undefined =
        request.type === 'batch'
          ? { type: 'written', id: request.batch.id, frames: request.batch.count, bytes: request.batch.bytes }
          : request.type === 'size'
            ? { type: 'size', bytes: 0, days: 0 }
            : request.type === 'close'
              ? { type: 'closed' }
              : { type: 'pruned', days: [] };
      setImmediate(() => listeners.forEach((listener) => listener(reply)));
    },
    on(event: string, listener: never) {
      if (event === 'message') listeners.push(listener);
    },
    terminate: async () => 0,
  } as FrameWriterPort;
}

/** The session's frame path: the recording checked, and the frame handed to it when there is one. */
async function run(recording: FrameConnection | undefined): Promise<number> {
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < FRAMES; i++) {
    if (recording !== undefined) recording.frame(false, true, frame);
    // The writer's replies come between event-loop turns, as the session's frames do.
    if ((i & 4095) === 0) await new Promise((resolve) => setImmediate(resolve));
  }
  return Number(process.hrtime.bigint() - t0) / FRAMES;
}

const median = (values: number[]): number => [...values].sort((a, b) => a - b)[values.length >> 1]!;
const off: number[] = [];
const on: number[] = [];
for (let round = 0; round < ROUNDS; round++) {
  const recorder = new FrameRecorder({ brokers: 'all', dir: '', clock: { now: () => Date.now() }, logger: silentLogger(), maxAgeMs: 0, maxBytes: 0, startWriter: standInWriter });
  const connection = recorder.open('zerodha', 'zerodha.bench', 'ticker')!;
  off.push(await run(undefined));
  on.push(await run(connection));
  const { shed } = recorder.snapshot();
  if (shed > 0) throw new Error(`${shed} frames shed: the stand-in writer fell behind, the figure would not be the recording's`);
  await recorder.close();
}
console.log(`frame path, ${FRAMES.toLocaleString('en')} frames of ${frame.length} B, median of ${ROUNDS} (node ${process.version}):`);
console.log(`| recording | ns per frame |\n|---|---|\n| off | ${median(off).toFixed(1)} |\n| on | ${median(on).toFixed(1)} |`);
