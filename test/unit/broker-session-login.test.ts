/**
 * The session layer's login and farewell hooks (a dialect's `login` and `farewell`), against a
 * small local server that records every text it gets per connection and answers a login with
 * `OK`, `NO` or nothing. Waits time out only to catch hangs.
 */
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import WebSocket, { WebSocketServer } from 'ws';
import type { BrokerCredentials } from '../../src/adapters/broker.js';
import { BrokerSession, type SessionDialect } from '../../src/adapters/session/broker-session.js';
import type { FrameConnection } from '../../src/adapters/session/frame-sink.js';
import { resolveSchedule } from '../../src/adapters/session/schedule.js';
import type { SubscriptionDiff } from '../../src/adapters/session/subscriptions.js';
import { systemClock } from '../../src/clock.js';
import { silentLogger } from '../../src/observability/logger.js';
import { until } from '../helpers/broker-kit.js';

const FAREWELL = 'BYE';

/** Records texts per connection (1-based), answers `LOGIN <token>` as `answer` says. */
class LoginServer {
  readonly texts: Array<{ connection: number; text: string }> = [];
  /** Connections whose close handshake arrived (a graceful close), by number. */
  readonly closedGracefully = new Set<number>();
  answer: 'ok' | 'no' | 'none' = 'ok';
  /** No pongs (and nothing else) while set. */
  silent = false;
  private accepted = 0;
  private readonly sockets = new Map<number, WebSocket>();

  private constructor(private readonly wss: WebSocketServer) {
    wss.on('connection', (socket) => {
      const id = ++this.accepted;
      this.sockets.set(id, socket);
      socket.on('error', () => {});
      socket.on('ping', (data) => {
        if (!this.silent) socket.pong(data);
      });
      socket.on('close', (code) => {
        this.sockets.delete(id);
        if (code === 1000) this.closedGracefully.add(id);
      });
      socket.on('message', (data) => {
        const text = data.toString();
        this.texts.push({ connection: id, text });
        if (!text.startsWith('LOGIN ') || this.answer === 'none') return;
        socket.send(this.answer === 'ok' ? 'OK' : 'NO');
      });
    });
  }

  static async start(): Promise<LoginServer> {
    const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, autoPong: false });
    await new Promise<void>((resolve) => wss.once('listening', resolve));
    return new LoginServer(wss);
  }

  get url(): string {
    return `ws://127.0.0.1:${(this.wss.address() as AddressInfo).port}/`;
  }

  get connections(): number {
    return this.accepted;
  }

  open(): number[] {
    return [...this.sockets.keys()];
  }

  of(connection: number): string[] {
    return this.texts.filter((t) => t.connection === connection).map((t) => t.text);
  }

  drop(): void {
    for (const socket of this.sockets.values()) socket.terminate();
  }

  async close(): Promise<void> {
    this.drop();
    await new Promise<void>((resolve) => this.wss.close(() => resolve()));
  }
}

/** `SUB a,b` / `UNSUB c` for a diff, as a broker's subscription messages. */
function encode(diff: SubscriptionDiff<string, number>): string[] {
  const out: string[] = [];
  const gone = diff.stale.filter((e) => !e.changed).map((e) => e.key);
  if (gone.length > 0) out.push(`UNSUB ${gone.join(',')}`);
  if (diff.fresh.length > 0) out.push(`SUB ${diff.fresh.map((e) => e.key).join(',')}`);
  return out;
}

describe('BrokerSession: a dialect’s login and farewell', () => {
  const cleanup: Array<() => Promise<void>> = [];
  afterEach(async () => {
    for (const step of cleanup.splice(0).reverse()) await step();
  });

  async function setup(options: { login?: boolean; farewell?: boolean; loginTimeoutMs?: number; silenceMs?: number; recordFrames?: () => FrameConnection | undefined } = {}) {
    const server = await LoginServer.start();
    cleanup.push(() => server.close());
    const store: { current: BrokerCredentials } = { current: { apiKey: 'k', accessToken: 'token-1' } };
    /** Every state change, as `state: message`. */
    const changes: string[] = [];
    const opened: number[] = [];
    const dialect: SessionDialect = {
      label: 'Test',
      socketName: 'Test feed',
      maxFrameBytes: 1024,
      wsPing: { everyMs: 40 },
      ...(options.login === false ? {} : { login: (credentials: BrokerCredentials) => `LOGIN ${credentials.accessToken}` }),
      ...(options.farewell === false ? {} : { farewell: FAREWELL }),
      dial: () => ({ url: server.url, headers: {} }),
      refusedUpgrade: (status) => `Test refused (HTTP ${status})`,
      isAuthError: () => false,
      silent: (silentFor) => `silent for ${silentFor} ms`,
      lost: (reason, delay) => `${reason}; reconnecting in ${delay} ms`,
    };
    const session: BrokerSession<string, number> = new BrokerSession(
      1,
      dialect,
      {
        silenceMs: options.silenceMs ?? 5000,
        connectTimeoutMs: 2000,
        loginTimeoutMs: options.loginTimeoutMs,
        ...(options.recordFrames ? { recordFrames: options.recordFrames } : {}),
        schedule: resolveSchedule('Test', { backoff: { initialMs: 50, maxMs: 100, jitter: 0 }, authRetryMs: 60_000 }),
      },
      { load: async () => store.current },
      systemClock,
      silentLogger(),
      {
        frame: (s, data) => {
          const text = data.toString();
          if (text === 'OK') s.loggedIn();
          if (text === 'NO') s.refuse('Test refused the login');
        },
        opened: () => void opened.push(server.connections),
        changed: () => void changes.push(`${session.state}: ${session.message ?? ''}`),
        encode,
      },
    );
    cleanup.push(() => session.close());
    return { server, session, store, changes, opened };
  }

  it('sends the login first on a socket, and subscriptions only after the OK, which makes it live', async () => {
    const { server, session, changes } = await setup();
    server.answer = 'none';
    session.book.want('a', 1);
    session.start();
    await until(() => server.of(1).length === 1, 'the login');
    // Not live, and nothing subscribed, however often the feed asks to sync.
    session.book.want('b', 1);
    session.sync();
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(server.of(1)).toEqual(['LOGIN token-1']);
    expect(session.state).toBe('connecting');
    expect(session.message).toBe('logging in to Test');
    expect(session.everOpened).toBe(false);

    session.loggedIn();
    await until(() => server.of(1).length === 2, 'the subscriptions');
    expect(server.of(1)).toEqual(['LOGIN token-1', 'SUB a,b']);
    expect(session.state).toBe('open');
    expect(changes.at(-1)).toBe('open: ');
    // A second OK changes nothing.
    session.loggedIn();
    session.sync();
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(server.of(1)).toEqual(['LOGIN token-1', 'SUB a,b']);
  });

  it('records every message of a recorded socket but its login, which carries the session token', async () => {
    const recorded: string[] = [];
    const { server, session } = await setup({
      recordFrames: () => ({ id: 'test#1', frame: (out, _binary, data) => void recorded.push(`${out ? 'out' : 'in'} ${data.toString()}`) }),
    });
    session.book.want('a', 1);
    session.start();
    await until(() => server.of(1).length === 2, 'the subscriptions');
    await until(() => recorded.includes('out SUB a'), 'the subscription recorded');
    await session.close();
    expect(server.of(1)).toEqual(['LOGIN token-1', 'SUB a', FAREWELL]);
    expect(recorded).toEqual(['in OK', 'out SUB a', `out ${FAREWELL}`]);
    expect(recorded.join('\n')).not.toContain('token-1');
  });

  it('logs every new socket in afresh, with the credentials read for it, before resubscribing everything', async () => {
    const { server, session, store } = await setup();
    session.book.want('a', 1);
    session.start();
    await until(() => server.of(1).length === 2, 'the first socket subscribed');
    store.current = { apiKey: 'k', accessToken: 'token-2' };
    server.drop();
    await until(() => server.of(2).length === 2, 'the second socket subscribed');
    expect(server.of(2)).toEqual(['LOGIN token-2', 'SUB a']);
    expect(session.state).toBe('open');
  });

  it('a refused login: down with the adapter’s message, nothing subscribed, no quick retry', async () => {
    const { server, session } = await setup();
    server.answer = 'no';
    session.book.want('a', 1);
    session.start();
    await until(() => session.state === 'down', 'down');
    expect(session.message).toBe('Test refused the login');
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(server.connections).toBe(1);
    expect(server.of(1)).toEqual(['LOGIN token-1']);
  });

  it('while refused, a new socket’s login keeps the session down until it is accepted (no detour through connecting)', async () => {
    const { server, session, changes } = await setup();
    server.answer = 'no';
    session.book.want('a', 1);
    session.start();
    await until(() => session.state === 'down', 'down');
    const mark = changes.length;
    server.answer = 'none';
    session.restart('credentials changed');
    await until(() => server.of(2).length === 1, 'the second login');
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(session.state).toBe('down');
    server.answer = 'ok';
    session.loggedIn();
    await until(() => server.of(2).length === 2, 'the subscriptions');
    expect(changes.slice(mark).map((c) => c.split(':')[0])).toEqual(['open']);
  });

  it('a login left unanswered for loginTimeoutMs replaces the socket, which logs in again', async () => {
    const { server, session } = await setup({ loginTimeoutMs: 100 });
    server.answer = 'none';
    session.book.want('a', 1);
    session.start();
    await until(() => server.connections >= 2 && server.of(2).length === 1, 'a second socket and login');
    expect(server.of(1)).toEqual(['LOGIN token-1']);
    expect(server.of(2)).toEqual(['LOGIN token-1']);
    expect(session.state).not.toBe('open');
    expect(session.everOpened).toBe(false);
    server.answer = 'ok';
    await until(() => session.state === 'open', 'live once a login is answered');
    const last = server.connections;
    await until(() => server.of(last).includes('SUB a'), 'the subscription');
  });

  it('a dialect without a login is live as its socket opens, and subscribed at once', async () => {
    const { server, session } = await setup({ login: false });
    session.book.want('a', 1);
    session.start();
    await until(() => session.state === 'open' && server.of(1).length === 1, 'live and subscribed');
    expect(server.of(1)).toEqual(['SUB a']);
  });

  it('sends the farewell last before close() closes the socket gracefully', async () => {
    const { server, session } = await setup();
    session.book.want('a', 1);
    session.start();
    await until(() => server.of(1).length === 2, 'subscribed');
    await session.close();
    await until(() => server.open().length === 0, 'the socket closed');
    expect(server.of(1)).toEqual(['LOGIN token-1', 'SUB a', FAREWELL]);
    expect(server.closedGracefully.has(1)).toBe(true);
  });

  it('sends the farewell on the replaced socket of a restart, and the new socket starts with its login', async () => {
    const { server, session } = await setup();
    session.book.want('a', 1);
    session.start();
    await until(() => server.of(1).length === 2, 'subscribed');
    session.restart('credentials changed');
    await until(() => server.of(2).length === 2 && server.open().length === 1, 'the new socket subscribed, the old one closed');
    expect(server.of(1)).toEqual(['LOGIN token-1', 'SUB a', FAREWELL]);
    expect(server.of(2)).toEqual(['LOGIN token-1', 'SUB a']);
  });

  it('never sends the farewell on a socket it gives up as lost (silence)', async () => {
    const { server, session } = await setup({ silenceMs: 150 });
    session.book.want('a', 1);
    session.start();
    await until(() => server.of(1).length === 2, 'subscribed');
    server.silent = true;
    await until(() => server.connections >= 2, 'a new socket after the silence');
    server.silent = false;
    await until(() => server.of(2).length === 2, 'the new socket subscribed');
    expect(server.of(1)).toEqual(['LOGIN token-1', 'SUB a']);
  });

  it('without a farewell, close() sends nothing more', async () => {
    const { server, session } = await setup({ farewell: false });
    session.book.want('a', 1);
    session.start();
    await until(() => server.of(1).length === 2, 'subscribed');
    await session.close();
    await until(() => server.open().length === 0, 'the socket closed');
    expect(server.of(1)).toEqual(['LOGIN token-1', 'SUB a']);
  });
});
