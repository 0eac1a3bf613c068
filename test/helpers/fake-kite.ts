/**
 * A fake Kite ticker (wss://ws.kite.trade) on 127.0.0.1: checks the `api_key`/`access_token`
 * query parameters and the `X-Kite-Version: 3` header (403 otherwise, as Kite refuses a bad
 * token at the upgrade), records every client message, sends 1-byte heartbeats like Kite, and
 * lets a test push frames, go silent, send garbage and drop connections.
 *
 * Also: builders for Kite binary packets from the field names the vectors use.
 */
import type { IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import WebSocket, { WebSocketServer } from 'ws';

export interface KiteUpgrade {
  apiKey: string | null;
  accessToken: string | null;
  version: string | undefined;
  accepted: boolean;
  /** Date.now() when it arrived. */
  at: number;
}

export interface KiteClientMessage {
  /** 1-based number of the accepted connection that sent it. */
  connection: number;
  a: string;
  v: unknown;
  raw: string;
}

export interface FakeKiteOptions {
  apiKey: string;
  accessToken: string;
  /** Heartbeat period; Kite's is about a second. */
  heartbeatMs?: number;
}

const WAIT_MS = 5000;

export class FakeKite {
  /** The credentials the fake accepts; change them to simulate a re-login. */
  apiKey: string;
  accessToken: string;
  /** Every upgrade attempt, accepted or not. */
  readonly upgrades: KiteUpgrade[] = [];
  readonly messages: KiteClientMessage[] = [];
  private readonly sockets = new Map<number, WebSocket>();
  private accepted = 0;
  private silent = false;
  private readonly heartbeat: NodeJS.Timeout;

  private constructor(
    private readonly server: WebSocketServer,
    options: FakeKiteOptions,
  ) {
    this.apiKey = options.apiKey;
    this.accessToken = options.accessToken;
    server.on('connection', (socket) => this.onConnection(socket));
    this.heartbeat = setInterval(() => {
      if (!this.silent) this.broadcast(Buffer.from([0]));
    }, options.heartbeatMs ?? 50);
  }

  static async start(options: FakeKiteOptions): Promise<FakeKite> {
    let fake: FakeKite | undefined;
    const server = new WebSocketServer({
      host: '127.0.0.1',
      port: 0,
      verifyClient: (info: { req: IncomingMessage }, done: (ok: boolean, code?: number, message?: string) => void) => {
        const ok = fake!.check(info.req);
        if (ok) done(true);
        else done(false, 403, 'Forbidden');
      },
    });
    fake = new FakeKite(server, options);
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

  /** Messages of one kind (`subscribe`, `mode`, `unsubscribe`), optionally from one connection. */
  sent(a: string, connection?: number): KiteClientMessage[] {
    return this.messages.filter((m) => m.a === a && (connection === undefined || m.connection === connection));
  }

  /** What Kite would hold for a connection after its messages: token → mode (quote by default). */
  held(connection: number): Map<number, string> {
    const held = new Map<number, string>();
    for (const m of this.messages) {
      if (m.connection !== connection) continue;
      if (m.a === 'subscribe') for (const token of m.v as number[]) held.set(token, 'quote');
      if (m.a === 'unsubscribe') for (const token of m.v as number[]) held.delete(token);
      if (m.a === 'mode') {
        const [mode, tokens] = m.v as [string, number[]];
        for (const token of tokens) if (held.has(token)) held.set(token, mode);
      }
    }
    return held;
  }

  /** Sends a binary frame to every open connection (or one). */
  send(frame: Buffer, connection?: number): void {
    if (connection === undefined) this.broadcast(frame);
    else this.sockets.get(connection)?.send(frame, { binary: true });
  }

  sendHex(hex: string, connection?: number): void {
    this.send(Buffer.from(hex, 'hex'), connection);
  }

  sendText(message: unknown, connection?: number): void {
    const text = typeof message === 'string' ? message : JSON.stringify(message);
    for (const [id, socket] of this.sockets) {
      if (connection === undefined || connection === id) socket.send(text, { binary: false });
    }
  }

  /** Stops heartbeats (and nothing else is sent unless the test sends it). */
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

  /** Resolves with the first truthy value of `probe`, polled; rejects after `timeoutMs`. */
  async waitFor<T>(probe: () => T | undefined | null | false, timeoutMs = WAIT_MS, what = 'condition'): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const value = probe();
      if (value) return value;
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  }

  async close(): Promise<void> {
    clearInterval(this.heartbeat);
    for (const socket of this.sockets.values()) socket.terminate();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private check(req: IncomingMessage): boolean {
    const query = new URL(req.url ?? '/', 'http://localhost').searchParams;
    const header = req.headers['x-kite-version'];
    const upgrade: KiteUpgrade = {
      apiKey: query.get('api_key'),
      accessToken: query.get('access_token'),
      version: Array.isArray(header) ? header[0] : header,
      accepted: false,
      at: Date.now(),
    };
    upgrade.accepted = upgrade.apiKey === this.apiKey && upgrade.accessToken === this.accessToken && upgrade.version === '3';
    this.upgrades.push(upgrade);
    return upgrade.accepted;
  }

  private onConnection(socket: WebSocket): void {
    const id = ++this.accepted;
    this.sockets.set(id, socket);
    socket.on('message', (data, isBinary) => {
      if (isBinary) return;
      const raw = data.toString();
      try {
        const parsed = JSON.parse(raw) as { a: string; v: unknown };
        this.messages.push({ connection: id, a: parsed.a, v: parsed.v, raw });
      } catch {
        this.messages.push({ connection: id, a: '(not json)', v: undefined, raw });
      }
    });
    socket.on('close', () => this.sockets.delete(id));
    socket.on('error', () => {});
  }

  private broadcast(frame: Buffer): void {
    for (const socket of this.sockets.values()) {
      if (socket.readyState === WebSocket.OPEN) socket.send(frame, { binary: true });
    }
  }
}

/** Fields as the vectors' `input.packets[].fields` name them (raw on-wire integers). */
export type KiteFields = Record<string, unknown> & { instrument_token: number };

interface DepthEntry {
  quantity: number;
  price: number;
  orders: number;
}

/** A binary message of packets: u16 count, then u16 length + bytes per packet. */
export function kiteFrame(packets: readonly Buffer[]): Buffer {
  const parts: Buffer[] = [u16(packets.length)];
  for (const packet of packets) parts.push(u16(packet.length), packet);
  return Buffer.concat(parts);
}

/** One packet of `length` (8, 28, 32, 44 or 184) from raw field values; absent fields are 0. */
export function kitePacket(length: number, fields: KiteFields): Buffer {
  const packet = Buffer.alloc(length);
  const put = (offset: number, name: string, signed = false): void => {
    const value = Number(fields[name] ?? 0);
    if (signed) packet.writeInt32BE(value, offset);
    else packet.writeUInt32BE(value, offset);
  };
  put(0, 'instrument_token');
  if (length === 8) {
    put(4, 'last_price');
  } else if (length === 28 || length === 32) {
    put(4, 'last_price');
    put(8, 'high');
    put(12, 'low');
    put(16, 'open');
    put(20, 'close');
    put(24, 'price_change_field', true);
    if (length === 32) put(28, 'exchange_timestamp');
  } else if (length === 44 || length === 184) {
    const names = ['last_price', 'last_traded_quantity', 'average_traded_price', 'volume_traded', 'total_buy_quantity',
      'total_sell_quantity', 'open', 'high', 'low', 'close'];
    names.forEach((name, i) => put(4 + 4 * i, name));
    if (length === 184) {
      put(44, 'last_trade_time');
      put(48, 'oi');
      put(52, 'oi_day_high');
      put(56, 'oi_day_low');
      put(60, 'exchange_timestamp');
      const depth = (fields.depth ?? {}) as { buy?: DepthEntry[]; sell?: DepthEntry[] };
      const side = (entries: DepthEntry[] | undefined, at: number): void => {
        (entries ?? []).slice(0, 5).forEach((entry, i) => {
          packet.writeUInt32BE(entry.quantity, at + 12 * i);
          packet.writeUInt32BE(entry.price, at + 12 * i + 4);
          packet.writeUInt16BE(entry.orders, at + 12 * i + 8);
        });
      };
      side(depth.buy, 64);
      side(depth.sell, 124);
    }
  } else {
    // Unknown lengths (the "dropped packet" case): the token and zeros.
  }
  return packet;
}

/** Frame from a vector's `input` (`{packets: [{length, fields}]}`). */
export function frameFromInput(input: { packets: Array<{ length: number; fields: KiteFields }> }): Buffer {
  return kiteFrame(input.packets.map((p) => kitePacket(p.length, p.fields)));
}

function u16(value: number): Buffer {
  const buffer = Buffer.alloc(2);
  buffer.writeUInt16BE(value);
  return buffer;
}
