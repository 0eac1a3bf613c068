/**
 * `client.history()` against a recording gateway: after the SDK client subscribed and live ticks
 * were recorded, it reads back exactly what the store holds for the client's feed and stream, in
 * order (every mode, one mode, ISO times), a limit cuts the answer and says so, and a wrong key
 * is the gateway's AUTHENTICATION_ERROR.
 */
import fs from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type HistoryTick, type MarketData, type QuoteTick, TickcastClient } from '../../src/client/index.js';
import { type RecordedTick, TickStore } from '../../src/history/tick-store.js';
import type { Mode } from '../../src/protocol/modes.js';
import { sleep, waitFor } from '../helpers/client.js';
import { type TestInstance, startTestInstance } from '../helpers/instance.js';

/** The store's ticks of the simulator feed's NSE:RELIANCE, as history() should yield them. */
function stored(dir: string, from: number, to: number, modes?: Mode[]): HistoryTick[] {
  const store = new TickStore({ dir, readonly: true });
  try {
    const ticks: RecordedTick[] = [...store.read({ from, to, streams: [{ feed: 'simulator', exchange: 'NSE', symbol: 'RELIANCE' }], ...(modes ? { modes } : {}) })];
    return ticks.map((t) => ({ exchange: t.exchange, symbol: t.symbol, mode: t.mode, data: JSON.parse(t.payload), receivedAt: t.receivedAt, exchangeTs: t.exchangeTs }));
  } finally {
    store.close();
  }
}

async function collect<T>(iterable: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of iterable) out.push(item);
  return out;
}

describe('client.history() on a recording gateway', () => {
  let dir: string;
  let gw: TestInstance;
  let client: TickcastClient;
  let started: number;
  let settled: number;

  beforeAll(async () => {
    dir = fs.mkdtempSync(join(tmpdir(), 'tickcast-client-history-'));
    gw = await startTestInstance({ TICKCAST_RECORD: 'all', TICKCAST_HISTORY_DIR: dir, TICKCAST_SIM_RATE: '200' });
    client = new TickcastClient({ url: gw.url, apiKey: await gw.createKey('trader'), reconnect: false });
    started = Date.now() - 1000;
    await client.connect();
    const live: Array<MarketData<QuoteTick>> = [];
    const handle = client.subscribe('NSE:RELIANCE', 'quote', (message) => void live.push(message));
    expect((await handle.ready)[0]!.ok).toBe(true);
    await waitFor(() => live.length >= 100, 15_000);
    settled = Date.now();
    // The recorder writes a batch at most about 200 ms after its first tick: all before `settled` is on disk after this.
    await sleep(1500);
  });
  afterAll(async () => {
    await client?.close();
    await gw?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it("yields exactly the store's ticks of the client's feed and stream, in order", async () => {
    const expected = stored(dir, started, settled);
    expect(expected.length).toBeGreaterThanOrEqual(100);
    const answer = client.history({ exchange: 'NSE', symbol: 'RELIANCE', from: started, to: settled });
    const ticks = await collect(answer);
    expect(ticks.length).toBe(expected.length);
    expect(ticks).toEqual(expected);
    expect(answer.summary).toEqual({ count: expected.length, truncated: false, limit: expect.any(Number), damagedDays: [], feed: 'simulator' });
  });

  it('one mode, with Date and ISO times', async () => {
    const expected = stored(dir, started, settled, [2]);
    expect(expected.length).toBeGreaterThan(0);
    const ticks = await collect(client.history({ exchange: 'NSE', symbol: 'RELIANCE', from: new Date(started), to: new Date(settled).toISOString(), mode: 'quote' }));
    expect(ticks).toEqual(expected);
    expect(ticks.every((t) => t.mode === 2 && typeof t.data.ltp === 'number')).toBe(true);
  });

  it('a limit cuts the answer and the summary says so', async () => {
    const expected = stored(dir, started, settled).slice(0, 7);
    const answer = client.history({ exchange: 'NSE', symbol: 'RELIANCE', from: started, to: settled, limit: 7 });
    expect(await collect(answer)).toEqual(expected);
    expect(answer.summary).toMatchObject({ count: 7, truncated: true, limit: 7 });
  });

  it("a wrong key is the gateway's AUTHENTICATION_ERROR", async () => {
    const other = new TickcastClient({ url: gw.url, apiKey: 'not-a-key', reconnect: false });
    await expect(collect(other.history({ exchange: 'NSE', symbol: 'RELIANCE', from: started, to: settled }))).rejects.toMatchObject({ code: 'AUTHENTICATION_ERROR' });
  });
});
