import { describe, expect, it } from 'vitest';
import type { Adapter, BrokerAdapterFactory, FeedStatus } from '../../src/feed.js';
import { silentLogger } from '../../src/observability/logger.js';
import { UserFeeds, userFeedId } from '../../src/gateway/user-feeds.js';

function fakeAdapter(feed: string, broker: string): Adapter & { started: number; refreshed: number } {
  let status: FeedStatus = 'down';
  return {
    feed,
    broker,
    started: 0,
    refreshed: 0,
    async start() {
      this.started++;
      status = 'live';
    },
    async stop() {},
    async subscribe() {
      return { ok: true };
    },
    async unsubscribe() {},
    credentialsChanged() {
      this.refreshed++;
    },
    status: () => status,
    onStatus() {},
  };
}

describe('userFeedId', () => {
  it('is broker.user, or a stable hash for names a feed id cannot hold', () => {
    expect(userFeedId('zerodha', 'alice')).toBe('zerodha.alice');
    expect(userFeedId('angel', 'a b|c')).toMatch(/^angel\.u[0-9a-f]{16}$/);
    expect(userFeedId('angel', 'a b|c')).toBe(userFeedId('angel', 'a b|c'));
    expect(userFeedId('angel', 'a b|c')).not.toBe(userFeedId('angel', 'a b|d'));
  });
});

describe('UserFeeds', () => {
  const withCredentials = new Set(['alice', 'carol']);
  const created: Array<ReturnType<typeof fakeAdapter>> = [];
  const registered: string[] = [];
  const factory: BrokerAdapterFactory = {
    brokers: ['zerodha', 'angel'],
    hasCredentials: (user) => withCredentials.has(user),
    create: (_user, broker, feed) => {
      const adapter = fakeAdapter(feed, broker);
      created.push(adapter);
      return adapter;
    },
  };
  let now = 1_000_000;
  const feeds = new UserFeeds(factory, (adapter) => void registered.push(adapter.feed), silentLogger(), { now: () => now }, 50);

  it('starts one adapter per user with credentials, on first use only', async () => {
    expect(await feeds.feedFor('alice', 'Zerodha')).toBe('zerodha.alice');
    expect(await feeds.feedFor('alice', 'zerodha')).toBe('zerodha.alice');
    expect(created).toHaveLength(1);
    expect(created[0]!.started).toBe(1);
    expect(registered).toEqual(['zerodha.alice']);
    expect(await feeds.feedFor('carol', 'angel')).toBe('angel.carol');
    expect(created).toHaveLength(2);
  });

  it('leaves users without credentials, or of other brokers, to routing by broker', async () => {
    expect(await feeds.feedFor('bob', 'zerodha')).toBeUndefined();
    expect(await feeds.feedFor('alice', 'upstox')).toBeUndefined();
    expect(created).toHaveLength(2);
  });

  it('passes a credentials change to the user’s adapters only', () => {
    feeds.credentialsChanged('alice');
    expect(created.map((a) => a.refreshed)).toEqual([1, 0]);
  });

  it('acts on a flood of re-logins once at once and once more at the end of the window, per user', async () => {
    now += 1000;
    for (let i = 0; i < 50; i++) feeds.credentialsChanged('carol');
    feeds.credentialsChanged('bob'); // no feed of his own: nothing to reconnect
    expect(created.map((a) => a.refreshed)).toEqual([1, 1]);
    // Alice's window is her own: her re-login still acts at once.
    feeds.credentialsChanged('alice');
    expect(created.map((a) => a.refreshed)).toEqual([2, 1]);
    await new Promise((resolve) => setTimeout(resolve, 120));
    now += 60;
    // The 49 that came within carol's window made exactly one more reconnect, after it.
    expect(created.map((a) => a.refreshed)).toEqual([2, 2]);
    now += 1000;
    feeds.credentialsChanged('carol');
    expect(created.map((a) => a.refreshed)).toEqual([2, 3]);
  });
});
