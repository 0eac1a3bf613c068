/**
 * The control channel (protocol version 2) over real ZeroMQ sockets, all in one process: a
 * GatewayControl (gateway side) and AdapterControls (adapter side) driving in-memory adapters,
 * and raw sockets standing in for misbehaving peers or a hand-driven gateway.
 */
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { afterEach, describe, expect, it } from 'vitest';
import * as zmq from 'zeromq';
import type { Adapter, FeedStatus, FeedStatusEvent, StreamRef, SubscribeResult } from '../../src/feed.js';
import { systemClock } from '../../src/clock.js';
import { AdapterControl } from '../../src/control/adapter-control.js';
import { decodeToAdapter, decodeToGateway, encodeFrame } from '../../src/control/codec.js';
import { type AdapterDecision, GatewayControl } from '../../src/control/gateway-control.js';
import { authentic, mac, newNonce, type SessionKeys, sessionKeys } from '../../src/control/keys.js';
import { digestOf } from '../../src/control/node-interest.js';
import { type AdapterInfo, type ControlMessage, PROTOCOL_VERSION, type ToAdapter, type ToGateway } from '../../src/control/protocol.js';
import type { RemoteAdapter } from '../../src/control/remote-adapter.js';
import type { AdapterTransport } from '../../src/control/transport.js';
import { ZmqAdapterTransport, ZmqGatewayTransport } from '../../src/control/transport-zmq.js';
import { silentLogger } from '../../src/observability/logger.js';
import type { Mode } from '../../src/protocol/modes.js';
import { ForwardingTransport, frameBody as bodyOf } from '../helpers/control.js';

const HEARTBEAT_MS = 100;
const MISSED = 3;
const logger = silentLogger();
const key = randomBytes(32);
const HOST = hostname();
const PID = process.pid;
const RELIANCE: StreamRef = { exchange: 'NSE', symbol: 'RELIANCE' };
const TCS: StreamRef = { exchange: 'NSE', symbol: 'TCS' };
/** Matches formatDuration's output (`300 ms`, `1.2 s`). */
const DURATION = String.raw`(\d+ ms|[\d.]+ s)`;

/** An in-memory adapter that records every call; `behaviour` decides how subscribe answers. */
class FakeAdapter implements Adapter {
  readonly calls: string[] = [];
  readonly subscribed = new Map<string, Mode>();
  behaviour: (stream: StreamRef) => Promise<SubscribeResult> = async () => ({ ok: true, depth: 5 });
  private current: FeedStatus = 'live';
  private readonly listeners: Array<(event: FeedStatusEvent) => void> = [];

  constructor(
    readonly feed = 'sim',
    readonly broker = 'simulator',
  ) {}
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
    for (const listener of this.listeners) listener(message === undefined ? { feed: this.feed, status } : { feed: this.feed, status, message });
  }
}

/** Everything a test creates, closed after it whatever happened. */
const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls `condition` until true; fails (rather than hanging) after `timeoutMs`. */
async function waitFor(condition: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

/** A unique Linux abstract-namespace endpoint (no file, no port to collide with other tests). */
function ipcEndpoint(): string {
  return `ipc://@tickcast-test-control-${randomBytes(6).toString('hex')}`;
}

interface GatewayHandle {
  control: GatewayControl;
  endpoint: string;
  /** This gateway's id, as it puts it in every session message. */
  id: string;
  registered: Array<{ remote: RemoteAdapter; info: AdapterInfo }>;
  /** Status events and registrations, per feed, in order (`sim live`, `sim down: …`, `sim reconnect <epoch>`). */
  events: string[];
  /** Says bye to the adapters, then closes the socket. */
  close(): Promise<void>;
}

interface GatewayOptions {
  endpoint?: string;
  commandTimeoutMs?: number;
  missedHeartbeats?: number;
  decide?: (info: AdapterInfo) => AdapterDecision;
}

async function startGateway(options: GatewayOptions = {}): Promise<GatewayHandle> {
  const registered: GatewayHandle['registered'] = [];
  const events: string[] = [];
  // Rebinding an endpoint just closed can fail while ZeroMQ's I/O thread is still releasing it.
  let transport: ZmqGatewayTransport | undefined;
  for (let attempt = 0; !transport; attempt++) {
    try {
      transport = await ZmqGatewayTransport.bind(options.endpoint ?? 'tcp://127.0.0.1:0', logger);
    } catch (error) {
      if (attempt === 20 || !options.endpoint) throw error;
      await sleep(50);
    }
  }
  const id = `gw-${randomBytes(4).toString('hex')}`;
  const control = new GatewayControl({
    transport,
    key,
    instance: 'default',
    gateway: id,
    heartbeatMs: HEARTBEAT_MS,
    missedHeartbeats: options.missedHeartbeats ?? MISSED,
    commandTimeoutMs: options.commandTimeoutMs ?? 2000,
    clock: systemClock,
    logger,
    onAdapter: (remote, info) => {
      const decision = options.decide?.(info) ?? { accept: true };
      if (!decision.accept) return decision;
      registered.push({ remote, info });
      remote.onStatus((event) => events.push(event.message ? `${event.feed} ${event.status}: ${event.message}` : `${event.feed} ${event.status}`));
      remote.onReconnect((registration) => events.push(`${registration.feed} reconnect ${registration.epoch}`));
      return { accept: true };
    },
  });
  const bound = transport;
  const close = async (): Promise<void> => {
    await control.close();
    await bound.close();
  };
  cleanups.push(close);
  return { control, endpoint: transport.endpoint, id, registered, events, close };
}

/** An adapter transport that keeps every frame sent through `send` (announcements excepted). */
class RecordingTransport extends ForwardingTransport<ZmqAdapterTransport> implements AdapterTransport {
  readonly sent: string[] = [];
  override send(to: string, frame: string): Promise<boolean> {
    this.sent.push(frame);
    return this.inner.send(to, frame);
  }
  announce(frame: string): void {
    this.inner.announce(frame);
  }
  /** Frames sent so far of `type`. */
  ofType(type: string): string[] {
    return this.sent.filter((frame) => bodyOf(frame).type === type);
  }
}

interface AdapterHandle {
  control: AdapterControl;
  transport: AdapterTransport;
  adapter: FakeAdapter;
  refused: string[];
  lost: string[];
  found: number;
  /** Says bye to its gateways, then closes its socket. */
  stop(): Promise<void>;
  /** Stops without a word and closes its socket, as a killed process would. */
  crash(): Promise<void>;
}

interface AdapterOptions {
  feed?: string;
  broker?: string;
  brokers?: string[] | '*';
  instance?: string;
  /** Another transport than a fresh DEALER connected to the endpoint. */
  transport?: AdapterTransport;
  adapter?: FakeAdapter;
}

function startAdapter(endpoint: string, options: AdapterOptions = {}): AdapterHandle {
  const adapter = options.adapter ?? new FakeAdapter(options.feed ?? 'sim', options.broker ?? 'simulator');
  const transport = options.transport ?? new ZmqAdapterTransport(endpoint, logger);
  const handle = { adapter, transport, refused: [], lost: [], found: 0 } as unknown as AdapterHandle;
  handle.control = new AdapterControl({
    transport,
    key,
    adapter,
    brokers: options.brokers ?? '*',
    instance: options.instance ?? 'default',
    heartbeatMs: HEARTBEAT_MS,
    missedHeartbeats: MISSED,
    clock: systemClock,
    logger,
    onRefused: (message) => handle.refused.push(message),
    onGatewayLost: (reason) => handle.lost.push(reason),
    onGatewayFound: () => (handle.found += 1),
  });
  handle.stop = async () => {
    await handle.control.stop();
    await transport.close();
  };
  handle.crash = async () => {
    await handle.control.stop({ bye: false });
    await transport.close();
  };
  handle.control.start();
  cleanups.push(() => handle.stop());
  return handle;
}

/** A gateway with one registered adapter. */
async function connected(endpoint?: string) {
  const gateway = await startGateway(endpoint ? { endpoint } : {});
  const handle = startAdapter(gateway.endpoint);
  await waitFor(() => handle.control.gatewayCount === 1 && gateway.registered.length === 1, 'registration');
  const { control, transport, adapter, lost, stop, crash } = handle;
  const { registered, events } = gateway;
  // `handle.found` changes later: read it from the handle.
  return { gateway, handle, remote: gateway.registered[0]!.remote, registered, events, control, transport, adapter, lost, stop, crash };
}

/** A raw ZeroMQ socket that collects everything it receives, read in order with `next`. */
class RawPeer<S extends zmq.Dealer | zmq.Router> {
  readonly received: Buffer[][] = [];
  private cursor = 0;

  constructor(readonly socket: S) {
    void this.loop();
    cleanups.push(() => socket.close());
  }

  private async loop(): Promise<void> {
    while (!this.socket.closed) {
      try {
        this.received.push(await this.socket.receive());
      } catch {
        return;
      }
    }
  }

  /** The next message (after those already read) that `accept` takes; the ones skipped are read too. */
  async next(what: string, accept: (parts: Buffer[]) => boolean = () => true): Promise<Buffer[]> {
    for (;;) {
      await waitFor(() => this.cursor < this.received.length, what);
      const parts = this.received[this.cursor++]!;
      if (accept(parts)) return parts;
    }
  }
}

/** A raw DEALER for speaking the protocol (or garbage) by hand to a gateway. */
function rawDealer(endpoint: string): RawPeer<zmq.Dealer> {
  const socket = new zmq.Dealer({ routingId: `raw-${randomBytes(4).toString('hex')}`, linger: 0 });
  socket.connect(endpoint);
  return new RawPeer(socket);
}

/** A raw ROUTER standing in for a gateway, driven by hand. */
async function rawRouter(): Promise<RawPeer<zmq.Router>> {
  const socket = new zmq.Router({ linger: 0 });
  await socket.bind('tcp://127.0.0.1:*');
  return new RawPeer(socket);
}

function announceOf(feed: string, epoch: number): ControlMessage {
  return { type: 'announce', protocol: PROTOCOL_VERSION, feed, broker: 'simulator', brokers: '*', instance: 'default', pid: 4343, host: 'raw-host', epoch, heartbeatMs: HEARTBEAT_MS };
}

/** What an adapter sent to a raw ROUTER, decoded (the MAC is checked by the test where it matters). */
function fromAdapter(parts: Buffer[]): { identity: Buffer; frame: string; message: ToGateway } {
  const decoded = decodeToGateway(parts[1]!);
  if (!decoded.ok) throw new Error(`the adapter sent an undecodable frame: ${decoded.error}`);
  return { identity: parts[0]!, frame: parts[1]!.toString(), message: decoded.message };
}

const typeFromAdapter = (type: ToGateway['type']) => (parts: Buffer[]) => {
  const decoded = decodeToGateway(parts[1]!);
  return decoded.ok && decoded.message.type === type;
};
/** Anything but the announcements an adapter repeats every heartbeat. */
const notAnnounce = (parts: Buffer[]): boolean => !typeFromAdapter('announce')(parts);

describe('control channel', () => {
  it('registers an adapter: onAdapter gets its info, the feed goes live and onReconnect fires once', async () => {
    const { registered, events, remote, control, adapter, handle } = await connected();
    expect(registered).toHaveLength(1);
    expect(registered[0]!.info).toEqual({
      protocol: PROTOCOL_VERSION,
      feed: 'sim',
      broker: 'simulator',
      brokers: '*',
      instance: 'default',
      pid: PID,
      host: HOST,
      epoch: control.epoch,
      heartbeatMs: HEARTBEAT_MS,
    });
    expect(remote).toMatchObject({ feed: 'sim', broker: 'simulator', brokers: '*', pid: PID, connected: true });
    expect(remote.status()).toBe('live');
    expect(events).toEqual(['sim live', `sim reconnect ${control.epoch}`]);
    expect(control.gatewayCount).toBe(1);
    expect(adapter.calls).toEqual([]);
    expect(handle.found).toBe(1);
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

  it("answers a feed host's commands with a refusal, touching nothing: this adapter serves one feed", async () => {
    const { remote, adapter } = await connected();
    const refusal = { ok: false, message: 'adapter of feed "sim" is not a feed host: it opens no users\' feeds' };
    expect(await remote.request({ type: 'open', feed: 'dhan.alice', broker: 'dhan', user: 'alice' })).toEqual(refusal);
    expect(await remote.request({ type: 'subscribe', feed: 'dhan.alice', exchange: 'NSE', symbol: 'SBIN', mode: 2, depth: 5 })).toEqual(refusal);
    expect(await remote.request({ type: 'relogin', feed: 'dhan.alice' })).toEqual(refusal);
    expect(adapter.calls).toEqual([]);
    // Its own feed is served as before.
    expect(await remote.subscribe(RELIANCE, 1, 0)).toEqual({ ok: true, depth: 5 });
  });

  it('fails a command the adapter never answers after commandTimeoutMs, naming the feed and the time', async () => {
    const gateway = await startGateway({ commandTimeoutMs: 300 });
    const { adapter, control } = startAdapter(gateway.endpoint);
    await waitFor(() => control.gatewayCount === 1 && gateway.registered.length === 1, 'registration');
    adapter.behaviour = () => new Promise(() => {});
    expect(await gateway.registered[0]!.remote.subscribe(RELIANCE, 1, 0)).toEqual({ ok: false, message: 'Feed "sim" did not answer within 300 ms' });
  });

  it('keeps the feed live while heartbeats flow both ways', async () => {
    const { remote, events, lost, control, gateway } = await connected();
    await sleep(HEARTBEAT_MS * MISSED * 3);
    expect(remote.status()).toBe('live');
    expect(events).toEqual(['sim live', `sim reconnect ${control.epoch}`]);
    expect(lost).toEqual([]);
    expect(gateway.control.counters).toEqual({ malformed: 0, unauthenticated: 0, refused: 0, reregistrations: 0 });
    expect(control.counters).toEqual({ malformed: 0, unauthenticated: 0, gatewaysLost: 0 });
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
    const { remote, adapter, crash, events } = await connected();
    adapter.behaviour = () => new Promise(() => {});
    const pending = remote.subscribe(RELIANCE, 1, 0);
    await waitFor(() => adapter.calls.length === 1, 'the command to arrive');
    await crash();
    const result = await pending;
    // Noticed by silence (about missedHeartbeats × heartbeatMs), not by the 2 s command timeout.
    expect(result.ok).toBe(false);
    expect(result.ok === false && result.message).toMatch(new RegExp(`^Feed "sim" adapter \\(pid ${PID}\\) sent nothing for ${DURATION}$`));
    expect(remote.status()).toBe('down');
    expect(remote.connected).toBe(false);
    expect(events.at(-1)).toMatch(/^sim down: Feed "sim" adapter \(pid \d+\) sent nothing for/);
    expect(await remote.subscribe(RELIANCE, 1, 0)).toEqual({ ok: false, message: 'Feed "sim" is not connected' });
    expect(await remote.requestUnsubscribe(RELIANCE)).toEqual({ ok: false, message: 'Feed "sim" is not connected' });
  });

  it('marks an adapter down at once when it says bye', async () => {
    const { remote, stop, events } = await connected();
    await stop();
    await waitFor(() => remote.status() === 'down', 'down');
    // The bye's reason, not the silence's.
    expect(events.at(-1)).toBe(`sim down: Feed "sim" adapter (pid ${PID}) stopped`);
    expect(remote.connected).toBe(false);
  });

  it('lets a restarted adapter take over its dead feed: same RemoteAdapter, live again, onReconnect fires', async () => {
    const { gateway, registered, remote, crash, events } = await connected();
    await crash();
    await waitFor(() => remote.status() === 'down', 'down');
    const second = startAdapter(gateway.endpoint);
    await waitFor(() => second.control.gatewayCount === 1 && remote.status() === 'live', 'second registration');
    expect(registered).toHaveLength(1); // onAdapter is not asked again
    expect(remote.pid).toBe(PID);
    expect(events.slice(2)).toEqual([expect.stringMatching(/^sim down: .* sent nothing for/), 'sim live', `sim reconnect ${second.control.epoch}`]);
    expect(await remote.subscribe(RELIANCE, 2, 5)).toEqual({ ok: true, depth: 5 });
    expect(second.adapter.calls).toEqual(['subscribe NSE:RELIANCE 2 5']);
  });

  it('lets an adapter restarted before its death was noticed take over (its old connection is gone)', async () => {
    // Silence would take 30 periods to notice: the take-over cannot come from it.
    const gateway = await startGateway({ missedHeartbeats: 30 });
    const first = startAdapter(gateway.endpoint);
    await waitFor(() => first.control.gatewayCount === 1 && gateway.registered.length === 1, 'registration');
    const { remote } = gateway.registered[0]!;
    first.adapter.behaviour = () => new Promise(() => {});
    const pending = remote.subscribe(RELIANCE, 1, 0);
    await waitFor(() => first.adapter.calls.length === 1, 'the command to arrive');
    await first.crash();
    const second = startAdapter(gateway.endpoint);
    await waitFor(() => second.control.gatewayCount === 1, 'second registration');
    const result = await pending;
    expect(result.ok).toBe(false);
    expect(result.ok === false && result.message).toBe(`Feed "sim" adapter (pid ${PID}) restarted before answering`);
    expect(gateway.registered).toHaveLength(1);
    expect(remote.status()).toBe('live');
    expect(gateway.events.filter((event) => event.includes('reconnect'))).toEqual([`sim reconnect ${first.control.epoch}`, `sim reconnect ${second.control.epoch}`]);
    expect(gateway.events.some((event) => event.includes('sent nothing'))).toBe(false);
    // Seamless for the feed's clients: no `down` between the two processes.
    expect(gateway.events).toEqual(['sim live', `sim reconnect ${first.control.epoch}`, `sim reconnect ${second.control.epoch}`]);
    expect(await remote.subscribe(TCS, 1, 0)).toEqual({ ok: true, depth: 5 });
    expect(second.adapter.calls).toEqual(['subscribe NSE:TCS 1 0']);
  });

  it('refuses a second adapter for a feed id that a live adapter serves', async () => {
    const { gateway, remote, registered, adapter } = await connected();
    const second = startAdapter(gateway.endpoint);
    await waitFor(() => second.refused.length === 1, 'refusal');
    expect(second.refused).toEqual([`feed id "sim" is already served by pid ${PID} on ${HOST}`]);
    expect(second.control.gatewayCount).toBe(0);
    expect(gateway.control.counters.refused).toBe(1);
    expect(registered).toHaveLength(1);
    expect(remote.status()).toBe('live');
    expect(await remote.subscribe(RELIANCE, 1, 0)).toEqual({ ok: true, depth: 5 });
    expect(adapter.calls).toEqual(['subscribe NSE:RELIANCE 1 0']);
    expect(second.adapter.calls).toEqual([]);
  });

  it('two adapters starting at once with one feed id: one is registered, the other refused, never taking turns', async () => {
    const gateway = await startGateway();
    const first = startAdapter(gateway.endpoint);
    const second = startAdapter(gateway.endpoint);
    await waitFor(() => first.refused.length + second.refused.length === 1, 'one refusal', 10_000);
    const [winner, loser] = first.refused.length === 0 ? [first, second] : [second, first];
    await waitFor(() => winner.control.gatewayCount === 1, 'the winner registered');
    expect(loser.refused[0]).toMatch(/^feed id "sim" is already served by pid/);
    expect(gateway.registered).toHaveLength(1);
    expect(gateway.events.filter((event) => event.includes('reconnect'))).toEqual([`sim reconnect ${winner.control.epoch}`]);
  });

  it('refuses adapters the gateway rejects, from another instance, or with another broker for a known feed', async () => {
    const gateway = await startGateway({
      decide: (info) => (info.feed === 'banned' ? { accept: false, message: 'no adapter for broker "banned"' } : { accept: true }),
    });
    const banned = startAdapter(gateway.endpoint, { feed: 'banned' });
    const stranger = startAdapter(gateway.endpoint, { feed: 'other', instance: 'prod' });
    await waitFor(() => banned.refused.length === 1 && stranger.refused.length === 1, 'refusals');
    expect(banned.refused).toEqual(['no adapter for broker "banned"']);
    expect(stranger.refused).toEqual(['this gateway serves instance "default", not "prod"']);
    expect(gateway.registered).toHaveLength(0);

    const first = startAdapter(gateway.endpoint);
    await waitFor(() => first.control.gatewayCount === 1 && gateway.registered.length === 1, 'registration');
    await first.stop();
    const changed = startAdapter(gateway.endpoint, { feed: 'sim', broker: 'zerodha', brokers: ['zerodha'] });
    await waitFor(() => changed.refused.length === 1, 'refusal');
    expect(changed.refused[0]).toBe('feed id "sim" is registered for broker simulator (any broker), not zerodha (zerodha); restart the gateway to change it');
    expect(gateway.registered).toHaveLength(1);
    expect(gateway.control.counters.refused).toBe(3);
    expect(changed.adapter.calls).toEqual([]);
  });

  it('runs two adapters on one gateway, each with its own feed', async () => {
    const gateway = await startGateway();
    const a = startAdapter(gateway.endpoint, { feed: 'sim' });
    const b = startAdapter(gateway.endpoint, { feed: 'sim2' });
    await waitFor(() => gateway.registered.length === 2 && a.control.gatewayCount === 1 && b.control.gatewayCount === 1, 'two registrations');
    const byFeed = new Map(gateway.registered.map(({ remote }) => [remote.feed, remote]));
    expect(await Promise.all([byFeed.get('sim')!.subscribe(RELIANCE, 1, 0), byFeed.get('sim2')!.subscribe(TCS, 2, 0)])).toEqual([
      { ok: true, depth: 5 },
      { ok: true, depth: 5 },
    ]);
    expect(a.adapter.calls).toEqual(['subscribe NSE:RELIANCE 1 0']);
    expect(b.adapter.calls).toEqual(['subscribe NSE:TCS 2 0']);
  });

  it('drops every local subscription when the gateway says bye, and registers with the next gateway', async () => {
    const endpoint = ipcEndpoint();
    const first = await connected(endpoint);
    const { remote, adapter, control, lost, gateway } = first;
    await remote.subscribe(RELIANCE, 1, 0);
    await remote.subscribe(TCS, 3, 5);
    expect(adapter.subscribed.size).toBe(2);
    await gateway.close();
    await waitFor(() => lost.length === 1, 'gateway loss');
    expect(lost).toEqual([`the gateway closed the control channel (${HOST} pid ${PID} said bye)`]);
    expect(control.gatewayCount).toBe(0);
    await waitFor(() => adapter.subscribed.size === 0, 'local unsubscribes');
    expect(adapter.calls.slice(-2).sort()).toEqual(['unsubscribe NSE:RELIANCE', 'unsubscribe NSE:TCS']);
    expect(remote.status()).toBe('down');

    // A gateway comes back on the same endpoint: the adapter (still announcing) registers with it.
    const again = await startGateway({ endpoint });
    await waitFor(() => control.gatewayCount === 1 && again.registered.length === 1, 're-registration');
    expect(again.registered[0]!.info.epoch).toBe(control.epoch);
    expect(again.events).toEqual(['sim live', `sim reconnect ${control.epoch}`]);
    expect(await again.registered[0]!.remote.subscribe(TCS, 2, 0)).toEqual({ ok: true, depth: 5 });
    expect(adapter.calls.at(-1)).toBe('subscribe NSE:TCS 2 0');
  });

  it('waits for a gateway that is not there yet, then registers when it appears', async () => {
    const endpoint = ipcEndpoint();
    const early = startAdapter(endpoint);
    await sleep(HEARTBEAT_MS * 4);
    expect(early.control.gatewayCount).toBe(0);
    expect(early.found).toBe(0);
    const gateway = await startGateway({ endpoint });
    await waitFor(() => early.control.gatewayCount === 1 && gateway.registered.length === 1, 'registration');
    // The announcements that could not be sent while no gateway listened were dropped, not
    // queued: one registration, one reconnect.
    await sleep(HEARTBEAT_MS * 2);
    expect(gateway.registered).toHaveLength(1);
    expect(gateway.events).toEqual(['sim live', `sim reconnect ${early.control.epoch}`]);
    expect(gateway.control.counters.reregistrations).toBe(0);
    expect(early.found).toBe(1);
  });

  it('moves to a gateway at a new endpoint (transport.reconnect, then dropGateways)', async () => {
    const { remote, adapter, control, transport, lost } = await connected();
    expect(await remote.subscribe(RELIANCE, 1, 0)).toEqual({ ok: true, depth: 5 });
    const next = await startGateway();
    (transport as ZmqAdapterTransport).reconnect(next.endpoint);
    control.dropGateways(`moving to the gateway at ${next.endpoint}`);
    expect(lost).toEqual([`moving to the gateway at ${next.endpoint}`]);
    await waitFor(() => control.gatewayCount === 1 && next.registered.length === 1, 'registration with the new gateway');
    await waitFor(() => adapter.subscribed.size === 0, 'local unsubscribe');
    expect(adapter.calls.at(-1)).toBe('unsubscribe NSE:RELIANCE');
    expect(await next.registered[0]!.remote.subscribe(TCS, 1, 0)).toEqual({ ok: true, depth: 5 });
    expect(adapter.calls.at(-1)).toBe('subscribe NSE:TCS 1 0');
    // The old gateway no longer hears from it.
    await waitFor(() => remote.status() === 'down', 'old gateway marking it down');
  });

  it('counts garbage as malformed and keeps serving', async () => {
    const { gateway, remote } = await connected();
    const raw = rawDealer(gateway.endpoint);
    const fakeMac = '0'.repeat(64);
    await raw.socket.send('not json at all');
    await raw.socket.send(Buffer.from([0, 1, 2, 255]));
    await raw.socket.send('{"type":"reply","id":-1,"ok":true}'); // bare JSON, no protocol and session: not even version 1
    await raw.socket.send(`${fakeMac} not json`);
    await raw.socket.send(`${fakeMac} ["an array"]`);
    const badPid = JSON.stringify({ ...announceOf('raw', 1), pid: 'nope' });
    await raw.socket.send(`${mac(key, badPid)} ${badPid}`); // rightly keyed, invalid fields
    const unknown = JSON.stringify({ type: 'nonsense' });
    await raw.socket.send(`${mac(key, unknown)} ${unknown}`);
    const huge = JSON.stringify({ ...announceOf('raw', 1), host: 'h', padding: 'x'.repeat(70_000) });
    await raw.socket.send(`${mac(key, huge)} ${huge}`); // over 64 KiB of JSON
    await raw.socket.send(['two', 'frames']); // not a control message at all: dropped by the transport, uncounted
    await raw.socket.send('x'.repeat(100_000));
    await waitFor(() => gateway.control.counters.malformed === 9, 'nine malformed messages');
    expect(await remote.subscribe(RELIANCE, 1, 0)).toEqual({ ok: true, depth: 5 });
    expect(remote.status()).toBe('live');
    expect(gateway.control.counters).toMatchObject({ malformed: 9, unauthenticated: 0, refused: 0 });
    expect(gateway.registered).toHaveLength(1);
    expect(raw.received).toEqual([]);
  });

  it('answers a stranger with reset keyed with the instance key, and replays only for a new registration', async () => {
    const router = await rawRouter();
    const { adapter, control } = startAdapter(router.socket.lastEndpoint!);
    const GW = 'gw-raw';
    const { identity } = fromAdapter(await router.next('an announce', typeFromAdapter('announce')));
    const send = (message: ToAdapter, with_: Buffer) => router.socket.send([identity, encodeFrame(message, with_)]);
    const nextFrame = async (what: string) => fromAdapter(await router.next(what, notAnnounce));

    // A session message from a gateway it does not know: reset, keyed with the instance key.
    const strangerKey = randomBytes(32);
    await send({ type: 'heartbeat', gateway: 'gw-stranger', session: 7, seq: 1 }, strangerKey);
    const reset = await nextFrame('a reset');
    expect(reset.message).toEqual({ type: 'reset', gateway: 'gw-stranger', session: 7, message: 'Feed "sim" does not know this gateway\'s registration; register again' });
    const body = reset.frame.slice(65);
    expect(authentic(key, body, reset.frame.slice(0, 64))).toBe(true);
    expect(authentic(strangerKey, body, reset.frame.slice(0, 64))).toBe(false);
    // A bye from a stranger gets no answer: the next answer is to the heartbeat after it.
    // At most one reset per gateway id and heartbeat period (anyone can provoke them); a bye gets none.
    await send({ type: 'heartbeat', gateway: 'gw-stranger', session: 7, seq: 2 }, strangerKey);
    await send({ type: 'bye', gateway: 'gw-other', session: 8, seq: 1 }, strangerKey);
    await send({ type: 'heartbeat', gateway: 'gw-other', session: 9, seq: 1 }, strangerKey);
    expect((await nextFrame('a reset')).message).toMatchObject({ type: 'reset', gateway: 'gw-other', session: 9 });

    // Registration 1.
    const register = (session: number, nonce: string): ToAdapter => ({ type: 'register', protocol: PROTOCOL_VERSION, gateway: GW, session, nonce, heartbeatMs: HEARTBEAT_MS, pid: 4242, host: 'raw-gw' });
    const nonce1 = newNonce();
    await send(register(1, nonce1), key);
    const registered1 = await nextFrame('registered');
    expect(registered1.message).toMatchObject({ type: 'registered', feed: 'sim', gateway: GW, session: 1, gatewayNonce: nonce1, epoch: control.epoch, status: 'live' });
    // The same register repeated (its answer was slow): the very same answer, no new nonce.
    await send(register(1, nonce1), key);
    expect((await nextFrame('registered again')).frame).toBe(registered1.frame);
    const keys1 = sessionKeys(key, nonce1, (registered1.message as { nonce: string }).nonce);
    let seq = 0;
    const inSession = (session: number, keys: SessionKeys, message: Record<string, unknown>) =>
      router.socket.send([identity, encodeFrame({ ...message, gateway: GW, session, seq: ++seq } as ControlMessage, keys.toAdapter)]);
    await inSession(1, keys1, { type: 'subscribe', id: 1, exchange: 'NSE', symbol: 'RELIANCE', mode: 1, depth: 0 });
    expect((await nextFrame('a reply')).message).toMatchObject({ type: 'reply', session: 1, id: 1, ok: true, depth: 5 });
    await inSession(1, keys1, { type: 'subscribe', id: 2, exchange: 'NSE', symbol: 'TCS', mode: 2, depth: 0 });
    expect((await nextFrame('a reply')).message).toMatchObject({ type: 'reply', session: 1, id: 2, ok: true, depth: 5 });
    await inSession(1, keys1, { type: 'heartbeat', digest: digestOf([{ ...RELIANCE, mode: 1 }, { ...TCS, mode: 2 }]) });
    expect((await nextFrame('a heartbeat')).message).toMatchObject({ type: 'heartbeat', session: 1, resync: false, status: 'live' });
    expect(control.gatewayCount).toBe(1);

    // Registration 2: a fresh nonce; nothing is released until the replay ends.
    const nonce2 = newNonce();
    await send(register(2, nonce2), key);
    const registered2 = await nextFrame('registered');
    expect(registered2.message).toMatchObject({ type: 'registered', session: 2, gatewayNonce: nonce2 });
    expect((registered2.message as { nonce: string }).nonce).not.toBe((registered1.message as { nonce: string }).nonce);
    const keys2 = sessionKeys(key, nonce2, (registered2.message as { nonce: string }).nonce);
    seq = 0;
    // The replay: RELIANCE only. Upstream already holds it: no new upstream subscribe.
    await inSession(2, keys2, { type: 'subscribe', id: 3, exchange: 'NSE', symbol: 'RELIANCE', mode: 1, depth: 0 });
    expect((await nextFrame('a reply')).message).toMatchObject({ type: 'reply', session: 2, id: 3, ok: true, depth: 5 });
    expect(adapter.subscribed.size).toBe(2);
    // The digest ends the replay: TCS, not replayed, is released.
    await inSession(2, keys2, { type: 'heartbeat', digest: digestOf([{ ...RELIANCE, mode: 1 }]) });
    expect((await nextFrame('a heartbeat')).message).toMatchObject({ type: 'heartbeat', session: 2, resync: false });
    await waitFor(() => adapter.subscribed.size === 1, 'TCS released');
    expect(adapter.calls).toEqual(['subscribe NSE:RELIANCE 1 0', 'subscribe NSE:TCS 2 0', 'unsubscribe NSE:TCS']);
    // Registration 1 is over: its messages are answered with reset.
    await inSession(1, keys1, { type: 'heartbeat' });
    expect((await nextFrame('a reset')).message).toMatchObject({ type: 'reset', gateway: GW, session: 1 });
    expect(control.gatewayCount).toBe(1);
  });

  it('adapter: loses a silent gateway, drops its subscriptions, and registers again', async () => {
    const router = await rawRouter();
    const handle = startAdapter(router.socket.lastEndpoint!);
    const { adapter, control, lost } = handle;
    const GW = 'gw-silent';
    const { identity } = fromAdapter(await router.next('an announce', typeFromAdapter('announce')));
    const nextFrame = async (what: string) => fromAdapter(await router.next(what, notAnnounce));
    const register = (session: number, nonce: string): ToAdapter => ({ type: 'register', protocol: PROTOCOL_VERSION, gateway: GW, session, nonce, heartbeatMs: HEARTBEAT_MS, pid: 4242, host: 'raw-gw' });
    const registerWith = async (session: number) => {
      const nonce = newNonce();
      await router.socket.send([identity, encodeFrame(register(session, nonce), key)]);
      const answer = await nextFrame('registered');
      expect(answer.message).toMatchObject({ type: 'registered', session, gatewayNonce: nonce });
      return { nonce, keys: sessionKeys(key, nonce, (answer.message as { nonce: string }).nonce) };
    };
    let seq = 0;
    const inSession = (session: number, keys: SessionKeys, message: Record<string, unknown>) =>
      router.socket.send([identity, encodeFrame({ ...message, gateway: GW, session, seq: ++seq } as ControlMessage, keys.toAdapter)]);

    const first = await registerWith(1);
    await inSession(1, first.keys, { type: 'subscribe', id: 1, exchange: 'NSE', symbol: 'RELIANCE', mode: 1, depth: 0 });
    expect((await nextFrame('a reply')).message).toEqual({ type: 'reply', gateway: GW, session: 1, seq: 1, id: 1, ok: true, depth: 5 });
    expect(control.gatewayCount).toBe(1);
    expect(handle.found).toBe(1);

    // The gateway goes silent (no heartbeats): the adapter gives it up and drops RELIANCE.
    await waitFor(() => lost.length === 1, 'gateway loss');
    expect(lost[0]).toMatch(new RegExp(`^nothing from the gateway for ${DURATION} \\(raw-gw pid 4242\\)$`));
    expect(control.counters.gatewaysLost).toBe(1);
    await waitFor(() => adapter.subscribed.size === 0, 'local unsubscribe');
    expect(adapter.calls).toEqual(['subscribe NSE:RELIANCE 1 0', 'unsubscribe NSE:RELIANCE']);

    // Commands of the lost registration are not run: they get a reset.
    await inSession(1, first.keys, { type: 'subscribe', id: 2, exchange: 'NSE', symbol: 'INFY', mode: 1, depth: 0 });
    expect((await nextFrame('a reset')).message).toMatchObject({ type: 'reset', gateway: GW, session: 1 });
    expect(adapter.calls).toHaveLength(2);

    // It registers anew (the gateway heard the reset).
    const second = await registerWith(2);
    seq = 0;
    await inSession(2, second.keys, { type: 'subscribe', id: 3, exchange: 'NSE', symbol: 'TCS', mode: 2, depth: 0 });
    expect((await nextFrame('a reply')).message).toMatchObject({ type: 'reply', session: 2, id: 3, ok: true, depth: 5 });
    expect(control.gatewayCount).toBe(1);
    expect(handle.found).toBe(2);
    // A stale register of the old round is ignored: the next answer is the heartbeat's.
    await router.socket.send([identity, encodeFrame(register(1, first.nonce), key)]);
    await inSession(2, second.keys, { type: 'heartbeat' });
    expect((await nextFrame('a heartbeat')).message).toMatchObject({ type: 'heartbeat', session: 2, resync: false });
    expect(adapter.calls.at(-1)).toBe('subscribe NSE:TCS 2 0');
    // Garbage from the gateway is counted, never fatal.
    await router.socket.send([identity, 'garbage']);
    await waitFor(() => control.counters.malformed === 1, 'malformed count');
    await inSession(2, second.keys, { type: 'heartbeat', digest: digestOf([{ ...TCS, mode: 2 }]) });
    expect((await nextFrame('a heartbeat')).message).toMatchObject({ type: 'heartbeat', session: 2, resync: false });
  });

  it('never offers an adapter announcing with a wrong key, and still registers a legit one', async () => {
    const gateway = await startGateway();
    const raw = rawDealer(gateway.endpoint);
    const wrongKey = randomBytes(32);
    for (let i = 0; i < 3; i++) {
      await raw.socket.send(encodeFrame(announceOf('intruder', 77), wrongKey));
      await sleep(HEARTBEAT_MS);
    }
    await waitFor(() => gateway.control.counters.unauthenticated >= 3, 'unauthenticated announcements');
    const legit = startAdapter(gateway.endpoint);
    await waitFor(() => legit.control.gatewayCount === 1 && gateway.registered.length === 1, 'registration');
    // A few more periods: the gateway would have sent its register by now.
    await raw.socket.send(encodeFrame(announceOf('intruder', 77), wrongKey));
    await sleep(HEARTBEAT_MS * 3);
    expect(gateway.registered.map(({ info }) => info.feed)).toEqual(['sim']);
    expect(raw.received).toEqual([]);
    expect(gateway.control.counters.unauthenticated).toBe(4);
    expect(gateway.control.counters.refused).toBe(0);
    expect(await gateway.registered[0]!.remote.subscribe(RELIANCE, 1, 0)).toEqual({ ok: true, depth: 5 });
  });

  it('refuses a version-1 adapter in its own words, naming both versions', async () => {
    const gateway = await startGateway();
    const raw = rawDealer(gateway.endpoint);
    await raw.socket.send(
      JSON.stringify({ type: 'hello', protocol: 1, feed: 'old', broker: 'simulator', brokers: '*', pid: 1, session: 4, heartbeatMs: 1000, status: 'live' }),
    );
    const [frame] = await raw.next('a refusal');
    const text = frame!.toString();
    expect(text.startsWith('{')).toBe(true); // plain JSON, no MAC: what version 1 understands
    const refusal = JSON.parse(text) as Record<string, unknown>;
    expect(refusal).toEqual({ type: 'refused', session: 4, message: expect.any(String) });
    expect(refusal.message).toMatch(/control protocol 1 is not supported/);
    expect(refusal.message).toMatch(/speaks 2/);
    expect(gateway.control.counters.refused).toBe(1);
    expect(gateway.registered).toHaveLength(0);
  });

  it('ignores frames of an adapter replayed within their registration or after it moved on', async () => {
    const gateway = await startGateway();
    const recording = new RecordingTransport(new ZmqAdapterTransport(gateway.endpoint, logger));
    const first = startAdapter(gateway.endpoint, { transport: recording });
    await waitFor(() => first.control.gatewayCount === 1 && gateway.registered.length === 1, 'registration');
    const { remote } = gateway.registered[0]!;
    const counters = gateway.control.counters;
    expect(await remote.subscribe(RELIANCE, 1, 0)).toEqual({ ok: true, depth: 5 });
    first.adapter.setStatus('reconnecting', 'upstream socket closed');
    await waitFor(() => remote.status() === 'reconnecting', 'reconnecting');
    first.adapter.setStatus('live');
    await waitFor(() => remote.status() === 'live', 'live');
    const [reply] = recording.ofType('reply');
    const [reconnecting] = recording.ofType('status');
    const [registered1] = recording.ofType('registered');
    expect(bodyOf(reconnecting!)).toMatchObject({ status: 'reconnecting', session: 1 });
    const eventsBefore = [...gateway.events];

    // Replayed within the registration: the same seq again, refused.
    await recording.inner.send('gateway', reconnecting!);
    await recording.inner.send('gateway', reply!);
    await waitFor(() => counters.unauthenticated === 2, 'replays refused');
    expect(await remote.subscribe(TCS, 1, 0)).toEqual({ ok: true, depth: 5 }); // frames before it were handled
    expect(remote.status()).toBe('live');
    expect(gateway.events).toEqual(eventsBefore);

    // The adapter stops (a bye of registration 1), and a new process takes over from the same
    // socket: registration 2.
    await first.control.stop();
    await waitFor(() => remote.status() === 'down', 'down');
    const [bye1] = recording.ofType('bye');
    expect(bodyOf(bye1!)).toMatchObject({ type: 'bye', session: 1 });
    const second = startAdapter(gateway.endpoint, { transport: recording, adapter: new FakeAdapter() });
    await waitFor(() => second.control.gatewayCount === 1 && remote.status() === 'live', 'registration 2');
    expect(recording.ofType('registered').map((frame) => bodyOf(frame).session)).toEqual([1, 2]);
    const unauthenticated = counters.unauthenticated;
    const reregistrations = counters.reregistrations;

    // Registration 1's frames, verbatim: answers to an earlier round, ignored.
    await recording.inner.send('gateway', registered1!);
    await recording.inner.send('gateway', reply!);
    await recording.inner.send('gateway', bye1!);
    // Its bye, moved into registration 2 (its MAC no longer fits): refused.
    const moved = JSON.stringify({ ...bodyOf(bye1!), session: 2, seq: 1_000_000 });
    await recording.inner.send('gateway', `${bye1!.slice(0, 64)} ${moved}`);
    expect(await remote.subscribe(RELIANCE, 2, 0)).toEqual({ ok: true, depth: 5 }); // frames before it were handled
    expect(counters.unauthenticated).toBe(unauthenticated + 1);
    expect(counters.reregistrations).toBe(reregistrations);
    expect(remote.status()).toBe('live');
    expect(remote.connected).toBe(true);
    expect(gateway.events.slice(-2)).toEqual(['sim live', `sim reconnect ${second.control.epoch}`]);
    expect(second.adapter.calls).toEqual(['subscribe NSE:RELIANCE 2 0']);
  });
});
