/**
 * The NATS control plane against a real nats-server, all in one process: adapter hosts driving
 * in-memory adapters, and gateway nodes whose RemoteAdapters the test drives as Upstream would.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Adapter, FeedStatus, FeedStatusEvent, StreamRef, SubscribeResult } from '../../src/feed.js';
import { NatsLink } from '../../src/bus/nats.js';
import { Subjects } from '../../src/bus/subjects.js';
import { systemClock } from '../../src/clock.js';
import { NatsAdapterHost } from '../../src/control/nats-adapter-host.js';
import { NatsControlNode } from '../../src/control/nats-node.js';
import { decodeAdapterReply, encode } from '../../src/control/nats-protocol.js';
import type { RemoteAdapter } from '../../src/control/remote-adapter.js';
import { ErrorCode, TickcastError } from '../../src/errors.js';
import { silentLogger } from '../../src/observability/logger.js';
import type { Mode } from '../../src/protocol/modes.js';
import { type NatsServer, startNatsServer } from '../helpers/nats-server.js';
import { sleep, waitUntil } from '../helpers/client.js';

const HEARTBEAT_MS = 100;
const logger = silentLogger();
const TCS: StreamRef = { exchange: 'NSE', symbol: 'TCS' };
const INFY: StreamRef = { exchange: 'NSE', symbol: 'INFY' };
const subjects = new Subjects('ctl');

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

async function adapterHost(adapter = new FakeAdapter()): Promise<{ host: NatsAdapterHost; adapter: FakeAdapter; link: NatsLink }> {
  const hostLink = await link(`adapter ${adapter.feed}`);
  const host = await NatsAdapterHost.start({ link: hostLink, subjects, adapter, brokers: '*', heartbeatMs: HEARTBEAT_MS, clock: systemClock, logger });
  cleanups.push(() => host.stop());
  return { host, adapter, link: hostLink };
}

interface NodeHandle {
  node: NatsControlNode;
  link: NatsLink;
  remotes: Map<string, RemoteAdapter>;
  /** What this node's "Upstream" holds, replayed on every registration. */
  wanted: Map<string, { stream: StreamRef; mode: Mode }>;
  events: string[];
  subscribe(feed: string, stream: StreamRef, mode: Mode): Promise<SubscribeResult>;
  unsubscribe(feed: string, stream: StreamRef): Promise<SubscribeResult>;
}

let nodeCount = 0;
async function gatewayNode(): Promise<NodeHandle> {
  const nodeLink = await link('node');
  const remotes = new Map<string, RemoteAdapter>();
  const wanted = new Map<string, { stream: StreamRef; mode: Mode }>();
  const events: string[] = [];
  const node = new NatsControlNode({
    link: nodeLink,
    subjects,
    node: `node-${++nodeCount}`,
    heartbeatMs: HEARTBEAT_MS,
    commandTimeoutMs: 1000,
    clock: systemClock,
    logger,
    onAdapter: (remote) => {
      remotes.set(remote.feed, remote);
      remote.onStatus((e) => events.push(`${e.feed} ${e.status}`));
      // Upstream.replay's part: the adapter holds nothing for this node now.
      remote.onReconnect(() => {
        events.push(`${remote.feed} registered`);
        for (const { stream, mode } of wanted.values()) void remote.subscribe(stream, mode, 5);
      });
      return { accept: true };
    },
  });
  cleanups.push(() => node.close());
  const handle: NodeHandle = {
    node,
    link: nodeLink,
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
  return handle;
}

const registered = (node: NodeHandle, feed = 'sim'): Promise<void> => waitUntil(() => node.remotes.get(feed)?.connected === true, `${feed} registered`);

describe('NATS control plane', () => {
  it('nodes find an adapter, register, and it subscribes upstream to the union of their interest', async () => {
    const { host, adapter } = await adapterHost();
    const a = await gatewayNode();
    const b = await gatewayNode();
    await registered(a);
    await registered(b);
    expect(a.remotes.get('sim')!.status()).toBe('live');
    expect(host.nodeCount).toBe(2);

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
    expect(a.node.counters.reregistrations).toBe(0);
  });

  it("a node's bye releases exactly its share at once", async () => {
    const { adapter } = await adapterHost();
    const a = await gatewayNode();
    const b = await gatewayNode();
    await registered(a);
    await registered(b);
    await a.subscribe('sim', TCS, 3);
    await a.subscribe('sim', INFY, 1);
    await b.subscribe('sim', TCS, 1);
    await a.node.close();
    await waitUntil(() => adapter.subscribed.get('TCS') === 1 && !adapter.subscribed.has('INFY'), "a's interest released");
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
    const lostAt = Date.now();
    await waitUntil(() => !adapter.subscribed.has('TCS'), "the dead node's stream released");
    expect(Date.now() - lostAt).toBeGreaterThanOrEqual(HEARTBEAT_MS * 2);
    expect(adapter.subscribed.get('INFY')).toBe(1);
    expect(host.nodeCount).toBe(1);
    expect(host.counters.nodesLost).toBe(1);
  });

  it('an adapter that restarts is re-registered with and gets the whole set replayed', async () => {
    const first = await adapterHost();
    const a = await gatewayNode();
    await registered(a);
    await a.subscribe('sim', TCS, 3);
    await a.subscribe('sim', INFY, 1);
    // The adapter dies without a word.
    await first.link.connection.close();
    await waitUntil(() => a.remotes.get('sim')!.status() === 'down', 'the feed reported down');
    expect(a.events).toContain('sim down');

    const second = await adapterHost(new FakeAdapter());
    expect(second.host.epoch).not.toBe(first.host.epoch);
    await waitUntil(() => second.adapter.subscribed.get('TCS') === 3 && second.adapter.subscribed.get('INFY') === 1, 'the replay');
    expect(a.remotes.get('sim')!.status()).toBe('live');
    expect(a.events.filter((e) => e === 'sim registered')).toHaveLength(2);
  });

  it('an adapter that stops says bye: nodes report the feed down at once', async () => {
    const { host } = await adapterHost();
    const a = await gatewayNode();
    await registered(a);
    const stoppedAt = Date.now();
    await host.stop();
    await waitUntil(() => a.remotes.get('sim')!.status() === 'down', 'down');
    expect(Date.now() - stoppedAt).toBeLessThan(HEARTBEAT_MS * 3);
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

  it('interest out of step (a forged subscribe the node never made) is found by the digest and replayed away', async () => {
    const { adapter } = await adapterHost();
    const a = await gatewayNode();
    await registered(a);
    await a.subscribe('sim', TCS, 1);
    const raw = await link('raw');
    // What a lost reply would leave behind: the adapter holds INFY for node-N, which never knew.
    const session = 1;
    const nodeId = (a.node as unknown as { options: { node: string } }).options.node;
    const forged = await raw.connection.request(subjects.feedControl('sim'), encode({ type: 'subscribe', node: nodeId, session, exchange: 'NSE', symbol: 'INFY', mode: 2, depth: 5 }), { timeout: 1000 });
    expect(decodeAdapterReply(forged.data)).toMatchObject({ ok: true, message: { type: 'reply', ok: true } });
    expect(adapter.subscribed.get('INFY')).toBe(2);
    await waitUntil(() => !adapter.subscribed.has('INFY'), 'the extra stream released');
    expect(a.node.counters.reregistrations).toBeGreaterThanOrEqual(1);
    // TCS was replayed without ever leaving upstream.
    expect(adapter.subscribed.get('TCS')).toBe(1);
    expect(adapter.calls.filter((c) => c === 'unsubscribe TCS')).toHaveLength(0);
  });

  it('a nats-server restart: every part reconnects by itself, upstream interest is kept, new subscribes work', async () => {
    const { adapter, link: adapterLink } = await adapterHost();
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
    expect(a.remotes.get('sim')!.status()).toBe('live');
  });

  it('a second adapter with the same feed id refuses to start, naming the first', async () => {
    await adapterHost();
    const error = await adapterHost().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TickcastError);
    expect((error as TickcastError).code).toBe(ErrorCode.INSTANCE_RUNNING);
    expect((error as Error).message).toMatch(/feed id "sim" is already served by pid \d+/);
  });

  it('malformed requests get an error answer and change nothing', async () => {
    const { host, adapter } = await adapterHost();
    const a = await gatewayNode();
    await registered(a);
    const raw = await link('raw');
    for (const data of ['not json', '[]', '{"type":"subscribe"}', '{"type":"subscribe","node":"x","session":1,"exchange":"NSE","symbol":"TCS","mode":9,"depth":5}', '{"type":"launch"}']) {
      const reply = decodeAdapterReply((await raw.connection.request(subjects.feedControl('sim'), data, { timeout: 1000 })).data);
      expect(reply.ok && reply.message.type).toBe('error');
    }
    // An unknown node's command is told to register.
    const reset = await raw.connection.request(subjects.feedControl('sim'), encode({ type: 'subscribe', node: 'stranger', session: 1, exchange: 'NSE', symbol: 'TCS', mode: 1, depth: 5 }), { timeout: 1000 });
    expect(decodeAdapterReply(reset.data)).toMatchObject({ ok: true, message: { type: 'reset' } });
    expect(host.counters.malformed).toBe(5);
    expect(adapter.calls).toEqual([]);
    expect(await a.subscribe('sim', TCS, 1)).toEqual({ ok: true, depth: 5 });
  });

  it('a node refusing a feed ignores it', async () => {
    await adapterHost();
    const nodeLink = await link('node');
    let offered = 0;
    const node = new NatsControlNode({
      link: nodeLink,
      subjects,
      node: 'picky',
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
  });
});
