/**
 * RequestHandler with fakes (no sockets): one request, one reply, in OpenAlgo's order; the index
 * and upstream changed only by what succeeded; snapshots after the reply; re-authentication as
 * someone else dropping what the old identity held.
 */
import { describe, expect, it } from 'vitest';
import type { Adapter, FeedStatus, FeedStatusEvent, StreamRef, SubscribeResult } from '../../src/feed.js';
import { Feeds, NO_FEED } from '../../src/gateway/feeds.js';
import { FailedAuths } from '../../src/gateway/limits.js';
import { type Identity, RequestHandler, type RequestHandlerOptions } from '../../src/gateway/request-handler.js';
import type { Session } from '../../src/gateway/session.js';
import { SubscriptionIndex } from '../../src/gateway/subscription-index.js';
import { Upstream } from '../../src/gateway/upstream.js';
import { silentLogger } from '../../src/observability/logger.js';
import { type Extensions, OPENALGO_EXTENSIONS } from '../../src/protocol/encoding.js';
import type { Mode } from '../../src/protocol/modes.js';
import type { Reply } from '../../src/protocol/replies.js';

class FakeAdapter implements Adapter {
  readonly calls: string[] = [];
  constructor(
    readonly feed: string,
    readonly broker: string,
    private readonly state: FeedStatus = 'live',
  ) {}
  async start(): Promise<void> {}
  async stop(): Promise<void> {}
  async subscribe(stream: StreamRef, mode: Mode, depth: number): Promise<SubscribeResult> {
    this.calls.push(`sub ${stream.exchange}:${stream.symbol} ${mode} ${depth}`);
    return stream.symbol === 'NOPE' ? { ok: false, message: `Token not found for NOPE on ${stream.exchange}` } : { ok: true, depth: 5 };
  }
  async unsubscribe(stream: StreamRef): Promise<void> {
    this.calls.push(`unsub ${stream.exchange}:${stream.symbol}`);
  }
  status(): FeedStatus {
    return this.state;
  }
  onStatus(_listener: (event: FeedStatusEvent) => void): void {}
}

/** The parts of a Session the handler uses, recording replies. */
class FakeSession {
  readonly id = 1;
  remoteAddress = '127.0.0.1';
  readonly replies: Reply[] = [];
  user: string | null = null;
  broker = '';
  feed = NO_FEED;
  closed = false;
  ordersSubscribed = false;
  extensions: Extensions = { ...OPENALGO_EXTENSIONS };
  requestBucket: unknown;
  get authenticated(): boolean {
    return this.user !== null;
  }
  onAuthenticated(): void {}
  setBroker(broker: string): void {
    this.broker = broker;
  }
  reply(reply: Reply): void {
    this.replies.push(reply);
  }
}

const KEYS: Record<string, Identity> = { 'key-a': { user: 'alice', broker: 'simulator' }, 'key-b': { user: 'bob', broker: 'zerodha' }, 'key-n': { user: 'nobroker', broker: null } };

function setup(overrides: Partial<RequestHandlerOptions> = {}) {
  const sim = new FakeAdapter('sim', 'simulator');
  const kite = new FakeAdapter('kite', 'zerodha', 'reconnecting');
  const feeds = new Feeds([
    { adapter: sim, brokers: ['simulator'] },
    { adapter: kite, brokers: ['zerodha'] },
  ], []);
  const index = new SubscriptionIndex<Session>();
  const upstream = new Upstream(feeds, index as SubscriptionIndex<unknown>, silentLogger());
  const events: string[] = [];
  const handler = new RequestHandler({
    verifier: { verify: async (key) => KEYS[key as string] ?? null },
    feeds,
    upstream,
    index,
    clock: { now: () => 1_000 },
    logger: silentLogger(),
    supportedBrokers: ['simulator', 'zerodha'],
    onUserChange: (session, previous) => events.push(`user ${previous} -> ${session.user}`),
    defaultExtensions: OPENALGO_EXTENSIONS,
    snapshot: (_session, route) => events.push(`snapshot ${route.exchange}:${route.symbol} ${route.mode}`),
    ...overrides,
  });
  const session = new FakeSession();
  const send = async (request: Record<string, unknown>): Promise<Reply> => {
    await handler.handle(session as unknown as Session, request);
    return session.replies.at(-1)!;
  };
  return { handler, session, send, sim, kite, index, upstream, events };
}

describe('RequestHandler', () => {
  it('refuses everything but public actions before authentication', async () => {
    const { send, session } = setup();
    expect(await send({ action: 'subscribe', symbols: [{ symbol: 'TCS', exchange: 'NSE' }] })).toMatchObject({ status: 'error', code: 'NOT_AUTHENTICATED' });
    expect(await send({ action: 'get_supported_brokers' })).toMatchObject({ status: 'success' });
    expect(session.user).toBeNull();
  });

  it('authenticates a known key onto its broker feed, and refuses missing, unknown and brokerless keys', async () => {
    const { send, session, events } = setup();
    expect(await send({ action: 'authenticate' })).toMatchObject({ status: 'error', code: 'AUTHENTICATION_ERROR', message: 'API key is required' });
    expect(await send({ action: 'authenticate', api_key: 'wrong' })).toMatchObject({ status: 'error', message: 'Invalid API key' });
    expect(await send({ action: 'authenticate', api_key: 'key-n' })).toMatchObject({ status: 'error', code: 'BROKER_ERROR' });
    expect(session.user).toBeNull();
    expect(await send({ action: 'authenticate', api_key: 'key-a' })).toMatchObject({ type: 'auth', status: 'success', broker: 'simulator', user_id: 'alice' });
    expect(session.feed).toBe('sim');
    expect(events).toEqual(['user null -> alice']);
  });

  it('tells a client at once when its feed is not live, right after the auth reply', async () => {
    const { send, session } = setup({ joinStatus: (s) => (s.feed === 'kite' ? { type: 'feed_status', status: 'reconnecting' } : undefined) });
    await send({ action: 'authenticate', api_key: 'key-b' });
    expect(session.replies.map((r) => r.type)).toEqual(['auth', 'feed_status']);
  });

  it('subscribes what upstream accepts, reports per-symbol errors, and sends snapshots after the reply', async () => {
    const { send, session, sim, index, events } = setup();
    await send({ action: 'authenticate', api_key: 'key-a' });
    const reply = await send({ action: 'subscribe', symbols: [{ symbol: 'TCS', exchange: 'NSE' }, { symbol: 'NOPE', exchange: 'NSE' }], mode: 'Quote' });
    expect(reply).toMatchObject({
      type: 'subscribe',
      status: 'partial',
      subscriptions: [
        { symbol: 'TCS', exchange: 'NSE', status: 'success', mode: 'Quote', depth: 5, broker: 'simulator' },
        { symbol: 'NOPE', exchange: 'NSE', status: 'error', message: 'Token not found for NOPE on NSE' },
      ],
    });
    expect(sim.calls).toEqual(['sub NSE:TCS 2 5', 'sub NSE:NOPE 2 5']);
    expect(index.holds('sim', 'NSE', 'TCS', session as unknown as Session)).toBe(true);
    expect(index.holds('sim', 'NSE', 'NOPE', session as unknown as Session)).toBe(false);
    expect(events.at(-1)).toBe('snapshot NSE:TCS 2');
  });

  it('unsubscribes from the index and releases upstream', async () => {
    const { send, session, sim, index } = setup();
    await send({ action: 'authenticate', api_key: 'key-a' });
    await send({ action: 'subscribe', symbols: [{ symbol: 'TCS', exchange: 'NSE' }], mode: 1 });
    const reply = await send({ action: 'unsubscribe', symbols: [{ symbol: 'TCS', exchange: 'NSE' }], mode: 1 });
    expect(reply).toMatchObject({ type: 'unsubscribe', status: 'success' });
    expect(index.holds('sim', 'NSE', 'TCS', session as unknown as Session)).toBe(false);
    await new Promise((resolve) => setImmediate(resolve));
    expect(sim.calls.at(-1)).toBe('unsub NSE:TCS');
  });

  it('fails streams past the per-client limit and requests past the rate', async () => {
    const { send } = setup({ limits: { maxSubscriptions: 1, subscribeRate: 1 } });
    await send({ action: 'authenticate', api_key: 'key-a' });
    const reply = await send({ action: 'subscribe', symbols: [{ symbol: 'TCS', exchange: 'NSE' }, { symbol: 'INFY', exchange: 'NSE' }], mode: 1 });
    expect(reply).toMatchObject({ status: 'partial', subscriptions: [{ status: 'success' }, { status: 'error', message: 'Subscription limit reached (1 streams per client)' }] });
    expect(await send({ action: 'subscribe', symbols: [{ symbol: 'TCS', exchange: 'NSE' }], mode: 1 })).toMatchObject({ status: 'success' });
    expect(await send({ action: 'subscribe', symbols: [{ symbol: 'TCS', exchange: 'NSE' }], mode: 1 })).toMatchObject({ status: 'error', code: 'LIMIT_EXCEEDED' });
  });

  it('drops what the old identity held when a session authenticates as someone else', async () => {
    const { send, session, index, events } = setup();
    await send({ action: 'authenticate', api_key: 'key-a' });
    await send({ action: 'subscribe', symbols: [{ symbol: 'TCS', exchange: 'NSE' }], mode: 1 });
    await send({ action: 'subscribe_orders' });
    expect(session.ordersSubscribed).toBe(true);
    await send({ action: 'authenticate', api_key: 'key-b' });
    expect(index.heldBy(session as unknown as Session)).toBe(0);
    expect(session.ordersSubscribed).toBe(false);
    expect(session.feed).toBe('kite');
    expect(events).toContain('user alice -> bob');
  });

  it("reports a feed that is not live in get_broker_info as the adapter's status", async () => {
    const { send } = setup();
    await send({ action: 'authenticate', api_key: 'key-b' });
    expect(await send({ action: 'get_broker_info' })).toMatchObject({ broker: 'zerodha', adapter_status: 'reconnecting' });
  });

  it('counts failed keys per client: an IPv4 client however its address is written, an IPv6 client by its /64', async () => {
    const failedAuths = new FailedAuths({ allowed: 10, windowMs: 60_000, maxBlockMs: 60_000, clock: { now: () => 1_000 } });
    const { send, session } = setup({ failedAuths });
    for (const address of ['127.0.0.1', '::ffff:127.0.0.1', '2001:db8:1:2::1', '2001:db8:1:2:ffff::9', '2001:db8:1:3::1']) {
      session.remoteAddress = address;
      expect(await send({ action: 'authenticate', api_key: 'wrong' })).toMatchObject({ message: 'Invalid API key' });
    }
    expect(failedAuths.failures('127.0.0.1')).toBe(2);
    expect(failedAuths.failures('2001:db8:1:2::/64')).toBe(2);
    expect(failedAuths.failures('2001:db8:1:3::/64')).toBe(1);
  });
});
