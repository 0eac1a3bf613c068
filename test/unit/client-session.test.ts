/**
 * TickcastClient's state machine against a scripted in-memory WebSocket: authentication,
 * batching of subscribe calls, dispatch by mode, reconnection with backoff and resubscription,
 * request timeouts and the request-rate retry. Timers are faked; nothing touches the network.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { TickcastClient } from '../../src/client/client.js';
import type { ClientOptions, WebSocketLike } from '../../src/client/types.js';

type Sent = Record<string, any>;

class FakeSocket implements WebSocketLike {
  readyState = 0;
  binaryType = 'blob';
  readonly sent: Sent[] = [];
  onopen: ((event: unknown) => void) | null = null;
  onmessage: ((event: { data: unknown }) => void) | null = null;
  onclose: ((event: { code: number; reason: string }) => void) | null = null;
  onerror: ((event: unknown) => void) | null = null;
  closedWith: number | undefined;

  constructor(readonly url: string) {}

  send(data: string): void {
    this.sent.push(JSON.parse(data));
  }

  close(code = 1000, reason = ''): void {
    if (this.readyState === 3) return;
    this.closedWith = code;
    this.readyState = 3;
    this.onclose?.({ code, reason });
  }

  // Test side.
  open(): void {
    this.readyState = 1;
    this.onopen?.({});
  }

  receive(message: unknown): void {
    this.onmessage?.({ data: JSON.stringify(message) });
  }

  drop(code = 1006): void {
    this.readyState = 3;
    this.onclose?.({ code, reason: '' });
  }

  last(action: string): Sent | undefined {
    return this.sent.filter((m) => m.action === action).at(-1);
  }
}

const AUTH_OK = { type: 'auth', status: 'success', message: 'Authentication successful', broker: 'simulator', user_id: 'u', encoding: 'json', batch: true, seq: true, snapshot: true };

function subscribeOk(request: Sent): Sent {
  return {
    type: 'subscribe',
    status: 'success',
    subscriptions: request.symbols.map((s: Sent) => ({ ...s, status: 'success', mode: 'X', depth: 5, broker: 'simulator' })),
    message: 'Subscription processing complete',
    broker: 'simulator',
  };
}

const tick = (symbol: string, mode: number, seq: number, ltp = 1): Sent => ({ type: 'market_data', symbol, exchange: 'NSE', mode, data: { ltp, timestamp: 1 }, broker: 'simulator', seq });

let sockets: FakeSocket[];

function makeClient(options: Partial<ClientOptions> = {}): TickcastClient {
  sockets = [];
  const WebSocket = class extends FakeSocket {
    constructor(url: string) {
      super(url);
      sockets.push(this);
    }
  };
  return new TickcastClient({ url: 'ws://gateway:1', apiKey: 'key', WebSocket, reconnect: { initialDelayMs: 100, maxDelayMs: 400, jitter: 0 }, heartbeatMs: false, ...options });
}

const settle = (ms = 0): Promise<void> => vi.advanceTimersByTimeAsync(ms).then(() => undefined);

/** Lets the socket open and answers its authentication. */
async function accept(socket: FakeSocket, reply: Sent = AUTH_OK): Promise<void> {
  socket.open();
  await settle();
  expect(socket.sent.at(-1)).toMatchObject({ action: 'authenticate', api_key: 'key' });
  socket.receive(reply);
  await settle();
}

async function connect(client: TickcastClient): Promise<FakeSocket> {
  const connected = client.connect();
  await settle();
  await accept(sockets.at(-1)!);
  await connected;
  return sockets.at(-1)!;
}

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

describe('TickcastClient (scripted socket)', () => {
  it('connects: authenticate with the extensions, then connected with what the gateway agreed', async () => {
    const client = makeClient({ encoding: 'msgpack', batch: false });
    const events: unknown[] = [];
    client.on('connected', (e) => events.push(e));
    const socket = await connect(client);
    expect(socket.url).toBe('ws://gateway:1');
    expect(socket.binaryType).toBe('arraybuffer');
    expect(socket.sent[0]).toStrictEqual({ action: 'authenticate', api_key: 'key', encoding: 'msgpack', batch: false, seq: true, snapshot: true });
    expect(client.state).toBe('connected');
    expect(events).toEqual([{ broker: 'simulator', userId: 'u', extensions: { encoding: 'json', batch: true, seq: true, snapshot: true }, reconnected: false }]);
  });

  it('a refused key rejects connect() with the gateway code and closes the socket', async () => {
    const client = makeClient();
    const connected = client.connect();
    await settle();
    sockets[0]!.open();
    await settle();
    sockets[0]!.receive({ status: 'error', code: 'AUTHENTICATION_ERROR', message: 'Invalid API key' });
    await expect(connected).rejects.toMatchObject({ code: 'AUTHENTICATION_ERROR', message: 'Invalid API key' });
    expect(sockets[0]!.readyState).toBe(3);
    expect(client.state).toBe('idle');
  });

  it('a socket that never opens fails connect() with CONNECT_FAILED after the connect timeout', async () => {
    const client = makeClient({ connectTimeoutMs: 500 });
    const connected = client.connect();
    const assertion = expect(connected).rejects.toMatchObject({ code: 'CONNECT_FAILED', message: 'cannot connect to ws://gateway:1: no connection within 500 ms' });
    await settle(500);
    await assertion;
  });

  it('subscribe calls in one turn become one request per mode; ticks reach callbacks by mode; ready resolves', async () => {
    const client = makeClient();
    const socket = await connect(client);
    const ltp: number[] = [];
    const depth: number[] = [];
    const a = client.subscribe('NSE:A', 'ltp', (m) => ltp.push(m.data.ltp));
    client.subscribe(['NSE:B', { exchange: 'NSE', symbol: 'A' }], 1);
    const d = client.subscribe('NSE:A', 3, (m) => depth.push(m.data.ltp));
    await settle();
    const requests = socket.sent.filter((m) => m.action === 'subscribe');
    expect(requests).toEqual([
      { action: 'subscribe', symbols: [{ symbol: 'A', exchange: 'NSE' }, { symbol: 'B', exchange: 'NSE' }], mode: 1, depth: 5 },
      { action: 'subscribe', symbols: [{ symbol: 'A', exchange: 'NSE' }], mode: 3, depth: 5 },
    ]);
    socket.receive(subscribeOk(requests[0]!));
    socket.receive(subscribeOk(requests[1]!));
    expect(await a.ready).toEqual([{ instrument: { exchange: 'NSE', symbol: 'A' }, ok: true, depth: 5 }]);
    expect(await d.ready).toHaveLength(1);

    socket.receive([tick('A', 3, 1, 10), tick('A', 1, 2, 11), tick('B', 1, 1, 12)]); // a batch
    socket.receive(tick('C', 1, 1)); // not held: ignored
    expect(ltp).toEqual([10, 11]);
    expect(depth).toEqual([10]);
    expect(client.getLtp()).toEqual({ ltp: { NSE: { A: { timestamp: 1, ltp: 11 }, B: { timestamp: 1, ltp: 12 } } } });

    // Unsubscribing one of two LTP holders of A sends nothing; the last one sends the unsubscribe.
    a.unsubscribe();
    await settle();
    expect(socket.last('unsubscribe')).toBeUndefined();
    client.unsubscribe('NSE:A', 'LTP');
    await settle();
    expect(socket.last('unsubscribe')).toEqual({ action: 'unsubscribe', symbols: [{ symbol: 'A', exchange: 'NSE', mode: 1 }], mode: 1 });
    socket.receive({ type: 'unsubscribe', status: 'success', successful: [], failed: [] });
    socket.receive(tick('A', 1, 3, 99));
    expect(ltp).toEqual([10, 11]);
  });

  it('gaps in seq are reported per stream; a throwing callback is reported and does not stop delivery', async () => {
    const client = makeClient();
    const socket = await connect(client);
    const gaps: unknown[] = [];
    const errors: string[] = [];
    client.on('gap', (g) => gaps.push(g));
    client.on('error', (e) => errors.push(`${e.code}: ${e.message}`));
    const seen: number[] = [];
    client.subscribe('NSE:A', 1, () => {
      throw new Error('oops');
    });
    client.subscribe('NSE:A', 1, (m) => seen.push(m.seq!));
    await settle();
    socket.receive(subscribeOk(socket.last('subscribe')!));
    for (const seq of [4, 5, 8, 9]) socket.receive(tick('A', 1, seq));
    expect(seen).toEqual([4, 5, 8, 9]);
    expect(gaps).toEqual([{ stream: 'NSE:A', exchange: 'NSE', symbol: 'A', mode: 1, reason: 'seq', expected: 6, received: 8, missed: 2 }]);
    expect(errors).toHaveLength(4);
    expect(errors[0]).toBe('CALLBACK_FAILED: a NSE:A callback threw: oops');
  });

  it('feed_status events are passed on; refused symbols are reported and dropped', async () => {
    const client = makeClient();
    const socket = await connect(client);
    const statuses: unknown[] = [];
    const errors: string[] = [];
    client.on('feed_status', (e) => statuses.push(e));
    client.on('error', (e) => errors.push(`${e.code}: ${e.message}`));
    const handle = client.subscribe(['NSE:A', 'NSE:NOPE'], 2);
    await settle();
    socket.receive({
      type: 'subscribe',
      status: 'partial',
      subscriptions: [
        { symbol: 'A', exchange: 'NSE', status: 'success', mode: 'Quote', depth: 5 },
        { symbol: 'NOPE', exchange: 'NSE', status: 'error', message: 'Token not found for NOPE on NSE' },
      ],
    });
    expect((await handle.ready).map((r) => r.ok)).toEqual([true, false]);
    expect(handle.instruments).toEqual([{ exchange: 'NSE', symbol: 'A' }]);
    expect(errors).toEqual(['SUBSCRIBE_FAILED: NSE:NOPE (Quote): Token not found for NOPE on NSE']);
    const event = { type: 'feed_status', feed: 'simulator', broker: 'simulator', status: 'down', timestamp: 5 };
    socket.receive(event);
    expect(statuses).toEqual([event]);
  });

  it('a lost connection reconnects with growing delays, authenticates again and resubscribes everything', async () => {
    const client = makeClient();
    const log: string[] = [];
    client.on('disconnected', (e) => log.push(`disconnected ${e.code} ${e.willReconnect}`));
    client.on('reconnecting', (e) => log.push(`reconnecting ${e.attempt} ${e.delayMs}`));
    client.on('connected', (e) => log.push(`connected ${e.reconnected}`));
    const first = await connect(client);
    client.subscribe(['NSE:A', 'NSE:B'], 'quote');
    client.subscribe('NSE:A', 'depth');
    await settle();
    for (const request of first.sent.filter((m) => m.action === 'subscribe')) first.receive(subscribeOk(request));

    first.drop();
    expect(client.state).toBe('reconnecting');
    await settle(100);
    expect(sockets).toHaveLength(2);
    sockets[1]!.drop(); // this attempt fails: the next waits twice as long
    await settle(199);
    expect(sockets).toHaveLength(2);
    await settle(1);
    expect(sockets).toHaveLength(3);
    await accept(sockets[2]!);
    expect(client.state).toBe('connected');
    expect(sockets[2]!.sent.filter((m) => m.action === 'subscribe')).toEqual([
      { action: 'subscribe', symbols: [{ symbol: 'A', exchange: 'NSE' }, { symbol: 'B', exchange: 'NSE' }], mode: 2, depth: 5 },
      { action: 'subscribe', symbols: [{ symbol: 'A', exchange: 'NSE' }], mode: 3, depth: 5 },
    ]);
    expect(log).toEqual(['connected false', 'disconnected 1006 true', 'reconnecting 1 100', 'reconnecting 2 200', 'connected true']);
  });

  it('after a reconnection asks for what it missed (since per stream and mode, the previous epoch) and reports recovered and gap', async () => {
    const client = makeClient();
    const recovered: unknown[] = [];
    const gaps: unknown[] = [];
    client.on('recovered', (r) => recovered.push(r));
    client.on('gap', (g) => gaps.push(g));
    const connected = client.connect();
    await settle();
    await accept(sockets[0]!, { ...AUTH_OK, seq_epoch: 'e1' });
    await connected;
    const first = sockets[0]!;
    const seen: Array<[number, number, boolean]> = [];
    client.subscribe(['NSE:A', 'NSE:B', 'NSE:C'], 'quote', (m) => seen.push([m.mode, m.seq!, m.recovered === true]));
    await settle();
    first.receive(subscribeOk(first.last('subscribe')!));
    first.receive([tick('A', 2, 7), tick('B', 2, 40)]);

    first.drop();
    await settle(100);
    await accept(sockets[1]!, { ...AUTH_OK, seq_epoch: 'e1' });
    const again = sockets[1]!;
    // C never ticked: nothing to recover, an ordinary subscribe (a snapshot if negotiated).
    expect(again.last('subscribe')).toEqual({
      action: 'subscribe',
      symbols: [{ symbol: 'A', exchange: 'NSE', since: 7 }, { symbol: 'B', exchange: 'NSE', since: 40 }, { symbol: 'C', exchange: 'NSE' }],
      mode: 2,
      depth: 5,
      epoch: 'e1',
    });
    again.receive(subscribeOk(again.last('subscribe')!));
    again.receive([{ ...tick('A', 2, 8), recovered: true }, { ...tick('A', 2, 9), recovered: true }]);
    again.receive({ type: 'recovered', symbol: 'A', exchange: 'NSE', mode: 2, from: 8, to: 9, count: 2 });
    again.receive({ type: 'gap', symbol: 'B', exchange: 'NSE', mode: 2, since: 40, reason: 'history', message: 'gone', next: 45 });
    again.receive([tick('A', 2, 10), tick('B', 2, 45)]);
    expect(seen).toEqual([[2, 7, false], [2, 40, false], [2, 8, true], [2, 9, true], [2, 10, false], [2, 45, false]]);
    expect(recovered).toEqual([{ stream: 'NSE:A', exchange: 'NSE', symbol: 'A', mode: 2, from: 8, to: 9, count: 2 }]);
    // One report of B's gap: the gateway's, not a second one from the jump to 45.
    expect(gaps).toEqual([{ stream: 'NSE:B', exchange: 'NSE', symbol: 'B', mode: 2, reason: 'history', expected: 41, received: 45, missed: 4, message: 'gone' }]);

    // A gateway that restarted has another epoch: the client still quotes the one its seqs came in.
    again.drop();
    await settle(100);
    await accept(sockets[2]!, { ...AUTH_OK, seq_epoch: 'e2' });
    expect(sockets[2]!.last('subscribe')).toMatchObject({ epoch: 'e1', symbols: [{ symbol: 'A', since: 10 }, { symbol: 'B', since: 45 }, { symbol: 'C' }] });
    await client.close();
  });

  it('a reply that never comes ends the connection (REQUEST_TIMEOUT) and the client reconnects', async () => {
    const client = makeClient({ requestTimeoutMs: 1000 });
    const socket = await connect(client);
    const pinged = client.ping();
    const assertion = expect(pinged).rejects.toMatchObject({ code: 'REQUEST_TIMEOUT' });
    await settle(1000);
    await assertion;
    expect(client.state).toBe('reconnecting');
    expect(socket.readyState).toBe(3);
  });

  it('the heartbeat pings an idle connection', async () => {
    const client = makeClient({ heartbeatMs: 5000, requestTimeoutMs: 1000 });
    const socket = await connect(client);
    await settle(5000);
    expect(socket.last('ping')).toMatchObject({ action: 'ping' });
    socket.receive({ type: 'pong', status: 'success', server_timestamp: 1 });
    await settle(1000);
    expect(client.state).toBe('connected');
    await settle(5000); // the next ping goes unanswered
    await settle(1000);
    expect(client.state).toBe('reconnecting');
  });

  it('the request rate limit: refused subscribes are sent again a second later', async () => {
    const client = makeClient();
    const socket = await connect(client);
    const handle = client.subscribe('NSE:A', 1);
    await settle();
    socket.receive({ status: 'error', code: 'LIMIT_EXCEEDED', message: 'Too many subscribe requests (limit 20 per second)' });
    await settle(999);
    expect(socket.sent.filter((m) => m.action === 'subscribe')).toHaveLength(1);
    await settle(1);
    const requests = socket.sent.filter((m) => m.action === 'subscribe');
    expect(requests).toHaveLength(2);
    socket.receive(subscribeOk(requests[1]!));
    expect(await handle.ready).toMatchObject([{ ok: true }]);
  });

  it('close() stops reconnecting, settles waiting subscriptions, and connect() works again', async () => {
    const client = makeClient();
    const socket = await connect(client);
    const pending = client.subscribe('NSE:A', 1);
    socket.drop();
    expect(client.state).toBe('reconnecting');
    await client.close();
    expect(client.state).toBe('closed');
    expect(await pending.ready).toEqual([{ instrument: { exchange: 'NSE', symbol: 'A' }, ok: false, message: 'the client was closed before the gateway answered' }]);
    await settle(10_000);
    expect(sockets).toHaveLength(1);

    const again = await connect(client);
    await settle();
    expect(again.last('subscribe')).toMatchObject({ symbols: [{ symbol: 'A', exchange: 'NSE' }], mode: 1 });
  });

  it('bad options and arguments throw INVALID_ARGUMENT without side effects', async () => {
    for (const options of [{ url: 'http://x' }, { url: 'ws://x', apiKey: '' }, { encoding: 'cbor' }, { reconnect: { jitter: 2 } }, { requestTimeoutMs: 0 }, { batch: 'yes' }]) {
      expect(() => makeClient(options as Partial<ClientOptions>)).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
    }
    const client = makeClient();
    expect(() => client.subscribe('RELIANCE', 1)).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
    expect(() => client.subscribe('NSE:A', 7 as 1)).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
    expect(() => client.subscribe('NSE:A', 1, 'nope' as never)).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
    await expect(client.ping()).rejects.toMatchObject({ code: 'CONNECTION_LOST' });
    expect(sockets).toHaveLength(0);
  });
});
