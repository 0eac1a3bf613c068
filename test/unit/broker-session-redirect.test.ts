/**
 * The session layer following redirects of the upgrade (a dialect's `followRedirects`), against
 * two local servers: the first answers the upgrade with a 302, the second (another port, so
 * another host to the client) opens the socket. Waits time out only to catch hangs.
 */
import { type IncomingMessage, type Server, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocketServer } from 'ws';
import { BrokerSession, type SessionDialect, badRedirect } from '../../src/adapters/session/broker-session.js';
import { resolveSchedule } from '../../src/adapters/session/schedule.js';
import { systemClock } from '../../src/clock.js';
import { createLogger } from '../../src/observability/logger.js';
import { until } from '../helpers/broker-kit.js';

const SECRET = 'single-use-0123456789';

interface Hop {
  path: string;
  authorization: string | undefined;
}

/** A server whose every upgrade is answered by `answer`: a status (and Location), or 'open'. */
class UpgradeServer {
  readonly hops: Hop[] = [];
  private readonly wss = new WebSocketServer({ noServer: true });

  private constructor(
    private readonly server: Server,
    public answer: (path: string) => { status: number; location?: string } | 'open',
  ) {
    server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      socket.on('error', () => {});
      const path = req.url ?? '';
      this.hops.push({ path, authorization: req.headers.authorization });
      const reply = this.answer(path);
      if (reply === 'open') {
        this.wss.handleUpgrade(req, socket, head, () => {});
        return;
      }
      const lines = [`HTTP/1.1 ${reply.status} Nope`, 'Connection: close', 'Content-Length: 0'];
      if (reply.location !== undefined) lines.push(`Location: ${reply.location}`);
      socket.once('finish', () => socket.destroy());
      socket.end(`${lines.join('\r\n')}\r\n\r\n`);
    });
  }

  static async start(answer: UpgradeServer['answer']): Promise<UpgradeServer> {
    const server = createServer((_req, res) => res.writeHead(426).end());
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return new UpgradeServer(server, answer);
  }

  url(path: string): string {
    return `ws://127.0.0.1:${(this.server.address() as AddressInfo).port}${path}`;
  }

  async close(): Promise<void> {
    for (const client of this.wss.clients) client.terminate();
    this.wss.close();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

describe('BrokerSession: redirects of the upgrade', () => {
  const cleanup: Array<() => Promise<void>> = [];
  afterEach(async () => {
    for (const step of cleanup.splice(0).reverse()) await step();
  });

  async function server(answer: UpgradeServer['answer']): Promise<UpgradeServer> {
    const started = await UpgradeServer.start(answer);
    cleanup.push(() => started.close());
    return started;
  }

  /** A session dialing `url` with a bearer header; `followRedirects` as given. */
  function session(url: string, followRedirects: number | undefined) {
    const messages: string[] = [];
    const logLines: string[] = [];
    const dialect: SessionDialect = {
      label: 'Test',
      socketName: 'Test feed',
      maxFrameBytes: 1024,
      followRedirects,
      dial: () => ({ url, headers: { Authorization: 'Bearer the-token' } }),
      refusedUpgrade: (status) => `Test refused the token (HTTP ${status})`,
      isAuthError: () => false,
      silent: () => 'silent',
      lost: (reason, delay) => `${reason}; reconnecting in ${delay} ms`,
    };
    const created: BrokerSession<string, number> = new BrokerSession(
      1,
      dialect,
      { silenceMs: 5000, connectTimeoutMs: 2000, schedule: resolveSchedule('Test', { backoff: { initialMs: 50, maxMs: 100, jitter: 0 }, authRetryMs: 60_000 }) },
      { load: async () => ({ apiKey: 'k', accessToken: 'the-token' }) },
      systemClock,
      createLogger('debug', { write: (line: string) => void logLines.push(line) }),
      {
        frame: () => {},
        opened: () => {},
        changed: () => messages.push(created.message ?? ''),
        encode: () => [],
      },
    );
    cleanup.push(() => created.close());
    created.start();
    /** The single-use part never reaches a status message or a log line. */
    const expectNoSecret = () => {
      for (const text of [...messages, ...logLines]) expect(text).not.toContain(SECRET);
    };
    return { session: created, messages, logLines, expectNoSecret };
  }

  it('follows a redirect to another host, which gets the code in its URL and not the Authorization header', async () => {
    const target = await server(() => 'open');
    const origin = await server(() => ({ status: 302, location: target.url(`/feeds?code=${SECRET}`) }));
    const { session: s, expectNoSecret } = session(origin.url('/feed'), 3);
    await until(() => s.state === 'open', 'open');
    expect(origin.hops).toEqual([{ path: '/feed', authorization: 'Bearer the-token' }]);
    expect(target.hops).toEqual([{ path: `/feeds?code=${SECRET}`, authorization: undefined }]);
    expectNoSecret();
  });

  it('without followRedirects a 302 is an ordinary failed attempt, as before', async () => {
    const target = await server(() => 'open');
    const origin = await server(() => ({ status: 302, location: target.url('/feeds') }));
    const { session: s } = session(origin.url('/feed'), undefined);
    await until(() => origin.hops.length >= 2, 'a retry');
    expect(s.state).toBe('retrying');
    expect(s.message).toMatch(/^Test answered the upgrade with HTTP 302; reconnecting in/);
    expect(target.hops).toEqual([]);
  });

  it('a refusal at the redirected hop is a refusal: down with the dialect’s message', async () => {
    const target = await server(() => ({ status: 401 }));
    const origin = await server(() => ({ status: 302, location: target.url(`/feeds?code=${SECRET}`) }));
    const { session: s, expectNoSecret } = session(origin.url('/feed'), 3);
    await until(() => s.state === 'down', 'down');
    expect(s.message).toBe('Test refused the token (HTTP 401)');
    expectNoSecret();
  });

  it('another status at the redirected hop names where, without the query', async () => {
    const target = await server(() => ({ status: 500 }));
    const origin = await server(() => ({ status: 302, location: target.url(`/feeds?code=${SECRET}`) }));
    const { session: s, expectNoSecret } = session(origin.url('/feed'), 3);
    await until(() => s.state === 'retrying', 'retrying');
    expect(s.message).toMatch(new RegExp(`^Test answered the upgrade with HTTP 500 at ${target.url('/feeds').replace(/\./g, '\\.')}; reconnecting in`));
    expectNoSecret();
  });

  it('a loop past the limit is a failed attempt with a clear message, and the session keeps trying', async () => {
    let n = 0;
    const origin: UpgradeServer = await server(() => ({ status: 302, location: origin.url(`/loop/${++n}?code=${SECRET}`) }));
    const { session: s, expectNoSecret } = session(origin.url('/feed'), 2);
    await until(() => s.state === 'retrying', 'retrying');
    expect(s.message).toMatch(new RegExp(`^Test redirected the upgrade more than 2 times \\(last to ${origin.url('/loop/2').replace(/\./g, '\\.')}\\); reconnecting in`));
    // The first request and two redirects followed; the third redirect is not.
    expect(origin.hops.map((h) => h.path.split('?')[0])).toEqual(['/feed', '/loop/1', '/loop/2']);
    await until(() => origin.hops.length >= 6, 'the next attempt');
    expectNoSecret();
  });

  it.each([
    ['another scheme', `ftp://127.0.0.1/feeds?code=${SECRET}`, /^Test redirected the upgrade to ftp:\/\/127\.0\.0\.1\/feeds, not a ws: or wss: URL/],
    ['a local socket', `ws+unix:/nonexistent/feed.sock:/feeds?code=${SECRET}`, /^Test redirected the upgrade to ws\+unix:\/nonexistent\/feed\.sock:\/feeds, not a ws: or wss: URL/],
    ['an unparsable URL', `ws://[::1/feeds?code=${SECRET}`, /^Test redirected the upgrade to an invalid URL/],
  ])('a redirect to %s is a failed attempt with a clear message, retried', async (_what, location, message) => {
    const origin = await server(() => ({ status: 302, location }));
    const { session: s, expectNoSecret } = session(origin.url('/feed'), 3);
    await until(() => s.state === 'retrying', 'retrying');
    expect(s.message).toMatch(message);
    await until(() => origin.hops.length >= 2, 'the next attempt');
    expectNoSecret();
  });
});

describe('badRedirect', () => {
  it('lets ws: and wss: targets through, but never from wss: down to ws:, and shows no query', () => {
    expect(badRedirect('X', 'wss://a.example/feed', `wss://b.example/feeds?code=${SECRET}`)).toBeUndefined();
    expect(badRedirect('X', 'ws://a.example/feed', `ws://b.example/feeds?code=${SECRET}`)).toBeUndefined();
    expect(badRedirect('X', 'wss://a.example/feed', `ws://user:pw@b.example/feeds?code=${SECRET}#x`)).toBe(
      'X redirected the upgrade from wss: to ws://b.example/feeds, an unencrypted URL',
    );
    expect(badRedirect('X', 'wss://a.example/feed', `file:///feeds?code=${SECRET}`)).toBe('X redirected the upgrade to file:///feeds, not a ws: or wss: URL');
  });
});
