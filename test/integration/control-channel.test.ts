/**
 * The control channel over real ZeroMQ sockets, all in one process: a ControlServer (gateway
 * side), ControlClients (adapter side) driving in-memory adapters, and raw sockets standing in
 * for misbehaving peers or a hand-driven gateway.
 */
import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import * as zmq from 'zeromq';
import type { Adapter, FeedStatus, FeedStatusEvent, StreamRef, SubscribeResult } from '../../src/feed.js';
import { systemClock } from '../../src/clock.js';
import { ControlClient, type ControlClientOptions } from '../../src/control/client.js';
import { decodeAdapterMessage, decodeGatewayMessage, encodeMessage } from '../../src/control/codec.js';
import { PROTOCOL_VERSION, type AdapterMessage, type GatewayMessage, type Hello } from '../../src/control/protocol.js';
import type { RemoteAdapter } from '../../src/control/remote-adapter.js';
import { ControlServer, type AdapterDecision, type ControlServerOptions } from '../../src/control/server.js';
import { silentLogger } from '../../src/observability/logger.js';
import type { Mode } from '../../src/protocol/modes.js';

const HEARTBEAT_MS = 100;
const MISSED = 3;
const logger = silentLogger();
const RELIANCE: StreamRef = { exchange: 'NSE', symbol: 'RELIANCE' };
const TCS: StreamRef = { exchange: 'NSE', symbol: 'TCS' };

/** An in-memory adapter that records every call; `behaviour` decides how subscribe answers. */
class FakeAdapter implements Adapter {
  readonly feed: string;
  readonly broker = 'simulator';
  readonly calls: string[] = [];
  readonly subscribed = new Map<string, Mode>();
  behaviour: (stream: StreamRef) => Promise<SubscribeResult> = async () => ({ ok: true, depth: 5 });
  private current: FeedStatus = 'live';
  private readonly listeners: Array<(event: FeedStatusEvent) => void> = [];

  constructor(feed = 'sim') {
    this.feed = feed;
  }
  async start(): Promise<void> {}
  async stop(): Promise<void> {}
  async subscribe(stream: StreamRef, mode: Mode, depth: number): Promise<SubscribeResult> {
    this.calls.push(`subscribe ${stream.exchange}:${stream.symbol} ${mode} ${depth}`);
    const result = await this.behaviour(stream);
    if (result.ok) this.subscribed.set(`${stream.exchange}:${stream.symbol}`, mode);
    return result;
  }
  async unsubscribe(stream: StreamRef): Promise<void> {
    this.calls.push(`unsubscribe ${stream.exchange}:${stream.symbol}`);
    this.subscribed.delete(`${stream.exchange}:${stream.symbol}`);
  }
  status(): FeedStatus {
    return this.current;
  }
  onStatus(listener: (event: FeedStatusEvent) => void): void {
    this.listeners.push(listener);
  }
  setStatus(status: FeedStatus, message?: string): void {
    this.current = status;
    for (const listener of this.listeners) listener({ feed: this.feed, status, message });
  }
}

/** Everything a test creates, closed after it whatever happened. */
const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls `condition` until true; fails (rather than hanging) after `timeoutMs`. */
async function waitFor(condition: () => boolean, what: string, timeoutMs = 3000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

interface ServerHandle {
  server: ControlServer;
  registered: Array<{ remote: RemoteAdapter; hello: Hello }>;
  /** Status events and reconnects, per feed, in order (`live`, `down: …`, `reconnect pid`). */
  events: string[];
}

/** A unique Linux abstract-namespace endpoint (no file, no port to collide with other tests). */
function ipcEndpoint(): string {
  return `ipc://@tickcast-test-control-${randomBytes(6).toString('hex')}`;
}

async function startServer(options: Partial<ControlServerOptions> & { decide?: (hello: Hello) => AdapterDecision } = {}): Promise<ServerHandle> {
  const registered: ServerHandle['registered'] = [];
  const events: string[] = [];
  const bind = () => ControlServer.bind({
    endpoint: 'tcp://127.0.0.1:0',
    heartbeatMs: HEARTBEAT_MS,
    missedHeartbeats: MISSED,
    commandTimeoutMs: 2000,
    clock: systemClock,
    logger,
    onAdapter: (remote, hello) => {
      const decision = options.decide?.(hello) ?? { accept: true };
      if (!decision.accept) return decision;
      registered.push({ remote, hello });
      remote.onStatus((event) => events.push(event.message ? `${event.feed} ${event.status}: ${event.message}` : `${event.feed} ${event.status}`));
      remote.onReconnect((h) => events.push(`${h.feed} reconnect ${h.pid}`));
      return { accept: true };
    },
    ...options,
  });
  // Rebinding an endpoint just closed can fail while ZeroMQ's I/O thread is still releasing it.
  let server: ControlServer | undefined;
  for (let attempt = 0; !server; attempt++) {
    try {
      server = await bind();
    } catch (error) {
      if (attempt === 20 || !options.endpoint) throw error;
      await sleep(50);
    }
  }
  const bound = server;
  cleanups.push(() => bound.close());
  return { server, registered, events };
}

interface ClientHandle {
  client: ControlClient;
  adapter: FakeAdapter;
  refused: string[];
  lost: string[];
  found: number;
}

function startClient(endpoint: string, overrides: Partial<ControlClientOptions> & { pid?: number; feed?: string } = {}): ClientHandle {
  const adapter = new FakeAdapter(overrides.feed ?? 'sim');
  const handle: ClientHandle = { client: undefined as unknown as ControlClient, adapter, refused: [], lost: [], found: 0 };
  handle.client = new ControlClient({
    endpoint,
    hello: { feed: adapter.feed, broker: 'simulator', brokers: '*', pid: overrides.pid ?? 1001, instance: 'default' },
    adapter,
    heartbeatMs: HEARTBEAT_MS,
    missedHeartbeats: MISSED,
    clock: systemClock,
    logger,
    onRefused: (message) => handle.refused.push(message),
    onGatewayLost: (reason) => handle.lost.push(reason),
    onGatewayFound: () => (handle.found += 1),
    ...overrides,
  });
  handle.client.start();
  cleanups.push(() => handle.client.stop());
  return handle;
}

/** A server with one registered client. */
async function connected(endpoint?: string): Promise<ServerHandle & ClientHandle & { remote: RemoteAdapter }> {
  const server = await startServer(endpoint ? { endpoint } : {});
  const client = startClient(server.server.endpoint);
  await waitFor(() => client.client.state === 'registered' && server.registered.length === 1, 'registration');
  return { ...server, ...client, remote: server.registered[0]!.remote };
}

/** A raw DEALER for speaking the protocol (or garbage) by hand. */
function rawDealer(endpoint: string): zmq.Dealer {
  const socket = new zmq.Dealer({ routingId: `raw-${randomBytes(4).toString('hex')}`, linger: 0 });
  socket.connect(endpoint);
  cleanups.push(() => socket.close());
  return socket;
}

async function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Next gateway message of `type` on a raw DEALER (skipping heartbeats and others). */
async function nextGatewayMessage<T extends GatewayMessage['type']>(socket: zmq.Dealer, type: T): Promise<Extract<GatewayMessage, { type: T }>> {
  for (;;) {
    const [frame] = await withTimeout(socket.receive(), 3000, `a ${type} message`);
    const decoded = decodeGatewayMessage(frame!);
    if (decoded.ok && decoded.message.type === type) return decoded.message as Extract<GatewayMessage, { type: T }>;
  }
}

function rawHello(session: number, pid = 2002): Hello {
  return { type: 'hello', protocol: PROTOCOL_VERSION, feed: 'raw', broker: 'simulator', brokers: '*', pid, session, heartbeatMs: HEARTBEAT_MS, status: 'live' };
}

describe('control channel', () => {
  it('registers an adapter: onAdapter gets the hello, the feed goes live and onReconnect fires once', async () => {
    const { registered, events, remote, client, found } = await connected();
    expect(registered).toHaveLength(1);
    expect(registered[0]!.hello).toMatchObject({
      type: 'hello',
      protocol: PROTOCOL_VERSION,
      feed: 'sim',
      broker: 'simulator',
      brokers: '*',
      pid: 1001,
      instance: 'default',
      session: 1,
      heartbeatMs: HEARTBEAT_MS,
      status: 'live',
    });
    expect(remote).toMatchObject({ feed: 'sim', broker: 'simulator', brokers: '*', pid: 1001, connected: true });
    expect(remote.status()).toBe('live');
    expect(events).toEqual(['sim live', 'sim reconnect 1001']);
    expect(found).toBe(1);
    expect(client.state).toBe('registered');
  });

  it('runs subscribe and unsubscribe on the adapter and returns its answers', async () => {
    const { remote, adapter } = await connected();
    expect(await remote.subscribe(RELIANCE, 3, 5)).toEqual({ ok: true, depth: 5 });
    adapter.behaviour = async (stream) => ({ ok: false, message: `Token not found for ${stream.symbol} on ${stream.exchange}` });
    expect(await remote.subscribe({ exchange: 'NSE', symbol: 'NOPE' }, 1, 0)).toEqual({ ok: false, message: 'Token not found for NOPE on NSE' });
    adapter.behaviour = async () => {
      throw new Error('upstream exploded');
    };
    expect(await remote.subscribe(TCS, 2, 0)).toEqual({ ok: false, message: 'upstream exploded' });
    adapter.behaviour = async () => ({ ok: true });
    expect(await remote.subscribe(TCS, 1, 0)).toEqual({ ok: true });
    expect(await remote.requestUnsubscribe(RELIANCE)).toEqual({ ok: true });
    await remote.unsubscribe(TCS);
    expect(adapter.calls).toEqual([
      'subscribe NSE:RELIANCE 3 5',
      'subscribe NSE:NOPE 1 0',
      'subscribe NSE:TCS 2 0',
      'subscribe NSE:TCS 1 0',
      'unsubscribe NSE:RELIANCE',
      'unsubscribe NSE:TCS',
    ]);
    expect(adapter.subscribed.size).toBe(0);
  });

  it('fails a command the adapter never answers after commandTimeoutMs, naming the feed and the time', async () => {
    const server = await startServer({ commandTimeoutMs: 300 });
    const { adapter, client } = startClient(server.server.endpoint);
    await waitFor(() => client.state === 'registered', 'registration');
    adapter.behaviour = () => new Promise(() => {});
    const started = Date.now();
    expect(await server.registered[0]!.remote.subscribe(RELIANCE, 1, 0)).toEqual({ ok: false, message: 'Feed "sim" did not answer within 300 ms' });
    expect(Date.now() - started).toBeGreaterThanOrEqual(290);
  });

  it('keeps the feed live while heartbeats flow both ways', async () => {
    const { remote, events, lost } = await connected();
    await sleep(HEARTBEAT_MS * MISSED * 3);
    expect(remote.status()).toBe('live');
    expect(events).toEqual(['sim live', 'sim reconnect 1001']);
    expect(lost).toEqual([]);
  });

  it('forwards the adapter status changes to the gateway', async () => {
    const { remote, adapter, events } = await connected();
    adapter.setStatus('reconnecting', 'upstream socket closed');
    await waitFor(() => remote.status() === 'reconnecting', 'reconnecting status');
    adapter.setStatus('live');
    await waitFor(() => remote.status() === 'live', 'live status');
    expect(events.slice(2)).toEqual(['sim reconnecting: upstream socket closed', 'sim live']);
  });

  it('marks a silent adapter down, fails its pending commands, then answers "not connected"', async () => {
    const { remote, adapter, client, events } = await connected();
    adapter.behaviour = () => new Promise(() => {});
    const pending = remote.subscribe(RELIANCE, 1, 0);
    await waitFor(() => adapter.calls.length === 1, 'the command to arrive');
    const killedAt = Date.now();
    await client.stop({ bye: false });
    const result = await pending;
    const detectedMs = Date.now() - killedAt;
    expect(result.ok).toBe(false);
    expect(result.ok === false && result.message).toMatch(/^Feed "sim" adapter \(pid 1001\) sent nothing for \d+ ms$/);
    // Well before the 2 s command timeout: about missedHeartbeats × heartbeatMs, plus one tick.
    expect(detectedMs).toBeLessThan(HEARTBEAT_MS * (MISSED + 3));
    expect(remote.status()).toBe('down');
    expect(remote.connected).toBe(false);
    expect(events.at(-1)).toMatch(/^sim down: Feed "sim" adapter \(pid 1001\) sent nothing for/);
    const started = Date.now();
    expect(await remote.subscribe(RELIANCE, 1, 0)).toEqual({ ok: false, message: 'Feed "sim" is not connected' });
    expect(await remote.requestUnsubscribe(RELIANCE)).toEqual({ ok: false, message: 'Feed "sim" is not connected' });
    expect(Date.now() - started).toBeLessThan(50);
  });

  it('marks an adapter down at once when it says bye', async () => {
    const { remote, client, events } = await connected();
    const stoppedAt = Date.now();
    await client.stop();
    await waitFor(() => remote.status() === 'down', 'down');
    expect(Date.now() - stoppedAt).toBeLessThan(HEARTBEAT_MS * MISSED);
    expect(events.at(-1)).toBe('sim down: Feed "sim" adapter (pid 1001) stopped');
  });

  it('lets a restarted adapter take over its dead feed: same RemoteAdapter, live again, onReconnect fires', async () => {
    const { server, registered, remote, client, events } = await connected();
    await client.stop({ bye: false });
    await waitFor(() => remote.status() === 'down', 'down');
    const second = startClient(server.endpoint, { pid: 1002 });
    await waitFor(() => second.client.state === 'registered', 'second registration');
    expect(registered).toHaveLength(1); // onAdapter is not asked again
    expect(remote.status()).toBe('live');
    expect(remote.pid).toBe(1002);
    expect(events.slice(2)).toEqual([expect.stringMatching(/^sim down: /), 'sim live', 'sim reconnect 1002']);
    expect(await remote.subscribe(RELIANCE, 2, 5)).toEqual({ ok: true, depth: 5 });
    expect(second.adapter.calls).toEqual(['subscribe NSE:RELIANCE 2 5']);
  });

  it('lets an adapter restarted before its death was noticed take over (its old connection is gone)', async () => {
    const { server, registered, remote, client, adapter, events } = await connected();
    adapter.behaviour = () => new Promise(() => {});
    const pending = remote.subscribe(RELIANCE, 1, 0);
    await waitFor(() => adapter.calls.length === 1, 'the command to arrive');
    await client.stop({ bye: false });
    const second = startClient(server.endpoint, { pid: 1003 });
    await waitFor(() => second.client.state === 'registered', 'second registration', HEARTBEAT_MS * 2);
    expect(await pending).toEqual({ ok: false, message: 'Feed "sim" adapter (pid 1001) restarted before answering' });
    expect(registered).toHaveLength(1);
    expect(remote.pid).toBe(1003);
    expect(remote.status()).toBe('live');
    expect(events).toEqual(['sim live', 'sim reconnect 1001', 'sim reconnect 1003']);
  });

  it('refuses a second adapter for a feed id that a live adapter serves', async () => {
    const { server, remote, registered } = await connected();
    const second = startClient(server.endpoint, { pid: 1004 });
    await waitFor(() => second.refused.length === 1, 'refusal');
    expect(second.refused).toEqual(['feed id "sim" is already served by pid 1001']);
    expect(second.client.state).toBe('refused');
    expect(server.counters.refused).toBe(1);
    expect(registered).toHaveLength(1);
    expect(remote.pid).toBe(1001);
    expect(await remote.subscribe(RELIANCE, 1, 0)).toEqual({ ok: true, depth: 5 });
  });

  it('refuses hellos the gateway rejects, from another instance, or with another broker for a known feed', async () => {
    const { server } = await startServer({
      instance: 'default',
      decide: (hello) => (hello.feed === 'banned' ? { accept: false, message: 'no adapter for broker "banned"' } : { accept: true }),
    });
    const banned = startClient(server.endpoint, { feed: 'banned' });
    const stranger = startClient(server.endpoint, { feed: 'other', hello: { feed: 'other', broker: 'simulator', brokers: '*', pid: 7, instance: 'prod' } });
    await waitFor(() => banned.refused.length === 1 && stranger.refused.length === 1, 'refusals');
    expect(banned.refused).toEqual(['no adapter for broker "banned"']);
    expect(stranger.refused).toEqual(['this gateway serves instance "default", not "prod"']);

    const first = startClient(server.endpoint);
    await waitFor(() => first.client.state === 'registered', 'registration');
    await first.client.stop();
    const changed = startClient(server.endpoint, { hello: { feed: 'sim', broker: 'zerodha', brokers: ['zerodha'], pid: 8 } });
    await waitFor(() => changed.refused.length === 1, 'refusal');
    expect(changed.refused[0]).toBe(
      'feed id "sim" is registered for broker simulator (serving any broker), not zerodha (serving zerodha); restart the gateway to change it',
    );
  });

  it('runs two adapters on one gateway, each with its own feed', async () => {
    const { server, registered } = await startServer();
    const a = startClient(server.endpoint, { feed: 'sim' });
    const b = startClient(server.endpoint, { feed: 'sim2', pid: 1005 });
    await waitFor(() => registered.length === 2, 'two registrations');
    const byFeed = new Map(registered.map(({ remote }) => [remote.feed, remote]));
    await Promise.all([byFeed.get('sim')!.subscribe(RELIANCE, 1, 0), byFeed.get('sim2')!.subscribe(TCS, 2, 0)]);
    expect(a.adapter.calls).toEqual(['subscribe NSE:RELIANCE 1 0']);
    expect(b.adapter.calls).toEqual(['subscribe NSE:TCS 2 0']);
  });

  it('drops every local subscription when the gateway says bye, and says hello until one welcomes it', async () => {
    const { server, remote, adapter, client, lost } = await connected(ipcEndpoint());
    await remote.subscribe(RELIANCE, 1, 0);
    await remote.subscribe(TCS, 3, 5);
    expect(adapter.subscribed.size).toBe(2);
    const endpoint = server.endpoint;
    await server.close();
    await waitFor(() => lost.length === 1, 'gateway loss');
    expect(lost).toEqual(['the gateway closed the control channel']);
    expect(client.state).toBe('registering');
    await waitFor(() => adapter.subscribed.size === 0, 'local unsubscribes');
    expect(adapter.calls.slice(-2).sort()).toEqual(['unsubscribe NSE:RELIANCE', 'unsubscribe NSE:TCS']);
    expect(remote.status()).toBe('down');

    // The gateway comes back on the same endpoint: the adapter registers with it.
    const again = await startServer({ endpoint });
    await waitFor(() => client.state === 'registered' && again.registered.length === 1, 're-registration');
    expect(again.registered[0]!.hello.session).toBe(2);
    expect(again.events).toEqual(['sim live', 'sim reconnect 1001']);
    expect(await again.registered[0]!.remote.subscribe(TCS, 2, 0)).toEqual({ ok: true, depth: 5 });
  });

  it('waits for a gateway that is not there yet, then registers when it appears', async () => {
    const endpoint = ipcEndpoint();
    const early = startClient(endpoint);
    await sleep(HEARTBEAT_MS * 4);
    expect(early.client.state).toBe('registering');
    const { registered } = await startServer({ endpoint });
    await waitFor(() => early.client.state === 'registered' && registered.length === 1, 'registration');
    // The hellos that could not be sent while no gateway listened were dropped, not queued: one
    // registration, one reconnect.
    await sleep(HEARTBEAT_MS * 2);
    expect(registered).toHaveLength(1);
  });

  it('moves to a gateway at a new endpoint with setEndpoint', async () => {
    const { remote, adapter, client, lost } = await connected();
    await remote.subscribe(RELIANCE, 1, 0);
    const next = await startServer();
    client.setEndpoint(next.server.endpoint);
    await waitFor(() => client.state === 'registered' && next.registered.length === 1, 'registration with the new gateway');
    expect(lost).toEqual([`moving to the gateway at ${next.server.endpoint}`]);
    expect(adapter.calls.at(-1)).toBe('unsubscribe NSE:RELIANCE');
    expect(await next.registered[0]!.remote.subscribe(TCS, 1, 0)).toEqual({ ok: true, depth: 5 });
    // The old gateway no longer hears from it.
    await waitFor(() => remote.status() === 'down', 'old gateway marking it down');
  });

  it('counts garbage as malformed and keeps serving', async () => {
    const { server, remote } = await connected();
    const raw = rawDealer(server.endpoint);
    await raw.send('not json at all');
    await raw.send(Buffer.from([0, 1, 2, 255]));
    await raw.send(['two', 'frames']);
    await raw.send('{"type":"reply","id":-1,"ok":true}');
    await raw.send(JSON.stringify({ ...rawHello(1), pid: 'nope' }));
    await raw.send('x'.repeat(100_000));
    await waitFor(() => server.counters.malformed === 6, 'six malformed messages');
    expect(await remote.subscribe(RELIANCE, 1, 0)).toEqual({ ok: true, depth: 5 });
    expect(remote.status()).toBe('live');
  });

  it('answers a stranger with reset, and replays only for a new registration round', async () => {
    const { server, registered, events } = await startServer();
    const raw = rawDealer(server.endpoint);
    await raw.send(encodeMessage({ type: 'heartbeat' }));
    expect(await nextGatewayMessage(raw, 'reset')).toMatchObject({ type: 'reset' });
    expect(server.counters.resets).toBe(1);

    await raw.send(encodeMessage(rawHello(1)));
    expect(await nextGatewayMessage(raw, 'welcome')).toEqual({ type: 'welcome', session: 1, heartbeatMs: HEARTBEAT_MS });
    // The same hello repeated (its welcome was slow): welcomed again, nothing replayed.
    await raw.send(encodeMessage(rawHello(1)));
    expect(await nextGatewayMessage(raw, 'welcome')).toEqual({ type: 'welcome', session: 1, heartbeatMs: HEARTBEAT_MS });
    expect(events).toEqual(['raw live', 'raw reconnect 2002']);
    // A new round (it dropped everything): replayed, and commands of the old round fail at once.
    const orphan = registered[0]!.remote.subscribe(RELIANCE, 1, 0);
    await nextGatewayMessage(raw, 'subscribe');
    await raw.send(encodeMessage(rawHello(2)));
    expect(await orphan).toEqual({ ok: false, message: 'Feed "raw" adapter (pid 2002) re-registered before answering' });
    expect(await nextGatewayMessage(raw, 'welcome')).toEqual({ type: 'welcome', session: 2, heartbeatMs: HEARTBEAT_MS });
    expect(events).toEqual(['raw live', 'raw reconnect 2002', 'raw reconnect 2002']);
    expect(registered).toHaveLength(1);

    // Commands carry fresh ids, and replies are matched by id.
    const remote = registered[0]!.remote;
    const first = remote.subscribe(RELIANCE, 2, 0);
    const second = remote.subscribe(TCS, 1, 0);
    const a = await nextGatewayMessage(raw, 'subscribe');
    const b = await nextGatewayMessage(raw, 'subscribe');
    expect(a).toMatchObject({ exchange: 'NSE', symbol: 'RELIANCE', mode: 2, depth: 0 });
    expect(b.id).not.toBe(a.id);
    const reply = (message: AdapterMessage) => raw.send(encodeMessage(message));
    await reply({ type: 'reply', id: b.id, ok: false, message: 'nope' });
    await reply({ type: 'reply', id: a.id, ok: true, depth: 1 });
    await reply({ type: 'reply', id: 999_999, ok: true }); // unknown id: ignored
    expect(await second).toEqual({ ok: false, message: 'nope' });
    expect(await first).toEqual({ ok: true, depth: 1 });
  });

  it('client: loses a silent gateway, drops its subscriptions, and re-registers on reset', async () => {
    // A hand-driven gateway: a raw ROUTER.
    const router = new zmq.Router({ linger: 0 });
    await router.bind('tcp://127.0.0.1:*');
    cleanups.push(() => router.close());
    const handle = startClient(router.lastEndpoint!);
    const { client, adapter, lost } = handle;
    const receive = async (type: AdapterMessage['type']): Promise<{ identity: Buffer; message: AdapterMessage }> => {
      for (;;) {
        const [identity, frame] = await withTimeout(router.receive(), 3000, `a ${type} message`);
        const decoded = decodeAdapterMessage(frame!);
        if (decoded.ok && decoded.message.type === type) return { identity: identity!, message: decoded.message };
      }
    };
    const send = (identity: Buffer, message: GatewayMessage) => router.send([identity, encodeMessage(message)]);

    const hello = await receive('hello');
    const session = (hello.message as Hello).session;
    await send(hello.identity, { type: 'welcome', session, heartbeatMs: HEARTBEAT_MS });
    await send(hello.identity, { type: 'subscribe', id: 1, exchange: 'NSE', symbol: 'RELIANCE', mode: 1, depth: 0 });
    expect((await receive('reply')).message).toEqual({ type: 'reply', id: 1, ok: true, depth: 5 });
    expect(client.state).toBe('registered');
    expect(handle.found).toBe(1);

    // The gateway goes silent (no heartbeats): the client gives it up and drops RELIANCE.
    await waitFor(() => lost.length === 1, 'gateway loss', HEARTBEAT_MS * (MISSED + 4));
    expect(lost[0]).toMatch(/^nothing from the gateway for \d+ ms$/);
    await waitFor(() => adapter.subscribed.size === 0, 'local unsubscribe');
    const again = await receive('hello');
    expect((again.message as Hello).session).toBe(session + 1);
    // A stale welcome for the old round is ignored; the right one registers.
    await send(again.identity, { type: 'welcome', session, heartbeatMs: HEARTBEAT_MS });
    await sleep(20);
    expect(client.state).toBe('registering');
    await send(again.identity, { type: 'welcome', session: session + 1, heartbeatMs: HEARTBEAT_MS });
    await waitFor(() => client.state === 'registered', 'registration');

    // A command and then a reset: the client drops the stream and says hello again.
    await send(again.identity, { type: 'subscribe', id: 2, exchange: 'NSE', symbol: 'TCS', mode: 2, depth: 0 });
    await receive('reply');
    await send(again.identity, { type: 'reset', message: 'gateway restarted' });
    await waitFor(() => lost.length === 2, 'second loss');
    expect(lost[1]).toBe('the gateway reset the channel: gateway restarted');
    await waitFor(() => adapter.subscribed.size === 0, 'local unsubscribe');
    expect((await receive('hello')).message).toMatchObject({ session: session + 2 });
    // Commands that arrive before the next welcome are refused, not run.
    const callsBefore = adapter.calls.length;
    await send(again.identity, { type: 'subscribe', id: 3, exchange: 'NSE', symbol: 'INFY', mode: 1, depth: 0 });
    expect((await receive('reply')).message).toEqual({ type: 'reply', id: 3, ok: false, message: 'Feed "sim" is re-registering with the gateway' });
    expect(adapter.calls.length).toBe(callsBefore);
    // Garbage from the gateway is counted, never fatal.
    await router.send([again.identity, 'garbage']);
    await waitFor(() => client.counters.malformed === 1, 'malformed count');
  });
});
