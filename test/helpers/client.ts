/**
 * A WebSocket test client that queues every message, so tests can await the next one matching
 * a predicate (with a generous timeout that only catches hangs).
 */
import WebSocket from 'ws';

export type Message = Record<string, any>;

const WAIT_MS = 5000;

export class TestClient {
  readonly messages: Message[] = [];
  readonly raw: string[] = [];
  private waiters: Array<{ match: (m: Message) => boolean; resolve: (m: Message) => void }> = [];
  closed: Promise<{ code: number; reason: string }>;

  private constructor(readonly socket: WebSocket) {
    socket.on('message', (data) => {
      const text = data.toString();
      this.raw.push(text);
      const message = JSON.parse(text) as Message;
      const waiter = this.waiters.find((w) => w.match(message));
      if (waiter) {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        waiter.resolve(message);
      } else {
        this.messages.push(message);
      }
    });
    this.closed = new Promise((resolve) => socket.on('close', (code, reason) => resolve({ code, reason: reason.toString() })));
  }

  static connect(url: string, options: WebSocket.ClientOptions = {}): Promise<TestClient> {
    return new Promise((resolve, reject) => {
      const socket = new WebSocket(url, options);
      const client = new TestClient(socket);
      socket.once('open', () => resolve(client));
      socket.once('error', reject);
    });
  }

  /** Connects and authenticates; fails the test if the reply is not an auth success. */
  static async authenticated(url: string, apiKey: string): Promise<TestClient> {
    const client = await TestClient.connect(url);
    const reply = await client.request({ action: 'authenticate', api_key: apiKey });
    if (reply.type !== 'auth' || reply.status !== 'success') throw new Error(`auth failed: ${JSON.stringify(reply)}`);
    return client;
  }

  send(message: unknown): void {
    this.socket.send(typeof message === 'string' ? message : JSON.stringify(message));
  }

  /** Next message (already queued or future) matching `match`. */
  next(match: (m: Message) => boolean = () => true, timeoutMs = WAIT_MS): Promise<Message> {
    const index = this.messages.findIndex(match);
    if (index >= 0) return Promise.resolve(this.messages.splice(index, 1)[0]!);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w.resolve !== done);
        reject(new Error(`no matching message within ${timeoutMs} ms`));
      }, timeoutMs);
      const done = (m: Message): void => {
        clearTimeout(timer);
        resolve(m);
      };
      this.waiters.push({ match, resolve: done });
    });
  }

  /** Sends a request and waits for its reply: the next message that is not pushed data or an event. */
  request(message: unknown): Promise<Message> {
    this.send(message);
    return this.next((m) => m.type !== 'market_data' && m.type !== 'order_update' && m.type !== 'feed_status');
  }

  marketData(symbol?: string, exchange?: string): Promise<Message> {
    return this.next((m) => m.type === 'market_data' && (symbol === undefined || m.symbol === symbol) && (exchange === undefined || m.exchange === exchange));
  }

  /** Drops queued messages (e.g. ticks that arrived before an unsubscribe took effect). */
  drain(): void {
    this.messages.length = 0;
  }

  close(): Promise<{ code: number; reason: string }> {
    this.socket.close();
    return this.closed;
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls `condition` until it holds; the timeout only catches hangs, and its error names `what`. */
export async function waitUntil(condition: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

/** `waitUntil` for conditions that need no name. */
export function waitFor(condition: () => boolean, timeoutMs = 5000): Promise<void> {
  return waitUntil(condition, 'the condition', timeoutMs);
}
