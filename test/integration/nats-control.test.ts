/**
 * The control protocol (version 2) over NATS against a real nats-server, all in one process:
 * AdapterControls driving in-memory adapters, and GatewayControls ("nodes") whose RemoteAdapters
 * the test drives as Upstream would. Every node and adapter has its own NATS connection and
 * transport; all of them share one instance key.
 */
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Adapter, FeedStatus, FeedStatusEvent, StreamRef, SubscribeResult } from '../../src/feed.js';
import { NatsLink } from '../../src/bus/nats.js';
import { Subjects } from '../../src/bus/subjects.js';
import { systemClock } from '../../src/clock.js';
import { AdapterControl } from '../../src/control/adapter-control.js';
import { encodeFrame } from '../../src/control/codec.js';
import { GatewayControl } from '../../src/control/gateway-control.js';
import { PROTOCOL_VERSION } from '../../src/control/protocol.js';
import type { RemoteAdapter } from '../../src/control/remote-adapter.js';
import type { ControlTransport } from '../../src/control/transport.js';
import { NatsAdapterTransport, NatsGatewayTransport } from '../../src/control/transport-nats.js';
import { silentLogger } from '../../src/observability/logger.js';
import type { Mode } from '../../src/protocol/modes.js';
import { type NatsServer, startNatsServer } from '../helpers/nats-server.js';
import { sleep, waitUntil } from '../helpers/client.js';
import { ForwardingTransport, frameBody as body } from '../helpers/control.js';

const HEARTBEAT_MS = 100;
const MISSED_HEARTBEATS = 3;
const COMMAND_TIMEOUT_MS = 1000;
const logger = silentLogger();
const TCS: StreamRef = { exchange: 'NSE', symbol: 'TCS' };
const INFY: StreamRef = { exchange: 'NSE', symbol: 'INFY' };
const INSTANCE = 'ctl';
const subjects = new Subjects(INSTANCE);
/** The instance's control key, held by every node and adapter of these tests. */
const key = randomBytes(32);

class FakeAdapter implements Adapter {
  readonly broker = 'simulator';
  readonly calls: string[] = [];
  readonly subscribed = new Map<string, Mode>();
  private current: FeedStatus = 'live';
  private readonly listeners: Array<(event: FeedStatusEvent) => void> = [];
  constructor(readonly feed = 'sim') {}
  async start(): Promise<void> {}
  async stop(): Promise<void> {}
  async subscribe(stream: StreamRef, mode: Mode, depth: number): Promise<SubscribeResult> {
    this.calls.push(`subscribe ${stream.symbol} ${mode} ${depth}`);
    if (stream.symbol === 'UNKNOWN') return { ok: false, message: `Symbol ${stream.symbol} not found` };
    this.subscribed.set(stream.symbol, mode);
    return { ok: true, depth: 5 };
  }
  async unsubscribe(stream: StreamRef): Promise<void> {
    this.calls.push(`unsubscribe ${stream.symbol}`);
    this.subscribed.delete(stream.symbol);
  }
  status(): FeedStatus {
    return this.current;
  }
  onStatus(listener: (event: FeedStatusEvent) => void): void {
    this.listeners.push(listener);
  }
  setStatus(status: FeedStatus): void {
    this.current = status;
    for (const listener of this.listeners) listener({ feed: this.feed, status });
  }
}

let server: NatsServer;
const cleanups: Array<() => Promise<void> | void> = [];
beforeAll(async () => {
  server = await startNatsServer();
});
afterAll(async () => {
  await server?.stop();
});
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function link(name: string): Promise<NatsLink> {
  const created = await NatsLink.connect({ servers: [server.url], name, logger });
  cleanups.push(() => created.close());
  return created;
}

/** A fresh control inbox subject nobody listens on (a valid reply-to for frames the test publishes). */
const strangerInbox = (): string => subjects.controlPeer(randomBytes(8).toString('hex'));

interface AdapterHandle {
  host: AdapterControl;
  adapter: FakeAdapter;
  link: NatsLink;
  transport: NatsAdapterTransport;
  /** What `onRefused` was called with, in order. */
  refusals: string[];
}

async function adapterHost(adapter = new FakeAdapter()): Promise<AdapterHandle> {
  const hostLink = await link(`adapter ${adapter.feed}`);
  const transport = new NatsAdapterTransport(hostLink, subjects);
  cleanups.push(() => transport.close());
  const refusals: string[] = [];
  const host = new AdapterControl({
    transport,
    key,
    adapter,
    brokers: '*',
    instance: INSTANCE,
    heartbeatMs: HEARTBEAT_MS,
    missedHeartbeats: MISSED_HEARTBEATS,
    clock: systemClock,
    logger,
    onRefused: (message) => refusals.push(message),
  });
  cleanups.push(() => host.stop());
  host.start();
  return { host, adapter, link: hostLink, transport, refusals };
}

/** Stops an adapter as a crash would: no bye, and nothing it receives is read any more. */
async function crash(handle: AdapterHandle): Promise<void> {
  await handle.host.stop({ bye: false });
  await handle.transport.close();
}

interface NodeHandle {
  control: GatewayControl;
  /** Its gateway id, unique per node. */
  id: string;
  link: NatsLink;
  transport: NatsGatewayTransport;
  remotes: Map<string, RemoteAdapter>;
  /** What this node's "Upstream" holds, replayed on every registration. */
  wanted: Map<string, { stream: StreamRef; mode: Mode }>;
  /** `<feed> registered`, and `<feed> <status>[: message]` for every status event. */
  events: string[];
  subscribe(feed: string, stream: StreamRef, mode: Mode): Promise<SubscribeResult>;
  unsubscribe(feed: string, stream: StreamRef): Promise<SubscribeResult>;
}

let nodeCount = 0;
/** A gateway node; `wrap` may put a test transport between the node and its NATS transport. */
async function gatewayNode(wrap: (transport: ControlTransport) => ControlTransport = (t) => t): Promise<NodeHandle> {
  const nodeLink = await link('node');
  const transport = new NatsGatewayTransport(nodeLink, subjects);
  cleanups.push(() => transport.close());
  const remotes = new Map<string, RemoteAdapter>();
  const wanted = new Map<string, { stream: StreamRef; mode: Mode }>();
  const events: string[] = [];
  const id = `node-${++nodeCount}-${randomBytes(4).toString('hex')}`;
  const control = new GatewayControl({
    transport: wrap(transport),
    key,
    instance: INSTANCE,
    gateway: id,
    heartbeatMs: HEARTBEAT_MS,
    missedHeartbeats: MISSED_HEARTBEATS,
    commandTimeoutMs: COMMAND_TIMEOUT_MS,
    clock: systemClock,
    logger,
    onAdapter: (remote) => {
      remotes.set(remote.feed, remote);
      remote.onStatus((e) => events.push(e.message === undefined ? `${e.feed} ${e.status}` : `${e.feed} ${e.status}: ${e.message}`));
      // Upstream.replay's part: the adapter holds nothing for this node now.
      remote.onReconnect(() => {
        events.push(`${remote.feed} registered`);
        for (const { stream, mode } of wanted.values()) void remote.subscribe(stream, mode, 5);
      });
      return { accept: true };
    },
  });
  cleanups.push(() => control.close());
  return {
    control,
    id,
    link: nodeLink,
    transport,
    remotes,
    wanted,
    events,
    subscribe: async (feed, stream, mode) => {
      const result = await remotes.get(feed)!.subscribe(stream, mode, 5);
      if (result.ok) wanted.set(stream.symbol, { stream, mode });
      return result;
    },
    unsubscribe: async (feed, stream) => {
      wanted.delete(stream.symbol);
      return remotes.get(feed)!.requestUnsubscribe(stream);
    },
  };
}

const registered = (node: NodeHandle, feed = 'sim'): Promise<void> => waitUntil(() => node.remotes.get(feed)?.connected === true, `${feed} registered`);

/** A node's transport that loses the first unsubscribe it is asked to send (and says it sent it). */
class LosingTransport extends ForwardingTransport<ControlTransport> {
  lost: string | undefined;
  override async send(to: string, frame: string): Promise<boolean> {
    if (this.lost === undefined && body(frame).type === 'unsubscribe') {
      this.lost = frame;
      return true;
    }
    return this.inner.send(to, frame);
  }
}

describe('NATS control plane', () => {
  it('nodes find an adapter, register, and it subscribes upstream to the union of their interest', async () => {
    const { host, adapter } = await adapterHost();
    const a = await gatewayNode();
    const b = await gatewayNode();
    await registered(a);
    await registered(b);
    expect(a.remotes.get('sim')!.status()).toBe('live');
    await waitUntil(() => host.gatewayCount === 2, 'both nodes confirmed');

    expect(await a.subscribe('sim', TCS, 1)).toEqual({ ok: true, depth: 5 });
    expect(await b.subscribe('sim', TCS, 3)).toEqual({ ok: true, depth: 5 });
    expect(adapter.subscribed.get('TCS')).toBe(3);
    expect(await a.subscribe('sim', TCS, 2)).toEqual({ ok: true, depth: 5 }); // below the union: nothing upstream
    expect(adapter.calls).toEqual(['subscribe TCS 1 5', 'subscribe TCS 3 5']);

    await b.unsubscribe('sim', TCS);
    expect(adapter.subscribed.get('TCS')).toBe(2); // down to a's mode
    await a.unsubscribe('sim', TCS);
    expect(adapter.subscribed.has('TCS')).toBe(false);
    expect(host.upstreamCount).toBe(0);
  });

  it("a refused subscribe is the adapter's per-symbol error and leaves nothing behind", async () => {
    const { host } = await adapterHost();
    const a = await gatewayNode();
    await registered(a);
    expect(await a.subscribe('sim', { exchange: 'NSE', symbol: 'UNKNOWN' }, 1)).toEqual({ ok: false, message: 'Symbol UNKNOWN not found' });
    expect(host.wantedMode({ exchange: 'NSE', symbol: 'UNKNOWN' })).toBe(0);
    // The digests still agree: no re-registration follows.
    await sleep(HEARTBEAT_MS * 4);
    expect(a.control.counters.reregistrations).toBe(0);
  });

  it("a node's bye releases exactly its share at once", async () => {
    const { host, adapter } = await adapterHost();
    const a = await gatewayNode();
    const b = await gatewayNode();
    await registered(a);
    await registered(b);
    await a.subscribe('sim', TCS, 3);
    await a.subscribe('sim', INFY, 1);
    await b.subscribe('sim', TCS, 1);
    await a.control.close();
    await a.transport.close();
    await waitUntil(() => adapter.subscribed.get('TCS') === 1 && !adapter.subscribed.has('INFY'), "a's interest released");
    // Released by the bye, not by a's silence.
    expect(host.counters.gatewaysLost).toBe(0);
    expect(host.gatewayCount).toBe(1);
    expect(b.remotes.get('sim')!.connected).toBe(true);
  });

  it("a node that stops heartbeating has its interest released after the timeout; the others' stays", async () => {
    const { host, adapter } = await adapterHost();
    const a = await gatewayNode();
    const b = await gatewayNode();
    await registered(a);
    await registered(b);
    await a.subscribe('sim', TCS, 2);
    await b.subscribe('sim', INFY, 1);
    // A crash: the connection goes, no bye.
    await a.link.connection.close();
    await waitUntil(() => !adapter.subscribed.has('TCS'), "the dead node's stream released");
    // Released for silence (the counter of gateways dropped for it), not by a bye.
    expect(host.counters.gatewaysLost).toBe(1);
    expect(adapter.subscribed.get('INFY')).toBe(1);
    expect(host.gatewayCount).toBe(1);
    expect(b.remotes.get('sim')!.connected).toBe(true);
  });

  it('an adapter that restarts is re-registered with and gets the whole set replayed', async () => {
    const first = await adapterHost();
    const a = await gatewayNode();
    await registered(a);
    await a.subscribe('sim', TCS, 3);
    await a.subscribe('sim', INFY, 1);
    // The adapter dies without a word.
    await crash(first);
    await waitUntil(() => a.remotes.get('sim')!.status() === 'down', 'the feed reported down');
    expect(a.events.some((e) => e.startsWith('sim down'))).toBe(true);

    const second = await adapterHost(new FakeAdapter());
    expect(second.host.epoch).not.toBe(first.host.epoch);
    await waitUntil(() => second.adapter.subscribed.get('TCS') === 3 && second.adapter.subscribed.get('INFY') === 1, 'the replay');
    expect(a.remotes.get('sim')!.status()).toBe('live');
    expect(a.events.filter((e) => e === 'sim registered')).toHaveLength(2);
    expect(a.control.counters.reregistrations).toBe(1);
    expect(second.refusals).toEqual([]);
  });

  it('an adapter that stops says bye: nodes report the feed down at once', async () => {
    const { host } = await adapterHost();
    const a = await gatewayNode();
    await registered(a);
    // A bye goes to confirmed registrations only: the node's first heartbeat confirms it.
    await waitUntil(() => host.gatewayCount === 1, 'the node confirmed');
    await host.stop();
    await waitUntil(() => a.remotes.get('sim')!.status() === 'down', 'down');
    // Down for the bye ("stopped"), not for the adapter's silence ("sent nothing for …").
    const down = a.events.filter((e) => e.startsWith('sim down'));
    expect(down).toHaveLength(1);
    expect(down[0]).toMatch(/adapter \(pid \d+\) stopped/);
  });

  it("the adapter's status reaches the nodes", async () => {
    const { adapter } = await adapterHost();
    const a = await gatewayNode();
    await registered(a);
    adapter.setStatus('reconnecting');
    await waitUntil(() => a.remotes.get('sim')!.status() === 'reconnecting', 'reconnecting');
    adapter.setStatus('live');
    await waitUntil(() => a.remotes.get('sim')!.status() === 'live', 'live again');
  });

  it('interest out of step (an unsubscribe the adapter never got) is found by the digest and replayed away', async () => {
    const { host, adapter } = await adapterHost();
    let losing: LosingTransport | undefined;
    const a = await gatewayNode((transport) => (losing = new LosingTransport(transport)));
    await registered(a);
    await a.subscribe('sim', TCS, 1);
    await a.subscribe('sim', INFY, 2);
    expect(adapter.subscribed.get('INFY')).toBe(2);
    // What a lost unsubscribe leaves behind: the node released INFY, the adapter still holds it for the node.
    const result = await a.unsubscribe('sim', INFY);
    expect(result.ok).toBe(false); // never answered: it timed out
    expect(losing!.lost).toBeDefined();
    expect(body(losing!.lost!)).toMatchObject({ type: 'unsubscribe', symbol: 'INFY' });
    // The adapter kept INFY for the node (it never got the unsubscribe) until the digest found it:
    // only a re-registration releases it.
    await waitUntil(() => !adapter.subscribed.has('INFY'), 'the extra stream released', 10_000);
    expect(a.control.counters.reregistrations).toBeGreaterThanOrEqual(1);
    expect(host.wantedMode(INFY)).toBe(0);
    // TCS was replayed without ever leaving upstream.
    expect(adapter.subscribed.get('TCS')).toBe(1);
    expect(adapter.calls.filter((c) => c === 'unsubscribe TCS')).toHaveLength(0);
    expect(a.remotes.get('sim')!.connected).toBe(true);
  });

  it('a nats-server restart: every part reconnects by itself, upstream interest is kept, new subscribes work', async () => {
    const { host, adapter, link: adapterLink } = await adapterHost();
    const a = await gatewayNode();
    const b = await gatewayNode();
    await registered(a);
    await registered(b);
    await a.subscribe('sim', TCS, 2);
    await server.restart({ downMs: 200 });
    await waitUntil(() => a.link.connected && b.link.connected && adapterLink.connected, 'reconnected', 10_000);
    // The outage outlasted the heartbeat limit, so the nodes reported the feed down meanwhile;
    // they register again by themselves.
    await waitUntil(() => a.remotes.get('sim')!.connected && b.remotes.get('sim')!.connected, 'registered again', 10_000);
    expect(await b.subscribe('sim', INFY, 1)).toEqual({ ok: true, depth: 5 });
    expect(adapter.subscribed.get('INFY')).toBe(1);
    expect(adapter.subscribed.get('TCS')).toBe(2);
    // The adapter kept a's interest through the outage: nothing was dropped upstream.
    expect(adapter.calls).not.toContain('unsubscribe TCS');
    // The nodes' silence during the adapter's own outage was not theirs: none was dropped for it.
    expect(host.counters.gatewaysLost).toBe(0);
    expect(a.remotes.get('sim')!.status()).toBe('live');
  });

  it('a second adapter with the same feed id is refused by the node, naming the first', async () => {
    const first = await adapterHost();
    const a = await gatewayNode();
    await registered(a);
    const second = await adapterHost();
    await waitUntil(() => second.refusals.length > 0, 'the refusal');
    expect(second.refusals).toHaveLength(1);
    expect(second.refusals[0]).toContain(`feed id "sim" is already served by pid ${process.pid} on ${hostname()}`);
    expect(a.control.counters.refused).toBeGreaterThanOrEqual(1);
    expect(first.refusals).toEqual([]);
    // The first keeps the feed.
    await sleep(HEARTBEAT_MS * 4);
    expect(second.host.gatewayCount).toBe(0);
    expect(a.remotes.get('sim')!.connected).toBe(true);
    expect(a.remotes.get('sim')!.pid).toBe(process.pid);
    expect(await a.subscribe('sim', TCS, 1)).toEqual({ ok: true, depth: 5 });
    expect(first.adapter.subscribed.get('TCS')).toBe(1);
    expect(second.adapter.calls).toEqual([]);
    expect(a.control.counters.reregistrations).toBe(0);
  });

  it('malformed and unauthenticated frames get no answer and change nothing', async () => {
    const { host, adapter, transport } = await adapterHost();
    const a = await gatewayNode();
    await registered(a);
    expect(a.control.counters.reregistrations).toBe(0); // so a's registration is session 1
    const raw = await link('raw');
    const inbox = strangerInbox();
    const answers: string[] = [];
    raw.connection.subscribe(inbox, { callback: (_err, msg) => answers.push(msg.string()) });
    await raw.connection.flush();
    const hex = '0'.repeat(64);
    const malformed = [
      'not json',
      '[]',
      '{"type":"subscribe"}',
      `${hex} not json`,
      `${hex} {"type":"subscribe"}`,
      `${hex} {"type":"subscribe","gateway":"x","session":1,"seq":1,"id":1,"exchange":"NSE","symbol":"TCS","mode":9,"depth":5}`,
      `${hex} {"type":"launch"}`,
    ];
    for (const data of malformed) raw.connection.publish(transport.inbox, data, { reply: inbox });
    const wrongKey = randomBytes(32);
    const unauthenticated: Array<{ frame: string; reply: string }> = [
      // A register from a stranger that does not hold the key.
      {
        frame: encodeFrame({ type: 'register', protocol: PROTOCOL_VERSION, gateway: 'stranger', session: 1, nonce: randomBytes(32).toString('hex'), heartbeatMs: HEARTBEAT_MS, pid: 1, host: 'elsewhere' }, wrongKey),
        reply: inbox,
      },
      // A subscribe in a's own registration, from a's own address, keyed with the wrong key.
      {
        frame: encodeFrame({ type: 'subscribe', gateway: a.id, session: 1, seq: 1_000_000, id: 1_000_000, exchange: 'NSE', symbol: 'TCS', mode: 1, depth: 5 }, wrongKey),
        reply: a.transport.inbox,
      },
    ];
    for (const { frame, reply } of unauthenticated) raw.connection.publish(transport.inbox, frame, { reply });
    await raw.connection.flush();
    await waitUntil(() => host.counters.malformed === malformed.length && host.counters.unauthenticated === unauthenticated.length, 'every frame read', 10_000);
    await sleep(HEARTBEAT_MS * 4);
    expect(host.counters.malformed).toBe(malformed.length);
    expect(host.counters.unauthenticated).toBe(unauthenticated.length);
    expect(answers).toEqual([]);
    expect(adapter.calls).toEqual([]);
    expect(host.gatewayCount).toBe(1);
    expect(a.control.counters.reregistrations).toBe(0);
    expect(a.remotes.get('sim')!.connected).toBe(true);
    expect(await a.subscribe('sim', TCS, 1)).toEqual({ ok: true, depth: 5 });
    expect(adapter.calls).toEqual(['subscribe TCS 1 5']);
  });

  it('a reader of the bus can neither forge nor replay control frames', async () => {
    const raw = await link('reader');
    const captured: Array<{ subject: string; reply: string; data: string }> = [];
    raw.connection.subscribe(`${subjects.prefix}.ctl.>`, { callback: (_err, msg) => captured.push({ subject: msg.subject, reply: msg.reply ?? '', data: msg.string() }) });
    await raw.connection.flush();

    const { host, adapter, transport } = await adapterHost();
    const a = await gatewayNode();
    const b = await gatewayNode();
    await registered(a);
    await registered(b);
    await a.subscribe('sim', TCS, 2);
    await a.subscribe('sim', INFY, 1);
    await a.unsubscribe('sim', INFY);
    await b.subscribe('sim', TCS, 1);
    await b.control.close();
    await b.transport.close();
    await waitUntil(() => host.gatewayCount === 1, "b's bye");
    await sleep(HEARTBEAT_MS * 2);

    const to = (from: string, type: string): Array<{ data: string; json: Record<string, unknown> }> =>
      captured.filter((c) => c.subject === transport.inbox && c.reply === from).map((c) => ({ data: c.data, json: body(c.data) })).filter((c) => c.json.type === type);
    const aSubscribes = to(a.transport.inbox, 'subscribe');
    const aRegisters = to(a.transport.inbox, 'register');
    const bByes = to(b.transport.inbox, 'bye');
    const announces = captured.filter((c) => c.subject === subjects.announce && c.reply === transport.inbox);
    expect(aSubscribes.map((c) => c.json.symbol)).toEqual(['TCS', 'INFY']);
    expect(aRegisters).toHaveLength(1);
    expect(bByes).toHaveLength(1);
    expect(announces.length).toBeGreaterThan(0);

    const callsBefore = [...adapter.calls];
    const unauthenticatedBefore = host.counters.unauthenticated;
    const attacker = strangerInbox();
    const publish = (subject: string, data: string, reply: string): void => raw.connection.publish(subject, data, { reply });
    let expectedUnauthenticated = 0;
    // Replays of a's subscribes, from a's own address (rejected as replays) and from another.
    for (const { data } of aSubscribes) {
      publish(transport.inbox, data, a.transport.inbox);
      expectedUnauthenticated++;
      publish(transport.inbox, data, attacker);
    }
    // b's bye, replayed from b's address and from a's.
    publish(transport.inbox, bByes[0]!.data, b.transport.inbox);
    publish(transport.inbox, bByes[0]!.data, a.transport.inbox);
    // a's register, replayed from a's address and from another.
    publish(transport.inbox, aRegisters[0]!.data, a.transport.inbox);
    publish(transport.inbox, aRegisters[0]!.data, attacker);
    // Forgeries: a captured MAC over other JSON. A bye in a's registration wearing b's bye's MAC,
    // and a's INFY subscribe numbered past a's own frames.
    const session = aSubscribes[0]!.json.session as number;
    const byeMac = bByes[0]!.data.slice(0, 64);
    publish(transport.inbox, `${byeMac} ${JSON.stringify({ type: 'bye', gateway: a.id, session, seq: 1_000_000 })}`, a.transport.inbox);
    expectedUnauthenticated++;
    const infy = aSubscribes[1]!;
    publish(transport.inbox, `${infy.data.slice(0, 64)} ${JSON.stringify({ ...infy.json, seq: 1_000_000 })}`, a.transport.inbox);
    expectedUnauthenticated++;
    await raw.connection.flush();

    await waitUntil(() => host.counters.unauthenticated >= unauthenticatedBefore + expectedUnauthenticated, 'the replays read', 10_000);
    await sleep(HEARTBEAT_MS * 4);
    expect(host.counters.unauthenticated).toBe(unauthenticatedBefore + expectedUnauthenticated);
    // a's interest stays, and nothing was subscribed upstream by the replays.
    expect(adapter.subscribed.get('TCS')).toBe(2);
    expect(adapter.subscribed.has('INFY')).toBe(false);
    expect(host.wantedMode(TCS)).toBe(2);
    expect(host.wantedMode(INFY)).toBe(0);
    expect(adapter.calls).toEqual(callsBefore);
    expect(host.gatewayCount).toBe(1);
    expect(a.remotes.get('sim')!.connected).toBe(true);
    expect(a.control.counters.reregistrations).toBe(0);

    // An announce keyed with another key is never offered to the node; the adapter's own
    // announce replayed from another address does not take its feed away.
    const offeredBefore = [...a.remotes.keys()];
    const nodeUnauthenticatedBefore = a.control.counters.unauthenticated;
    const forgedAnnounce = encodeFrame(
      { type: 'announce', protocol: PROTOCOL_VERSION, feed: 'forged', broker: 'simulator', brokers: '*', instance: INSTANCE, pid: process.pid, host: hostname(), epoch: 12345, heartbeatMs: HEARTBEAT_MS },
      randomBytes(32),
    );
    publish(subjects.announce, forgedAnnounce, attacker);
    publish(subjects.announce, announces[announces.length - 1]!.data, attacker);
    await raw.connection.flush();
    await waitUntil(() => a.control.counters.unauthenticated > nodeUnauthenticatedBefore, 'the forged announce read', 10_000);
    await sleep(HEARTBEAT_MS * 4);
    expect(a.control.counters.unauthenticated).toBe(nodeUnauthenticatedBefore + 1);
    expect([...a.remotes.keys()]).toEqual(offeredBefore);
    expect(a.control.adapters().map((r) => r.feed)).toEqual(['sim']);
    expect(a.remotes.get('sim')!.connected).toBe(true);
    expect(a.control.counters.reregistrations).toBe(0);
    expect(await a.subscribe('sim', INFY, 3)).toEqual({ ok: true, depth: 5 });
    expect(adapter.subscribed.get('INFY')).toBe(3);
  });

  it("replays of dead adapters' announces (its own feed's or another's), from their addresses or the live adapter's, take no feed down", async () => {
    const raw = await link('replayer');
    const announces: Array<{ reply: string; data: string }> = [];
    raw.connection.subscribe(subjects.announce, { callback: (_err, msg) => announces.push({ reply: msg.reply ?? '', data: msg.string() }) });
    await raw.connection.flush();
    // The first process of feed "sim" announces, then dies: its announce is what a reader keeps.
    const first = await adapterHost();
    await waitUntil(() => announces.some((a) => a.reply === first.transport.inbox), 'an announce of the first process');
    const old = announces.find((a) => a.reply === first.transport.inbox)!;
    await crash(first);
    // And an adapter of another feed, gone before any node saw it.
    const gone = await adapterHost(new FakeAdapter('gone'));
    await waitUntil(() => announces.some((a) => a.reply === gone.transport.inbox), 'an announce of the other feed');
    const other = announces.find((a) => a.reply === gone.transport.inbox)!;
    await crash(gone);
    const second = await adapterHost();
    const node = await gatewayNode();
    await registered(node);
    expect(await node.subscribe('sim', TCS, 1)).toEqual({ ok: true, depth: 5 });

    // For ten heartbeats, the dead processes' announces from their own addresses and the live one's.
    for (let i = 0; i < 20; i++) {
      raw.connection.publish(subjects.announce, old.data, { reply: first.transport.inbox });
      raw.connection.publish(subjects.announce, old.data, { reply: second.transport.inbox });
      raw.connection.publish(subjects.announce, other.data, { reply: second.transport.inbox });
      await sleep(HEARTBEAT_MS / 2);
    }
    await sleep(HEARTBEAT_MS * 4);
    expect(node.remotes.get('sim')!.connected).toBe(true);
    expect(node.remotes.get('sim')!.status()).toBe('live');
    expect(node.control.counters.reregistrations).toBe(0);
    expect(await node.subscribe('sim', INFY, 2)).toEqual({ ok: true, depth: 5 });
    expect(second.adapter.subscribed.get('INFY')).toBe(2);
    expect(second.adapter.subscribed.get('TCS')).toBe(1);
  });

  it('a node refusing a feed ignores it', async () => {
    const { refusals } = await adapterHost();
    const nodeLink = await link('node');
    const transport = new NatsGatewayTransport(nodeLink, subjects);
    cleanups.push(() => transport.close());
    let offered = 0;
    const node = new GatewayControl({
      transport,
      key,
      instance: INSTANCE,
      gateway: `picky-${randomBytes(4).toString('hex')}`,
      heartbeatMs: HEARTBEAT_MS,
      clock: systemClock,
      logger,
      onAdapter: () => {
        offered++;
        return { accept: false, message: 'broker taken' };
      },
    });
    cleanups.push(() => node.close());
    await waitUntil(() => offered === 1, 'the offer');
    await sleep(HEARTBEAT_MS * 4);
    expect(offered).toBe(1);
    expect(node.adapters()).toEqual([]);
    expect(refusals).toEqual(['broker taken']);
  });
});
