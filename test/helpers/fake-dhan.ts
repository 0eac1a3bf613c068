/**
 * A fake Dhan live market feed (wss://api-feed.dhan.co, v2) and 20-level depth feed
 * (wss://depth-api-feed.dhan.co/twentydepth) on 127.0.0.1, one server, told apart by path, as
 * docs/brokers/dhan.md describes them: the credentials are checked in the query string
 * (`version=2` on the live feed only, `token`, `clientId`, `authType=2`; 401 at the upgrade
 * otherwise), every JSON request is recorded and checked against Dhan's rules (known request
 * code, `InstrumentCount` equal to the list's length, at most 100 instruments a message on the
 * live feed, 50 a message and a connection on the depth feed, which serves NSE_EQ and NSE_FNO
 * only, string security ids, nothing after a disconnect request 12), the server pings every
 * `pingMs` as Dhan does (the only traffic of an idle feed), and a test can push packets, go
 * silent, drop connections and send disconnect packets (after which the server closes the
 * socket, as Dhan does). The client's disconnect requests are in `requests` and `farewells()`.
 *
 * The depth feed answers a subscription (23) by sending the subscribed instruments' books from
 * `depthBook` (by default the vectors' bid and ask packets), and `pushDepth` sends them again;
 * an unsubscription is 25 (the annexure's code, which the adapter follows).
 *
 * Also: builders for the live feed's little-endian packets, from the documented layout.
 */
import { readFileSync } from 'node:fs';
import type { IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import WebSocket, { WebSocketServer } from 'ws';
import type { Mode } from '../../src/protocol/modes.js';

/** Segment names → the code in packet headers (byte 3). */
export const DHAN_SEGMENT_CODE: Readonly<Record<string, number>> = {
  IDX_I: 0, NSE_EQ: 1, NSE_FNO: 2, NSE_CURRENCY: 3, BSE_EQ: 4, MCX_COMM: 5, BSE_CURRENCY: 7, BSE_FNO: 8,
};

/** Request code → the subscription it makes (or drops). */
const SUBSCRIBE: Readonly<Record<number, Mode>> = { 15: 1, 17: 2, 21: 3 };
const UNSUBSCRIBE: Readonly<Record<number, Mode>> = { 16: 1, 18: 2, 22: 3 };
const DISCONNECT_REQUEST = 12;
const MAX_PER_MESSAGE = 100;
const DEPTH_SUBSCRIBE = 23;
const DEPTH_UNSUBSCRIBE = 25;
const DEPTH_MAX_INSTRUMENTS = 50;
const DEPTH_SEGMENTS = new Set(['NSE_EQ', 'NSE_FNO']);
/** The depth feed's path; the live feed is at `/`. */
export const DHAN_DEPTH_PATH = '/twentydepth';

export type DhanEndpoint = 'feed' | 'depth';

export interface DhanUpgrade {
  path: string;
  endpoint: DhanEndpoint | undefined;
  version: string | null;
  token: string | null;
  clientId: string | null;
  authType: string | null;
  accepted: boolean;
  /** Date.now() when it arrived. */
  at: number;
}

export interface DhanRequest {
  /** 1-based number of the accepted connection that sent it (one count over both endpoints). */
  connection: number;
  endpoint: DhanEndpoint;
  RequestCode: number;
  InstrumentCount?: number;
  InstrumentList?: Array<{ ExchangeSegment: string; SecurityId: string }>;
  raw: string;
}

export interface FakeDhanOptions {
  accessToken: string;
  clientId: string;
  /** Server-side ping period (Dhan's is 10 s). */
  pingMs?: number;
}

const WAIT_MS = 5000;

export class FakeDhan {
  /** The credentials the fake accepts; change them to simulate a re-login. */
  accessToken: string;
  clientId: string;
  /** Every upgrade attempt, accepted or not. */
  readonly upgrades: DhanUpgrade[] = [];
  /** Every JSON request, in order. */
  readonly requests: DhanRequest[] = [];
  /** Rule violations (bad JSON, unknown codes, counts that disagree, more than 100 instruments). */
  readonly problems: string[] = [];
  /** What the depth feed sends for an instrument (`SEGMENT:id`) when it is subscribed: whole frames, in order. */
  readonly depthBook = new Map<string, Buffer[]>();
  private readonly sockets = new Map<number, { socket: WebSocket; endpoint: DhanEndpoint }>();
  private accepted = 0;
  private acceptedBy: Record<DhanEndpoint, number> = { feed: 0, depth: 0 };
  private silent = false;
  /** While set, every upgrade is answered with this HTTP status (a lapsed data plan: 429). */
  refuseAll: number | undefined;
  /** While set, every upgrade of the depth feed is answered with this HTTP status. */
  refuseDepth: number | undefined;
  private readonly pinger: NodeJS.Timeout;

  private constructor(
    private readonly server: WebSocketServer,
    options: FakeDhanOptions,
  ) {
    this.accessToken = options.accessToken;
    this.clientId = options.clientId;
    server.on('connection', (socket, req) => this.onConnection(socket, endpointOf(req) ?? 'feed'));
    this.pinger = setInterval(() => {
      if (this.silent) return;
      for (const { socket } of this.sockets.values()) if (socket.readyState === WebSocket.OPEN) socket.ping();
    }, options.pingMs ?? 50);
    for (const [key, frames] of defaultDepthBook(loadDhanVectors())) this.depthBook.set(key, frames);
  }

  static async start(options: FakeDhanOptions): Promise<FakeDhan> {
    let fake: FakeDhan | undefined;
    const server = new WebSocketServer({
      host: '127.0.0.1',
      port: 0,
      // Silence must be silence: pongs to the client's pings stop too.
      autoPong: false,
      verifyClient: (info: { req: IncomingMessage }, done: (ok: boolean, code?: number, message?: string) => void) => {
        const endpoint = endpointOf(info.req);
        const refusal = fake!.refuseAll ?? (endpoint === 'depth' ? fake!.refuseDepth : undefined);
        if (endpoint === undefined) {
          fake!.check(info.req);
          done(false, 404, 'Not Found');
        } else if (refusal !== undefined) {
          fake!.check(info.req);
          done(false, refusal, 'Refused');
        } else if (fake!.check(info.req)) done(true);
        else done(false, 401, 'Unauthorized');
      },
    });
    fake = new FakeDhan(server, options);
    await new Promise<void>((resolve, reject) => {
      server.once('listening', resolve);
      server.once('error', reject);
    });
    return fake;
  }

  /** The live feed's address. */
  get url(): string {
    const { port } = this.server.address() as AddressInfo;
    return `ws://127.0.0.1:${port}`;
  }

  /** The 20-level depth feed's address. */
  get depthUrl(): string {
    return this.url + DHAN_DEPTH_PATH;
  }

  /** Live-feed connections accepted so far. */
  get connections(): number {
    return this.acceptedBy.feed;
  }

  /** Depth-feed connections accepted so far. */
  get depthConnections(): number {
    return this.acceptedBy.depth;
  }

  /** Numbers of the live-feed connections open now. */
  openConnections(): number[] {
    return this.open('feed');
  }

  /** Numbers of the depth-feed connections open now. */
  openDepthConnections(): number[] {
    return this.open('depth');
  }

  /** Upgrade attempts of one endpoint. */
  upgradesOf(endpoint: DhanEndpoint): DhanUpgrade[] {
    return this.upgrades.filter((u) => u.endpoint === endpoint);
  }

  /** What the depth feed holds for a connection after its requests: `SEGMENT:id` keys. */
  depthHeld(connection: number): Set<string> {
    const held = new Set<string>();
    for (const request of this.requestsOn(connection)) {
      for (const { ExchangeSegment, SecurityId } of request.InstrumentList ?? []) {
        const key = `${ExchangeSegment}:${SecurityId}`;
        if (request.RequestCode === DEPTH_SUBSCRIBE) held.add(key);
        if (request.RequestCode === DEPTH_UNSUBSCRIBE) held.delete(key);
      }
    }
    return held;
  }

  /** Sends the books of every instrument a depth connection (or each) holds, as on a subscription. */
  pushDepth(connection?: number): void {
    for (const id of this.openDepthConnections()) {
      if (connection === undefined || connection === id) this.sendBooks(id, this.depthHeld(id));
    }
  }

  /** Sends a binary frame to every open depth connection (or one). */
  sendDepth(frame: Buffer, connection?: number): void {
    this.sendOn('depth', frame, connection);
  }

  /** A depth-feed disconnect packet (code 50, reason at 8–11), then the socket closed. */
  disconnectDepth(reason: number): void {
    for (const { socket, endpoint } of this.sockets.values()) {
      if (endpoint === 'depth') socket.send(dhanDepthDisconnect(reason), { binary: true }, () => socket.close(1000));
    }
  }

  /** Cuts every open depth connection without a close handshake. */
  dropDepth(): void {
    for (const { socket, endpoint } of this.sockets.values()) if (endpoint === 'depth') socket.terminate();
  }

  requestsOn(connection: number): DhanRequest[] {
    return this.requests.filter((r) => r.connection === connection);
  }

  /** The connections that sent the disconnect request (12), in order, with their endpoint. */
  farewells(): Array<{ connection: number; endpoint: DhanEndpoint }> {
    return this.requests.filter((r) => r.RequestCode === DISCONNECT_REQUEST).map(({ connection, endpoint }) => ({ connection, endpoint }));
  }

  /**
   * What Dhan would hold for a connection after its requests: `SEGMENT:id` → the modes it is
   * subscribed at, and how many subscribe requests named it.
   */
  held(connection: number): Map<string, { subscribes: number; modes: Set<Mode> }> {
    const held = new Map<string, { subscribes: number; modes: Set<Mode> }>();
    for (const request of this.requestsOn(connection)) {
      const subscribe = SUBSCRIBE[request.RequestCode];
      const unsubscribe = UNSUBSCRIBE[request.RequestCode];
      for (const { ExchangeSegment, SecurityId } of request.InstrumentList ?? []) {
        const key = `${ExchangeSegment}:${SecurityId}`;
        let entry = held.get(key);
        if (!entry) held.set(key, (entry = { subscribes: 0, modes: new Set() }));
        if (subscribe !== undefined) {
          entry.subscribes += 1;
          entry.modes.add(subscribe);
        }
        if (unsubscribe !== undefined) entry.modes.delete(unsubscribe);
      }
    }
    return held;
  }

  /** Sends a binary frame to every open live-feed connection (or one). */
  send(frame: Buffer, connection?: number): void {
    this.sendOn('feed', frame, connection);
  }

  sendHex(hex: string, connection?: number): void {
    this.send(Buffer.from(hex, 'hex'), connection);
  }

  /** A text frame to every open live-feed connection. */
  sendText(text: string): void {
    for (const { socket, endpoint } of this.sockets.values()) {
      if (endpoint === 'feed' && socket.readyState === WebSocket.OPEN) socket.send(text, { binary: false });
    }
  }

  /** A live-feed disconnect packet (code 50) with `reason`, then the socket closed, as Dhan does. */
  disconnect(reason: number, connection?: number): void {
    for (const [id, { socket, endpoint }] of this.sockets) {
      if (endpoint !== 'feed' || (connection !== undefined && connection !== id)) continue;
      socket.send(dhanDisconnect(reason), { binary: true }, () => socket.close(1000));
    }
  }

  /** Stops pings and pongs (nothing else is sent unless the test sends it). */
  goSilent(): void {
    this.silent = true;
  }

  resume(): void {
    this.silent = false;
  }

  /** Cuts every open connection of both endpoints (or one) without a close handshake. */
  drop(connection?: number): void {
    for (const [id, { socket }] of this.sockets) {
      if (connection === undefined || connection === id) socket.terminate();
    }
  }

  /** Resolves with the first truthy value of `probe`, polled; rejects after a timeout that only catches hangs. */
  async waitFor<T>(probe: () => T | undefined | null | false, what = 'condition', timeoutMs = WAIT_MS): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const value = probe();
      if (value) return value;
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  }

  async close(): Promise<void> {
    clearInterval(this.pinger);
    for (const { socket } of this.sockets.values()) socket.terminate();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  check(req: IncomingMessage): boolean {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const query = url.searchParams;
    const endpoint = endpointOf(req);
    const upgrade: DhanUpgrade = {
      path: url.pathname,
      endpoint,
      version: query.get('version'),
      token: query.get('token'),
      clientId: query.get('clientId'),
      authType: query.get('authType'),
      accepted: false,
      at: Date.now(),
    };
    // The depth feed takes no `version` (docs); the live feed's v2 needs it.
    const versionOk = endpoint === 'depth' ? upgrade.version === null : upgrade.version === '2';
    upgrade.accepted =
      endpoint !== undefined && versionOk && upgrade.authType === '2' && upgrade.token === this.accessToken && upgrade.clientId === this.clientId;
    this.upgrades.push(upgrade);
    return upgrade.accepted;
  }

  private open(endpoint: DhanEndpoint): number[] {
    return [...this.sockets].filter(([, entry]) => entry.endpoint === endpoint).map(([id]) => id);
  }

  private sendOn(endpoint: DhanEndpoint, frame: Buffer, connection?: number): void {
    for (const [id, entry] of this.sockets) {
      if (entry.endpoint !== endpoint || (connection !== undefined && connection !== id)) continue;
      if (entry.socket.readyState === WebSocket.OPEN) entry.socket.send(frame, { binary: true });
    }
  }

  private sendBooks(connection: number, keys: Iterable<string>): void {
    for (const key of keys) for (const frame of this.depthBook.get(key) ?? []) this.sendDepth(frame, connection);
  }

  private onConnection(socket: WebSocket, endpoint: DhanEndpoint): void {
    const id = ++this.accepted;
    this.acceptedBy[endpoint] += 1;
    this.sockets.set(id, { socket, endpoint });
    socket.on('ping', (data) => {
      if (!this.silent) socket.pong(data);
    });
    socket.on('message', (data, isBinary) => {
      const raw = data.toString();
      if (isBinary) {
        this.problems.push(`connection ${id}: a binary message (the v1 protocol) on a v2 feed`);
        return;
      }
      if (this.requestsOn(id).some((r) => r.RequestCode === DISCONNECT_REQUEST)) {
        this.problems.push(`connection ${id}: a message after the disconnect request: ${raw.slice(0, 80)}`);
      }
      if (endpoint === 'depth') this.recordDepth(id, raw);
      else this.record(id, raw);
    });
    socket.on('close', () => this.sockets.delete(id));
    socket.on('error', () => {});
  }

  private record(connection: number, raw: string): void {
    let parsed: unknown;
    try {
      parsed = JSON.parse(raw);
    } catch {
      this.problems.push(`connection ${connection}: not JSON: ${raw.slice(0, 80)}`);
      return;
    }
    const request = parsed as Partial<DhanRequest>;
    const code = request.RequestCode;
    if (typeof code !== 'number' || (SUBSCRIBE[code] === undefined && UNSUBSCRIBE[code] === undefined && code !== DISCONNECT_REQUEST)) {
      this.problems.push(`connection ${connection}: unknown RequestCode ${String(code)}`);
      return;
    }
    if (code !== DISCONNECT_REQUEST) {
      const list = request.InstrumentList;
      if (!Array.isArray(list)) this.problems.push(`connection ${connection}: request ${code} without InstrumentList`);
      else {
        if (request.InstrumentCount !== list.length) this.problems.push(`connection ${connection}: InstrumentCount ${request.InstrumentCount} for ${list.length} instruments`);
        if (list.length > MAX_PER_MESSAGE) this.problems.push(`connection ${connection}: ${list.length} instruments in one message`);
        for (const item of list) {
          if (typeof item?.SecurityId !== 'string' || DHAN_SEGMENT_CODE[item?.ExchangeSegment] === undefined) {
            this.problems.push(`connection ${connection}: bad instrument ${JSON.stringify(item)}`);
          }
        }
      }
    }
    this.requests.push({ ...(request as DhanRequest), connection, endpoint: 'feed', raw });
  }

  private recordDepth(connection: number, raw: string): void {
    let request: Partial<DhanRequest>;
    try {
      request = JSON.parse(raw) as Partial<DhanRequest>;
    } catch {
      this.problems.push(`depth connection ${connection}: not JSON: ${raw.slice(0, 80)}`);
      return;
    }
    const code = request.RequestCode;
    if (code !== DEPTH_SUBSCRIBE && code !== DEPTH_UNSUBSCRIBE && code !== DISCONNECT_REQUEST) {
      this.problems.push(`depth connection ${connection}: unknown RequestCode ${String(code)}`);
      return;
    }
    const list = request.InstrumentList ?? [];
    if (code !== DISCONNECT_REQUEST) {
      if (!Array.isArray(request.InstrumentList)) this.problems.push(`depth connection ${connection}: request ${code} without InstrumentList`);
      if (request.InstrumentCount !== list.length) this.problems.push(`depth connection ${connection}: InstrumentCount ${request.InstrumentCount} for ${list.length} instruments`);
      if (list.length > DEPTH_MAX_INSTRUMENTS) this.problems.push(`depth connection ${connection}: ${list.length} instruments in one message`);
      for (const item of list) {
        if (typeof item?.SecurityId !== 'string' || !DEPTH_SEGMENTS.has(item?.ExchangeSegment)) {
          this.problems.push(`depth connection ${connection}: bad instrument ${JSON.stringify(item)}`);
        }
      }
    }
    this.requests.push({ ...(request as DhanRequest), connection, endpoint: 'depth', raw });
    if (this.depthHeld(connection).size > DEPTH_MAX_INSTRUMENTS) this.problems.push(`depth connection ${connection}: more than ${DEPTH_MAX_INSTRUMENTS} instruments held`);
    if (code === DEPTH_SUBSCRIBE) this.sendBooks(connection, list.map((item) => `${item.ExchangeSegment}:${item.SecurityId}`));
  }
}

function endpointOf(req: IncomingMessage): DhanEndpoint | undefined {
  const path = new URL(req.url ?? '/', 'http://localhost').pathname;
  return path === '/' ? 'feed' : path === DHAN_DEPTH_PATH ? 'depth' : undefined;
}

/** A depth-feed disconnect packet: the 12-byte header, code 50, the reason where data packets carry the sequence. */
export function dhanDepthDisconnect(reason: number): Buffer {
  const b = Buffer.alloc(12);
  b.writeUInt16LE(12, 0);
  b.writeUInt8(50, 2);
  b.writeUInt32LE(reason, 8);
  return b;
}

/** Splits a depth-feed frame into its packets (each 332 bytes, by the length field). */
export function depthPackets(frame: Buffer): Buffer[] {
  const packets: Buffer[] = [];
  for (let at = 0; at + 12 <= frame.length; ) {
    const length = frame.readUInt16LE(at);
    packets.push(frame.subarray(at, at + length));
    at += length;
  }
  return packets;
}

/**
 * The vectors' books: RELIANCE (NSE_EQ 2885) as a bid frame then an ask frame, the NIFTY future
 * (NSE_FNO 35001) as one frame with both sides and 8 ask levels, and NSE_EQ 11536 from the
 * two-instrument frame.
 */
export function defaultDepthBook(vectors: readonly DhanVector[]): Map<string, Buffer[]> {
  const twoInstruments = depthPackets(dhanVectorFrame(vectors, 'depth20_two_instruments'));
  return new Map([
    ['NSE_EQ:2885', [dhanVectorFrame(vectors, 'depth20_bid_nse_eq_reliance'), dhanVectorFrame(vectors, 'depth20_ask_nse_eq_reliance')]],
    ['NSE_FNO:35001', [dhanVectorFrame(vectors, 'depth20_pair_nse_fno_partial_asks')]],
    ['NSE_EQ:11536', [Buffer.concat(twoInstruments.slice(0, 2))]],
  ]);
}

/** The 8-byte header: u8 response code, u16 length (header included), u8 segment, u32 security id. */
function packet(code: number, length: number, segment: number, securityId: number): Buffer {
  const b = Buffer.alloc(length);
  b.writeUInt8(code, 0);
  b.writeUInt16LE(length, 1);
  b.writeUInt8(segment, 3);
  b.writeUInt32LE(securityId, 4);
  return b;
}

/** A ticker packet (code 2, 16 bytes): f32 LTP in rupees, u32 LTT (IST wall-clock epoch seconds, 0 = none). */
export function dhanTicker(f: { segment: string; securityId: number; ltp: number; ltt?: number }): Buffer {
  const b = packet(2, 16, DHAN_SEGMENT_CODE[f.segment]!, f.securityId);
  b.writeFloatLE(f.ltp, 8);
  b.writeUInt32LE(f.ltt ?? 0, 12);
  return b;
}

/** A previous-close packet (code 6, 16 bytes). */
export function dhanPrevClose(f: { segment: string; securityId: number; close: number; prevOi?: number }): Buffer {
  const b = packet(6, 16, DHAN_SEGMENT_CODE[f.segment]!, f.securityId);
  b.writeFloatLE(f.close, 8);
  b.writeUInt32LE(f.prevOi ?? 0, 12);
  return b;
}

/** A disconnect packet (code 50, 10 bytes) with its u16 reason. */
export function dhanDisconnect(reason: number): Buffer {
  const b = packet(50, 10, 0, 0);
  b.writeUInt16LE(reason, 8);
  return b;
}

/** Frames Dhan never sends: short, unknown codes, lengths beyond the frame, random bytes, an unknown segment. */
export function dhanGarbage(): Buffer[] {
  const unknownSegment = dhanTicker({ segment: 'NSE_EQ', securityId: 2885, ltp: 1 });
  unknownSegment.writeUInt8(9, 3);
  return [
    Buffer.from([0xff]),
    Buffer.from([2, 16, 0, 1]),
    Buffer.from('63100001450b0000cd683845f7be6966', 'hex'),
    Buffer.from('ff'.repeat(40), 'hex'),
    Buffer.from([8, 0xff, 0xff, 1, 0x45, 0x0b, 0, 0, 1, 2, 3, 4]),
    unknownSegment,
  ];
}

export interface DhanVector {
  name: string;
  feed: 'marketfeed' | 'depth20';
  frame: 'binary' | 'text';
  direction: string;
  hex?: string;
  text?: string;
  decoded?: unknown;
  input?: any;
  note?: string;
}

/** The Dhan vectors (test/fixtures/vectors/README.md says where they come from). */
export function loadDhanVectors(): DhanVector[] {
  return JSON.parse(readFileSync(new URL('../fixtures/vectors/dhan.json', import.meta.url), 'utf8')) as DhanVector[];
}

/** A vector's binary frame by name (`ticker_nse_eq_reliance` or `dhan/ticker_nse_eq_reliance`). */
export function dhanVectorFrame(vectors: readonly DhanVector[], name: string): Buffer {
  const full = name.startsWith('dhan/') ? name : `dhan/${name}`;
  const vector = vectors.find((v) => v.name === full);
  if (!vector?.hex) throw new Error(`no binary vector ${full}`);
  return Buffer.from(vector.hex, 'hex');
}
