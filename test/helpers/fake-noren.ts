/**
 * A fake Noren market-data server (Shoonya, Flattrade) on 127.0.0.1, plus the Noren test
 * vectors. Noren checks nothing at the upgrade: the client's first message is its login
 * (`t:"a"` with `accesstoken`, or `t:"c"` with `susertoken`), which the fake checks against the
 * user id and token it accepts and answers `ak`/`ck` with `s:"OK"`, or `s:"NOT_OK"` and an
 * `emsg` (the socket is left open: the client is expected to end it). Subscription messages
 * (`t`, `u`, `d`, `ud`) are recorded per connection; a subscribe is acknowledged (`tk`/`dk`)
 * for each scrip whose state the test set with `quote()`. A text `{"t":"h"}` is answered with
 * one, and a WebSocket ping with a pong (counted), unless the fake is silent. A test can push
 * any message, garbage, go silent and drop.
 */
import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import WebSocket, { WebSocketServer } from 'ws';

export interface NorenVector {
  name: string;
  frame: 'text';
  direction: 'client->server' | 'server->client';
  hex: string;
  text: string;
  decoded?: any;
  merged?: any;
  input?: any;
  delivered?: string[];
  note?: string;
}

/** The Noren vectors (test/fixtures/vectors/README.md says where they come from). */
export function loadNorenVectors(): NorenVector[] {
  return JSON.parse(readFileSync(new URL('../fixtures/vectors/noren.json', import.meta.url), 'utf8')) as NorenVector[];
}

export type NorenConnect = 'a' | 'c';

export interface NorenLogin {
  /** 1-based number of the connection that sent it. */
  connection: number;
  t: string;
  uid: string;
  actid: string;
  /** `accesstoken` or `susertoken`, whichever the message carried for its `t`. */
  token: string;
  source: string;
  accepted: boolean;
  raw: string;
  at: number;
}

export interface NorenClientMessage {
  connection: number;
  /** `t`, `u`, `d`, `ud` (or anything else the client sent after its login). */
  t: string;
  /** The `k` list split at `#`. */
  scrips: string[];
  raw: string;
}

export interface FakeNorenOptions {
  /** The login type the server speaks: `a` (Flattrade, Shoonya's OAuth API) or `c` (Shoonya QuickAuth). */
  connect: NorenConnect;
  uid: string;
  token: string;
  /** The `emsg` of a refused login. */
  refusal?: string;
}

const WAIT_MS = 5000;

export class FakeNoren {
  /** The credentials the fake lets in; change them to simulate a re-login. */
  uid: string;
  token: string;
  refusal: string;
  /** When true, logins get no answer at all (a broken server). */
  mute = false;
  readonly logins: NorenLogin[] = [];
  readonly messages: NorenClientMessage[] = [];
  /** Texts sent before a login or that were not JSON. */
  readonly otherTexts: Array<{ connection: number; raw: string }> = [];
  heartbeats = 0;
  /** WebSocket pings received (the client's protocol keepalive). */
  pings = 0;
  private readonly sockets = new Map<number, { socket: WebSocket; loggedIn: boolean }>();
  private readonly states = new Map<string, Record<string, string>>();
  private accepted = 0;
  private silent = false;

  private constructor(
    private readonly server: WebSocketServer,
    readonly connect: NorenConnect,
    options: FakeNorenOptions,
  ) {
    this.uid = options.uid;
    this.token = options.token;
    this.refusal = options.refusal ?? (options.connect === 'a' ? 'Invalid Access Token' : 'Session Expired :  Invalid Session Key');
    server.on('connection', (socket) => this.onConnection(socket));
  }

  static async start(options: FakeNorenOptions): Promise<FakeNoren> {
    // Silence must be silence: pongs to the client's pings stop too.
    const server = new WebSocketServer({ host: '127.0.0.1', port: 0, autoPong: false });
    const fake = new FakeNoren(server, options.connect, options);
    await new Promise<void>((resolve, reject) => {
      server.once('listening', resolve);
      server.once('error', reject);
    });
    return fake;
  }

  get url(): string {
    return `ws://127.0.0.1:${(this.server.address() as AddressInfo).port}/NorenWSAPI/`;
  }

  get connections(): number {
    return this.accepted;
  }

  openConnections(): number[] {
    return [...this.sockets.keys()];
  }

  /** The state a subscribe acknowledges for `scrip` (`E|T`), string values as Noren sends them. */
  quote(scrip: string, fields: Record<string, string>): void {
    this.states.set(scrip, { ...fields });
  }

  /** Subscription messages of a connection (`t`, `u`, `d`, `ud`). */
  sent(connection: number, t?: string): NorenClientMessage[] {
    return this.messages.filter((m) => m.connection === connection && (t === undefined || m.t === t));
  }

  /** What Noren holds for a connection after its messages: scrip → touchline and/or depth. */
  held(connection: number): Map<string, { touchline: boolean; depth: boolean }> {
    const held = new Map<string, { touchline: boolean; depth: boolean }>();
    for (const m of this.sent(connection)) {
      for (const scrip of m.scrips) {
        const entry = held.get(scrip) ?? { touchline: false, depth: false };
        if (m.t === 't') entry.touchline = true;
        if (m.t === 'u') entry.touchline = false;
        if (m.t === 'd') entry.depth = true;
        if (m.t === 'ud') entry.depth = false;
        if (entry.touchline || entry.depth) held.set(scrip, entry);
        else held.delete(scrip);
      }
    }
    return held;
  }

  /** Sends a message (an object is written as JSON) to every logged-in connection, or one. */
  send(message: unknown, connection?: number): void {
    const text = typeof message === 'string' ? message : JSON.stringify(message);
    for (const [id, { socket, loggedIn }] of this.sockets) {
      if ((connection === undefined ? loggedIn : connection === id) && socket.readyState === WebSocket.OPEN) socket.send(text);
    }
  }

  /** Sends a binary frame (Noren never does) to every connection. */
  sendBinary(frame: Buffer): void {
    for (const { socket } of this.sockets.values()) if (socket.readyState === WebSocket.OPEN) socket.send(frame, { binary: true });
  }

  /** Heartbeat answers and pongs stop (and nothing else is sent unless the test sends it). */
  goSilent(): void {
    this.silent = true;
  }

  resume(): void {
    this.silent = false;
  }

  /** Cuts every connection (or one) without a close handshake. */
  drop(connection?: number): void {
    for (const [id, { socket }] of this.sockets) if (connection === undefined || connection === id) socket.terminate();
  }

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
    this.drop();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private onConnection(socket: WebSocket): void {
    const id = ++this.accepted;
    const entry = { socket, loggedIn: false };
    this.sockets.set(id, entry);
    socket.on('close', () => this.sockets.delete(id));
    socket.on('error', () => {});
    socket.on('ping', (data) => {
      this.pings++;
      if (!this.silent) socket.pong(data);
    });
    socket.on('message', (data, isBinary) => {
      if (isBinary) return;
      const raw = data.toString();
      let message: Record<string, unknown>;
      try {
        const parsed: unknown = JSON.parse(raw);
        if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error('not an object');
        message = parsed as Record<string, unknown>;
      } catch {
        this.otherTexts.push({ connection: id, raw });
        return;
      }
      const t = String(message.t ?? '');
      if (t === 'h') {
        this.heartbeats++;
        if (!this.silent) socket.send('{"t":"h"}');
        return;
      }
      if (t === 'a' || t === 'c') return this.onLogin(id, entry, t, message, raw);
      if (!entry.loggedIn) {
        this.otherTexts.push({ connection: id, raw });
        return;
      }
      const scrips = typeof message.k === 'string' && message.k !== '' ? message.k.split('#') : [];
      this.messages.push({ connection: id, t, scrips, raw });
      if (t === 't' || t === 'd') {
        for (const scrip of scrips) {
          const state = this.states.get(scrip);
          if (!state) continue;
          const [e, tk] = scrip.split('|');
          socket.send(JSON.stringify({ t: t === 't' ? 'tk' : 'dk', e, tk, ...state }));
        }
      }
    });
  }

  private onLogin(id: number, entry: { socket: WebSocket; loggedIn: boolean }, t: string, message: Record<string, unknown>, raw: string): void {
    const tokenField = t === 'a' ? 'accesstoken' : 'susertoken';
    const login: NorenLogin = {
      connection: id,
      t,
      uid: String(message.uid ?? ''),
      actid: String(message.actid ?? ''),
      token: String(message[tokenField] ?? ''),
      source: String(message.source ?? ''),
      accepted: false,
      raw,
      at: Date.now(),
    };
    login.accepted = t === this.connect && login.uid === this.uid && login.actid === this.uid && login.token === this.token && login.source === 'API';
    this.logins.push(login);
    if (this.mute) return;
    entry.loggedIn = login.accepted;
    const ack = t === 'a' ? 'ak' : 'ck';
    entry.socket.send(
      JSON.stringify(login.accepted ? { t: ack, s: 'OK', uid: login.uid } : { t: ack, s: 'NOT_OK', uid: login.uid, emsg: this.refusal }),
    );
  }
}
