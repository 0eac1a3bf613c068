/**
 * tickcast's opt-in wire extensions over real WebSockets: MessagePack, batched frames, sequence
 * numbers, and snapshots on subscribe (docs/protocol.md).
 */
import { unpack } from 'msgpackr';
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ZmqPublisher } from '../../src/bus/zeromq.js';
import { TestClient, sleep, waitFor } from '../helpers/client.js';
import { type TestInstance, startTestInstance } from '../helpers/instance.js';

let gw: TestInstance;
let key: string;

beforeAll(async () => {
  gw = await startTestInstance({ TICKCAST_SIM_RATE: '50' });
  key = await gw.createKey('ext');
});
afterAll(() => gw.stop());

/** A raw client keeping every frame as it came (text or binary). */
async function rawClient(): Promise<{ ws: WebSocket; frames: Array<{ data: Buffer; binary: boolean }> }> {
  const ws = new WebSocket(gw.url);
  const frames: Array<{ data: Buffer; binary: boolean }> = [];
  ws.on('message', (data, binary) => frames.push({ data: data as Buffer, binary }));
  await new Promise((resolve) => ws.once('open', resolve));
  return { ws, frames };
}

describe('extensions', () => {
  it('MessagePack: the auth reply stays JSON, everything after is binary MessagePack', async () => {
    const { ws, frames } = await rawClient();
    ws.send(JSON.stringify({ action: 'authenticate', api_key: key, encoding: 'msgpack' }));
    await waitFor(() => frames.length >= 1);
    expect(frames[0]!.binary).toBe(false);
    expect(JSON.parse(frames[0]!.data.toString())).toMatchObject({ type: 'auth', status: 'success', encoding: 'msgpack', batch: false, seq: false, snapshot: true });

    ws.send(JSON.stringify({ action: 'subscribe', symbols: [{ symbol: 'TCS', exchange: 'NSE' }], mode: 2 }));
    await waitFor(() => frames.some((f) => f.binary && unpack(f.data).type === 'market_data'));
    const messages = frames.slice(1).map((f) => {
      expect(f.binary).toBe(true);
      return unpack(f.data);
    });
    expect(messages[0]).toMatchObject({ type: 'subscribe', status: 'success' });
    const tick = messages.find((m) => m.type === 'market_data');
    expect(tick).toMatchObject({ symbol: 'TCS', exchange: 'NSE', mode: 2, broker: 'simulator' });
    expect(typeof tick.data.ltp).toBe('number');
    expect(typeof tick.data.open).toBe('number');
    ws.close();
  });

  it('batch + seq: market data arrives as arrays, each stream numbered without gaps for a reader that keeps up', async () => {
    const { ws, frames } = await rawClient();
    ws.send(JSON.stringify({ action: 'authenticate', api_key: key, batch: true, seq: true, snapshot: false }));
    await waitFor(() => frames.length >= 1);
    ws.send(JSON.stringify({ action: 'subscribe', symbols: ['INFY', 'SBIN', 'ITC'].map((symbol) => ({ symbol, exchange: 'NSE' })), mode: 1 }));
    await waitFor(() => frames.filter((f) => f.data.toString().startsWith('[')).length >= 10);
    const seqs = new Map<string, number[]>();
    for (const frame of frames.slice(2)) {
      const batch = JSON.parse(frame.data.toString());
      expect(Array.isArray(batch)).toBe(true);
      for (const message of batch) {
        expect(message.type).toBe('market_data');
        seqs.set(message.symbol, [...(seqs.get(message.symbol) ?? []), message.seq]);
      }
    }
    for (const [symbol, list] of seqs) {
      for (let i = 1; i < list.length; i++) expect(list[i], symbol).toBe(list[i - 1]! + 1);
    }
    ws.close();
  });

  it('refuses an unknown encoding or a non-boolean flag', async () => {
    const client = await TestClient.connect(gw.url);
    expect(await client.request({ action: 'authenticate', api_key: key, encoding: 'xml' })).toStrictEqual({
      status: 'error',
      code: 'INVALID_PARAMETERS',
      message: 'encoding must be "json" or "msgpack"',
    });
    expect(await client.request({ action: 'authenticate', api_key: key, batch: 'yes' })).toMatchObject({ message: 'batch must be true or false' });
    // Without extension fields, the auth reply is exactly OpenAlgo's.
    expect(Object.keys(await client.request({ action: 'authenticate', api_key: key }))).toEqual(['type', 'status', 'message', 'broker', 'user_id', 'supported_features']);
    await client.close();
  });
});

describe('snapshots', () => {
  let shared: TestInstance;
  let sharedKey: string;
  let publisher: ZmqPublisher;
  beforeAll(async () => {
    shared = await startTestInstance({ TICKCAST_FEED: 'none' });
    sharedKey = await shared.createKey('snap', 'zerodha');
    publisher = new ZmqPublisher({ endpoint: shared.busEndpoint });
    // Publish a value, and wait until the gateway has it.
    while (shared.gateway.fanOut.lastValues.size === 0) {
      publisher.publish('NSE_RELIANCE_QUOTE', JSON.stringify({ ltp: 2950.55, open: 2900.0, timestamp: 1 }));
      await sleep(50);
    }
  });
  afterAll(async () => {
    await publisher.close();
    await shared.stop();
  });

  it('a new subscriber gets the last value right after the subscribe reply, at its own mode', async () => {
    const client = await TestClient.authenticated(shared.url, sharedKey);
    client.send({ action: 'subscribe', symbols: [{ symbol: 'RELIANCE', exchange: 'NSE' }], mode: 1 });
    const reply = await client.next();
    expect(reply.type).toBe('subscribe');
    const snapshot = await client.next();
    // The Quote tick as an LTP message: what an LTP tick has, not the open.
    expect(snapshot).toStrictEqual({ type: 'market_data', symbol: 'RELIANCE', exchange: 'NSE', mode: 1, data: { ltp: 2950.55, timestamp: 1 }, broker: 'zerodha' });
    // Depth wants more than any cached tick has: no snapshot.
    await client.request({ action: 'subscribe', symbols: [{ symbol: 'RELIANCE', exchange: 'NSE' }], mode: 3 });
    await sleep(200);
    expect(client.messages.filter((m) => m.mode === 3)).toEqual([]);
    await client.close();
  });

  it('a client can opt out', async () => {
    const client = await TestClient.connect(shared.url);
    await client.request({ action: 'authenticate', api_key: sharedKey, snapshot: false });
    await client.request({ action: 'subscribe', symbols: [{ symbol: 'RELIANCE', exchange: 'NSE' }], mode: 1 });
    await sleep(200);
    expect(client.messages).toEqual([]);
    await client.close();
  });
});
