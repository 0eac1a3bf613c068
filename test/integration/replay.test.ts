/**
 * `tickcast replay` end to end: a history store filled directly (TickStore.append), a gateway
 * (`tickcast start --feed none`), the replay as an out-of-process adapter, and a client of a
 * simulated broker receiving exactly the recorded ticks of the streams it subscribed, in order,
 * in every mode it asked for — the same on a second run; at `--speed 100` too (order and
 * completeness only); and the errors: an empty range, a damaged day, bad usage, a broker taken.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_INSTANCE } from '../../src/endpoints.js';
import { type RecordedTick, TickStore } from '../../src/history/tick-store.js';
import { type GatewayProcess, type ReplayProcess, killSpawnedProcesses, makeTempDir, removeDir, runCli, startGatewayProcess, startReplayProcess } from '../helpers/cli.js';
import { type Message, TestClient, waitUntil } from '../helpers/client.js';

const WAIT_MS = 20_000;
const DAY = '2024-01-02';
const T0 = Date.UTC(2024, 0, 2, 3, 45);

/** Kite-shaped payloads of a tick at its recorded mode. */
function payloadOf(symbol: string, n: number, mode: 1 | 2 | 3): string {
  const ltp = (1400 + n / 4).toFixed(2);
  const head = `{"symbol":"${symbol}","exchange":"NSE","mode":"${['ltp', 'quote', 'full'][mode - 1]}","ltp":${ltp},"ltt":${T0 + n},"timestamp":${T0 + n}`;
  if (mode === 1) return `${head}}`;
  const quote = `,"volume":${1000 + n},"open":1400.0,"high":1415.0,"low":1395.0,"close":1398.0`;
  if (mode === 2) return `${head}${quote}}`;
  return `${head}${quote},"depth":{"buy":[{"price":1399.95,"quantity":${n + 1},"orders":1}],"sell":[{"price":1400.05,"quantity":5,"orders":2}]}}`;
}

/** 2 s of one day: RELIANCE at Depth, INFY at Quote, TCS at LTP, interleaved. */
function recording(): RecordedTick[] {
  const ticks: RecordedTick[] = [];
  for (let n = 0; n < 90; n++) {
    const [symbol, mode] = ([['RELIANCE', 3], ['INFY', 2], ['TCS', 1]] as const)[n % 3]!;
    ticks.push({ feed: 'simulator', exchange: 'NSE', symbol, mode, receivedAt: T0 + Math.round((n * 2000) / 89), exchangeTs: T0 + n, payload: payloadOf(symbol, n, mode) });
  }
  return ticks;
}

/** Spawns `tickcast replay <args>`; `ready` once it has registered with the gateway. */
const startReplay = (dataDir: string, args: readonly string[]): ReplayProcess => startReplayProcess(dataDir, args, { killAfterMs: WAIT_MS });

/** A client holding RELIANCE at LTP, Quote and Depth and INFY at LTP and Quote (as OpenAlgo's SDK subscribes: one request per mode). */
async function subscribedClient(gw: GatewayProcess): Promise<TestClient> {
  const client = await TestClient.connect(gw.url);
  expect(await client.request({ action: 'authenticate', api_key: gw.devKey, snapshot: false })).toMatchObject({ status: 'success' });
  for (const mode of [1, 2, 3]) {
    expect(await client.request({ action: 'subscribe', symbols: [{ exchange: 'NSE', symbol: 'RELIANCE' }], mode })).toMatchObject({ status: 'success' });
  }
  for (const mode of [1, 2]) {
    expect(await client.request({ action: 'subscribe', symbols: [{ exchange: 'NSE', symbol: 'INFY' }], mode })).toMatchObject({ status: 'success' });
  }
  return client;
}

const finished = (m: Message): boolean => m.type === 'feed_status' && m.status === 'down' && /^replay finished/.test(m.message ?? '');

/** What the client got: (symbol, mode, data) of every market_data message, in arrival order. */
const received = (client: TestClient): Array<{ symbol: string; mode: number; data: Record<string, unknown> }> =>
  client.messages.filter((m) => m.type === 'market_data').map((m) => ({ symbol: m.symbol, mode: m.mode, data: m.data }));

/** Replays the day to a subscribed client and returns what it received and the replay's output. */
async function replayToClient(gw: GatewayProcess, dataDir: string, args: readonly string[]) {
  const replay = startReplay(dataDir, ['--from', DAY, ...args]);
  await replay.ready;
  const client = await subscribedClient(gw);
  const status = await client.next(finished, WAIT_MS);
  const exit = await replay.exited;
  await client.close();
  return { messages: received(client), status, exit };
}

/** The recorded ticks of the subscribed streams, per mode the client holds. */
function expectExactly(messages: ReturnType<typeof received>, ticks: readonly RecordedTick[]): void {
  const of = (symbol: string, mode: number) => messages.filter((m) => m.symbol === symbol && m.mode === mode).map((m) => m.data);
  const recorded = (symbol: string) => ticks.filter((t) => t.symbol === symbol).map((t) => JSON.parse(t.payload));
  // At the recorded mode the payload is delivered as recorded.
  expect(of('RELIANCE', 3)).toEqual(recorded('RELIANCE'));
  expect(of('INFY', 2)).toEqual(recorded('INFY'));
  // Lower modes are made from the same ticks: one message per tick, same prices, same order.
  for (const mode of [1, 2]) expect(of('RELIANCE', mode).map((d) => [d.ltp, d.timestamp])).toEqual(recorded('RELIANCE').map((d) => [d.ltp, d.timestamp]));
  expect(of('INFY', 1).map((d) => [d.ltp, d.timestamp])).toEqual(recorded('INFY').map((d) => [d.ltp, d.timestamp]));
  expect(of('RELIANCE', 2).every((d) => !('depth' in d) && 'volume' in d)).toBe(true);
  // Streams not subscribed are not replayed.
  expect(messages.filter((m) => m.symbol === 'TCS')).toEqual([]);
  // Across streams, in recorded order.
  const depthAndQuote = messages.filter((m) => (m.symbol === 'RELIANCE' && m.mode === 3) || (m.symbol === 'INFY' && m.mode === 2)).map((m) => m.data.timestamp);
  expect(depthAndQuote).toEqual(ticks.filter((t) => t.symbol !== 'TCS').map((t) => JSON.parse(t.payload).timestamp));
}

describe('tickcast replay', () => {
  let dir: string;
  let gw: GatewayProcess;
  const ticks = recording();

  beforeAll(async () => {
    dir = makeTempDir('tickcast-replay-');
    const store = new TickStore({ dir: join(dir, DEFAULT_INSTANCE, 'history') });
    store.append(ticks.slice(0, 40));
    store.append(ticks.slice(40));
    store.close();
    gw = await startGatewayProcess({ dataDir: dir, args: ['--feed', 'none'] });
  });

  afterAll(async () => {
    await killSpawnedProcesses();
    removeDir(dir);
  });

  it('a client on a simulated broker receives exactly the recorded ticks it subscribed, in order, in every mode; a second run the same', async () => {
    const first = await replayToClient(gw, dir, ['--speed', 'max']);
    expect(first.exit.code, first.exit.stderr).toBe(0);
    expect(first.status).toMatchObject({ feed: 'replay', broker: 'simulator' });
    expect(first.status.message).toBe('replay finished: 60 ticks from 2024-01-02T03:45:00.000Z to 2024-01-02T03:45:02.000Z (90 ticks read; the rest were of streams no client had subscribed)');
    expect(first.exit.stdout).toMatch(/replay finished: 60 ticks/);
    expectExactly(first.messages, ticks);

    const second = await replayToClient(gw, dir, ['--speed', 'max']);
    expect(second.exit.code, second.exit.stderr).toBe(0);
    expect(second.messages).toEqual(first.messages);
  });

  it('at --speed 100 delivers the same, and a damaged day is reported while the others play', async () => {
    writeFileSync(join(dir, DEFAULT_INSTANCE, 'history', 'ticks-2024-01-03.db'), 'not a database, only some bytes '.repeat(200));
    const run = await replayToClient(gw, dir, ['--to', '2024-01-03', '--speed', '100']);
    expect(run.exit.code, run.exit.stderr).toBe(0);
    expectExactly(run.messages, ticks);
    expect(run.exit.stderr).toMatch(/tickcast: replay: the history of 2024-01-03 cannot be (opened|read): .*; replaying the other days/);
    expect(run.status.message).toMatch(/^replay finished: 60 ticks .*; skipped: 2024-01-03 \(the history of 2024-01-03 cannot be/);
  });

  it('an empty range exits 1 naming the range and the days the store holds', async () => {
    const result = await runCli(['replay', '--from', '2024-03-01T09:15:00+05:30', '--to', '2024-03-01T15:30:00+05:30'], { dataDir: dir });
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/no ticks recorded from 2024-03-01T03:45:00.000Z to 2024-03-01T10:00:00.000Z in the history store .*: it holds the days 2024-01-02, 2024-01-03/);
    const onlyUnknown = await runCli(['replay', '--from', DAY, '--streams', 'NSE:NOPE'], { dataDir: dir });
    expect(onlyUnknown.code).toBe(1);
    expect(onlyUnknown.stderr).toMatch(/no ticks recorded from 2024-01-02T00:00:00.000Z to 2024-01-03T00:00:00.000Z for NSE:NOPE/);
  });

  it('bad usage exits 2 with the reason', async () => {
    const cases: Array<[string[], RegExp]> = [
      [['--from', '2024-01-03', '--to', '2024-01-02T00:00:00Z'], /--from 2024-01-03 .* is not before --to/],
      [['--from', DAY, '--speed', '0'], /--speed "0" is not valid/],
      [['--from', 'last tuesday'], /--from "last tuesday" is not a time/],
      [['--from', '2024-01-02T09:15'], /has no time zone/],
      [['--from', DAY, '--brokers', 'zerodha'], /zerodha: is a real broker/],
      [['--from', DAY, '--streams', 'RELIANCE'], /--streams "RELIANCE" is not EXCHANGE:SYMBOL/],
      [['--from', DAY, '--max-gap', '-5'], /--max-gap "-5" is not valid: expected seconds of recorded time/],
    ];
    for (const [args, message] of cases) {
      const result = await runCli(['replay', ...args], { dataDir: dir });
      expect(result.code, args.join(' ')).toBe(2);
      expect(result.stderr, args.join(' ')).toMatch(message);
    }
  });

  it('is refused, exit 1, by a gateway whose own simulator serves the same brokers', async () => {
    const other = makeTempDir('tickcast-replay-');
    try {
      const store = new TickStore({ dir: join(other, DEFAULT_INSTANCE, 'history') });
      store.append(ticks);
      store.close();
      const simulated = await startGatewayProcess({ dataDir: other });
      const result = await runCli(['replay', '--from', DAY, '--wait', '10'], { dataDir: other });
      expect(result.code).toBe(1);
      expect(result.stderr).toMatch(/refused adapter "replay": broker "simulator" is already served by feed "simulator"; run the gateway with --feed none/);
      await simulated.stop();
    } finally {
      removeDir(other);
    }
  });
});
