/**
 * Recovery after reconnect against a real gateway (simulator ticking fast): a client that
 * negotiated seq reconnects, subscribes with since and the epoch, and gets exactly the messages
 * it missed, in order, marked recovered, then a `recovered` message, then live ones — no
 * duplicate, no hole — or a `gap` saying why not (history, epoch, ahead). The SDK client does it
 * by itself; with --workers 2 a reconnecting client recovers or is told `epoch`, never a hole.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type ClientEvents, type MarketData, TickcastClient } from '../../src/client/index.js';
import { killSpawnedProcesses, makeTempDir, removeDir, startGatewayProcess } from '../helpers/cli.js';
import { type Message, TestClient, sleep, waitUntil } from '../helpers/client.js';
import { type TestInstance, startTestInstance } from '../helpers/instance.js';

/** Hang catcher only. */
const WAIT_MS = 15_000;
const SYMBOL = 'RELIANCE';

interface SeqClient {
  client: TestClient;
  /** Every message, in arrival order. */
  all: Message[];
  epoch: string | undefined;
}

async function seqClient(url: string, key: string, auth: Record<string, unknown> = { seq: true, snapshot: false }): Promise<SeqClient> {
  const client = await TestClient.connect(url);
  const all: Message[] = [];
  client.socket.on('message', (data) => all.push(JSON.parse(data.toString()) as Message));
  const reply = await client.request({ action: 'authenticate', api_key: key, ...auth });
  if (reply.status !== 'success') throw new Error(`auth failed: ${JSON.stringify(reply)}`);
  return { client, all, epoch: reply.seq_epoch as string | undefined };
}

const dataAt = (all: Message[], mode: number): Message[] => all.filter((m) => m.type === 'market_data' && m.symbol === SYMBOL && m.mode === mode);
const lastSeq = (all: Message[], mode: number): number => dataAt(all, mode).at(-1)!.seq as number;

async function subscribe(c: SeqClient, mode: number, extra: { since?: number; epoch?: string } = {}): Promise<Message> {
  const item: Record<string, unknown> = { exchange: 'NSE', symbol: SYMBOL };
  if (extra.since !== undefined) item.since = extra.since;
  c.client.send({ action: 'subscribe', symbols: [item], mode, ...(extra.epoch !== undefined ? { epoch: extra.epoch } : {}) });
  return c.client.next((m) => m.type === 'subscribe' || m.status === 'error');
}

/**
 * What a client got of `mode` after recovering from `since`: the seqs in order, each recovered
 * one before the `recovered` message and each live one after it.
 */
function checkRecovery(all: Message[], mode: number, since: number): { recovered: Message; count: number } {
  const recovered = all.find((m) => m.type === 'recovered' && m.mode === mode)!;
  expect(recovered).toMatchObject({ symbol: SYMBOL, exchange: 'NSE', from: since + 1 });
  const at = all.indexOf(recovered);
  const before = dataAt(all.slice(0, at), mode);
  const after = dataAt(all.slice(at + 1), mode);
  expect(before.every((m) => m.recovered === true)).toBe(true);
  expect(after.every((m) => m.recovered === undefined)).toBe(true);
  const seqs = [...before, ...after].map((m) => m.seq as number);
  // Exactly since+1, since+2, …: no duplicate, no hole, between recovery and live either.
  expect(seqs).toEqual(seqs.map((_, i) => since + 1 + i));
  expect(recovered.to).toBe(since + before.length);
  expect(recovered.count).toBe(before.length);
  return { recovered, count: before.length };
}

describe('recovery after reconnect (one gateway)', () => {
  let gw: TestInstance;
  let key: string;
  let keeper: TestClient;
  const open: TestClient[] = [];
  const track = <T extends SeqClient>(c: T): T => (open.push(c.client), c);

  beforeAll(async () => {
    gw = await startTestInstance({ TICKCAST_SIM_RATE: '200' });
    key = await gw.createKey('recovery');
    // Holds the stream while the clients are away, so it keeps ticking.
    keeper = await TestClient.authenticated(gw.url, key);
    await keeper.request({ action: 'subscribe', symbols: [{ exchange: 'NSE', symbol: SYMBOL }], mode: 3 });
    await keeper.marketData(SYMBOL);
  });
  afterEach(async () => {
    for (const client of open.splice(0)) if (client.socket.readyState === client.socket.OPEN) await client.close();
  });
  afterAll(async () => {
    await keeper.close();
    await gw.stop();
  });

  it('resends exactly what was missed at each mode, marked recovered, then live ones with no duplicate and no hole', async () => {
    const first = track(await seqClient(gw.url, key));
    expect(first.epoch).toMatch(/^[0-9a-f]{16}$/);
    await subscribe(first, 2);
    await subscribe(first, 1);
    await waitUntil(() => dataAt(first.all, 1).length >= 5 && dataAt(first.all, 2).length >= 5, 'ticks', WAIT_MS);
    await first.client.close();
    const since = { 1: lastSeq(first.all, 1), 2: lastSeq(first.all, 2) };
    await sleep(1000);

    const again = track(await seqClient(gw.url, key));
    expect(again.epoch).toBe(first.epoch);
    expect(await subscribe(again, 2, { since: since[2], epoch: first.epoch! })).toMatchObject({ type: 'subscribe', status: 'success' });
    expect(await subscribe(again, 1, { since: since[1], epoch: first.epoch! })).toMatchObject({ type: 'subscribe', status: 'success' });
    await waitUntil(() => again.all.filter((m) => m.type === 'recovered').length === 2, 'both recovered messages', WAIT_MS);
    const recoveredAt = again.all.length;
    // Live ticks keep coming after the recovery.
    await waitUntil(() => dataAt(again.all.slice(recoveredAt), 1).length >= 20 && dataAt(again.all.slice(recoveredAt), 2).length >= 20, 'live ticks', WAIT_MS);
    for (const mode of [1, 2] as const) {
      const { count } = checkRecovery(again.all, mode, since[mode]);
      // A second of a fast simulator was missed: there was plenty to resend.
      expect(count).toBeGreaterThan(20);
    }
    // No snapshot for a stream asked with since.
    expect(again.all.find((m) => m.type === 'market_data')!.recovered).toBe(true);
    const metrics = await (await fetch(`${gw.url.replace('ws://', 'http://')}/metrics`)).text();
    expect(Number(/^tickcast_recoveries_total (\d+)$/m.exec(metrics)?.[1])).toBeGreaterThanOrEqual(2);
    expect(Number(/^tickcast_recovered_messages_total (\d+)$/m.exec(metrics)?.[1])).toBeGreaterThan(40);
  });

  it('says epoch for another epoch, ahead for a seq beyond the last, and refuses since without seq', async () => {
    const c = track(await seqClient(gw.url, key));
    await subscribe(c, 1, { since: 1, epoch: 'not-this-one' });
    const gap = (await c.client.next((m) => m.type === 'gap', WAIT_MS)) as Message;
    expect(gap).toMatchObject({ type: 'gap', symbol: SYMBOL, exchange: 'NSE', mode: 1, since: 1, reason: 'epoch' });
    expect(gap.message).toMatch(/restarted, or this connection reached another worker or node/);
    // Live messages follow, numbered from `next`.
    const live = await c.client.marketData(SYMBOL);
    expect(live.seq).toBeGreaterThanOrEqual(gap.next);

    const ahead = track(await seqClient(gw.url, key));
    await subscribe(ahead, 2, { since: 1e12, epoch: ahead.epoch! });
    expect(await ahead.client.next((m) => m.type === 'gap', WAIT_MS)).toMatchObject({ reason: 'ahead', since: 1e12 });

    const noSeq = track(await seqClient(gw.url, key, { snapshot: false }));
    expect(noSeq.epoch).toBeUndefined();
    const reply = await subscribe(noSeq, 1, { since: 3, epoch: c.epoch! });
    expect(reply).toMatchObject({ status: 'partial', subscriptions: [{ status: 'error', message: 'since needs seq: authenticate with "seq": true, or subscribe without since' }] });

    const bad = track(await seqClient(gw.url, key));
    expect(await subscribe(bad, 1, { since: -1, epoch: bad.epoch! })).toMatchObject({ status: 'partial', subscriptions: [{ status: 'error' }] });
    expect(await bad.client.request({ action: 'subscribe', symbols: [{ exchange: 'NSE', symbol: SYMBOL, since: 1 }], mode: 1, epoch: 5 })).toMatchObject({ status: 'error', code: 'INVALID_PARAMETERS' });
  });

  it('the SDK client recovers by itself after its connection drops: it ends up with every seq', async () => {
    const c = new TickcastClient({ url: gw.url, apiKey: key, snapshot: false, reconnect: { initialDelayMs: 1000, maxDelayMs: 1000, jitter: 0 } });
    try {
      const ticks: MarketData[] = [];
      const gaps: Array<ClientEvents['gap']> = [];
      const recovered: Array<ClientEvents['recovered']> = [];
      c.on('gap', (g) => gaps.push(g));
      c.on('recovered', (r) => recovered.push(r));
      await c.connect();
      c.subscribe(`NSE:${SYMBOL}`, 'quote', (m) => void ticks.push(m));
      await waitUntil(() => ticks.length >= 10, 'ticks', WAIT_MS);
      const reconnected = new Promise<void>((resolve) => c.once('connected', () => resolve()));
      const mine = [...gw.gateway.listener.sessions].filter((s) => s.extensions.batch);
      expect(mine).toHaveLength(1);
      mine[0]!.socket.terminate();
      await reconnected;
      await waitUntil(() => recovered.length === 1, 'the recovered event', WAIT_MS);
      const upTo = ticks.length;
      await waitUntil(() => ticks.length >= upTo + 20, 'live ticks', WAIT_MS);
      expect(gaps).toEqual([]);
      const seqs = ticks.map((t) => t.seq!);
      expect(seqs).toEqual(seqs.map((_, i) => seqs[0]! + i));
      expect(recovered[0]).toMatchObject({ stream: `NSE:${SYMBOL}`, mode: 2 });
      expect(recovered[0]!.count).toBeGreaterThan(0);
      expect(ticks.filter((t) => t.recovered).length).toBe(recovered[0]!.count);
    } finally {
      await c.close();
    }
  });
});

describe('recovery after reconnect: ticks flowing fast during the subscribe', () => {
  it('at 2000 ticks/s, round after round, every seq exactly once across recovery and live', async () => {
    const gw = await startTestInstance({ TICKCAST_SIM_RATE: '2000' });
    try {
      const key = await gw.createKey('fast');
      const keeper = await TestClient.authenticated(gw.url, key);
      await keeper.request({ action: 'subscribe', symbols: [{ exchange: 'NSE', symbol: SYMBOL }], mode: 3 });
      for (let round = 0; round < 5; round++) {
        const first = await seqClient(gw.url, key);
        await subscribe(first, 1);
        await waitUntil(() => dataAt(first.all, 1).length >= 10, 'ticks', WAIT_MS);
        await first.client.close();
        const since = lastSeq(first.all, 1);
        await sleep(100 + round * 50);
        const again = await seqClient(gw.url, key);
        await subscribe(again, 1, { since, epoch: first.epoch! });
        await waitUntil(() => again.all.some((m) => m.type === 'recovered'), 'the recovered message', WAIT_MS);
        const at = again.all.findIndex((m) => m.type === 'recovered');
        await waitUntil(() => dataAt(again.all.slice(at), 1).length >= 50, 'live ticks', WAIT_MS);
        const { count } = checkRecovery(again.all, 1, since);
        expect(count).toBeGreaterThan(0);
        await again.client.close();
      }
      await keeper.close();
    } finally {
      await gw.stop();
    }
  });
});

describe('recovery after reconnect: a short ring', () => {
  it('TICKCAST_RECOVERY_TICKS=5 and a longer absence: gap with reason history, then live', async () => {
    const gw = await startTestInstance({ TICKCAST_SIM_RATE: '200', TICKCAST_RECOVERY_TICKS: '5' });
    try {
      const key = await gw.createKey('short');
      const keeper = await TestClient.authenticated(gw.url, key);
      await keeper.request({ action: 'subscribe', symbols: [{ exchange: 'NSE', symbol: SYMBOL }], mode: 2 });
      const first = await seqClient(gw.url, key);
      await subscribe(first, 2);
      await waitUntil(() => dataAt(first.all, 2).length >= 3, 'ticks', WAIT_MS);
      await first.client.close();
      const since = lastSeq(first.all, 2);
      await sleep(1500);
      const again = await seqClient(gw.url, key);
      await subscribe(again, 2, { since, epoch: first.epoch! });
      const gap = await again.client.next((m) => m.type === 'gap', WAIT_MS);
      expect(gap).toMatchObject({ symbol: SYMBOL, mode: 2, since, reason: 'history' });
      expect(gap.oldest).toBeGreaterThan(since + 1);
      expect(gap.message).toContain(`held from seq ${gap.oldest}`);
      await waitUntil(() => dataAt(again.all, 2).length >= 5, 'live ticks', WAIT_MS);
      const seqs = dataAt(again.all, 2).map((m) => m.seq as number);
      expect(seqs[0]).toBe(gap.next);
      expect(seqs).toEqual(seqs.map((_, i) => gap.next + i));
      await again.client.close();
      await keeper.close();
    } finally {
      await gw.stop();
    }
  });
});

describe('recovery after reconnect with --workers 2', () => {
  const dirs: string[] = [];
  afterEach(async () => {
    await killSpawnedProcesses();
    for (const dir of dirs.splice(0)) removeDir(dir);
  });

  it('a reconnecting client recovers every seq or is told epoch: never a silent hole', async () => {
    const dir = makeTempDir();
    dirs.push(dir);
    const gateway = await startGatewayProcess({ dataDir: dir, args: ['--workers', '2', '--sim-rate', '100'] });
    const key = gateway.devKey!;
    // Keepers on both workers (connections spread over them) hold the stream while clients are away.
    const keepers: TestClient[] = [];
    for (let i = 0; i < 4; i++) {
      const keeper = await TestClient.authenticated(gateway.url, key);
      await keeper.request({ action: 'subscribe', symbols: [{ exchange: 'NSE', symbol: SYMBOL }], mode: 2 });
      keepers.push(keeper);
    }
    const outcomes: string[] = [];
    for (let round = 0; round < 6; round++) {
      const first = await seqClient(gateway.url, key);
      await subscribe(first, 2);
      await waitUntil(() => dataAt(first.all, 2).length >= 3, 'ticks', WAIT_MS);
      await first.client.close();
      const since = lastSeq(first.all, 2);
      await sleep(300);
      const again = await seqClient(gateway.url, key);
      await subscribe(again, 2, { since, epoch: first.epoch! });
      const answer = await again.client.next((m) => m.type === 'recovered' || m.type === 'gap', WAIT_MS);
      const at = again.all.findIndex((m) => m.type === answer.type);
      await waitUntil(() => dataAt(again.all.slice(at), 2).length >= 3, 'live ticks', WAIT_MS);
      if (answer.type === 'recovered') {
        expect(again.epoch).toBe(first.epoch);
        checkRecovery(again.all, 2, since);
        outcomes.push('recovered');
      } else {
        expect(answer).toMatchObject({ reason: 'epoch', since });
        expect(again.epoch).not.toBe(first.epoch);
        const seqs = dataAt(again.all.slice(at), 2).map((m) => m.seq as number);
        expect(seqs).toEqual(seqs.map((_, i) => answer.next + i));
        outcomes.push('epoch');
      }
      await again.client.close();
    }
    expect(outcomes).toHaveLength(6);
    for (const keeper of keepers) await keeper.close();
  });
});
