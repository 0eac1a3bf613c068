/**
 * An adapter's end of the NATS control plane: it serves its feed's subject for every gateway
 * node of the instance, keeps each node's interest (node-interest.ts), subscribes the local
 * adapter upstream to the union, and releases a node's share when it says bye or falls silent.
 * It announces itself so nodes find it. The rules are in nats-protocol.ts.
 */
import { randomInt } from 'node:crypto';
import { hostname } from 'node:os';
import type { Msg, Subscription } from 'nats';
import type { Adapter, FeedStatusEvent, StreamRef, SubscribeResult } from '../feed.js';
import type { NatsLink } from '../bus/nats.js';
import type { Subjects } from '../bus/subjects.js';
import type { Clock } from '../clock.js';
import { ErrorCode, TickcastError } from '../errors.js';
import type { Logger } from '../observability/logger.js';
import { clipText } from './codec.js';
import { NodeInterest, streamKeyOf } from './node-interest.js';
import { type AdapterInfo, type AdapterReply, NATS_CONTROL_PROTOCOL, type NodeRequest, decodeAdapterReply, decodeAnnouncement, decodeNodeRequest, encode } from './nats-protocol.js';
import { DEFAULT_HEARTBEAT_MS, DEFAULT_MISSED_HEARTBEATS, MALFORMED_LOG_INTERVAL_MS } from './protocol.js';
import { formatDuration } from './remote-adapter.js';

export interface NatsAdapterHostOptions {
  link: NatsLink;
  subjects: Subjects;
  /** The local adapter the nodes' interest drives; its status changes are announced. */
  adapter: Adapter;
  /** Brokers whose users it serves, or '*'. */
  brokers: string[] | '*';
  /** Interval of announcements; nodes silent for `missedHeartbeats` of their own (or this) interval are dropped. */
  heartbeatMs?: number;
  missedHeartbeats?: number;
  clock: Clock;
  logger: Logger;
}

interface NodeState {
  session: number;
  lastSeen: number;
  silenceLimitMs: number;
  /** `host pid` of the node, for logs. */
  label: string;
}

interface Held {
  mode: number;
  depth: number;
  /** The depth the adapter said it delivers. */
  delivered: number | undefined;
}

export interface NatsAdapterHostCounters {
  malformed: number;
  /** Nodes dropped for silence. */
  nodesLost: number;
}

export class NatsAdapterHost {
  readonly epoch = randomInt(1, 2 ** 47);
  readonly counters: NatsAdapterHostCounters = { malformed: 0, nodesLost: 0 };
  private readonly interest = new NodeInterest();
  private readonly nodes = new Map<string, NodeState>();
  /** What the local adapter holds upstream, per stream key. */
  private readonly held = new Map<string, Held>();
  private readonly chains = new Map<string, Promise<void>>();
  private readonly heartbeatMs: number;
  private readonly missedHeartbeats: number;
  private readonly subscriptions: Subscription[] = [];
  private readonly timer: NodeJS.Timeout;
  private lastMalformedLogAt = -Infinity;
  private lastRivalLogAt = -Infinity;
  private stopped = false;

  private constructor(private readonly options: NatsAdapterHostOptions) {
    this.heartbeatMs = options.heartbeatMs ?? DEFAULT_HEARTBEAT_MS;
    this.missedHeartbeats = options.missedHeartbeats ?? DEFAULT_MISSED_HEARTBEATS;
    const { connection } = options.link;
    const feed = options.adapter.feed;
    this.subscriptions.push(
      connection.subscribe(options.subjects.feedControl(feed), { callback: (_err, msg) => this.onRequest(msg) }),
      connection.subscribe(options.subjects.discover, { callback: () => this.announce() }),
      connection.subscribe(options.subjects.announce, { callback: (_err, msg) => this.onAnnouncement(msg) }),
    );
    options.adapter.onStatus((event) => this.onStatus(event));
    options.link.onReconnect(() => {
      // Our own outage is not the nodes' silence: give them a fresh period to show up.
      const now = options.clock.now();
      for (const node of this.nodes.values()) node.lastSeen = now;
      this.announce();
    });
    this.timer = setInterval(() => this.onTimer(), this.heartbeatMs);
    this.timer.unref();
  }

  /**
   * Starts serving the adapter's feed, or throws INSTANCE_RUNNING if another adapter already
   * answers on the feed's subject (two processes must never serve one feed id).
   */
  static async start(options: NatsAdapterHostOptions): Promise<NatsAdapterHost> {
    const { link, subjects, adapter } = options;
    for (const [key, value] of [['heartbeatMs', options.heartbeatMs], ['missedHeartbeats', options.missedHeartbeats]] as const) {
      if (value !== undefined && !(Number.isFinite(value) && value > 0)) {
        throw new TickcastError(ErrorCode.CONFIG_INVALID, `control ${key} must be a positive number, got ${value}`);
      }
    }
    const rival = await link.connection.request(subjects.feedControl(adapter.feed), encode({ type: 'ping' }), { timeout: 1000 }).then(
      (msg) => decodeAdapterReply(msg.data),
      () => undefined, // no responders (or no answer): the feed id is free
    );
    if (rival?.ok && rival.message.type === 'pong') {
      const other = rival.message;
      throw new TickcastError(ErrorCode.INSTANCE_RUNNING, `feed id "${adapter.feed}" is already served by pid ${other.pid} on ${other.host} (on the NATS bus ${link.servers})`);
    }
    const host = new NatsAdapterHost(options);
    host.announce();
    return host;
  }

  /** Nodes registered now. */
  get nodeCount(): number {
    return this.nodes.size;
  }

  /** Streams the local adapter holds upstream for the nodes. */
  get upstreamCount(): number {
    return this.held.size;
  }

  /** What the nodes want of a stream now (highest mode), 0 for nothing; for tests and status. */
  wantedMode(stream: StreamRef): number {
    return this.interest.wanted(stream)?.mode ?? 0;
  }

  private info(): AdapterInfo {
    const { adapter, brokers } = this.options;
    return {
      protocol: NATS_CONTROL_PROTOCOL,
      feed: adapter.feed,
      broker: adapter.broker,
      brokers,
      pid: process.pid,
      host: hostname(),
      epoch: this.epoch,
      heartbeatMs: this.heartbeatMs,
      status: adapter.status(),
    };
  }

  private announce(message?: string): void {
    if (this.stopped || !this.options.link.connected) return;
    const info = this.info();
    if (message !== undefined) info.message = clipText(message);
    this.publish(this.options.subjects.announce, encode({ type: 'announce', ...info }));
  }

  private publish(subject: string, data: string): void {
    try {
      this.options.link.connection.publish(subject, data);
    } catch (err) {
      this.options.logger.debug({ err }, 'control publish failed (bus closed)');
    }
  }

  private onStatus(event: FeedStatusEvent): void {
    this.announce(event.message);
  }

  private onAnnouncement(msg: Msg): void {
    const decoded = decodeAnnouncement(msg.data);
    if (!decoded.ok || decoded.message.type !== 'announce') return;
    const other = decoded.message;
    if (other.feed !== this.options.adapter.feed || other.epoch === this.epoch) return;
    const now = this.options.clock.now();
    if (now - this.lastRivalLogAt < MALFORMED_LOG_INTERVAL_MS) return;
    this.lastRivalLogAt = now;
    this.options.logger.error(
      { feed: other.feed, otherPid: other.pid, otherHost: other.host },
      'another adapter announces the same feed id; nodes will see duplicate ticks until one stops',
    );
  }

  private onTimer(): void {
    if (!this.options.link.connected) return; // our outage, not the nodes'
    const now = this.options.clock.now();
    for (const [node, state] of [...this.nodes]) {
      const silentMs = now - state.lastSeen;
      if (silentMs <= state.silenceLimitMs) continue;
      this.counters.nodesLost++;
      this.options.logger.warn(
        { feed: this.options.adapter.feed, node, from: state.label, streams: this.interest.heldBy(node) },
        `gateway node silent for ${formatDuration(silentMs)}; releasing its interest`,
      );
      this.dropNode(node);
    }
    this.announce();
  }

  private dropNode(node: string): void {
    this.nodes.delete(node);
    for (const stream of this.interest.dropNode(node)) void this.enqueue(stream, () => this.reconcile(stream));
  }

  private onRequest(msg: Msg): void {
    const decoded = decodeNodeRequest(msg.data);
    if (!decoded.ok) {
      this.noteMalformed(decoded.error);
      this.respond(msg, { type: 'error', message: decoded.error });
      return;
    }
    try {
      this.handle(msg, decoded.message);
    } catch (err) {
      // A bug in handling one request must not stop the feed.
      this.noteMalformed(`handler failed: ${(err as Error).message}`);
      this.respond(msg, { type: 'error', message: 'the adapter failed to handle the request' });
    }
  }

  private handle(msg: Msg, request: NodeRequest): void {
    if (request.type === 'ping') return this.respond(msg, { type: 'pong', ...this.info() });
    const now = this.options.clock.now();
    const { node, session } = request;
    if (request.type === 'hello') {
      if (request.protocol !== NATS_CONTROL_PROTOCOL) {
        return this.respond(msg, { type: 'refused', message: `control protocol ${request.protocol} is not supported (this adapter speaks ${NATS_CONTROL_PROTOCOL})` });
      }
      const known = this.nodes.get(node);
      const silenceLimitMs = this.missedHeartbeats * Math.max(this.heartbeatMs, request.heartbeatMs);
      const label = `${request.host} pid ${request.pid}`;
      if (!known || known.session !== session) {
        // Whatever it held stays counted until its replay ends (no gap upstream).
        this.interest.beginReplace(node);
        if (!known) this.options.logger.info({ feed: this.options.adapter.feed, node, from: label }, 'gateway node registered');
      }
      this.nodes.set(node, { session, lastSeen: now, silenceLimitMs, label });
      return this.respond(msg, { type: 'welcome', ...this.info() });
    }
    const state = this.nodes.get(node);
    if (!state || state.session !== session) {
      if (request.type === 'heartbeat') {
        return this.respond(msg, { type: 'heartbeat', epoch: this.epoch, known: false, resync: false, status: this.options.adapter.status() });
      }
      if (request.type === 'bye') return this.respond(msg, { type: 'reply', ok: true });
      return this.respond(msg, { type: 'reset', message: `Feed "${this.options.adapter.feed}" does not know this gateway node's registration; register again` });
    }
    state.lastSeen = now;
    switch (request.type) {
      case 'heartbeat': {
        let resync = false;
        if (request.digest) {
          // No command of the node is in flight: its replay (if any) is over.
          for (const stream of this.interest.endReplace(node)) void this.enqueue(stream, () => this.reconcile(stream));
          const mine = this.interest.digest(node);
          resync = mine.count !== request.digest.count || mine.sum !== request.digest.sum;
          if (resync) this.options.logger.warn({ feed: this.options.adapter.feed, node, held: mine.count, nodeSays: request.digest.count }, 'gateway node interest out of step; asking it to replay');
        }
        return this.respond(msg, { type: 'heartbeat', epoch: this.epoch, known: true, resync, status: this.options.adapter.status() });
      }
      case 'subscribe': {
        const stream: StreamRef = { exchange: request.exchange, symbol: request.symbol };
        void this.enqueue(stream, async () => {
          const previous = this.interest.set(node, stream, { mode: request.mode, depth: request.depth });
          const result = await this.reconcile(stream);
          if (!result.ok) this.interest.restore(node, stream, previous);
          this.respond(msg, result.ok ? { type: 'reply', ok: true, ...(result.depth === undefined ? {} : { depth: result.depth }) } : { type: 'reply', ok: false, message: clipText(result.message) });
        });
        return;
      }
      case 'unsubscribe': {
        const stream: StreamRef = { exchange: request.exchange, symbol: request.symbol };
        void this.enqueue(stream, async () => {
          this.interest.remove(node, stream);
          await this.reconcile(stream);
          this.respond(msg, { type: 'reply', ok: true });
        });
        return;
      }
      case 'bye':
        this.options.logger.info({ feed: this.options.adapter.feed, node, from: state.label, streams: this.interest.heldBy(node) }, 'gateway node said bye; releasing its interest');
        this.dropNode(node);
        return this.respond(msg, { type: 'reply', ok: true });
    }
  }

  /**
   * Brings the local adapter to what the nodes want of `stream` now. Runs inside the stream's
   * chain. A failed subscribe leaves upstream as it was.
   */
  private async reconcile(stream: StreamRef): Promise<SubscribeResult> {
    const key = streamKeyOf(stream);
    const wanted = this.interest.wanted(stream);
    const held = this.held.get(key);
    const { adapter, logger } = this.options;
    if (!wanted) {
      if (!held) return { ok: true };
      this.held.delete(key);
      try {
        await adapter.unsubscribe(stream);
      } catch (err) {
        logger.warn({ err, feed: adapter.feed, ...stream }, 'upstream unsubscribe failed');
      }
      return { ok: true };
    }
    if (held && held.mode === wanted.mode && held.depth >= wanted.depth) {
      return held.delivered === undefined ? { ok: true } : { ok: true, depth: held.delivered };
    }
    let result: SubscribeResult;
    try {
      result = await adapter.subscribe(stream, wanted.mode, wanted.depth);
    } catch (err) {
      result = { ok: false, message: (err as Error)?.message || 'Subscription failed' };
    }
    if (result.ok) this.held.set(key, { mode: wanted.mode, depth: wanted.depth, delivered: result.depth });
    return result;
  }

  /** Runs `task` after every earlier task of the same stream. */
  private enqueue(stream: StreamRef, task: () => Promise<unknown>): Promise<void> {
    const key = streamKeyOf(stream);
    const next = (this.chains.get(key) ?? Promise.resolve()).then(task).then(
      () => {},
      (err: unknown) => this.options.logger.error({ err, feed: this.options.adapter.feed, ...stream }, 'control command failed'),
    );
    this.chains.set(key, next);
    void next.then(() => {
      if (this.chains.get(key) === next) this.chains.delete(key);
    });
    return next;
  }

  private respond(msg: Msg, reply: AdapterReply): void {
    if (!msg.reply || this.options.link.connection.isClosed()) return;
    try {
      msg.respond(encode(reply));
    } catch (err) {
      this.options.logger.debug({ err }, 'control reply not sent');
    }
  }

  private noteMalformed(reason: string): void {
    this.counters.malformed++;
    const now = this.options.clock.now();
    if (now - this.lastMalformedLogAt < MALFORMED_LOG_INTERVAL_MS) return;
    this.lastMalformedLogAt = now;
    this.options.logger.warn({ reason, malformed: this.counters.malformed }, 'malformed control request (further ones are counted, and logged at most every 10 s)');
  }

  /**
   * Tells the nodes this adapter is going (they report the feed down at once) and stops
   * serving. The local adapter is left as it is: stopping it is the caller's job.
   */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    clearInterval(this.timer);
    if (this.options.link.connection.isClosed()) return;
    this.publish(this.options.subjects.announce, encode({ type: 'bye', feed: this.options.adapter.feed, epoch: this.epoch }));
    for (const subscription of this.subscriptions) subscription.unsubscribe();
    try {
      await this.options.link.connection.flush();
    } catch {
      // the link is going down anyway
    }
  }
}
