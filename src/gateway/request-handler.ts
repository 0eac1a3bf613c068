/**
 * Answers one client request for one session: OpenAlgo's dispatch, validation order and reply
 * shapes (spec §2.2–2.8). No sockets here: replies go through `session.reply`.
 */
import { isStoreUnreachable } from '../auth/key-verifier.js';
import type { Clock } from '../clock.js';
import { ProtocolErrorCode, ProtocolMessage } from '../errors.js';
import type { Logger } from '../observability/logger.js';
import {
  type Action,
  type JsonObject,
  PUBLIC_ACTIONS,
  apiKeyOf,
  checkItem,
  checkSince,
  parsePing,
  parseSubscribe,
  parseUnsubscribe,
  requestIdOf,
  resolveAction,
} from '../protocol/requests.js';
import {
  type Reply,
  type SubscribeOutcome,
  type UnsubscribeOutcome,
  authReply,
  brokerInfoReply,
  errorReply,
  ordersReply,
  pongReply,
  subscribeReply,
  supportedBrokersReply,
  unsubscribeReply,
} from '../protocol/replies.js';
import { depthSuffix, requestedDepth } from '../protocol/depth.js';
import { pyTruthy } from '../protocol/python.js';
import { type Encoding, type Extensions, parseExtensions } from '../protocol/encoding.js';
import type { TickRoute } from './fan-out.js';
import { type Feeds, NO_FEED } from './feeds.js';
import { type FailedAuths, TokenBucket, verifyLimited } from './limits.js';
import type { Session } from './session.js';
import { addressKey } from './websocket-server.js';
import type { SubscriptionIndex } from './subscription-index.js';
import type { StreamHolder } from './stream-holds.js';
import { streamKey } from '../feed.js';
import type { Upstream } from './upstream.js';

export interface Identity {
  user: string;
  /** The user's broker (OpenAlgo's `auth.broker`), or null if none is configured. */
  broker: string | null;
}

export interface KeyVerifier {
  verify(apiKey: unknown): Promise<Identity | null>;
}

export interface RequestHandlerOptions {
  verifier: KeyVerifier;
  feeds: Feeds;
  upstream: Upstream;
  /** Sessions, and the gateway's own holder of recorded streams (never touched here). */
  index: SubscriptionIndex<Session | StreamHolder>;
  clock: Clock;
  logger: Logger;
  /** `get_supported_brokers`' list. */
  supportedBrokers: readonly string[];
  /** Called when a session's user changes (the gateway keeps its user → sessions map). */
  onUserChange(session: Session, previousUser: string | null): void;
  /** Extensions a client gets unless it negotiates others at authentication. */
  defaultExtensions: Extensions;
  /** Sends a new subscriber the stream's last value, if known and current. */
  snapshot(session: Session, route: TickRoute): void;
  /**
   * Recovery after reconnect (fan-out.ts `startRecovery`/`recover`) and this gateway process's
   * `seq_epoch`. Absent: `since` is refused per item.
   */
  recovery?: {
    epoch: string;
    start(session: Session, route: TickRoute): number | undefined;
    recover(session: Session, route: TickRoute, since: number, marked: number | undefined, epochMismatch: string | undefined): void;
    /** Live messages flow again (a recovery that will not run). */
    end(session: Session, route: TickRoute): void;
  };
  /** The event a client gets right after authenticating, if its feed is not live (or missing). */
  joinStatus?(session: Session): Reply | undefined;
  /** Why `broker` has no feed here (a session routed to NO_FEED), for its per-symbol errors. */
  noFeedReason?(user: string, broker: string): string;
  /** Limits (config `limits.*`); absent ones are unlimited. */
  limits?: { maxConnectionsPerKey?: number; maxSubscriptions?: number; subscribeRate?: number };
  /** Failed authentications per address (absent: not tracked). */
  failedAuths?: FailedAuths;
  /** Authenticated sessions of a user now: what the per-key limit counts, unless reserveConnection is set. */
  sessionsOf?(user: string): number;
  /**
   * The per-key limit counted by another process (the primary of `--workers N`): takes one of
   * `user`'s connections for `session`, false when the instance already holds the limit.
   */
  reserveConnection?(session: Session, user: string): Promise<boolean>;
  /** The user's own broker feed, if they have one (gateway/user-feeds.ts); else routing is by broker. */
  userFeed?(user: string, broker: string): Promise<string | undefined>;
}

const error = (code: ProtocolErrorCode, message: string): Reply => errorReply({ code, message });

const KEY_NO_LONGER_VALID = 'API key is no longer valid (revoked or replaced); authenticate again with a valid key';

/** A subscribe item asking to recover: the last seq it saw, and whether (and at what seq) its recovery started. */
interface Recovering {
  since: number;
  started: boolean;
  marked: number | undefined;
}

/** A reply with how to send it, and what to do right after. */
class Answer {
  constructor(
    readonly reply: Reply,
    readonly encoding?: Encoding,
    readonly after?: () => void,
  ) {}
}

export class RequestHandler {
  constructor(private readonly options: RequestHandlerOptions) {}

  async handle(session: Session, request: JsonObject): Promise<void> {
    const action = resolveAction(request);
    if (!action.ok) return session.reply(errorReply(action.error));
    if (!session.authenticated && !PUBLIC_ACTIONS.has(action.value)) {
      return session.reply(error(ProtocolErrorCode.NOT_AUTHENTICATED, ProtocolMessage.NOT_AUTHENTICATED));
    }
    if (session.authenticated && !PUBLIC_ACTIONS.has(action.value) && !(await this.keyStillValid(session))) {
      if (session.closed) return;
      this.signOut(session);
      return session.reply(error(ProtocolErrorCode.AUTHENTICATION_ERROR, KEY_NO_LONGER_VALID));
    }
    const outcome = await this.dispatch(action.value, session, request);
    if (outcome instanceof Answer) {
      session.reply(outcome.reply, outcome.encoding);
      outcome.after?.();
    } else {
      session.reply(outcome);
    }
  }

  private dispatch(action: Action, session: Session, request: JsonObject): Promise<Reply | Answer> | Reply {
    switch (action) {
      case 'authenticate':
        return this.authenticate(session, request);
      case 'subscribe':
        return this.subscribe(session, request);
      case 'unsubscribe':
        return this.unsubscribe(session, request);
      case 'subscribe_orders':
      case 'unsubscribe_orders':
        session.ordersSubscribed = action === 'subscribe_orders';
        return ordersReply(session.ordersSubscribed, requestIdOf(request));
      case 'get_broker_info':
        return brokerInfoReply(session.broker, this.adapterStatus(session), session.user!);
      case 'get_supported_brokers':
        return supportedBrokersReply([...this.options.supportedBrokers]);
      case 'ping': {
        const ping = parsePing(request);
        return pongReply(this.options.clock.now(), ping.timestamp, ping.pingId);
      }
    }
  }

  /**
   * Whether the session's key still belongs to its user. The verifier notices a key revoked or
   * replaced at once (cached keys are re-checked when the store changed). A store that cannot be
   * reached says nothing against the key: the session goes on, as cached keys do meanwhile.
   */
  private async keyStillValid(session: Session): Promise<boolean> {
    try {
      return (await this.options.verifier.verify(session.apiKey))?.user === session.user;
    } catch (failure) {
      if (isStoreUnreachable(failure)) return true;
      throw failure;
    }
  }

  /** Back to unauthenticated: nothing more flows to the session until it authenticates again. */
  private signOut(session: Session): void {
    const previousUser = session.user;
    this.options.logger.info({ session: session.id, user: previousUser }, 'api key no longer valid: session signed out');
    this.dropAll(session);
    session.ordersSubscribed = false;
    session.user = null;
    session.apiKey = undefined;
    // The listener starts the auth grace period again once this request is done.
    this.options.onUserChange(session, previousUser);
  }

  private adapterStatus(session: Session): string {
    if (session.feed === NO_FEED) return 'unavailable';
    const adapter = this.options.feeds.adapter(session.feed);
    // OpenAlgo reports "connected" whenever the user has an adapter; the shared feed is always on.
    return !adapter || adapter.status() === 'live' ? 'connected' : adapter.status();
  }

  private async authenticate(session: Session, request: JsonObject): Promise<Reply | Answer> {
    const apiKey = apiKeyOf(request);
    if (!pyTruthy(apiKey)) return error(ProtocolErrorCode.AUTHENTICATION_ERROR, ProtocolMessage.API_KEY_REQUIRED);
    const negotiated = parseExtensions(request, this.options.defaultExtensions);
    if (!negotiated.ok) return errorReply(negotiated.error);
    // Only failures pay: a valid key is answered at once even from an address that keeps failing.
    let checked: Awaited<ReturnType<typeof verifyLimited<Identity>>>;
    try {
      checked = await verifyLimited(this.options.failedAuths, addressKey(session.remoteAddress), () => this.options.verifier.verify(apiKey));
    } catch (failure) {
      // The key store is down (logged by the verifier): the key may well be good, so say so.
      if (isStoreUnreachable(failure)) return error(ProtocolErrorCode.AUTHENTICATION_ERROR, ProtocolMessage.KEY_STORE_UNAVAILABLE);
      throw failure;
    }
    if (checked.refusedForMs !== undefined) {
      return error(ProtocolErrorCode.AUTHENTICATION_ERROR, `Too many failed authentication attempts; retry in ${Math.ceil(checked.refusedForMs / 1000)} s`);
    }
    const { identity } = checked;
    if (!identity) return error(ProtocolErrorCode.AUTHENTICATION_ERROR, ProtocolMessage.INVALID_API_KEY);
    const perKey = this.options.limits?.maxConnectionsPerKey;
    if (perKey !== undefined && session.user !== identity.user && !this.options.reserveConnection && (this.options.sessionsOf?.(identity.user) ?? 0) >= perKey) {
      return error(ProtocolErrorCode.LIMIT_EXCEEDED, `Too many connections for this API key (limit ${perKey})`);
    }
    // Unlike OpenAlgo, a client whose broker cannot be resolved is not counted as authenticated,
    // so the auth grace timer still closes it.
    if (!identity.broker) return error(ProtocolErrorCode.BROKER_ERROR, ProtocolMessage.NO_BROKER);

    let feed: string;
    try {
      feed = (await this.options.userFeed?.(identity.user, identity.broker)) ?? this.options.feeds.route(identity.broker).feed;
    } catch (failure) {
      return error(ProtocolErrorCode.BROKER_INIT_ERROR, (failure as Error).message);
    }
    // The client left while its key was checked: counting it for the key would leave a ghost.
    if (session.closed) return error(ProtocolErrorCode.AUTHENTICATION_ERROR, 'Connection closed during authentication');
    // Counted elsewhere (the primary of --workers): the last step, so nothing can fail after it.
    if (perKey !== undefined && session.user !== identity.user && this.options.reserveConnection && !(await this.options.reserveConnection(session, identity.user))) {
      return error(ProtocolErrorCode.LIMIT_EXCEEDED, `Too many connections for this API key (limit ${perKey})`);
    }
    const previousUser = session.user;
    if (previousUser !== null && (previousUser !== identity.user || session.feed !== feed)) {
      // Re-authenticating as someone else: what the old identity held must not keep flowing.
      this.dropAll(session);
    }
    // Order updates are the account's that asked for them: another user must ask again.
    if (previousUser !== identity.user) session.ordersSubscribed = false;
    session.user = identity.user;
    session.apiKey = apiKey;
    session.onAuthenticated();
    session.setBroker(identity.broker);
    session.feed = feed;
    if (previousUser !== identity.user) this.options.onUserChange(session, previousUser);
    const { extensions, requested } = negotiated.value;
    session.extensions = extensions;
    // With seq, the numbering's epoch: what a reconnecting client quotes to recover.
    const epoch = extensions.seq && this.options.recovery ? { seq_epoch: this.options.recovery.epoch } : {};
    // The auth reply stays JSON text, so a client can read it before switching encodings. A feed
    // that is not live (or missing) is said at once, not only at its next change.
    return new Answer(authReply(identity.broker, identity.user, requested ? { ...extensions, ...epoch } : undefined), 'json', () => {
      const status = this.options.joinStatus?.(session);
      if (status) session.reply(status);
    });
  }

  /** The subscribe/unsubscribe rate limit: an error reply when over it. */
  private overRate(session: Session): Reply | undefined {
    const rate = this.options.limits?.subscribeRate;
    if (rate === undefined) return undefined;
    session.requestBucket ??= new TokenBucket(rate, Math.max(1, rate * 2), this.options.clock);
    if (session.requestBucket.take()) return undefined;
    return error(ProtocolErrorCode.LIMIT_EXCEEDED, `Too many subscribe requests (limit ${rate} per second)`);
  }

  private async subscribe(session: Session, request: JsonObject): Promise<Reply | Answer> {
    const limited = this.overRate(session);
    if (limited) return limited;
    const parsed = parseSubscribe(request);
    if (!parsed.ok) return errorReply(parsed.error);
    const { items, mode, depth, requestId, epoch } = parsed.value;
    const { feed } = session;
    const { recovery } = this.options;

    const maxStreams = this.options.limits?.maxSubscriptions ?? Infinity;
    // Streams this request would add, counted in order: the ones past the limit fail.
    let room = maxStreams - this.options.index.heldBy(session);
    /** Items asking to recover (`since`), by item: the last seq they saw, and what startRecovery said. */
    const recoveries: Array<Recovering | undefined> = [];
    const outcomes = await Promise.all(
      items.map(async (item, i): Promise<SubscribeOutcome> => {
        const checked = checkItem(item);
        if ('message' in checked) return { ...item, ok: false, message: checked.message };
        const since = checkSince(item.since, epoch, session.extensions.seq);
        if ('message' in since) return { ...item, ok: false, message: since.message };
        if (since.since !== undefined && !recovery) return { ...item, ok: false, message: 'since is not supported by this gateway; subscribe without since' };
        const { exchange, symbol } = checked;
        if (feed === NO_FEED) return { ...item, ok: false, message: this.options.noFeedReason?.(session.user!, session.broker) ?? ProtocolMessage.SUBSCRIPTION_FAILED };
        if (!this.options.index.holds(feed, exchange, symbol, session) && room-- <= 0) {
          return { ...item, ok: false, message: `Subscription limit reached (${maxStreams} streams per client)` };
        }
        const recovering: Recovering | undefined = since.since === undefined ? undefined : (recoveries[i] = { since: since.since, started: false, marked: undefined });
        // A deep-book suffix (`RELIANCE:20`) stays in the symbol and asks the adapter for that depth.
        const result = await this.options.upstream.acquire(feed, exchange, symbol, mode, requestedDepth(symbol, depth), () => {
          if (session.closed || session.feed !== feed) return;
          this.options.index.add(feed, exchange, symbol, mode, session);
          // From now on live messages of it wait for the recovery (after the reply) to send them.
          if (recovering && !recovering.started) {
            recovering.started = true;
            recovering.marked = recovery!.start(session, { feed, exchange, symbol, key: streamKey(exchange, symbol), mode });
          }
        });
        if (session.closed || session.feed !== feed) void this.options.upstream.release(feed, exchange, symbol);
        if (!result.ok) return { ...item, ok: false, message: result.message || ProtocolMessage.SUBSCRIPTION_FAILED };
        // A feed that says nothing of its depth (the shared feed) echoes what was asked, as OpenAlgo.
        return { ...item, ok: true, mode, depth: result.depth ?? depthSuffix(symbol)?.levels ?? depth };
      }),
    );
    const reply = subscribeReply(outcomes, session.broker, requestId);
    const snapshots = session.extensions.snapshot;
    if (!snapshots && recoveries.length === 0) return reply;
    // Snapshots and recoveries follow the reply, as the first ticks would.
    return new Answer(reply, undefined, () => {
      const recovered = new Set<string>();
      outcomes.forEach((outcome, i) => {
        const exchange = outcome.exchange as string;
        const symbol = outcome.symbol as string;
        const route = { feed, exchange, symbol, key: streamKey(exchange, symbol), mode };
        const recovering = recoveries[i];
        if (recovering) {
          if (!recovering.started) return;
          // The same stream twice in one request is recovered once.
          if (!outcome.ok || recovered.has(route.key)) return recovery!.end(session, route);
          recovered.add(route.key);
          const mismatch = epoch === recovery!.epoch ? undefined : `epoch ${JSON.stringify(epoch)} is not this gateway process's: it restarted, or this connection reached another worker or node, and seq counts anew here; resync`;
          recovery!.recover(session, route, recovering.since, recovering.marked, mismatch);
          return;
        }
        if (outcome.ok && snapshots) this.options.snapshot(session, route);
      });
    });
  }

  private unsubscribe(session: Session, request: JsonObject): Reply {
    const limited = this.overRate(session);
    if (limited) return limited;
    const parsed = parseUnsubscribe(request);
    if (!parsed.ok) return errorReply(parsed.error);
    const { requestId } = parsed.value;
    const outcomes: UnsubscribeOutcome[] = [];

    if (parsed.value.all) {
      for (const held of this.dropAll(session)) {
        for (const _ of held.modes) outcomes.push({ symbol: held.symbol, exchange: held.exchange, ok: true });
      }
      return unsubscribeReply(outcomes, session.broker, requestId);
    }

    for (const item of parsed.value.items) {
      const { symbol, exchange } = item;
      if (!item.mode.ok) {
        outcomes.push({ symbol, exchange, ok: false, message: item.mode.message });
        continue;
      }
      const checked = checkItem(item);
      if ('message' in checked) {
        outcomes.push({ symbol, exchange, ok: false, message: checked.message });
        continue;
      }
      // Releasing a stream the client never held is reported as success, as OpenAlgo does.
      if (this.options.index.remove(session.feed, checked.exchange, checked.symbol, item.mode.mode, session)) {
        void this.options.upstream.release(session.feed, checked.exchange, checked.symbol);
      }
      outcomes.push({ symbol, exchange, ok: true });
    }
    return unsubscribeReply(outcomes, session.broker, requestId);
  }

  /**
   * Moves a session to another feed (its broker is now served by an adapter that joined),
   * taking its subscriptions along: they are acquired on the new feed and released on the old.
   */
  async rehome(session: Session, feed: string): Promise<void> {
    const held = this.dropAll(session);
    session.feed = feed;
    await Promise.all(
      held.flatMap(({ exchange, symbol, modes }) =>
        modes.map(async (mode) => {
          const result = await this.options.upstream.acquire(feed, exchange, symbol, mode, requestedDepth(symbol, 5), () => {
            if (!session.closed && session.feed === feed) this.options.index.add(feed, exchange, symbol, mode, session);
          });
          if (!result.ok) this.options.logger.info({ session: session.id, feed, exchange, symbol, reason: result.message }, 'subscription not available on the new feed');
        }),
      ),
    );
  }

  /** Removes everything a session holds and releases what nobody else wants. */
  dropAll(session: Session): ReturnType<SubscriptionIndex<Session>['removeAll']> {
    const held = this.options.index.removeAll(session);
    for (const { feed, exchange, symbol } of held) void this.options.upstream.release(feed, exchange, symbol);
    return held;
  }
}
