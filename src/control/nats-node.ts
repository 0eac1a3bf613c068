/**
 * A gateway node's end of the NATS control plane: it finds the instance's adapters from their
 * announcements, registers with each (hello), hands each to the gateway as a RemoteAdapter — the
 * same handle the ZeroMQ channel gives, so Upstream drives it unchanged — and keeps heartbeating.
 * It notices an adapter that restarted (new epoch), stopped (bye) or went silent, and registers
 * again (replaying its whole set) whenever the adapter no longer knows it or their digests of the
 * node's set differ. The rules are in nats-protocol.ts.
 */
import { hostname } from 'node:os';
import { ErrorCode, type Msg, type Subscription } from 'nats';
import type { FeedStatus } from '../feed.js';
import type { NatsLink } from '../bus/nats.js';
import type { Subjects } from '../bus/subjects.js';
import type { Clock } from '../clock.js';
import type { Logger } from '../observability/logger.js';
import type { Mode } from '../protocol/modes.js';
import { digestOf, streamKeyOf } from './node-interest.js';
import { type AdapterInfo, type AdapterReply, NATS_CONTROL_PROTOCOL, type NodeRequest, decodeAdapterReply, decodeAnnouncement, encode } from './nats-protocol.js';
import { DEFAULT_HEARTBEAT_MS, DEFAULT_MISSED_HEARTBEATS, type GatewayMessage, type Hello, MALFORMED_LOG_INTERVAL_MS, PROTOCOL_VERSION } from './protocol.js';
import { RemoteAdapter, formatDuration } from './remote-adapter.js';
import type { AdapterCallback } from './server.js';

export interface NatsControlNodeOptions {
  link: NatsLink;
  subjects: Subjects;
  /** This node's id, unique per process (a restarted node is a new node). */
  node: string;
  /** Registers new feeds; until set (here or with `onAdapter`), announcements are ignored. */
  onAdapter?: AdapterCallback;
  /** Interval of heartbeats to each adapter. Default 1000 ms. */
  heartbeatMs?: number;
  /** An adapter that answers nothing for this many intervals (its own, if slower) is reported down. Default 3. */
  missedHeartbeats?: number;
  /** How long a subscribe or unsubscribe waits for the adapter's answer. Default 5000 ms. */
  commandTimeoutMs?: number;
  clock: Clock;
  logger: Logger;
}

interface Feed {
  feed: string;
  remote: RemoteAdapter | undefined;
  /** Set when this node refused the feed (its broker is served by another feed, …): ignored from then on. */
  refused: string | undefined;
  /** The adapter epoch this node is registered with; undefined while not registered. */
  epoch: number | undefined;
  /** This node's registration round with the feed; bumped on every hello. */
  session: number;
  helloInFlight: boolean;
  heartbeatInFlight: boolean;
  /** When the adapter last answered (epoch ms). */
  lastAnswer: number;
  /** When the adapter last announced itself. */
  lastAnnounce: number;
  info: AdapterInfo;
  /** What the adapter holds for this node, as far as the node knows: the other half of the digest. */
  held: Map<string, { exchange: string; symbol: string; mode: Mode }>;
  /** Commands sent and not yet answered. */
  inFlight: number;
}

export interface NatsControlNodeCounters {
  malformed: number;
  /** Registrations after the first, per feed (adapter restarts, lost or out-of-step state). */
  reregistrations: number;
}

/** Slack added to the RemoteAdapter's own timeout, so NATS's request timeout always fires first. */
const TIMEOUT_SLACK_MS = 1000;

export class NatsControlNode {
  readonly counters: NatsControlNodeCounters = { malformed: 0, reregistrations: 0 };
  /** Where adapters reach this node, for status lines: the bus servers and the control subjects. */
  readonly endpoint: string;
  private callback: AdapterCallback | undefined;
  private readonly feeds = new Map<string, Feed>();
  private readonly heartbeatMs: number;
  private readonly missedHeartbeats: number;
  private readonly commandTimeoutMs: number;
  private readonly announcements: Subscription;
  private readonly timer: NodeJS.Timeout;
  private lastMalformedLogAt = -Infinity;
  private closed = false;

  constructor(private readonly options: NatsControlNodeOptions) {
    this.callback = options.onAdapter;
    this.heartbeatMs = options.heartbeatMs ?? DEFAULT_HEARTBEAT_MS;
    this.missedHeartbeats = options.missedHeartbeats ?? DEFAULT_MISSED_HEARTBEATS;
    this.commandTimeoutMs = options.commandTimeoutMs ?? 5000;
    this.endpoint = `${options.link.servers} (${options.subjects.prefix}.ctl.*)`;
    this.announcements = options.link.connection.subscribe(options.subjects.announce, { callback: (_err, msg) => this.onAnnouncement(msg) });
    options.link.onReconnect(() => this.discover());
    this.timer = setInterval(() => this.onTimer(), this.heartbeatMs);
    this.timer.unref();
    this.discover();
  }

  /** Sets (or replaces) the registration callback. */
  onAdapter(callback: AdapterCallback): void {
    this.callback = callback;
    this.discover();
  }

  /** Every feed accepted so far, registered or not. */
  adapters(): RemoteAdapter[] {
    return [...this.feeds.values()].flatMap((f) => (f.remote ? [f.remote] : []));
  }

  /** Asks every adapter to announce itself now. */
  private discover(): void {
    if (this.closed || !this.options.link.connected) return;
    this.publish(this.options.subjects.discover, '{"type":"discover"}');
  }

  private publish(subject: string, data: string): void {
    try {
      this.options.link.connection.publish(subject, data);
    } catch (err) {
      this.options.logger.debug({ err }, 'control publish failed (bus closed)');
    }
  }

  private onAnnouncement(msg: Msg): void {
    if (this.closed) return;
    const decoded = decodeAnnouncement(msg.data);
    if (!decoded.ok) return this.noteMalformed(`announcement: ${decoded.error}`);
    const message = decoded.message;
    const now = this.options.clock.now();
    if (message.type === 'bye') {
      const feed = this.feeds.get(message.feed);
      if (feed && feed.epoch === message.epoch) this.lose(feed, `Feed "${feed.feed}" adapter (pid ${feed.info.pid} on ${feed.info.host}) stopped`);
      return;
    }
    let feed = this.feeds.get(message.feed);
    if (!feed) {
      if (!this.callback) return; // not accepting adapters yet
      feed = {
        feed: message.feed,
        remote: undefined,
        refused: undefined,
        epoch: undefined,
        session: 0,
        helloInFlight: false,
        heartbeatInFlight: false,
        lastAnswer: now,
        lastAnnounce: now,
        info: message,
        held: new Map(),
        inFlight: 0,
      };
      this.feeds.set(message.feed, feed);
      this.accept(feed);
    }
    feed.lastAnnounce = now;
    feed.info = message;
    if (feed.refused || !feed.remote) return;
    if (feed.epoch !== message.epoch) {
      this.register(feed);
      return;
    }
    if (feed.remote.status() !== message.status) feed.remote.receiveStatus(message.status, message.message);
  }

  /** Offers a newly seen feed to the gateway. */
  private accept(feed: Feed): void {
    const remote = new RemoteAdapter({ hello: helloOf(feed.info, feed.session), commandTimeoutMs: this.commandTimeoutMs + TIMEOUT_SLACK_MS, logger: this.options.logger });
    let decision;
    try {
      decision = this.callback!(remote, helloOf(feed.info, feed.session));
    } catch (err) {
      this.options.logger.error({ err, feed: feed.feed }, 'adapter registration failed');
      decision = { accept: false as const, message: (err as Error).message };
    }
    if (!decision.accept) {
      feed.refused = decision.message;
      this.options.logger.warn({ feed: feed.feed, reason: decision.message }, 'adapter not used by this node');
      return;
    }
    feed.remote = remote;
  }

  /** Says hello (again); on welcome the RemoteAdapter attaches and the gateway replays its set. */
  private register(feed: Feed): void {
    if (feed.helloInFlight || this.closed || !feed.remote) return;
    feed.helloInFlight = true;
    if (feed.session > 0) this.counters.reregistrations++;
    feed.session++;
    const session = feed.session;
    const request: NodeRequest = { type: 'hello', protocol: NATS_CONTROL_PROTOCOL, node: this.options.node, session, heartbeatMs: this.heartbeatMs, host: hostname(), pid: process.pid };
    void this.request(feed, request).then((reply) => {
      feed.helloInFlight = false;
      if (this.closed || session !== feed.session || typeof reply === 'string') return;
      if (reply.type === 'refused') {
        feed.refused = reply.message;
        this.options.logger.error({ feed: feed.feed, reason: reply.message }, 'the adapter refused this node');
        this.lose(feed, `Feed "${feed.feed}" refused this gateway node: ${reply.message}`);
        return;
      }
      if (reply.type !== 'welcome') return;
      feed.info = { ...reply };
      feed.epoch = reply.epoch;
      feed.lastAnswer = this.options.clock.now();
      // The replay that follows rebuilds what the adapter holds for us.
      feed.held.clear();
      this.options.logger.info({ feed: feed.feed, adapterPid: reply.pid, adapterHost: reply.host }, 'registered with the adapter');
      feed.remote!.attach(helloOf(reply, session), (message) => this.send(feed, session, message));
    });
  }

  /** The adapter is gone (stopped, silent, or refused us): report the feed down until it is back. */
  private lose(feed: Feed, reason: string): void {
    if (feed.epoch === undefined && !feed.remote?.connected) return;
    feed.epoch = undefined;
    feed.held.clear();
    if (feed.remote?.connected) {
      this.options.logger.warn({ feed: feed.feed, reason }, 'adapter down');
      feed.remote.detach(reason);
    }
  }

  private onTimer(): void {
    if (this.closed) return;
    const now = this.options.clock.now();
    for (const feed of this.feeds.values()) {
      if (feed.refused || !feed.remote) continue;
      const limitMs = this.missedHeartbeats * Math.max(this.heartbeatMs, feed.info.heartbeatMs);
      if (feed.epoch === undefined) {
        // Registered nowhere: try again while the adapter is announcing itself.
        if (now - feed.lastAnnounce <= limitMs) this.register(feed);
        continue;
      }
      const silentMs = now - feed.lastAnswer;
      if (silentMs > limitMs) {
        this.lose(feed, `Feed "${feed.feed}" adapter (pid ${feed.info.pid} on ${feed.info.host}) answered nothing for ${formatDuration(silentMs)}`);
        continue;
      }
      this.heartbeat(feed);
    }
  }

  private heartbeat(feed: Feed): void {
    if (feed.heartbeatInFlight) return;
    feed.heartbeatInFlight = true;
    const session = feed.session;
    // A digest only when nothing is in flight: otherwise the two sides may legitimately differ.
    const request: NodeRequest =
      feed.inFlight === 0 ? { type: 'heartbeat', node: this.options.node, session, digest: digestOf(feed.held.values()) } : { type: 'heartbeat', node: this.options.node, session };
    void this.request(feed, request, this.heartbeatMs).then((reply) => {
      feed.heartbeatInFlight = false;
      if (this.closed || session !== feed.session || typeof reply === 'string' || reply.type !== 'heartbeat') return;
      feed.lastAnswer = this.options.clock.now();
      if (reply.epoch !== feed.epoch || !reply.known || reply.resync) {
        const why = reply.epoch !== feed.epoch ? 'the adapter restarted' : !reply.known ? 'the adapter no longer knows this node' : 'the adapter holds a different set';
        this.options.logger.info({ feed: feed.feed, why }, 'registering with the adapter again');
        this.register(feed);
        return;
      }
      if (feed.remote && feed.remote.status() !== reply.status) feed.remote.receiveStatus(reply.status, reply.message);
    });
  }

  /** The RemoteAdapter's sender: a subscribe or unsubscribe as a NATS request. */
  private async send(feed: Feed, session: number, message: GatewayMessage): Promise<boolean> {
    if (message.type !== 'subscribe' && message.type !== 'unsubscribe') return false;
    if (this.closed || !this.options.link.connected || session !== feed.session) return false;
    const { node } = this.options;
    const key = streamKeyOf(message);
    const request: NodeRequest =
      message.type === 'subscribe'
        ? { type: 'subscribe', node, session, exchange: message.exchange, symbol: message.symbol, mode: message.mode, depth: message.depth }
        : { type: 'unsubscribe', node, session, exchange: message.exchange, symbol: message.symbol };
    // Whatever the answer, the node no longer counts on the stream (a lost unsubscribe shows in the digest).
    if (message.type === 'unsubscribe') feed.held.delete(key);
    feed.inFlight++;
    void this.request(feed, request).then((reply) => {
      feed.inFlight--;
      const remote = feed.remote!;
      if (reply === 'timeout') {
        remote.receiveReply(message.id, { ok: false, message: `Feed "${feed.feed}" did not answer within ${formatDuration(this.commandTimeoutMs)}` });
        return;
      }
      if (reply === 'unreachable') {
        remote.receiveReply(message.id, { ok: false, message: `Feed "${feed.feed}" is not reachable (no adapter answers on the bus)` });
        return;
      }
      if (reply.type === 'reset') {
        remote.receiveReply(message.id, { ok: false, message: `Feed "${feed.feed}" is re-registering with this gateway node` });
        if (session === feed.session) this.register(feed);
        return;
      }
      if (reply.type !== 'reply') {
        remote.receiveReply(message.id, { ok: false, message: `Feed "${feed.feed}" answered ${reply.type === 'error' ? reply.message : reply.type}` });
        return;
      }
      if (reply.ok && message.type === 'subscribe' && session === feed.session) {
        feed.held.set(key, { exchange: message.exchange, symbol: message.symbol, mode: message.mode });
      }
      remote.receiveReply(message.id, reply.ok ? (reply.depth === undefined ? { ok: true } : { ok: true, depth: reply.depth }) : { ok: false, message: reply.message });
    });
    return true;
  }

  /**
   * One request to a feed's adapter: its answer, `unreachable` (no adapter serves the feed's
   * subject right now), or `timeout` (nothing valid came back in time).
   */
  private async request(feed: Feed, request: NodeRequest, timeoutMs = this.commandTimeoutMs): Promise<AdapterReply | 'unreachable' | 'timeout'> {
    try {
      const msg = await this.options.link.connection.request(this.options.subjects.feedControl(feed.feed), encode(request), { timeout: timeoutMs });
      const decoded = decodeAdapterReply(msg.data);
      if (decoded.ok) return decoded.message;
      this.noteMalformed(`reply from feed "${feed.feed}": ${decoded.error}`);
    } catch (err) {
      this.options.logger.trace({ err, feed: feed.feed, type: request.type }, 'control request failed');
      if ((err as { code?: string }).code === ErrorCode.NoResponders) return 'unreachable';
    }
    return 'timeout';
  }

  private noteMalformed(reason: string): void {
    this.counters.malformed++;
    const now = this.options.clock.now();
    if (now - this.lastMalformedLogAt < MALFORMED_LOG_INTERVAL_MS) return;
    this.lastMalformedLogAt = now;
    this.options.logger.warn({ reason, malformed: this.counters.malformed }, 'malformed control message (further ones are counted, and logged at most every 10 s)');
  }

  /** Says bye to every adapter (they release this node's interest at once) and stops. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.timer);
    const { connection } = this.options.link;
    if (!connection.isClosed()) {
      this.announcements.unsubscribe();
      for (const feed of this.feeds.values()) {
        if (feed.epoch !== undefined) this.publish(this.options.subjects.feedControl(feed.feed), encode({ type: 'bye', node: this.options.node, session: feed.session }));
      }
      try {
        await connection.flush();
      } catch {
        // the link is going down anyway
      }
    }
    for (const feed of this.feeds.values()) if (feed.remote?.connected) feed.remote.detach('the gateway is shutting down');
  }
}

/** The Hello a RemoteAdapter is built and attached with, from what the adapter says of itself. */
function helloOf(info: AdapterInfo, session: number): Hello {
  const status: FeedStatus = info.status;
  return {
    type: 'hello',
    protocol: PROTOCOL_VERSION,
    feed: info.feed,
    broker: info.broker,
    brokers: info.brokers,
    pid: info.pid,
    session,
    heartbeatMs: info.heartbeatMs,
    status,
  };
}
