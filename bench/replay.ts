/**
 * `tickcast replay` at `--speed max`: the time to replay one stream's recorded day to a connected
 * client. The day is written with TickStore.append into a fresh instance's history store: one
 * stream (NSE:RELIANCE) with `--ticks` Quote ticks among `--streams` streams (the others
 * `--other-ticks` ticks each), interleaved over 09:15–15:30 IST. A gateway (`tickcast start
 * --feed none`) runs from dist/; each round spawns `tickcast replay --from DAY --speed max`, a
 * client (JSON) authenticates on the simulator broker and subscribes RELIANCE at Quote, and the
 * round measures, on the client, from the first tick received to the stream's last recorded tick
 * (a client that falls behind is conflated by the gateway, so the ticks received are counted), and the replay's start (spawn to registered: the range survey
 * included). Two variants: the whole day read (the replay skips the other streams' ticks), and
 * `--streams NSE:RELIANCE` (only that stream read). Median of `--rounds`.
 *
 *   npm run bench:replay -- [--rounds 3] [--ticks 20000] [--streams 500] [--other-ticks 400]
 *
 * Run `npm run build` first.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import WebSocket from 'ws';
import { DEFAULT_INSTANCE } from '../src/endpoints.js';
import { type RecordedTick, TickStore } from '../src/history/tick-store.js';
import { REPO_ROOT, TICKCAST_BIN, killSpawnedProcesses, makeTempDir, removeDir, startGatewayProcess, tickcastEnv } from '../test/helpers/cli.js';

const { values } = parseArgs({
  options: {
    rounds: { type: 'string', default: '3' },
    ticks: { type: 'string', default: '20000' },
    streams: { type: 'string', default: '500' },
    'other-ticks': { type: 'string', default: '400' },
  },
});
const ROUNDS = Number(values.rounds);
const FOCUS_TICKS = Number(values.ticks);
const STREAMS = Number(values.streams);
const OTHER_TICKS = Number(values['other-ticks']);
const DAY = '2024-01-02';
const OPEN = Date.UTC(2024, 0, 2, 3, 45);
const SESSION_MS = 6.25 * 3_600_000;
const LAST_FOCUS_AT = OPEN + Math.floor(((FOCUS_TICKS - 1) * SESSION_MS) / FOCUS_TICKS);

function quote(symbol: string, n: number, at: number): string {
  const ltp = (1000 + (n % 400) / 4).toFixed(2);
  return `{"symbol":"${symbol}","exchange":"NSE","mode":"quote","ltp":${ltp},"ltt":${at},"timestamp":${at},"volume":${1000 + n},"open":1000.0,"high":1100.0,"low":990.0,"close":1001.5,"average_price":1040.25,"buy_quantity":${5000 + n},"sell_quantity":${6000 + n}}`;
}

function writeDay(dir: string): { total: number } {
  const store = new TickStore({ dir });
  const events: Array<{ at: number; symbol: string; n: number }> = [];
  for (let n = 0; n < FOCUS_TICKS; n++) events.push({ at: OPEN + Math.floor((n * SESSION_MS) / FOCUS_TICKS), symbol: 'RELIANCE', n });
  for (let s = 1; s < STREAMS; s++) {
    for (let n = 0; n < OTHER_TICKS; n++) events.push({ at: OPEN + Math.floor(((n + s / STREAMS) * SESSION_MS) / OTHER_TICKS), symbol: `SYM${s}`, n });
  }
  events.sort((a, b) => a.at - b.at);
  let batch: RecordedTick[] = [];
  for (const e of events) {
    batch.push({ feed: 'simulator', exchange: 'NSE', symbol: e.symbol, mode: 2, receivedAt: e.at, exchangeTs: e.at, payload: quote(e.symbol, e.n, e.at) });
    if (batch.length === 10_000) {
      store.append(batch);
      batch = [];
    }
  }
  store.append(batch);
  store.close();
  return { total: events.length };
}

interface Round {
  startMs: number;
  deliverMs: number;
  received: number;
}

async function round(dataDir: string, url: string, apiKey: string, extra: readonly string[]): Promise<Round> {
  const spawnedAt = performance.now();
  const child = spawn(process.execPath, [TICKCAST_BIN, 'replay', '--from', DAY, '--speed', 'max', '--settle', '0.2', ...extra], {
    cwd: REPO_ROOT,
    env: tickcastEnv(dataDir),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
  const exited = new Promise<number | null>((resolve) => child.once('close', resolve));
  await new Promise<void>((resolve, reject) => {
    child.stdout.setEncoding('utf8').on('data', (c: string) => {
      stdout += c;
      if (/is running/.test(stdout)) resolve();
    });
    void exited.then((code) => reject(new Error(`replay exited ${code}\n${stdout}\n${stderr}`)));
  });
  const startMs = performance.now() - spawnedAt;

  const socket = new WebSocket(url);
  await new Promise((resolve, reject) => socket.once('open', resolve).once('error', reject));
  let received = 0;
  let firstAt = 0;
  let lastAt = 0;
  const done = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the last tick did not arrive within 120 s (${received} received)`)), 120_000);
    socket.on('message', (data) => {
      const m = JSON.parse(data.toString());
      if (m.type !== 'market_data') return;
      if (received === 0) firstAt = performance.now();
      received++;
      lastAt = performance.now();
      // The gateway conflates a client that falls behind (newest kept): the last tick always arrives.
      if (m.data.timestamp === LAST_FOCUS_AT) {
        clearTimeout(timer);
        resolve();
      }
    });
  });
  socket.send(JSON.stringify({ action: 'authenticate', api_key: apiKey, snapshot: false }));
  socket.send(JSON.stringify({ action: 'subscribe', symbols: [{ exchange: 'NSE', symbol: 'RELIANCE' }], mode: 2 }));
  await done;
  socket.close();
  const code = await exited;
  if (code !== 0) throw new Error(`replay exited ${code}\n${stderr}`);
  return { startMs, deliverMs: lastAt - firstAt, received };
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function main(): Promise<void> {
  const dir = makeTempDir('tickcast-bench-replay-');
  try {
    const writeStart = performance.now();
    const { total } = writeDay(join(dir, DEFAULT_INSTANCE, 'history'));
    console.log(`day written: ${total} ticks of ${STREAMS} streams (RELIANCE ${FOCUS_TICKS}) in ${Math.round(performance.now() - writeStart)} ms`);
    const gw = await startGatewayProcess({ dataDir: dir, args: ['--feed', 'none'], env: { TICKCAST_LOG_LEVEL: 'error' } });
    const variants: Array<[string, string[]]> = [
      ['whole day read', []],
      ['--streams NSE:RELIANCE', ['--streams', 'NSE:RELIANCE']],
    ];
    const results = new Map<string, Round[]>(variants.map(([name]) => [name, []]));
    for (let r = 0; r < ROUNDS; r++) {
      for (const [name, extra] of variants) {
        const result = await round(dir, gw.url, gw.devKey!, extra);
        results.get(name)!.push(result);
        console.log(`round ${r + 1} ${name}: start ${Math.round(result.startMs)} ms, first→last tick ${Math.round(result.deliverMs)} ms, ${result.received} of ${FOCUS_TICKS} ticks received (the rest conflated)`);
      }
    }
    console.log(`\n| variant | replay start (survey + registration) ms | first→last tick ms | ticks received of ${FOCUS_TICKS} | recorded ticks/s |\n|---|---|---|---|---|`);
    for (const [name, rounds] of results) {
      const deliver = median(rounds.map((x) => x.deliverMs));
      console.log(`| ${name} | ${Math.round(median(rounds.map((x) => x.startMs)))} | ${Math.round(deliver)} | ${median(rounds.map((x) => x.received))} | ${Math.round(FOCUS_TICKS / (deliver / 1000)).toLocaleString('en-US')} |`);
    }
    await gw.stop();
  } finally {
    await killSpawnedProcesses();
    removeDir(dir);
  }
}

await main();
