/**
 * A gateway's end of the control protocol (protocol.ts), over any transport: it finds adapters
 * by their announcements, registers with each feed it accepts, hands each feed to the gateway as
 * a RemoteAdapter (one per feed id for the life of this object, so a restarted adapter process
 * takes over the same handle), heartbeats, and notices adapters that stop, fall silent, restart
 * or lose track of this gateway. Frames that are not keyed with the instance key change nothing.
 */
import { hostname } from 'node:os';
import type { Clock } from '../clock.js';
import type { Logger } from '../observability/logger.js';
import type { Mode } from '../protocol/modes.js';
import { clipText, decodeToGateway, encodeFrame, type Frame } from './codec.js';
import { authentic, newNonce, type SessionKeys, sessionKeys } from './keys.js';
import { ThrottledLog, checkPositive } from './support.js';
import type { DistributiveOmit } from './support.js';
import { digestOf, streamKeyOf } from './node-interest.js';
import {
  DEFAULT_COMMAND_TIMEOUT_MS, DEFAULT_HEARTBEAT_MS, DEFAULT_MISSED_HEARTBEATS, MAX_PEERS, PROTOCOL_VERSION,
  type AdapterEvent, type AdapterInfo, type Announce, type GatewayCommand, type Registered, type ToGateway,
} from './protocol.js';
import { type Command, RemoteAdapter, formatDuration } from './remote-adapter.js';
import type { ControlTransport } from './transport.js';

/** The gateway's answer to the first registration of a feed id. */
export type AdapterDecision = { accept: true } | { accept: false; message: string };

/**
 * Called once per feed id, when its first adapter has proved it belongs to the instance (later
 * processes of the feed take over its RemoteAdapter without asking again). Add listeners to
 * `remote` here: its onReconnect fires right after this returns, and on every later registration.
 */
export type AdapterCallback = (remote: RemoteAdapter, info: AdapterInfo) => AdapterDecision;

export interface GatewayControlOptions {
  transport: ControlTransport;
  /** The instance key (keys.ts): only adapters holding it are heard. */
  key: Buffer;
  /** Instance this gateway serves; an adapter of another instance is refused. */
  instance: string;
  /** Unique per gateway process (a restarted gateway is a new one to the adapters). */
  gateway: string;
  /** Registers new feeds; until set (here or with `onAdapter`), announcements are ignored. */
  onAdapter?: AdapterCallback;
  /** Interval of heartbeats to each adapter. Default 1000 ms. */
  heartbeatMs?: number;
  /** An adapter that answers nothing for this many intervals (its own, if slower) is reported down. Default 3. */
  missedHeartbeats?: number;
  /** How long a subscribe or unsubscribe waits for the adapter's reply. Default 5000 ms. */
  commandTimeoutMs?: number;
  clock: Clock;
  logger: Logger;
}

export interface GatewayControlCounters {
  /** Frames that were not valid control messages. */
  malformed: number;
  /** Frames not keyed with the instance key or a registration's key, or replayed. */
  unauthenticated: number;
  /** Adapters refused (feed id taken, another instance or broker, the gateway's routing). */
  refused: number;
  /** Registrations after the first, per feed (adapter restarts, lost or out-of-step state). */
  reregistrations: number;
}

type FeedState = 'idle' | 'registering' | 'registered';

interface Feed {
  feed: string;
  /** The adapter process serving it (or trying to), as it announced itself. */
  info: AdapterInfo;
  address: string;
  remote: RemoteAdapter | undefined;
  /** Why this gateway refused the feed, and when; announcements are ignored for a while. */
  refused: { message: string; at: number } | undefined;
  state: FeedState;
  /** This gateway's registration round with the feed; greater on every registration. */
  session: number;
  nonce: string;
  registerSentAt: number;
  /** Registers sent to the current process in this round without an answer. */
  unanswered: number;
  keys: SessionKeys | undefined;
  seqOut: number;
  seqIn: number;
  /** When the adapter last sent a valid frame of the registration. */
  lastAnswer: number;
  lastAnnounce: number;
  /** Another process announcing this feed id while it is registered: refused unless the current one is found dead. */
  challenger: { address: string; info: AdapterInfo; since: number } | undefined;
  /** What the adapter holds for this gateway, as far as it knows: the other half of the digest. */
  held: Map<string, { exchange: string; symbol: string; mode: Mode; feed: string | undefined }>;
  /** Commands sent and not yet answered, by id. */
  commands: Map<number, { command: Command; sentAt: number }>;
}

/** How long a refused feed id's announcements are ignored before it may be offered again. */
const REFUSAL_MEMORY_MS = 60_000;

export class GatewayControl {
  readonly counters: GatewayControlCounters = { malformed: 0, unauthenticated: 0, refused: 0, reregistrations: 0 };
  private callback: AdapterCallback | undefined;
  private readonly feeds = new Map<string, Feed>();
  /**
   * The process address of each registered feed. Bound only by a `registered` answering our
   * fresh nonce: an announce (which a bus reader can replay from any address) never binds it.
   */
  private readonly byAddress = new Map<string, Feed>();
  private readonly heartbeatMs: number;
  private readonly missedHeartbeats: number;
  private readonly commandTimeoutMs: number;
  private readonly log: ThrottledLog;
  private readonly timer: NodeJS.Timeout;
  private closed = false;

  constructor(private readonly options: GatewayControlOptions) {
    this.callback = options.onAdapter;
    this.heartbeatMs = checkPositive('heartbeatMs', options.heartbeatMs ?? DEFAULT_HEARTBEAT_MS);
    this.missedHeartbeats = checkPositive('missedHeartbeats', options.missedHeartbeats ?? DEFAULT_MISSED_HEARTBEATS);
    this.commandTimeoutMs = checkPositive('commandTimeoutMs', options.commandTimeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS);
    this.log = new ThrottledLog(options.logger, options.clock);
    options.transport.onFrame((from, data) => this.receive(from, data));
    options.transport.onReconnect(() => {
      // Our own outage is not the adapters' silence.
      const now = options.clock.now();
      for (const feed of this.feeds.values()) feed.lastAnswer = Math.max(feed.lastAnswer, now);
    });
    this.timer = setInterval(() => this.onTimer(), this.heartbeatMs);
    this.timer.unref();
  }

  /** Where adapters reach this gateway. */
  get endpoint(): string {
    return this.options.transport.endpoint;
  }

  /** Sets (or replaces) the registration callback; see AdapterCallback. */
  onAdapter(callback: AdapterCallback): void {
    this.callback = callback;
  }

  /** Feeds tracked now: accepted ones, and announced ones still registering (for status and tests). */
  get feedCount(): number {
    return this.feeds.size;
  }

  /** Every feed accepted so far, connected or not. */
  adapters(): RemoteAdapter[] {
    return [...this.feeds.values()].flatMap((feed) => (feed.remote ? [feed.remote] : []));
  }

  /** Says bye to every registered adapter (they release this gateway's share at once) and reports their feeds down. The transport stays open. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.timer);
    const byes: Array<Promise<boolean>> = [];
    for (const feed of this.feeds.values()) {
      if (feed.state === 'registered') byes.push(this.sendInSession(feed, { type: 'bye' }));
      if (feed.remote?.connected) feed.remote.detach('the gateway is shutting down');
    }
    await Promise.all(byes);
  }

  // ——— receiving ———

  private receive(from: string, data: Uint8Array): void {
    if (this.closed) return;
    const decoded = decodeToGateway(data);
    if (!decoded.ok) {
      if (decoded.legacy) return this.refuseLegacy(from, decoded.legacy);
      this.counters.malformed++;
      this.log.warn('malformed', 'malformed control frame', { reason: decoded.error, malformed: this.counters.malformed });
      return;
    }
    const { message } = decoded;
    switch (message.type) {
      case 'announce':
      case 'registered':
      case 'refused':
      case 'reset':
        if (!this.instanceKeyed(decoded)) return;
        if (message.type === 'announce') return this.onAnnounce(from, message);
        if (message.type === 'registered') return this.onRegistered(from, message);
        return this.onRejection(from, message);
      default:
        return this.onEvent(from, decoded as Frame<AdapterEvent>);
    }
  }

  private instanceKeyed(frame: Frame<ToGateway>): boolean {
    if (authentic(this.options.key, frame.json, frame.mac)) return true;
    this.unauthenticated(`${frame.message.type} not keyed with this instance's control key`);
    return false;
  }

  private unauthenticated(reason: string): void {
    this.counters.unauthenticated++;
    this.log.warn('unauthenticated', 'control frame refused: not from a process holding this instance\'s control key (TICKCAST_CONTROL_KEY_FILE)', {
      reason,
      unauthenticated: this.counters.unauthenticated,
    });
  }

  /** A version-1 adapter: refused in its own words, which name both versions. */
  private refuseLegacy(from: string, legacy: { protocol: number; session: number }): void {
    this.counters.refused++;
    const message = `control protocol ${legacy.protocol} is not supported: this gateway speaks ${PROTOCOL_VERSION}; upgrade the adapter`;
    this.log.warn('legacy', 'adapter refused', { reason: message });
    void this.options.transport.send(from, JSON.stringify({ type: 'refused', session: legacy.session, message }));
  }

  private onAnnounce(from: string, info: Announce): void {
    const now = this.options.clock.now();
    if (info.protocol !== PROTOCOL_VERSION) {
      return this.refuse(from, info, `control protocol ${info.protocol} is not supported: this gateway speaks ${PROTOCOL_VERSION}`);
    }
    if (info.instance !== this.options.instance) {
      return this.refuse(from, info, `this gateway serves instance "${this.options.instance}", not "${info.instance}"`);
    }
    let feed = this.feeds.get(info.feed);
    if (feed?.refused && now - feed.refused.at > REFUSAL_MEMORY_MS && !feed.remote) {
      this.forget(feed);
      feed = undefined;
    }
    if (!feed) {
      if (!this.callback) return; // not accepting adapters yet
      if (this.feeds.size >= MAX_PEERS) {
        this.log.warn('peers', 'adapter ignored: this gateway tracks too many feeds', { feed: info.feed, limit: MAX_PEERS });
        return;
      }
      feed = this.track(from, info);
    }
    if (feed.refused) {
      if (feed.address === from && feed.info.epoch === info.epoch) void this.sendKeyed(from, { type: 'refused', epoch: info.epoch, message: feed.refused.message });
      return;
    }
    if (feed.address === from && feed.info.epoch === info.epoch) {
      feed.lastAnnounce = now;
      if (feed.state === 'idle') this.register(feed);
      return;
    }
    // Another process announces this feed id. While the current one is still registering and
    // not yet overdue, it keeps the feed (two starting at once must not take it from each other);
    // one that leaves our registers unanswered (dead, or a replay of a dead one's announce)
    // gives way.
    if (feed.state === 'registering' && feed.unanswered <= this.missedHeartbeats && now - feed.lastAnnounce <= this.silenceLimit(feed)) return;
    if (feed.state !== 'registered') return this.takeOver(feed, from, info);
    if (feed.challenger?.address === from) return;
    // The current one keeps the feed if it still answers: probe it.
    feed.challenger = { address: from, info, since: now };
    void this.sendInSession(feed, { type: 'heartbeat' }).then((sent) => {
      if (!sent && feed.challenger?.address === from) this.takeOver(feed, from, info);
    });
  }

  private track(from: string, info: AdapterInfo): Feed {
    const now = this.options.clock.now();
    const feed: Feed = {
      feed: info.feed,
      info,
      address: from,
      remote: undefined,
      refused: undefined,
      state: 'idle',
      session: 0,
      nonce: '',
      registerSentAt: 0,
      unanswered: 0,
      keys: undefined,
      seqOut: 0,
      seqIn: 0,
      lastAnswer: now,
      lastAnnounce: now,
      challenger: undefined,
      held: new Map(),
      commands: new Map(),
    };
    this.feeds.set(info.feed, feed);
    return feed;
  }

  /** Another process serves the feed from now on (the old one is dead or never registered). */
  private takeOver(feed: Feed, from: string, info: AdapterInfo): void {
    const previous = feed.info;
    // Seamless for the feed's clients: no `down` between the two processes.
    feed.remote?.failPending(`Feed "${feed.feed}" adapter (pid ${previous.pid}) restarted before answering`);
    this.lose(feed, '', { detach: false });
    feed.address = from;
    feed.info = info;
    feed.challenger = undefined;
    feed.lastAnnounce = this.options.clock.now();
    if (feed.remote) this.options.logger.info({ feed: feed.feed, adapterPid: info.pid, previousAdapterPid: previous.pid }, 'adapter back (restarted or reconnected)');
    this.register(feed);
  }

  private onRegistered(from: string, message: Registered): void {
    const feed = this.feeds.get(message.feed);
    if (
      !feed || feed.state !== 'registering' || feed.address !== from || message.gateway !== this.options.gateway ||
      message.session !== feed.session || message.gatewayNonce !== feed.nonce || message.epoch !== feed.info.epoch
    ) {
      return; // an answer to an earlier round, or a replay
    }
    const { status, message: statusMessage, type: _type, gateway: _gateway, session: _session, gatewayNonce: _g, nonce, ...info } = message;
    feed.info = info;
    if (!feed.remote) {
      const decision = this.decide(feed);
      if (!decision.accept) {
        feed.refused = { message: decision.message, at: this.options.clock.now() };
        feed.state = 'idle';
        return this.refuse(from, info, decision.message);
      }
    } else if (feed.remote.broker !== info.broker || !sameBrokers(feed.remote.brokers, info.brokers)) {
      feed.state = 'idle';
      return this.refuse(
        from,
        info,
        `feed id "${feed.feed}" is registered for broker ${feed.remote.broker} (${describeBrokers(feed.remote.brokers)}), ` +
          `not ${info.broker} (${describeBrokers(info.brokers)}); restart the gateway to change it`,
      );
    }
    feed.keys = sessionKeys(this.options.key, feed.nonce, nonce);
    feed.state = 'registered';
    this.byAddress.set(from, feed);
    feed.seqIn = 0;
    feed.seqOut = 0;
    feed.lastAnswer = this.options.clock.now();
    feed.held.clear();
    feed.commands.clear();
    const session = feed.session;
    this.options.logger.info({ feed: feed.feed, adapterPid: info.pid, adapterHost: info.host }, 'registered with the adapter');
    // The replay that follows (through onReconnect listeners) rebuilds what the adapter holds for us.
    feed.remote!.attach({ ...info, status, ...(statusMessage === undefined ? {} : { message: statusMessage }) }, (command) => this.sendCommand(feed, session, command));
  }

  private decide(feed: Feed): AdapterDecision {
    const remote = new RemoteAdapter({ info: feed.info, commandTimeoutMs: this.commandTimeoutMs, logger: this.options.logger });
    let decision: AdapterDecision;
    try {
      decision = this.callback!(remote, feed.info);
    } catch (err) {
      this.options.logger.error({ err, feed: feed.feed }, 'adapter registration failed');
      decision = { accept: false, message: `the gateway could not register feed id "${feed.feed}": ${(err as Error).message}` };
    }
    if (decision.accept) feed.remote = remote;
    return decision;
  }

  /** `refused` from the adapter (another protocol) or `reset` (it does not know our registration). */
  private onRejection(from: string, message: Extract<ToGateway, { type: 'refused' | 'reset' }>): void {
    if (message.gateway !== this.options.gateway) return;
    const feed = this.byAddress.get(from) ?? [...this.feeds.values()].find((f) => f.state === 'registering' && f.address === from);
    if (!feed || message.session !== feed.session) return;
    if (message.type === 'reset') {
      // A reader of the bus can make the adapter send a genuine reset to us (it answers any
      // frame naming a registration it does not know). Only a registration the adapter has
      // stopped answering can have been dropped by it; while registering we send nothing it
      // could answer so.
      if (feed.state !== 'registered' || this.options.clock.now() - feed.lastAnswer < 2 * this.heartbeatMs) return;
      this.options.logger.info({ feed: feed.feed, reason: message.message }, 'registering with the adapter again');
      this.register(feed);
      return;
    }
    feed.refused = { message: message.message, at: this.options.clock.now() };
    this.options.logger.error({ feed: feed.feed, reason: message.message }, 'the adapter refused this gateway');
    this.lose(feed, `Feed "${feed.feed}" refused this gateway: ${message.message}`);
  }

  private onEvent(from: string, frame: Frame<AdapterEvent>): void {
    const feed = this.byAddress.get(from);
    const event = frame.message;
    if (!feed || feed.state !== 'registered' || event.gateway !== this.options.gateway || event.session !== feed.session) return;
    if (!authentic(feed.keys!.toGateway, frame.json, frame.mac) || event.seq <= feed.seqIn) {
      return this.unauthenticated(`${event.type} of feed "${feed.feed}" not keyed with its registration's key, or replayed`);
    }
    feed.seqIn = event.seq;
    feed.lastAnswer = this.options.clock.now();
    const remote = feed.remote!;
    switch (event.type) {
      case 'heartbeat':
        if (event.resync) {
          this.options.logger.info({ feed: feed.feed }, 'the adapter holds a different set for this gateway; registering again');
          this.register(feed);
          return;
        }
        if (remote.status() !== event.status) remote.receiveStatus(event.status, event.message);
        return;
      case 'status':
        remote.receiveStatus(event.status, event.message, event.feed);
        return;
      case 'bye':
        this.lose(feed, `Feed "${feed.feed}" adapter (pid ${feed.info.pid}) stopped`);
        return;
      case 'reply': {
        const sent = feed.commands.get(event.id);
        feed.commands.delete(event.id);
        if (sent && event.ok && sent.command.type === 'subscribe') {
          const { exchange, symbol, mode, feed: hosted } = sent.command;
          feed.held.set(heldKey(sent.command), { exchange, symbol, mode, feed: hosted });
        }
        remote.receiveReply(event.id, event.ok ? (event.depth === undefined ? { ok: true } : { ok: true, depth: event.depth }) : { ok: false, message: event.message });
        return;
      }
    }
  }

  // ——— registering and sending ———

  /** Says register (again): the adapter will count what it holds for us as pending until our replay ends. */
  private register(feed: Feed): void {
    if (this.closed) return;
    if (feed.state === 'registered') {
      feed.remote?.failPending(`Feed "${feed.feed}" is re-registering with this gateway`);
    }
    if (feed.session > 0) this.counters.reregistrations++;
    feed.state = 'registering';
    feed.keys = undefined;
    feed.session++;
    feed.nonce = newNonce();
    feed.unanswered = 0;
    this.sendRegister(feed);
  }

  private sendRegister(feed: Feed): void {
    feed.registerSentAt = this.options.clock.now();
    feed.unanswered++;
    void this.sendKeyed(feed.address, {
      type: 'register',
      protocol: PROTOCOL_VERSION,
      gateway: this.options.gateway,
      session: feed.session,
      nonce: feed.nonce,
      heartbeatMs: this.heartbeatMs,
      pid: process.pid,
      host: hostname(),
    });
  }

  /** The RemoteAdapter's sender: one subscribe or unsubscribe within the registration it was made in. */
  private sendCommand(feed: Feed, session: number, command: Command & { id: number }): Promise<boolean> {
    if (this.closed || feed.state !== 'registered' || feed.session !== session) return Promise.resolve(false);
    // Whatever the answer, we no longer count on the stream (a lost unsubscribe shows in the digest).
    if (command.type === 'unsubscribe') feed.held.delete(heldKey(command));
    feed.commands.set(command.id, { command, sentAt: this.options.clock.now() });
    return this.sendInSession(feed, command);
  }

  private sendInSession(feed: Feed, body: DistributiveOmit<GatewayCommand, 'gateway' | 'session' | 'seq'>): Promise<boolean> {
    if (!feed.keys) return Promise.resolve(false);
    const message = { ...body, gateway: this.options.gateway, session: feed.session, seq: ++feed.seqOut } as GatewayCommand;
    return this.options.transport.send(feed.address, encodeFrame(message, feed.keys.toAdapter));
  }

  private sendKeyed(to: string, message: Parameters<typeof encodeFrame>[0]): Promise<boolean> {
    return this.options.transport.send(to, encodeFrame(message, this.options.key));
  }

  private refuse(to: string, info: AdapterInfo, message: string): void {
    this.counters.refused++;
    this.log.warn(`refused ${info.feed}`, 'adapter refused', { feed: info.feed, adapterPid: info.pid, reason: message });
    void this.sendKeyed(to, { type: 'refused', epoch: info.epoch, message: clipText(message) });
  }

  /** The adapter is gone (stopped, silent, replaced, or refused us): its feed is down until it registers again. */
  private lose(feed: Feed, reason: string, { detach = true } = {}): void {
    if (this.byAddress.get(feed.address) === feed) this.byAddress.delete(feed.address);
    feed.state = 'idle';
    feed.keys = undefined;
    feed.held.clear();
    feed.commands.clear();
    if (detach && feed.remote?.connected) {
      this.options.logger.warn({ feed: feed.feed, adapterPid: feed.info.pid, reason }, 'adapter down');
      feed.remote.detach(reason);
    }
  }

  private forget(feed: Feed): void {
    this.feeds.delete(feed.feed);
    if (this.byAddress.get(feed.address) === feed) this.byAddress.delete(feed.address);
  }

  private onTimer(): void {
    // Our own outage, not the peers' silence: judged again once the link is back.
    if (!this.options.transport.connected) return;
    if (this.closed) return;
    const now = this.options.clock.now();
    for (const feed of [...this.feeds.values()]) {
      const limitMs = this.silenceLimit(feed);
      if (feed.refused) {
        // Offered again after a while (a refusal may have been fixed meanwhile); never kept for good.
        if (now - feed.refused.at > REFUSAL_MEMORY_MS) {
          if (feed.remote) feed.refused = undefined;
          else this.forget(feed);
        }
        continue;
      }
      const announcing = now - feed.lastAnnounce <= limitMs;
      if (feed.state === 'registered') {
        const challenger = feed.challenger;
        // The current one keeps the feed unless it stays silent as long as would mark it down.
        if (challenger && now - challenger.since >= limitMs) {
          feed.challenger = undefined;
          if (feed.lastAnswer < challenger.since) {
            this.takeOver(feed, challenger.address, challenger.info);
            continue;
          }
          this.refuse(challenger.address, challenger.info, `feed id "${feed.feed}" is already served by pid ${feed.info.pid} on ${feed.info.host}`);
        }
        const silentMs = now - feed.lastAnswer;
        if (silentMs > limitMs) {
          this.lose(feed, `Feed "${feed.feed}" adapter (pid ${feed.info.pid}) sent nothing for ${formatDuration(silentMs)}`);
          continue;
        }
        this.expireCommands(feed, now);
        // A digest only when nothing is in flight: otherwise the two sides may legitimately differ.
        void this.sendInSession(feed, feed.commands.size === 0 ? { type: 'heartbeat', digest: digestOf(feed.held.values()) } : { type: 'heartbeat' });
      } else if (!announcing) {
        feed.state = 'idle';
        // Never registered: nothing to keep.
        if (!feed.remote) this.forget(feed);
      } else if (feed.state === 'registering' && now - feed.registerSentAt >= this.heartbeatMs) {
        this.sendRegister(feed);
      } else if (feed.state === 'idle') {
        this.register(feed);
      }
    }
  }

  /** How long the feed's adapter may stay silent: missed heartbeats of the slower side. */
  private silenceLimit(feed: Feed): number {
    return this.missedHeartbeats * Math.max(this.heartbeatMs, feed.info.heartbeatMs);
  }

  /** Commands the RemoteAdapter has given up on no longer hold the digest back. */
  private expireCommands(feed: Feed, now: number): void {
    for (const [id, { sentAt }] of feed.commands) if (now - sentAt > this.commandTimeoutMs) feed.commands.delete(id);
  }
}

/** A stream's key in `held`: with its hosted feed, at a feed host. */
function heldKey(command: { exchange: string; symbol: string; feed?: string }): string {
  return command.feed === undefined ? streamKeyOf(command) : `${command.feed}\u0000${streamKeyOf(command)}`;
}

function sameBrokers(a: readonly string[] | '*', b: readonly string[] | '*'): boolean {
  if (a === '*' || b === '*') return a === b;
  return a.length === b.length && a.every((broker) => b.includes(broker));
}

function describeBrokers(brokers: readonly string[] | '*'): string {
  return brokers === '*' ? 'any broker' : brokers.join(', ');
}
