/**
 * A fake Angel SmartStream server for tests, plus the Angel test vectors and a packet
 * encoder. The server checks the four auth headers on the upgrade (401 when wrong), answers the
 * text `ping` with `pong` (unless told to go silent), records every request, and lets a test push
 * frames, drop connections and count them.
 */
import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';

export interface AngelVector {
  name: string;
  frame: 'binary' | 'text';
  direction: string;
  hex?: string;
  text?: string;
  decoded: any;
  input?: any;
  note?: string;
  /** Where the official client raised instead of sending. */
  exception?: string;
}

/** The Angel vectors (test/fixtures/vectors/README.md says where they come from). */
export function loadAngelVectors(): AngelVector[] {
  return JSON.parse(readFileSync(new URL('../fixtures/vectors/angel.json', import.meta.url), 'utf8')) as AngelVector[];
}

export function vectorFrame(vectors: readonly AngelVector[], name: string): Buffer {
  const vector = vectors.find((v) => v.name === name);
  if (!vector?.hex) throw new Error(`no binary vector ${name}`);
  return Buffer.from(vector.hex, 'hex');
}

export interface AngelLevelFields {
  flag?: number;
  quantity: number;
  price: number;
  orders: number;
}

/** Raw wire values (prices in paise, or 1e-7 for CDE_FO); unset fields are zero. */
export interface AngelPacketFields {
  mode: 1 | 2 | 3;
  exchangeType: number;
  token: string;
  sequence?: number;
  exchangeTimestamp?: number;
  ltp: number;
  lastQuantity?: number;
  averagePrice?: number;
  volume?: number;
  totalBuyQuantity?: number;
  totalSellQuantity?: number;
  open?: number;
  high?: number;
  low?: number;
  close?: number;
  /** Epoch seconds. */
  lastTradeTime?: number;
  oi?: number;
  oiChangePercent?: number;
  buy?: AngelLevelFields[];
  sell?: AngelLevelFields[];
  upperCircuit?: number;
  lowerCircuit?: number;
  high52w?: number;
  low52w?: number;
}

/** Builds an LTP/QUOTE/SNAP_QUOTE packet per the wire-formats spec §2.3. */
export function encodeAngelPacket(f: AngelPacketFields): Buffer {
  const length = { 1: 51, 2: 123, 3: 379 }[f.mode];
  const b = Buffer.alloc(length);
  const i64 = (offset: number, value: number | undefined) => b.writeBigInt64LE(BigInt(value ?? 0), offset);
  b[0] = f.mode;
  b[1] = f.exchangeType;
  b.write(f.token, 2, 25, 'latin1');
  i64(27, f.sequence);
  i64(35, f.exchangeTimestamp);
  i64(43, f.ltp);
  if (f.mode === 1) return b;
  i64(51, f.lastQuantity);
  i64(59, f.averagePrice);
  i64(67, f.volume);
  b.writeDoubleLE(f.totalBuyQuantity ?? 0, 75);
  b.writeDoubleLE(f.totalSellQuantity ?? 0, 83);
  i64(91, f.open);
  i64(99, f.high);
  i64(107, f.low);
  i64(115, f.close);
  if (f.mode === 2) return b;
  i64(123, f.lastTradeTime);
  i64(131, f.oi);
  b.writeDoubleLE(f.oiChangePercent ?? 0, 139);
  const levels = (start: number, side: AngelLevelFields[] | undefined, flag: number) => {
    (side ?? []).slice(0, 5).forEach((level, i) => {
      const at = start + i * 20;
      b.writeUInt16LE(level.flag ?? flag, at);
      i64(at + 2, level.quantity);
      i64(at + 10, level.price);
      b.writeUInt16LE(level.orders, at + 18);
    });
  };
  levels(147, f.buy, 1);
  levels(247, f.sell, 0);
  i64(347, f.upperCircuit);
  i64(355, f.lowerCircuit);
  i64(363, f.high52w);
  i64(371, f.low52w);
  return b;
}

export interface AngelHeaders {
  authorization: string;
  apiKey: string;
  clientCode: string;
  feedToken: string;
}

export interface AngelRequest {
  correlationID?: string;
  action: number;
  params: { mode: number; tokenList: Array<{ exchangeType: number; tokens: string[] }> };
}

const WAIT_MS = 5000;

export class FakeAngel {
  /** Headers of every upgrade attempt, accepted or not, with its time (epoch ms). */
  readonly attempts: Array<AngelHeaders & { at: number; accepted?: boolean }> = [];
  /** Requests received, in order, per connection number (1-based). */
  readonly requests: Array<AngelRequest & { connection: number }> = [];
  /** Text frames that were not JSON requests or `ping`. */
  readonly otherTexts: string[] = [];
  connections = 0;
  rejected = 0;
  pings = 0;
  /** While true, pings go unanswered (a hung server). */
  silent = false;
  /** When set, every upgrade is refused with this HTTP status (an overloaded or broken server). */
  refuseWith: number | undefined;
  private expected: AngelHeaders;
  private readonly clients = new Set<WebSocket>();

  private constructor(
    private readonly server: WebSocketServer,
    expected: AngelHeaders,
  ) {
    this.expected = expected;
  }

  static start(expected: AngelHeaders): Promise<FakeAngel> {
    return new Promise((resolve, reject) => {
      let fake: FakeAngel | undefined;
      const server = new WebSocketServer({
        host: '127.0.0.1',
        port: 0,
        verifyClient: (info, done) => {
          const h = info.req.headers;
          const seen: AngelHeaders = {
            authorization: String(h['authorization'] ?? ''),
            apiKey: String(h['x-api-key'] ?? ''),
            clientCode: String(h['x-client-code'] ?? ''),
            feedToken: String(h['x-feed-token'] ?? ''),
          };
          const attempt: AngelHeaders & { at: number; accepted?: boolean } = { ...seen, at: Date.now() };
          fake!.attempts.push(attempt);
          if (fake!.refuseWith !== undefined) {
            attempt.accepted = false;
            fake!.rejected++;
            done(false, fake!.refuseWith, 'Refused');
            return;
          }
          const want = fake!.expected;
          const ok =
            seen.authorization === want.authorization &&
            seen.apiKey === want.apiKey &&
            seen.clientCode === want.clientCode &&
            seen.feedToken === want.feedToken;
          attempt.accepted = ok;
          if (!ok) fake!.rejected++;
          done(ok, ok ? undefined : 401, ok ? undefined : 'Unauthorized');
        },
      });
      fake = new FakeAngel(server, expected);
      server.on('connection', (socket) => fake!.accept(socket));
      server.once('listening', () => resolve(fake!));
      server.once('error', reject);
    });
  }

  get url(): string {
    return `ws://127.0.0.1:${(this.server.address() as AddressInfo).port}/smart-stream`;
  }

  /** Open client sockets now. */
  get open(): number {
    return this.clients.size;
  }

  /** The credentials the server accepts from now on. */
  expect(headers: Partial<AngelHeaders>): void {
    this.expected = { ...this.expected, ...headers };
  }

  requestsOn(connection: number): AngelRequest[] {
    return this.requests.filter((r) => r.connection === connection).map(({ connection: _c, ...r }) => r);
  }

  /** Sends a binary frame (a Buffer or hex text) to every open client. */
  push(frame: Buffer | string): void {
    const bytes = typeof frame === 'string' ? Buffer.from(frame, 'hex') : frame;
    for (const client of this.clients) client.send(bytes, { binary: true });
  }

  sendText(text: string): void {
    for (const client of this.clients) client.send(text, { binary: false });
  }

  /** Cuts every client off without a close handshake. */
  drop(): void {
    for (const client of this.clients) client.terminate();
  }

  /** Resolves once `predicate` holds; rejects after a timeout that only catches hangs. */
  async waitFor(predicate: () => boolean, what: string, timeoutMs = WAIT_MS): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!predicate()) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 5));
    }
  }

  async close(): Promise<void> {
    this.drop();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private accept(socket: WebSocket): void {
    const connection = ++this.connections;
    this.clients.add(socket);
    socket.on('close', () => this.clients.delete(socket));
    socket.on('message', (data, isBinary) => {
      const text = data.toString();
      if (!isBinary && text === 'ping') {
        this.pings++;
        if (!this.silent) socket.send('pong');
        return;
      }
      try {
        const request = JSON.parse(text) as AngelRequest;
        this.requests.push({ ...request, connection });
      } catch {
        this.otherTexts.push(text);
      }
    });
  }
}
