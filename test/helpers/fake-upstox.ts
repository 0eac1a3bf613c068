/**
 * A fake Upstox Market Data Feed v3 server for tests, plus a small protobuf writer for
 * `FeedResponse` frames and the Upstox test vectors.
 *
 * The server checks `Authorization: Bearer <token>` on the upgrade at the feed path (401
 * otherwise) and, as Upstox's feed URL does, answers it with a 302 to a single-use URL on its
 * `feeds` path carrying a fresh `code` (`redirect: false` opens the feed at the first hop
 * instead). The code must be one it issued and not yet used (403 otherwise). It sends the
 * `market_info` message first as Upstox does, sends WebSocket pings while idle (Upstox has no
 * application heartbeat), records every request (JSON; whether it came as a binary frame), and
 * lets a test push frames, go silent (no pings, no frames), drop connections, and make the
 * redirect loop or point elsewhere.
 *
 * The writer is independent of src/adapters/upstox/: its field numbers come from the message
 * table in docs/brokers/upstox.md (MarketDataFeedV3.proto), so a frame it writes checks the
 * decoder rather than mirroring it.
 */
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { type IncomingMessage, type Server, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import WebSocket, { WebSocketServer } from 'ws';

// ---- protobuf writer --------------------------------------------------------------------------

type Kind = 'double' | 'int64' | 'string' | { enum: readonly string[] } | { message: Schema } | { repeated: Schema } | { map: Kind };
/** Field name → [number, kind]. */
type Schema = { readonly [name: string]: readonly [number, Kind] };

const LTPC: Schema = { ltp: [1, 'double'], ltt: [2, 'int64'], ltq: [3, 'int64'], cp: [4, 'double'] };
const QUOTE: Schema = { bidQ: [1, 'int64'], bidP: [2, 'double'], askQ: [3, 'int64'], askP: [4, 'double'] };
const GREEKS: Schema = { delta: [1, 'double'], theta: [2, 'double'], gamma: [3, 'double'], vega: [4, 'double'], rho: [5, 'double'] };
const OHLC: Schema = { interval: [1, 'string'], open: [2, 'double'], high: [3, 'double'], low: [4, 'double'], close: [5, 'double'], vol: [6, 'int64'], ts: [7, 'int64'] };
const MARKET_OHLC: Schema = { ohlc: [1, { repeated: OHLC }] };
const MARKET_FF: Schema = {
  ltpc: [1, { message: LTPC }], marketLevel: [2, { message: { bidAskQuote: [1, { repeated: QUOTE }] } }], optionGreeks: [3, { message: GREEKS }],
  marketOHLC: [4, { message: MARKET_OHLC }], atp: [5, 'double'], vtt: [6, 'int64'], oi: [7, 'double'], iv: [8, 'double'], tbq: [9, 'double'], tsq: [10, 'double'],
};
const INDEX_FF: Schema = { ltpc: [1, { message: LTPC }], marketOHLC: [2, { message: MARKET_OHLC }] };
const FIRST_LEVEL: Schema = {
  ltpc: [1, { message: LTPC }], firstDepth: [2, { message: QUOTE }], optionGreeks: [3, { message: GREEKS }], vtt: [4, 'int64'], oi: [5, 'double'], iv: [6, 'double'],
};
const FEED: Schema = {
  ltpc: [1, { message: LTPC }],
  fullFeed: [2, { message: { marketFF: [1, { message: MARKET_FF }], indexFF: [2, { message: INDEX_FF }] } }],
  firstLevelWithGreeks: [3, { message: FIRST_LEVEL }],
  requestMode: [4, { enum: ['ltpc', 'full_d5', 'option_greeks', 'full_d30'] }],
};
const MARKET_STATUS = ['PRE_OPEN_START', 'PRE_OPEN_END', 'NORMAL_OPEN', 'NORMAL_CLOSE', 'CLOSING_START', 'CLOSING_END'] as const;
const FEED_RESPONSE: Schema = {
  type: [1, { enum: ['initial_feed', 'live_feed', 'market_info'] }],
  feeds: [2, { map: { message: FEED } }],
  currentTs: [3, 'int64'],
  marketInfo: [4, { message: { segmentStatus: [1, { map: { enum: MARKET_STATUS } }] } }],
};

/**
 * A FeedResponse as the vectors' `input` writes it: names, enums by name, numbers as numbers;
 * or a list of [field, value] pairs written in that order (repeats and reordering on the wire).
 */
export type FeedResponseInput = Record<string, unknown> | Array<[string, unknown]>;

/** Encodes a FeedResponse; as a proto3 encoder, zero / empty / null values are left out. */
export function encodeFeedResponse(input: FeedResponseInput): Buffer {
  if (!Array.isArray(input)) return Buffer.from(writeMessage(FEED_RESPONSE, input));
  const out: number[] = [];
  for (const [name, value] of input) {
    const field = FEED_RESPONSE[name];
    if (!field) throw new Error(`FeedResponse has no field ${name}`);
    if (value !== undefined && value !== null) writeField(out, field[0], field[1], value);
  }
  return Buffer.from(out);
}

/** A live_feed frame with one instrument's LTPC. */
export function ltpcFrame(key: string, ltp: number, extra: { ltt?: number; ltq?: number; cp?: number; currentTs?: number } = {}): Buffer {
  const { currentTs, ...ltpc } = extra;
  return encodeFeedResponse({ type: 'live_feed', feeds: { [key]: { ltpc: { ltp, ...ltpc } } }, currentTs });
}

/** The market_info message Upstox sends first on every connection. */
export function marketInfoFrame(status: Record<string, string> = { NSE_EQ: 'NORMAL_OPEN', NSE_FO: 'NORMAL_OPEN', NSE_INDEX: 'NORMAL_OPEN' }): Buffer {
  return encodeFeedResponse({ type: 'market_info', currentTs: Date.now(), marketInfo: { segmentStatus: status } });
}

function writeMessage(schema: Schema, value: Record<string, unknown>): number[] {
  const out: number[] = [];
  for (const [name, [no, kind]] of Object.entries(schema)) {
    const v = value[name];
    if (v === undefined || v === null) continue;
    writeField(out, no, kind, v);
  }
  return out;
}

function writeField(out: number[], no: number, kind: Kind, v: unknown): void {
  if (kind === 'double') {
    if (Number(v) === 0 && !Object.is(v, -0)) return;
    tag(out, no, 1);
    const b = Buffer.alloc(8);
    b.writeDoubleLE(Number(v));
    out.push(...b);
  } else if (kind === 'int64') {
    const n = BigInt(v as number | string | bigint);
    if (n === 0n) return;
    tag(out, no, 0);
    varint(out, BigInt.asUintN(64, n));
  } else if (kind === 'string') {
    if (v === '') return;
    bytes(out, no, [...Buffer.from(String(v), 'utf8')]);
  } else if ('enum' in kind) {
    const n = typeof v === 'number' ? v : kind.enum.indexOf(String(v));
    if (n < 0) throw new Error(`not an enum value: ${String(v)}`);
    if (n === 0) return;
    tag(out, no, 0);
    varint(out, BigInt(n));
  } else if ('message' in kind) {
    bytes(out, no, writeMessage(kind.message, v as Record<string, unknown>));
  } else if ('repeated' in kind) {
    for (const item of v as Array<Record<string, unknown>>) bytes(out, no, writeMessage(kind.repeated, item));
  } else {
    for (const [key, item] of Object.entries(v as Record<string, unknown>)) {
      const entry: number[] = [];
      writeField(entry, 1, 'string', key);
      if (item !== null && item !== undefined) writeField(entry, 2, kind.map, item);
      bytes(out, no, entry);
    }
  }
}

function tag(out: number[], no: number, wireType: number): void {
  varint(out, BigInt((no << 3) | wireType));
}

function bytes(out: number[], no: number, payload: number[]): void {
  tag(out, no, 2);
  varint(out, BigInt(payload.length));
  out.push(...payload);
}

function varint(out: number[], n: bigint): void {
  do {
    let byte = Number(n & 0x7fn);
    n >>= 7n;
    if (n > 0n) byte |= 0x80;
    out.push(byte);
  } while (n > 0n);
}

// ---- vectors ----------------------------------------------------------------------------------

export interface UpstoxVector {
  name: string;
  kind: string;
  direction: string;
  frame: string | null;
  hex?: string;
  text?: string;
  decoded?: any;
  input?: FeedResponseInput;
  url?: string;
  headers?: Record<string, string>;
}

/** The Upstox vectors (test/fixtures/vectors/README.md says where they come from). */
export function loadUpstoxVectors(): UpstoxVector[] {
  return JSON.parse(readFileSync(new URL('../fixtures/vectors/upstox.json', import.meta.url), 'utf8')) as UpstoxVector[];
}

export function upstoxVectorFrame(vectors: readonly UpstoxVector[], name: string): Buffer {
  const vector = vectors.find((v) => v.name === name);
  if (!vector?.hex) throw new Error(`no binary vector ${name}`);
  return Buffer.from(vector.hex, 'hex');
}

// ---- the server -------------------------------------------------------------------------------

export interface UpstoxRequestSeen {
  /** 1-based number of the accepted connection that sent it. */
  connection: number;
  /** Sent as a binary frame (Upstox's requests are). */
  binary: boolean;
  guid?: string;
  method?: string;
  data?: { mode?: string; instrumentKeys?: string[] };
  raw: string;
}

export interface FakeUpstoxOptions {
  /** The access token let in. */
  accessToken: string;
  /** WebSocket ping period while not silent. */
  pingMs?: number;
  /** Send market_info on every new connection (Upstox does). */
  marketInfo?: boolean;
  /**
   * Answer the upgrade at the feed path with a 302 to a single-use URL, as Upstox does (default);
   * false opens the feed there directly.
   */
  redirect?: boolean;
}

export const UPSTOX_PATH = '/v3/feed/market-data-feed';
/** Where the redirect points, as the authorize endpoint's `authorized_redirect_uri` does. */
export const UPSTOX_FEEDS_PATH = '/market-data-feeder/v3/upstox-developer-api/feeds';
const WAIT_MS = 5000;

export class FakeUpstox {
  /** The token let in; change it to simulate a re-login. */
  accessToken: string;
  /**
   * Every upgrade attempt at the feed path: the bearer token it carried (null without one) and
   * whether it was let in (redirected, or opened when not redirecting).
   */
  readonly attempts: Array<{ token: string | null; authorization: string | undefined; path: string; accepted: boolean }> = [];
  /** Codes issued in redirects, in order. */
  readonly codes: string[] = [];
  /** Every upgrade at the feeds path: the code it carried and whether it was let in. */
  readonly redeemed: Array<{ code: string | null; authorization: string | undefined; accepted: boolean }> = [];
  /** While true, a good code is answered with another redirect to the feed path (a loop). */
  loop = false;
  /** While set, the feed path's redirect goes where this says instead of to the code URL given. */
  redirectTo: ((codeUrl: string) => string) | undefined;
  readonly requests: UpstoxRequestSeen[] = [];
  connections = 0;
  /** WebSocket pings received from the client. */
  pingsReceived = 0;
  /** While true, nothing at all is sent (no pings, no frames). */
  silent = false;
  private readonly sockets = new Map<number, WebSocket>();
  private readonly unused = new Set<string>();
  private readonly pinger: NodeJS.Timeout;
  private readonly wss = new WebSocketServer({ noServer: true });

  private constructor(
    private readonly server: Server,
    private readonly options: FakeUpstoxOptions,
  ) {
    this.accessToken = options.accessToken;
    this.wss.on('connection', (socket) => this.accept(socket));
    server.on('request', (_req, res) => res.writeHead(426).end());
    server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => this.upgrade(req, socket, head));
    this.pinger = setInterval(() => {
      if (this.silent) return;
      for (const socket of this.sockets.values()) if (socket.readyState === WebSocket.OPEN) socket.ping();
    }, options.pingMs ?? 50);
  }

  static start(options: FakeUpstoxOptions): Promise<FakeUpstox> {
    return new Promise((resolve, reject) => {
      const server = createServer();
      const fake = new FakeUpstox(server, options);
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve(fake));
    });
  }

  /** The feed URL (what the adapter opens). */
  get url(): string {
    return `ws://127.0.0.1:${(this.server.address() as AddressInfo).port}${UPSTOX_PATH}`;
  }

  /** A fresh single-use URL, as the redirect carries. */
  issueCodeUrl(): string {
    const code = randomUUID();
    this.codes.push(code);
    this.unused.add(code);
    return `ws://127.0.0.1:${(this.server.address() as AddressInfo).port}${UPSTOX_FEEDS_PATH}?requestId=${randomUUID()}&code=${code}`;
  }

  /** Connections open now. */
  get open(): number {
    return this.sockets.size;
  }

  requestsOn(connection: number): UpstoxRequestSeen[] {
    return this.requests.filter((r) => r.connection === connection);
  }

  /** What Upstox would hold for a connection after its requests: instrument key → mode. */
  held(connection: number): Map<string, string> {
    const held = new Map<string, string>();
    for (const r of this.requestsOn(connection)) {
      const keys = r.data?.instrumentKeys ?? [];
      if (r.method === 'sub') for (const key of keys) held.set(key, r.data?.mode ?? 'ltpc');
      if (r.method === 'change_mode') for (const key of keys) if (held.has(key)) held.set(key, r.data?.mode ?? 'ltpc');
      if (r.method === 'unsub') for (const key of keys) held.delete(key);
    }
    return held;
  }

  /** Sends a binary frame (bytes or hex) to every open connection, unless silent. */
  push(frame: Buffer | string): void {
    if (this.silent) return;
    const bytes = typeof frame === 'string' ? Buffer.from(frame, 'hex') : frame;
    for (const socket of this.sockets.values()) if (socket.readyState === WebSocket.OPEN) socket.send(bytes, { binary: true });
  }

  sendText(text: string): void {
    if (this.silent) return;
    for (const socket of this.sockets.values()) if (socket.readyState === WebSocket.OPEN) socket.send(text, { binary: false });
  }

  /** Cuts every connection without a close handshake. */
  drop(): void {
    for (const socket of this.sockets.values()) socket.terminate();
  }

  async waitFor(predicate: () => boolean, what: string, timeoutMs = WAIT_MS): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!predicate()) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 5));
    }
  }

  async close(): Promise<void> {
    clearInterval(this.pinger);
    this.drop();
    this.wss.close();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    socket.on('error', () => {});
    const url = new URL(req.url ?? '/', 'ws://fake');
    const authorization = req.headers.authorization;
    if (url.pathname === UPSTOX_PATH) {
      const match = /^Bearer (.+)$/.exec(authorization ?? '');
      const token = match ? match[1]! : null;
      const accepted = token !== null && token === this.accessToken;
      this.attempts.push({ token, authorization, path: req.url ?? '', accepted });
      if (!accepted) return answer(socket, 401, 'Unauthorized');
      if (this.options.redirect ?? true) {
        const codeUrl = this.issueCodeUrl();
        return answer(socket, 302, 'Found', this.redirectTo ? this.redirectTo(codeUrl) : codeUrl);
      }
    } else if (url.pathname === UPSTOX_FEEDS_PATH) {
      const code = url.searchParams.get('code');
      // Single use: a code is good once, whoever presents it.
      const accepted = code !== null && this.unused.delete(code);
      this.redeemed.push({ code, authorization, accepted });
      if (!accepted) return answer(socket, 403, 'Forbidden');
      if (this.loop) return answer(socket, 302, 'Found', this.url);
    } else {
      return answer(socket, 404, 'Not Found');
    }
    this.wss.handleUpgrade(req, socket, head, (ws) => this.wss.emit('connection', ws, req));
  }

  private accept(socket: WebSocket): void {
    const connection = ++this.connections;
    this.sockets.set(connection, socket);
    socket.on('close', () => this.sockets.delete(connection));
    socket.on('error', () => {});
    socket.on('ping', () => this.pingsReceived++);
    socket.on('message', (data, isBinary) => {
      const raw = Buffer.isBuffer(data) ? data.toString('utf8') : Buffer.concat(data as Buffer[]).toString('utf8');
      const seen: UpstoxRequestSeen = { connection, binary: isBinary, raw };
      try {
        const parsed = JSON.parse(raw) as Partial<UpstoxRequestSeen>;
        seen.guid = parsed.guid;
        seen.method = parsed.method;
        seen.data = parsed.data;
      } catch {
        // kept raw: a test can see what was not JSON
      }
      this.requests.push(seen);
    });
    if ((this.options.marketInfo ?? true) && !this.silent) socket.send(marketInfoFrame(), { binary: true });
  }
}

/** Answers an upgrade request with a plain HTTP response and closes the socket. */
function answer(socket: Duplex, status: number, text: string, location?: string): void {
  const headers = [`HTTP/1.1 ${status} ${text}`, 'Connection: close', `Content-Length: ${Buffer.byteLength(text)}`];
  if (location !== undefined) headers.push(`Location: ${location}`);
  socket.once('finish', () => socket.destroy());
  socket.end(`${headers.join('\r\n')}\r\n\r\n${text}`);
}
