/**
 * The failed-authentication limit on a real gateway, with every client on 127.0.0.1 as behind a
 * proxy: a guesser hammering wrong keys is slowed, while a valid key from the same address is
 * still let in.
 */
import crypto from 'node:crypto';
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestClient, waitUntil } from '../helpers/client.js';
import { type TestInstance, startTestInstance } from '../helpers/instance.js';

const ALLOWED = 3;
const GUESSERS = 4;

let gw: TestInstance;

beforeAll(async () => {
  gw = await startTestInstance({ TICKCAST_AUTH_FAILURES: String(ALLOWED) });
});
afterAll(() => gw.stop());

/**
 * Wrong keys from several connections at once, each sending its next guess the moment the
 * previous one is answered, until stopped. Counts the verdicts (`Invalid API key`) and refusals.
 */
class Guesser {
  sent = 0;
  verdicts = 0;
  refusals = 0;
  other: string[] = [];
  private readonly sockets: WebSocket[] = [];

  constructor(url: string, connections: number) {
    for (let i = 0; i < connections; i++) {
      const socket = new WebSocket(url);
      socket.on('open', () => this.guess(socket));
      socket.on('message', (data) => {
        const reply = JSON.parse(data.toString()) as { message?: string };
        if (reply.message === 'Invalid API key') this.verdicts++;
        else if (reply.message?.startsWith('Too many failed authentication attempts; retry in ')) this.refusals++;
        else this.other.push(data.toString());
        this.guess(socket);
      });
      socket.on('error', () => undefined);
      this.sockets.push(socket);
    }
  }

  private guess(socket: WebSocket): void {
    if (socket.readyState !== WebSocket.OPEN) return;
    this.sent++;
    socket.send(JSON.stringify({ action: 'authenticate', api_key: crypto.randomBytes(32).toString('hex') }));
  }

  /** Guesses sent and not yet answered. */
  waiting(): number {
    return this.sent - this.verdicts - this.refusals - this.other.length;
  }

  stop(): void {
    for (const socket of this.sockets) socket.terminate();
  }
}

/**
 * The most held-back verdicts that can have arrived `elapsedMs` after the first guess: the n-th
 * failure past the allowance is answered 2^(n-1) s after it is checked (the cap, 60 s, is beyond
 * any run of this test), so only those with 2^(n-1) s ≤ elapsed can be in.
 */
function heldBackWithin(elapsedMs: number): number {
  return elapsedMs < 1000 ? 0 : Math.floor(Math.log2(elapsedMs / 1000)) + 1;
}

describe('failed authentications from one address', () => {
  it('slow a guesser down, while a valid key from the same address authenticates at once', async () => {
    const key = await gw.createKey('trader');
    const started = Date.now();
    const guesser = new Guesser(gw.url, GUESSERS);
    try {
      // The guesser has used up the address's allowance: its further guesses are being held back.
      await waitUntil(() => guesser.verdicts >= ALLOWED && guesser.waiting() === GUESSERS, 'the guesser to be limited');

      // Meanwhile a valid key, first uncached (an Argon2 check), then again, from fresh connections.
      for (let i = 0; i < 2; i++) {
        const client = await TestClient.connect(gw.url);
        // request() waits 5 s at most: a bound that only catches hangs.
        expect(await client.request({ action: 'authenticate', api_key: key })).toMatchObject({ type: 'auth', status: 'success', user_id: 'trader' });
        expect(await client.request({ action: 'get_broker_info' })).toMatchObject({ status: 'success', user_id: 'trader' });
        await client.close();
      }

      const elapsed = Date.now() - started;
      const { verdicts } = guesser;
      expect(guesser.other).toEqual([]);
      // The allowance was answered at once, and of the rest only what their doubling waits let
      // through in the time the test took; the successes in between gave no fresh allowance.
      expect(verdicts).toBeGreaterThanOrEqual(ALLOWED);
      expect(verdicts).toBeLessThanOrEqual(ALLOWED + heldBackWithin(elapsed));
      expect(guesser.waiting()).toBe(GUESSERS);
    } finally {
      guesser.stop();
    }
  });

  it("counts the WebSocket's wrong keys and the dashboard's wrong X-API-Key together", async () => {
    const other = await startTestInstance({ TICKCAST_AUTH_FAILURES: '2' });
    try {
      // The address's allowance, used up on the WebSocket.
      for (let i = 0; i < 2; i++) {
        const client = await TestClient.connect(other.url);
        expect(await client.request({ action: 'authenticate', api_key: crypto.randomBytes(32).toString('hex') })).toMatchObject({ message: 'Invalid API key' });
        await client.close();
      }
      // And one on the dashboard: the same address's count, not one of its own.
      const http = other.url.replace('ws://', 'http://');
      const wrong = await fetch(`${http}/api/symbols?q=INFY`, { headers: { 'x-api-key': crypto.randomBytes(32).toString('hex') } });
      expect(wrong.status).toBe(401);
      const failures = (address: string): number => other.gateway.failedAuths!.failures(address);
      expect(Math.max(failures('127.0.0.1'), failures('::ffff:127.0.0.1'))).toBe(3);
    } finally {
      await other.stop();
    }
  });
});
