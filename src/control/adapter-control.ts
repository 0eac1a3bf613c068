/**
 * An adapter's end of the control protocol (protocol.ts), over any transport: it announces its
 * feed, answers every gateway that registers with the instance key, keeps each gateway's
 * interest (node-interest.ts), subscribes the local adapter upstream to the union, and releases
 * a gateway's share when it says bye or falls silent. Over ZeroMQ there is one gateway; over
 * NATS, every gateway node of the instance.
 */
import { randomInt } from 'node:crypto';
import { hostname } from 'node:os';
import type { Adapter, FeedStatusEvent, StreamRef, SubscribeResult } from '../feed.js';
import type { Clock } from '../clock.js';
import type { Logger } from '../observability/logger.js';
import { clipText, decodeToAdapter, encodeFrame, type Frame } from './codec.js';
import { authentic, newNonce, type SessionKeys, sessionKeys } from './keys.js';
import { NodeInterest, streamKeyOf } from './node-interest.js';
import {
  DEFAULT_HEARTBEAT_MS, DEFAULT_MISSED_HEARTBEATS, MAX_PEERS, PROTOCOL_VERSION,
  type AdapterEvent, type AdapterInfo, type ControlMessage, type GatewayCommand, type Register,
} from './protocol.js';
import { formatDuration } from './remote-adapter.js';
import { KeyedQueue, ThrottledLog, checkPositive } from './support.js';
import type { DistributiveOmit } from './support.js';
import type { AdapterTransport } from './transport.js';

export interface AdapterControlOptions {
  transport: AdapterTransport;
  /** The instance key (keys.ts): only gateways holding it are obeyed. */
  key: Buffer;
  /** The local adapter the gateways' interest drives; its status changes are forwarded. */
  adapter: Adapter;
  /** Brokers whose users it serves, or '*'. */
  brokers: string[] | '*';
  instance: string;
  /** Interval of announcements. Default 1000 ms. */
  heartbeatMs?: number;
  /** A gateway that sends nothing for this many intervals (its own, if slower) is dropped. Default 3. */
  missedHeartbeats?: number;
  clock: Clock;
  logger: Logger;
  /** A gateway refused this adapter (the feed id is taken, another instance…): the process should stop with this message. */
  onRefused?(message: string): void;
  /** The first gateway registered (and again after every time there was none). */
  onGatewayFound?(): void;
  /** The last gateway left or fell silent; its share has been released. */
  onGatewayLost?(reason: string): void;
}

export interface AdapterControlCounters {
  malformed: number;
  /** Frames not keyed with the instance key or a registration's key, or replayed. */
  unauthenticated: number;
  /** Gateways dropped for silence. */
  gatewaysLost: number;
}

interface GatewayState {
  address: string;
  session: number;
  gatewayNonce: string;
  keys: SessionKeys;
  /** The frame that answered its register, sent again if the register is repeated. */
  answer: string;
  /** Set by the registration's first valid command: the gateway proved it holds the key. */
  confirmed: boolean;
  seqIn: number;
  seqOut: number;
  lastSeen: number;
  silenceLimitMs: number;
  /** `host pid` of the gateway, for logs. */
  label: string;
}

interface Held {
  mode: number;
  depth: number;
  /** The depth the adapter said it delivers. */
  delivered: number | undefined;
}

export class AdapterControl {
  /** Random per process: another epoch tells the gateways this process is new. */
  readonly epoch = randomInt(1, 2 ** 47);
  readonly counters: AdapterControlCounters = { malformed: 0, unauthenticated: 0, gatewaysLost: 0 };
  private readonly interest = new NodeInterest();
  private readonly gateways = new Map<string, GatewayState>();
  /** What the local adapter holds upstream, per stream key. */
  private readonly held = new Map<string, Held>();
  /** When a reset was last sent for each gateway id (resetDue). */
  private readonly lastResetAt = new Map<string, number>();
  private readonly queue: KeyedQueue;
  private readonly heartbeatMs: number;
  private readonly missedHeartbeats: number;
  private readonly log: ThrottledLog;
  private readonly host = hostname();
  private timer: NodeJS.Timeout | undefined;
  private found = false;
  private refused = false;
  private stopped = false;

  constructor(private readonly options: AdapterControlOptions) {
    this.heartbeatMs = checkPositive('heartbeatMs', options.heartbeatMs ?? DEFAULT_HEARTBEAT_MS);
    this.missedHeartbeats = checkPositive('missedHeartbeats', options.missedHeartbeats ?? DEFAULT_MISSED_HEARTBEATS);
    this.log = new ThrottledLog(options.logger, options.clock);
    this.queue = new KeyedQueue((err, key) => options.logger.error({ err, feed: options.adapter.feed, stream: key }, 'control command failed'));
    options.transport.onFrame((from, data) => this.receive(from, data));
    options.transport.onReconnect(() => {
      // Our own outage is not the gateways' silence: give them a fresh period to show up.
      const now = options.clock.now();
      for (const gateway of this.gateways.values()) gateway.lastSeen = now;
      this.announce();
    });
    options.adapter.onStatus((event) => this.forwardStatus(event));
  }

  /** Starts announcing (now, and every heartbeatMs). */
  start(): void {
    if (this.timer || this.stopped) return;
    this.timer = setInterval(() => this.onTimer(), this.heartbeatMs);
    this.timer.unref();
    this.announce();
  }

  /**
   * Says bye to every gateway (they report the feed down at once) and stops; `bye: false` stops
   * silently, as a crash would. The local adapter and the transport are left as they are.
   */
  async stop({ bye = true }: { bye?: boolean } = {}): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    clearInterval(this.timer);
    if (!bye) return;
    await Promise.all([...this.gateways.entries()].filter(([, g]) => g.confirmed).map(([id, g]) => this.sendInSession(id, g, { type: 'bye' })));
  }

  /** Gateways registered now (confirmed). */
  get gatewayCount(): number {
    let count = 0;
    for (const gateway of this.gateways.values()) if (gateway.confirmed) count++;
    return count;
  }

  /** Streams the local adapter holds upstream for the gateways. */
  get upstreamCount(): number {
    return this.held.size;
  }

  /** What the gateways want of a stream now (highest mode), 0 for nothing; for tests and status. */
  wantedMode(stream: StreamRef): number {
    return this.interest.wanted(stream)?.mode ?? 0;
  }

  /**
   * Forgets every gateway at once (the transport now leads elsewhere): their shares are
   * released, and whoever is there registers anew.
   */
  dropGateways(reason: string): void {
    for (const id of [...this.gateways.keys()]) this.dropGateway(id, reason);
    this.announce();
  }

  private info(): AdapterInfo {
    const { adapter, brokers, instance } = this.options;
    return { protocol: PROTOCOL_VERSION, feed: adapter.feed, broker: adapter.broker, brokers, instance, pid: process.pid, host: this.host, epoch: this.epoch, heartbeatMs: this.heartbeatMs };
  }

  private announce(): void {
    if (this.stopped || this.refused) return;
    this.options.transport.announce(encodeFrame({ type: 'announce', ...this.info() }, this.options.key));
  }

  private onTimer(): void {
    // Our own outage, not the peers' silence: judged again once the link is back.
    if (!this.options.transport.connected) return;
    const now = this.options.clock.now();
    for (const [id, gateway] of [...this.gateways]) {
      const silentMs = now - gateway.lastSeen;
      if (silentMs <= gateway.silenceLimitMs) continue;
      if (gateway.confirmed) this.counters.gatewaysLost++;
      this.dropGateway(id, `nothing from the gateway for ${formatDuration(silentMs)} (${gateway.label})`);
    }
    this.announce();
  }

  // ——— receiving ———

  private receive(from: string, data: Uint8Array): void {
    if (this.stopped) return;
    const decoded = decodeToAdapter(data);
    if (!decoded.ok) {
      this.counters.malformed++;
      this.log.warn('malformed', 'malformed control frame', { reason: decoded.error, malformed: this.counters.malformed });
      return;
    }
    const { message } = decoded;
    if (message.type === 'register' || message.type === 'refused') {
      if (!authentic(this.options.key, decoded.json, decoded.mac)) return this.unauthenticated(message.type);
      if (message.type === 'register') return this.onRegister(from, message);
      if (message.epoch !== this.epoch || this.refused) return;
      // Over NATS one node may refuse while others serve us: only a refusal with no gateway
      // registered stops this adapter.
      if (this.gatewayCount > 0) {
        this.log.warn('refused', 'a gateway refused this adapter; still serving the others', { feed: this.options.adapter.feed, reason: message.message });
        return;
      }
      this.refused = true;
      this.options.logger.error({ feed: this.options.adapter.feed, reason: message.message }, 'a gateway refused this adapter');
      this.callSafely('onRefused', () => this.options.onRefused?.(message.message));
      return;
    }
    this.onCommand(from, decoded as Frame<GatewayCommand>);
  }

  private unauthenticated(what: string): void {
    this.counters.unauthenticated++;
    this.log.warn('unauthenticated', "control frame refused: not from a process holding this instance's control key (TICKCAST_CONTROL_KEY_FILE)", {
      what,
      unauthenticated: this.counters.unauthenticated,
    });
  }

  private onRegister(from: string, register: Register): void {
    const { gateway: id, session } = register;
    if (register.protocol !== PROTOCOL_VERSION) {
      const message = `control protocol ${register.protocol} is not supported: this adapter speaks ${PROTOCOL_VERSION}`;
      this.log.warn('protocol', 'gateway refused', { gateway: id, reason: message });
      void this.send(from, { type: 'refused', gateway: id, session, message });
      return;
    }
    const known = this.gateways.get(id);
    if (known && session <= known.session) {
      // The same register repeated (our answer was lost): answer it again. Older rounds are replays.
      if (session === known.session && register.nonce === known.gatewayNonce && from === known.address) void this.options.transport.send(from, known.answer);
      return;
    }
    if (!known && this.gateways.size >= MAX_PEERS) {
      this.log.warn('peers', 'gateway ignored: this adapter serves too many', { gateway: id, limit: MAX_PEERS });
      return;
    }
    const nonce = newNonce();
    const answer = encodeFrame(
      { type: 'registered', ...this.info(), gateway: id, session, gatewayNonce: register.nonce, nonce, status: this.options.adapter.status() },
      this.options.key,
    );
    this.gateways.set(id, {
      address: from,
      session,
      gatewayNonce: register.nonce,
      keys: sessionKeys(this.options.key, register.nonce, nonce),
      answer,
      confirmed: false,
      seqIn: 0,
      seqOut: 0,
      lastSeen: this.options.clock.now(),
      silenceLimitMs: this.missedHeartbeats * Math.max(this.heartbeatMs, register.heartbeatMs),
      label: `${register.host} pid ${register.pid}`,
    });
    void this.options.transport.send(from, answer);
  }

  private onCommand(from: string, frame: Frame<GatewayCommand>): void {
    const command = frame.message;
    const id = command.gateway;
    const gateway = this.gateways.get(id);
    if (!gateway || gateway.session !== command.session || gateway.address !== from) {
      // We dropped it (silent too long) or restarted: it must register again.
      if (command.type !== 'bye' && this.resetDue(id)) {
        const message = `Feed "${this.options.adapter.feed}" does not know this gateway's registration; register again`;
        void this.send(from, { type: 'reset', gateway: id, session: command.session, message });
      }
      return;
    }
    if (!authentic(gateway.keys.toAdapter, frame.json, frame.mac) || command.seq <= gateway.seqIn) return this.unauthenticated(command.type);
    gateway.seqIn = command.seq;
    gateway.lastSeen = this.options.clock.now();
    if (!gateway.confirmed) this.confirm(id, gateway);
    if (command.type === 'subscribe' || command.type === 'unsubscribe') {
      // One line per command at debug level: what the gateway asked this adapter for, in order.
      const { type, exchange, symbol } = command;
      this.options.logger.debug(type === 'subscribe' ? { command: type, exchange, symbol, mode: command.mode, depth: command.depth } : { command: type, exchange, symbol }, 'command from the gateway');
    }
    if (command.type === 'open' || command.type === 'relogin' || ((command.type === 'subscribe' || command.type === 'unsubscribe') && command.feed !== undefined)) {
      // Feed hosts' commands (docs/control-protocol.md, Feed hosts): this adapter serves one feed.
      this.reply(id, gateway, command.id, { ok: false, message: `adapter of feed "${this.options.adapter.feed}" is not a feed host: it opens no users' feeds` });
      return;
    }
    switch (command.type) {
      case 'heartbeat': {
        let resync = false;
        if (command.digest) {
          // No command of the gateway is in flight: its replay (if any) is over.
          for (const stream of this.interest.endReplace(id)) void this.queue.run(streamKeyOf(stream), () => this.reconcile(stream));
          const mine = this.interest.digest(id);
          resync = mine.count !== command.digest.count || mine.sum !== command.digest.sum;
          if (resync) this.options.logger.warn({ feed: this.options.adapter.feed, gateway: gateway.label, held: mine.count, gatewaySays: command.digest.count }, 'gateway interest out of step; asking it to replay');
        }
        void this.sendInSession(id, gateway, { type: 'heartbeat', resync, status: this.options.adapter.status() });
        return;
      }
      case 'subscribe': {
        const stream: StreamRef = { exchange: command.exchange, symbol: command.symbol };
        void this.queue.run(streamKeyOf(stream), async () => {
          // The gateway may have left (bye, silence) while this waited its turn: nothing to hold for it.
          if (this.gateways.get(id) !== gateway) return;
          const previous = this.interest.set(id, stream, { mode: command.mode, depth: command.depth });
          const result = await this.reconcile(stream);
          if (!result.ok) this.interest.restore(id, stream, previous);
          this.reply(id, gateway, command.id, result);
        });
        return;
      }
      case 'unsubscribe': {
        const stream: StreamRef = { exchange: command.exchange, symbol: command.symbol };
        void this.queue.run(streamKeyOf(stream), async () => {
          if (this.gateways.get(id) !== gateway) return;
          this.interest.remove(id, stream);
          await this.reconcile(stream);
          this.reply(id, gateway, command.id, { ok: true });
        });
        return;
      }
      case 'bye':
        this.options.logger.info({ feed: this.options.adapter.feed, gateway: gateway.label, streams: this.interest.heldBy(id) }, 'gateway said bye; releasing its interest');
        this.dropGateway(id, `the gateway closed the control channel (${gateway.label} said bye)`);
        return;
    }
  }

  /**
   * At most one reset per gateway id and heartbeat period: any bus publisher can provoke them
   * (they answer frames we cannot authenticate), and each costs a MAC and a send.
   */
  private resetDue(id: string): boolean {
    const now = this.options.clock.now();
    if (now - (this.lastResetAt.get(id) ?? -Infinity) < this.heartbeatMs) return false;
    if (this.lastResetAt.size >= MAX_PEERS) this.lastResetAt.clear();
    this.lastResetAt.set(id, now);
    return true;
  }

  /** The gateway proved it holds the key: what it held before stays counted until its replay ends. */
  private confirm(id: string, gateway: GatewayState): void {
    gateway.confirmed = true;
    const renewed = this.interest.hasNode(id);
    this.interest.beginReplace(id);
    this.options.logger.info({ feed: this.options.adapter.feed, gateway: gateway.label, endpoint: this.options.transport.endpoint, renewed }, 'registered with the gateway');
    if (!this.found) {
      this.found = true;
      this.callSafely('onGatewayFound', () => this.options.onGatewayFound?.());
    }
  }

  private dropGateway(id: string, reason: string): void {
    const gateway = this.gateways.get(id);
    if (!gateway) return;
    this.gateways.delete(id);
    for (const stream of this.interest.dropNode(id)) void this.queue.run(streamKeyOf(stream), () => this.reconcile(stream));
    if (gateway.confirmed && this.found && this.gatewayCount === 0) {
      this.found = false;
      this.options.logger.info({ feed: this.options.adapter.feed, reason }, 'no gateway left; its subscriptions are released');
      this.callSafely('onGatewayLost', () => this.options.onGatewayLost?.(reason));
    }
  }

  /**
   * Brings the local adapter to what the gateways want of `stream` now. Runs inside the
   * stream's queue. A failed subscribe leaves upstream as it was.
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

  // ——— sending ———

  /** Answers a command within the registration it came in (a later one never asked). */
  private reply(id: string, gateway: GatewayState, commandId: number, result: SubscribeResult): void {
    if (this.gateways.get(id) !== gateway) return;
    const body = result.ok
      ? result.depth === undefined ? { type: 'reply' as const, id: commandId, ok: true as const } : { type: 'reply' as const, id: commandId, ok: true as const, depth: result.depth }
      : { type: 'reply' as const, id: commandId, ok: false as const, message: clipText(result.message) };
    void this.sendInSession(id, gateway, body);
  }

  private forwardStatus(event: FeedStatusEvent): void {
    if (this.stopped) return;
    const body = event.message === undefined ? { type: 'status' as const, status: event.status } : { type: 'status' as const, status: event.status, message: clipText(event.message) };
    for (const [id, gateway] of this.gateways) if (gateway.confirmed) void this.sendInSession(id, gateway, body);
  }

  private sendInSession(id: string, gateway: GatewayState, body: DistributiveOmit<AdapterEvent, 'gateway' | 'session' | 'seq'>): Promise<boolean> {
    const message = { ...body, gateway: id, session: gateway.session, seq: ++gateway.seqOut } as AdapterEvent;
    return this.options.transport.send(gateway.address, encodeFrame(message, gateway.keys.toGateway));
  }

  private send(to: string, message: ControlMessage): Promise<boolean> {
    return this.options.transport.send(to, encodeFrame(message, this.options.key));
  }

  private callSafely(name: string, call: () => void): void {
    try {
      call();
    } catch (err) {
      this.options.logger.error({ err, callback: name }, 'control callback failed');
    }
  }
}
