/**
 * What every broker adapter must do, run against the broker's fake server: a new broker passes
 * this suite with its decoder and dialect and nothing else. Timings are small (silence 300 ms,
 * backoff 50–200 ms); waits time out only to catch hangs. The slow refusal retry is left at a
 * minute, so anything that reconnects after a refusal within the test did so because it was told.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { Adapter, FeedStatusEvent } from '../../src/feed.js';
import type { BrokerCredentials, BrokerFeedOptions } from '../../src/adapters/broker.js';
import type { SessionOptions } from '../../src/adapters/session/broker-feed.js';
import { systemClock } from '../../src/clock.js';
import type { Mode } from '../../src/protocol/modes.js';
import { silentLogger } from '../../src/observability/logger.js';
import { MemoryPublisher, SLOW, until } from '../helpers/broker-kit.js';

export type BrokerAdapter = Adapter & { credentialsChanged(): void };

/** A broker's fake server, seen the same way for every broker. */
export interface ContractServer {
  readonly url: string;
  /** Connections accepted so far; the n-th is number n. */
  connections(): number;
  /** Connections open now. */
  open(): number;
  /** The secret each upgrade attempt carried (the part a re-login changes), and whether it was let in. */
  attempts(): Array<{ secret: string; accepted: boolean }>;
  /** From now on only these credentials are let in (the user logged in again). */
  accept(credentials: BrokerCredentials): void;
  /** The stream's instrument as connection `n` holds it: each subscribe request naming it, and the modes held. */
  held(connection: number): { subscribes: number; modes: Mode[] };
  /** An LTP tick at `ltp` for the stream's instrument. */
  tick(ltp: number): void;
  /** Frames the broker never sends: short, unknown, oversized headers, random bytes. */
  garbage(): void;
  /** No frame at all from the server until resumed (pings unanswered, heartbeats stopped). */
  silent(on: boolean): void;
  /** Cuts every connection without a close handshake. */
  drop(): void;
  close(): Promise<void>;
}

export interface ContractBroker {
  readonly name: string;
  /** A fake server that lets `credentials` in. */
  server(credentials: BrokerCredentials): Promise<ContractServer>;
  adapter(options: BrokerFeedOptions & SessionOptions): BrokerAdapter;
  /** The user's credentials, the same after a re-login, and a set the server refuses (an expired login). */
  readonly credentials: BrokerCredentials;
  readonly renewed: BrokerCredentials;
  readonly expired: BrokerCredentials;
  /** The secret `attempts()` reports for each. */
  secret(credentials: BrokerCredentials): string;
  /** A stream in the adapter's symbol master, and its LTP topic. */
  readonly stream: { exchange: string; symbol: string };
  readonly ltpTopic: string;
  readonly symbols: BrokerFeedOptions['symbols'];
  readonly feed: string;
}

export function brokerContract(broker: ContractBroker): void {
  describe(`${broker.name}: the broker adapter contract`, () => {
    const running: Array<{ adapter: BrokerAdapter; server: ContractServer }> = [];
    afterEach(async () => {
      for (const { adapter, server } of running.splice(0)) {
        await adapter.stop();
        await server.close();
      }
    });

    /** `initial` null: nothing stored for the user. */
    async function setup(initial: BrokerCredentials | null = broker.credentials, start = true, timings: SessionOptions = {}) {
      const server = await broker.server(broker.credentials);
      const store: { current: BrokerCredentials | undefined; loads: number } = { current: initial ?? undefined, loads: 0 };
      const publisher = new MemoryPublisher();
      const adapter = broker.adapter({
        feed: broker.feed,
        user: 'alice',
        url: server.url,
        symbols: broker.symbols,
        credentials: {
          load: async () => {
            store.loads += 1;
            return store.current;
          },
        },
        publisher,
        clock: systemClock,
        logger: silentLogger(),
        silenceMs: 300,
        backoff: { initialMs: 50, maxMs: 200, jitter: 0.1 },
        authRetryMs: 60_000,
        batchDelayMs: 20,
        ...timings,
      });
      const statuses: FeedStatusEvent[] = [];
      adapter.onStatus((event) => statuses.push(event));
      running.push({ adapter, server });
      /** The first `status` event after the first `from` events. */
      const status = async (wanted: FeedStatusEvent['status'], from = 0): Promise<FeedStatusEvent> => {
        await until(() => statuses.slice(from).some((e) => e.status === wanted), `status ${wanted}`);
        return statuses.slice(from).find((e) => e.status === wanted)!;
      };
      if (start) {
        await adapter.start();
        await status('live');
      }
      return { server, store, publisher, adapter, statuses, status };
    }

    /** Subscribes the stream and waits until connection `n` holds it. */
    async function subscribed(adapter: BrokerAdapter, server: ContractServer, mode: Mode, connection = 1): Promise<void> {
      expect(await adapter.subscribe(broker.stream, mode, 5)).toMatchObject({ ok: true });
      await until(() => server.held(connection).modes.includes(mode), `mode ${mode} upstream`);
    }

    it('connects with the user’s credentials and goes live', async () => {
      const { server, statuses, store } = await setup();
      expect(server.attempts()).toEqual([{ secret: broker.secret(broker.credentials), accepted: true }]);
      expect(store.loads).toBe(1);
      expect(statuses.map((e) => e.status)).toEqual(['reconnecting', 'live']);
    });

    it('asks the server once per instrument, at the highest mode wanted; mode changes and unsubscribes reach it', async () => {
      const { adapter, server } = await setup();
      // Three changes inside one batch window: the server hears only the result.
      await adapter.subscribe(broker.stream, 1, 5);
      await adapter.subscribe(broker.stream, 2, 5);
      await adapter.subscribe(broker.stream, 3, 5);
      await until(() => server.held(1).modes.length > 0, 'the subscription upstream');
      expect(server.held(1)).toEqual({ subscribes: 1, modes: [3] });
      await subscribed(adapter, server, 1);
      expect(server.held(1).modes).toEqual([1]);
      await adapter.unsubscribe(broker.stream);
      await until(() => server.held(1).modes.length === 0, 'the unsubscribe upstream');
      expect(server.connections()).toBe(1);
    });

    it('publishes decoded ticks on the stream’s topic', async () => {
      const { adapter, server, publisher } = await setup();
      await subscribed(adapter, server, 1);
      server.tick(295055);
      await until(() => publisher.ltps(broker.ltpTopic).length === 1, 'the tick');
      expect(publisher.ltps(broker.ltpTopic)).toEqual([2950.55]);
    });

    it('ignores garbage frames and keeps streaming on the same connection', async () => {
      const { adapter, server, publisher } = await setup();
      await subscribed(adapter, server, 1);
      server.garbage();
      server.tick(100);
      await until(() => publisher.ltps(broker.ltpTopic).length === 1, 'the tick after garbage');
      expect(publisher.ltps(broker.ltpTopic)).toEqual([1]);
      expect(adapter.status()).toBe('live');
      expect(server.connections()).toBe(1);
    });

    it('after a drop: reconnecting, then live again with backoff, fresh credentials and the stream resubscribed', async () => {
      const { adapter, server, store, statuses, status, publisher } = await setup();
      await subscribed(adapter, server, 3);
      const mark = statuses.length;
      server.drop();
      await status('reconnecting', mark);
      await status('live', mark);
      expect(store.loads).toBe(2);
      expect(server.connections()).toBe(2);
      await until(() => server.held(2).modes.length > 0, 'the resubscription');
      expect(server.held(2)).toEqual({ subscribes: 1, modes: [3] });
      server.tick(100);
      await until(() => publisher.ltps(broker.ltpTopic).length === 1, 'a tick on the new connection');
    });

    it('after silence: detected, reconnected and resubscribed', async () => {
      const { adapter, server, statuses, status } = await setup();
      await subscribed(adapter, server, 2);
      const mark = statuses.length;
      server.silent(true);
      const lost = await status('reconnecting', mark);
      expect(lost.message).toBeTruthy();
      server.silent(false);
      await status('live', mark);
      expect(server.connections()).toBe(2);
      await until(() => server.held(2).modes.length > 0, 'the resubscription');
      expect(server.held(2)).toEqual({ subscribes: 1, modes: [2] });
    });

    it('refused credentials: down with the broker’s reason, no retry loop; a re-login reconnects at once', async () => {
      const { adapter, server, store, status, statuses } = await setup(broker.expired, false, SLOW);
      await adapter.start();
      const down = await status('down');
      expect(down.message).toMatch(new RegExp(`^${broker.name} refused`));
      expect(server.attempts()).toEqual([{ secret: broker.secret(broker.expired), accepted: false }]);
      // Several backoff periods later, still one attempt: a refusal waits for the slow retry.
      await new Promise((resolve) => setTimeout(resolve, 400));
      expect(server.attempts()).toHaveLength(1);
      expect(adapter.status()).toBe('down');

      store.current = broker.credentials;
      adapter.credentialsChanged();
      await status('live');
      expect(server.attempts()).toEqual([
        { secret: broker.secret(broker.expired), accepted: false },
        { secret: broker.secret(broker.credentials), accepted: true },
      ]);
      // Down until the new credentials worked, then live: no detour through reconnecting.
      expect(statuses.map((e) => e.status)).toEqual(['reconnecting', 'down', 'live']);
    });

    it('a re-login while live replaces the connection at once, with the new credentials, and resubscribes', async () => {
      const { adapter, server, store, statuses, status } = await setup(broker.credentials, true, SLOW);
      await subscribed(adapter, server, 1);
      server.accept(broker.renewed);
      store.current = broker.renewed;
      const mark = statuses.length;
      adapter.credentialsChanged();
      expect((await status('reconnecting', mark)).message).toMatch(/credentials changed/);
      await status('live', mark);
      expect(statuses.slice(mark).map((e) => e.status)).toEqual(['reconnecting', 'live']);
      expect(server.attempts()).toEqual([
        { secret: broker.secret(broker.credentials), accepted: true },
        { secret: broker.secret(broker.renewed), accepted: true },
      ]);
      expect(server.connections()).toBe(2);
      await until(() => server.open() === 1, 'the old connection closed');
      await until(() => server.held(2).modes.length > 0, 'the resubscription');
      expect(server.held(2)).toEqual({ subscribes: 1, modes: [1] });
    });

    it('sends what was subscribed before start once connected; stop closes, reports down and never redials; a restart resubscribes', async () => {
      const { adapter, server, statuses, status } = await setup(broker.credentials, false);
      expect(adapter.status()).toBe('down');
      expect(await adapter.subscribe(broker.stream, 2, 5)).toMatchObject({ ok: true });
      await adapter.start();
      await status('live');
      await until(() => server.held(1).modes.length > 0, 'the subscription after connect');
      expect(server.held(1)).toEqual({ subscribes: 1, modes: [2] });

      await adapter.stop();
      expect(adapter.status()).toBe('down');
      expect(statuses.at(-1)).toEqual({ feed: broker.feed, status: 'down', message: 'stopped' });
      await until(() => server.open() === 0, 'the socket closed');
      // Several backoff periods later, nothing has dialled again.
      await new Promise((resolve) => setTimeout(resolve, 200));
      expect(server.connections()).toBe(1);

      await adapter.start();
      await until(() => server.held(2).modes.length > 0, 'the resubscription after a restart');
      expect(server.held(2)).toEqual({ subscribes: 1, modes: [2] });
    });

    it('without credentials: down, never dials, and connects once they are stored', async () => {
      const { adapter, server, store, status } = await setup(null, false);
      await adapter.start();
      expect((await status('down')).message).toMatch(new RegExp(`No ${broker.name} credentials`));
      expect(server.attempts()).toEqual([]);
      store.current = broker.credentials;
      adapter.credentialsChanged();
      await status('live');
    });
  });
}
