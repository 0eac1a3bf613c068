/**
 * A fake Dhan live market feed (wss://api-feed.dhan.co, v2) on 127.0.0.1, as docs/brokers/dhan.md
 * describes it: the credentials are checked in the query string (`version=2`, `token`,
 * `clientId`, `authType=2`; 401 at the upgrade otherwise), every JSON request is recorded and
 * checked against Dhan's rules (known request code, `InstrumentCount` equal to the list's length,
 * at most 100 instruments, string security ids), the server pings every `pingMs` as Dhan does
 * (the only traffic of an idle feed), and a test can push packets, go silent, drop connections
 * and send disconnect packets (after which the server closes the socket, as Dhan does).
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

export interface DhanUpgrade {
  path: string;
  version: string | null;
  token: string | null;
  clientId: string | null;
  authType: string | null;
  accepted: boolean;
  /** Date.now() when it arrived. */
  at: number;
}

export interface DhanRequest {
  /** 1-based number of the accepted connection that sent it. */
  connection: number;
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
  private readonly sockets = new Map<number, WebSocket>();
  private accepted = 0;
  private silent = false;
  /** While set, every upgrade is answered with this HTTP status (a lapsed data plan: 429). */
  refuseAll: number | undefined;
  private readonly pinger: NodeJS.Timeout;

  private constructor(
    private readonly server: WebSocketServer,
    options: FakeDhanOptions,
  ) {
    this.accessToken = options.accessToken;
    this.clientId = options.clientId;
    server.on('connection', (socket) => this.onConnection(socket));
    this.pinger = setInterval(() => {
      if (this.silent) return;
      for (const socket of this.sockets.values()) if (socket.readyState === WebSocket.OPEN) socket.ping();
    }, options.pingMs ?? 50);
  }

  static async start(options: FakeDhanOptions): Promise<FakeDhan> {
    let fake: FakeDhan | undefined;
    const server = new WebSocketServer({
      host: '127.0.0.1',
      port: 0,
      // Silence must be silence: pongs to the client's pings stop too.
      autoPong: false,
      verifyClient: (info: { req: IncomingMessage }, done: (ok: boolean, code?: number, message?: string) => void) => {
        if (fake!.refuseAll !== undefined) {
          fake!.check(info.req);
          done(false, fake!.refuseAll, 'Refused');
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

  get url(): string {
    const { port } = this.server.address() as AddressInfo;
    return `ws://127.0.0.1:${port}`;
  }

  /** Connections accepted so far. */
  get connections(): number {
    return this.accepted;
  }

  /** Numbers of the connections open now. */
  openConnections(): number[] {
    return [...this.sockets.keys()];
  }

  requestsOn(connection: number): DhanRequest[] {
    return this.requests.filter((r) => r.connection === connection);
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

  /** Sends a binary frame to every open connection (or one). */
  send(frame: Buffer, connection?: number): void {
    for (const [id, socket] of this.sockets) {
      if ((connection === undefined || connection === id) && socket.readyState === WebSocket.OPEN) socket.send(frame, { binary: true });
    }
  }

  sendHex(hex: string, connection?: number): void {
    this.send(Buffer.from(hex, 'hex'), connection);
  }

  sendText(text: string): void {
    for (const socket of this.sockets.values()) if (socket.readyState === WebSocket.OPEN) socket.send(text, { binary: false });
  }

  /** A disconnect packet (code 50) with `reason`, then the socket closed, as Dhan does. */
  disconnect(reason: number, connection?: number): void {
    for (const [id, socket] of this.sockets) {
      if (connection !== undefined && connection !== id) continue;
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

  /** Cuts every open connection (or one) without a close handshake. */
  drop(connection?: number): void {
    for (const [id, socket] of this.sockets) {
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
    for (const socket of this.sockets.values()) socket.terminate();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  check(req: IncomingMessage): boolean {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const query = url.searchParams;
    const upgrade: DhanUpgrade = {
      path: url.pathname,
      version: query.get('version'),
      token: query.get('token'),
      clientId: query.get('clientId'),
      authType: query.get('authType'),
      accepted: false,
      at: Date.now(),
    };
    upgrade.accepted =
      upgrade.version === '2' && upgrade.authType === '2' && upgrade.token === this.accessToken && upgrade.clientId === this.clientId;
    this.upgrades.push(upgrade);
    return upgrade.accepted;
  }

  private onConnection(socket: WebSocket): void {
    const id = ++this.accepted;
    this.sockets.set(id, socket);
    socket.on('ping', (data) => {
      if (!this.silent) socket.pong(data);
    });
    socket.on('message', (data, isBinary) => {
      const raw = data.toString();
      if (isBinary) {
        this.problems.push(`connection ${id}: a binary message (the v1 protocol) on a v2 feed`);
        return;
      }
      this.record(id, raw);
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
    this.requests.push({ ...(request as DhanRequest), connection, raw });
  }
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
