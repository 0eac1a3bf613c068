/**
 * The bus over NATS, for instances that run several gateway nodes (and adapters) on several
 * hosts. Adapters publish each tick on its stream's subject (bus/subjects.ts); a gateway node
 * subscribes only to the streams its clients want (`interest`), so a node never receives what
 * none of its clients asked for. Messages carry what ZeroMQ's second frame carries: a tick's JSON,
 * or, from tickcast's batching publishers, `@batch` followed by bus/batch.ts entries (the ticks
 * of one stream published in one event-loop turn).
 *
 * One NatsLink (one connection) per process serves the bus and the control plane alike, so a
 * node's subscription to a stream reaches the server before its request to the adapter does.
 * nats.js reconnects by itself and subscribes again after a server restart.
 */
import { readFileSync } from 'node:fs';
import { type Authenticator, type ConnectionOptions, connect, credsAuthenticator, type Msg, type NatsConnection, type NatsError, nkeyAuthenticator, type Subscription } from 'nats';
import { ErrorCode, TickcastError } from '../errors.js';
import { feedStreamKey } from '../feed.js';
import type { Logger } from '../observability/logger.js';
import { BATCH_TOPIC, BATCH_TOPIC_BYTES, BatchEncoder, decodeBatch } from './batch.js';
import type { BusPublisher, BusSubscriber, StreamInterest } from './bus.js';
import { MAX_SUBJECT_LENGTH, type Subjects } from './subjects.js';

/** `nats://user:secret@host:4222` → `nats://host:4222`, for messages and the registry. */
export function redactNatsUrl(url: string): string {
  try {
    const parsed = new URL(url);
    return `${parsed.protocol}//${parsed.host}`;
  } catch {
    return 'nats://(unparseable url)';
  }
}

/**
 * How a process proves who it is to the NATS servers, and how it checks who they are. Credentials
 * may also sit in the server URLs (`nats://USER:PASSWORD@host:4222`, `nats://TOKEN@host:4222`);
 * one kind at a time. Files are read once, at connect.
 */
export interface NatsSecurity {
  /** A credentials file (a user JWT and its nkey seed, as `nsc` writes it): decentralized auth. */
  credsFile?: string;
  /** A file holding a user's nkey seed (`SU…`, as `nk -gen user` writes it). */
  nkeySeedFile?: string;
  /** A file holding the server's authorization token. */
  tokenFile?: string;
  /** CA certificate(s), PEM, that the servers' TLS certificates must chain to; setting it turns TLS on. */
  caFile?: string;
  /** A client certificate and its key, PEM, for servers that verify clients (`verify: true`). */
  certFile?: string;
  keyFile?: string;
}

function configError(message: string): TickcastError {
  return new TickcastError(ErrorCode.CONFIG_INVALID, message);
}

function readSecretFile(what: string, file: string): string {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw configError(`${what}: cannot read ${file}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
  }
  return text;
}

/**
 * The nats.js connection options for `servers` and `security`: URLs stripped of credentials
 * (nats.js 2.x ignores URL credentials and the `tls://` scheme), the credentials as an
 * authenticator or user/password/token, and TLS when a URL says `tls://` or a CA file is given.
 * Throws CONFIG_INVALID (never showing a secret) for conflicting or unreadable credentials.
 */
export function natsConnectionOptions(servers: readonly string[], security: NatsSecurity = {}): Pick<ConnectionOptions, 'servers' | 'user' | 'pass' | 'token' | 'authenticator' | 'tls'> {
  const bare: string[] = [];
  const inUrls = new Set<string>();
  let userPass: { user: string; pass: string } | undefined;
  let token: string | undefined;
  let tls = false;
  for (const url of servers) {
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      throw configError(`NATS server URL ${redactNatsUrl(url)} is not a valid URL`);
    }
    if (parsed.protocol === 'tls:') tls = true;
    if (parsed.username !== '' || parsed.password !== '') {
      const user = decodeURIComponent(parsed.username);
      const pass = decodeURIComponent(parsed.password);
      // `nats://TOKEN@host` (no password) is a token, as every NATS client reads it.
      if (parsed.password === '' && !url.includes(':@')) token = user;
      else userPass = { user, pass };
      inUrls.add(parsed.password === '' ? `token:${user}` : `user:${user}:${pass}`);
    }
    bare.push(`${parsed.protocol}//${parsed.host}`);
  }
  if (inUrls.size > 1) throw configError('the NATS server URLs carry different credentials; one process connects as one user (give the same in every URL, or in one)');
  const kinds = [inUrls.size > 0 ? 'credentials in the URL' : undefined, security.credsFile && 'a creds file', security.nkeySeedFile && 'an nkey seed file', security.tokenFile && 'a token file'].filter(
    (kind): kind is string => typeof kind === 'string',
  );
  if (kinds.length > 1) throw configError(`NATS credentials given more than once (${kinds.join(', ')}): give one`);
  const options: Pick<ConnectionOptions, 'servers' | 'user' | 'pass' | 'token' | 'authenticator' | 'tls'> = { servers: bare };
  if (userPass) Object.assign(options, userPass);
  if (token !== undefined) options.token = token;
  if (security.tokenFile) {
    const text = readSecretFile('NATS token file', security.tokenFile).trim();
    if (text === '') throw configError(`NATS token file ${security.tokenFile} is empty`);
    options.token = text;
  }
  let authenticator: Authenticator | undefined;
  if (security.credsFile) {
    const creds = readSecretFile('NATS creds file', security.credsFile);
    if (!/-----BEGIN NATS USER JWT-----/.test(creds) || !/-----BEGIN USER NKEY SEED-----/.test(creds)) {
      throw configError(`NATS creds file ${security.credsFile} does not hold a user JWT and an nkey seed (as nsc writes them)`);
    }
    authenticator = credsAuthenticator(new TextEncoder().encode(creds));
  }
  if (security.nkeySeedFile) {
    const seed = readSecretFile('NATS nkey seed file', security.nkeySeedFile).trim();
    if (!/^SU[A-Z2-7]{56}$/.test(seed)) throw configError(`NATS nkey seed file ${security.nkeySeedFile} does not hold a user seed (one line starting with SU)`);
    authenticator = nkeyAuthenticator(new TextEncoder().encode(seed));
  }
  if (authenticator) options.authenticator = authenticator;
  if (tls || security.caFile || security.certFile || security.keyFile) {
    if ((security.certFile === undefined) !== (security.keyFile === undefined)) throw configError('a NATS client certificate and its key go together');
    for (const [what, file] of [
      ['NATS CA file', security.caFile],
      ['NATS client certificate', security.certFile],
      ['NATS client key', security.keyFile],
    ] as const) {
      if (file !== undefined) readSecretFile(what, file); // unreadable: a clear error now, not a failed handshake later
    }
    options.tls = {
      ...(security.caFile ? { caFile: security.caFile } : {}),
      ...(security.certFile ? { certFile: security.certFile, keyFile: security.keyFile } : {}),
    };
  }
  return options;
}

export interface NatsLinkOptions {
  /** `nats://host:port` URLs of one server or a cluster (`tls://` for TLS; credentials allowed, see NatsSecurity). */
  servers: readonly string[];
  /** Credentials and TLS beyond what the URLs carry. */
  security?: NatsSecurity;
  /** Connection name shown by the server's monitoring (`tickcast gateway default/node-a`). */
  name: string;
  logger: Logger;
  /** How long the first connection may take. Default 5000 ms. */
  connectTimeoutMs?: number;
  /** Wait between reconnection attempts (with jitter). Default 250 ms. */
  reconnectWaitMs?: number;
}

/** A process's connection to the NATS servers, with its up/down state. */
export class NatsLink {
  private up = true;
  private readonly reconnectListeners: Array<() => void> = [];
  private closing = false;

  private constructor(
    readonly connection: NatsConnection,
    /** The servers, without credentials (`nats://a:4222,nats://b:4222`). */
    readonly servers: string,
    private readonly logger: Logger,
  ) {
    void this.watch();
  }

  /** Connects, or throws TickcastError BUS_UNREACHABLE naming the servers. */
  static async connect(options: NatsLinkOptions): Promise<NatsLink> {
    const shown = options.servers.map(redactNatsUrl).join(',');
    const secured = natsConnectionOptions(options.servers, options.security);
    let connection: NatsConnection;
    try {
      connection = await connect({
        ...secured,
        name: options.name,
        timeout: options.connectTimeoutMs ?? 5000,
        reconnect: true,
        maxReconnectAttempts: -1,
        reconnectTimeWait: options.reconnectWaitMs ?? 250,
        reconnectJitter: 100,
        // A half-open connection (a host gone without closing its sockets) shows within ~20 s.
        pingInterval: 10_000,
        maxPingOut: 2,
      });
    } catch (error) {
      const message = (error as Error).message;
      const refused = /AUTHORIZATION_VIOLATION|Authorization Violation|authentication/i.test(message);
      throw new TickcastError(
        ErrorCode.BUS_UNREACHABLE,
        `cannot connect to the NATS bus ${shown}: ${message}${refused ? '; check the credentials (the URL\'s USER:PASSWORD, TICKCAST_NATS_CREDS, TICKCAST_NATS_NKEY_SEED or TICKCAST_NATS_TOKEN_FILE)' : ''}`,
      );
    }
    return new NatsLink(connection, shown, options.logger);
  }

  /** False between a disconnection and the reconnection. */
  get connected(): boolean {
    return this.up && !this.connection.isClosed();
  }

  /** Called after every reconnection (nats.js has already subscribed again). */
  onReconnect(listener: () => void): void {
    this.reconnectListeners.push(listener);
  }

  private async watch(): Promise<void> {
    for await (const status of this.connection.status()) {
      if (status.type === 'disconnect') {
        this.up = false;
        if (!this.closing) this.logger.warn({ server: redactNatsUrl(String(status.data)) }, 'NATS bus disconnected; reconnecting');
      } else if (status.type === 'reconnect') {
        this.up = true;
        this.logger.info({ server: redactNatsUrl(String(status.data)) }, 'NATS bus reconnected');
        for (const listener of this.reconnectListeners) {
          try {
            listener();
          } catch (err) {
            this.logger.error({ err }, 'NATS reconnect listener failed');
          }
        }
      } else if (status.type === 'error') {
        this.logger.warn({ err: String(status.data) }, 'NATS bus error');
      }
    }
  }

  /** Sends what is buffered and closes. */
  async close(): Promise<void> {
    if (this.connection.isClosed()) return;
    this.closing = true;
    try {
      if (this.up) await this.connection.flush();
    } catch {
      // closing anyway
    }
    await this.connection.close();
  }
}

/** Payloads of batches start with these bytes (a tick's JSON starts with `{`). */
const BATCH_PREFIX = BATCH_TOPIC_BYTES;

function asBuffer(data: Uint8Array): Buffer {
  return Buffer.from(data.buffer, data.byteOffset, data.byteLength);
}

function isBatch(data: Uint8Array): boolean {
  if (data.length < BATCH_PREFIX.length) return false;
  for (let i = 0; i < BATCH_PREFIX.length; i++) if (data[i] !== BATCH_PREFIX[i]) return false;
  return true;
}

/** Subject → topic memo bound: a publisher inventing subjects cannot grow it without limit. */
const TOPIC_CACHE_LIMIT = 50_000;

/**
 * A gateway node's side of the NATS bus: every event message of the instance, and the ticks of
 * exactly the streams `interest` was told about.
 */
export class NatsTickSubscriber implements BusSubscriber {
  readonly endpoint: string;
  readonly interest: StreamInterest;
  private handler: (topic: string, payload: string, batched: boolean) => void = () => {};
  private malformed: (reason: string) => void = () => {};
  private readonly streams = new Map<string, Subscription>();
  private readonly topics = new Map<string, string | null>();
  private readonly events: Subscription;
  private closed = false;

  constructor(
    private readonly link: NatsLink,
    private readonly subjects: Subjects,
    private readonly logger: Logger,
  ) {
    this.endpoint = link.servers;
    this.events = link.connection.subscribe(subjects.allEvents, { callback: this.onNatsMessage });
    this.interest = {
      want: (feed, exchange, symbol) => this.want(feed, exchange, symbol),
      drop: (feed, exchange, symbol) => this.drop(feed, exchange, symbol),
    };
  }

  /** Streams subscribed on NATS now. */
  get streamCount(): number {
    return this.streams.size;
  }

  onMessage(handler: (topic: string, payload: string, batched: boolean) => void): void {
    this.handler = handler;
  }

  onMalformed(handler: (reason: string) => void): void {
    this.malformed = handler;
  }

  /**
   * A BusPublisher that hands messages straight to this node's handler, for feeds that belong
   * to this node alone (a user's own broker session): other nodes must not receive them.
   */
  localPublisher(): BusPublisher {
    return new LocalPublisher((topic, payload) => this.deliver(topic, payload, true));
  }

  private want(feed: string, exchange: string, symbol: string): void {
    const key = feedStreamKey(feed, exchange, symbol);
    if (this.closed || this.streams.has(key)) return;
    const subject = this.subjects.streamWildcard(feed, exchange, symbol);
    if (subject.length > MAX_SUBJECT_LENGTH) {
      this.logger.warn({ feed, exchange: exchange.slice(0, 64), symbol: symbol.slice(0, 64) }, 'stream subject too long for NATS; not subscribed');
      return;
    }
    this.streams.set(key, this.link.connection.subscribe(subject, { callback: this.onNatsMessage }));
  }

  private drop(feed: string, exchange: string, symbol: string): void {
    const key = feedStreamKey(feed, exchange, symbol);
    const subscription = this.streams.get(key);
    if (!subscription) return;
    this.streams.delete(key);
    if (!this.link.connection.isClosed()) subscription.unsubscribe();
  }

  private readonly onNatsMessage = (error: NatsError | null, message: Msg): void => {
    if (error) {
      this.malformed(`subscription error: ${error.message}`);
      return;
    }
    try {
      this.receive(message);
    } catch (err) {
      // A bug in handling one message must not stop the feed.
      this.malformed(`handler failed: ${(err as Error).message}`);
    }
  };

  private receive(message: Msg): void {
    let topic = this.topics.get(message.subject);
    if (topic === undefined) {
      topic = this.subjects.topicOf(message.subject)?.topic ?? null;
      if (this.topics.size >= TOPIC_CACHE_LIMIT) this.topics.clear();
      this.topics.set(message.subject, topic);
    }
    if (topic === null) {
      this.malformed(`subject ${message.subject.slice(0, 200)} is not a well-formed tickcast subject`);
      return;
    }
    const data = message.data;
    if (!isBatch(data)) {
      this.handler(topic, asBuffer(data).toString('utf8'), false);
      return;
    }
    const expected = topic;
    let mismatched = false;
    const fault = decodeBatch(asBuffer(data).subarray(BATCH_PREFIX.length), (entryTopic, payload) => {
      if (entryTopic === expected) this.handler(entryTopic, payload, true);
      else mismatched = true;
    });
    if (fault) this.malformed(`bad ${BATCH_TOPIC} message: ${fault}`);
    if (mismatched) this.malformed(`batch entries on ${message.subject.slice(0, 200)} carry another stream's topic`);
  }

  private deliver(topic: string, payload: string, batched: boolean): void {
    if (this.closed) return;
    try {
      this.handler(topic, payload, batched);
    } catch (err) {
      this.malformed(`handler failed: ${(err as Error).message}`);
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.link.connection.isClosed()) return;
    this.events.unsubscribe();
    for (const subscription of this.streams.values()) subscription.unsubscribe();
    this.streams.clear();
  }
}

export interface NatsPublisherOptions {
  /**
   * Pack the ticks of one stream published in one event-loop turn into one `@batch` message (up
   * to `maxBatch` entries or 256 KiB). Off: one plain JSON message per tick, what any NATS
   * publisher can send. Default true.
   */
  batch?: boolean;
  maxBatch?: number;
  /** Called with the number of ticks dropped (the bus is disconnected, or a message is too big). */
  onDropped?: (count: number) => void;
}

const MAX_BATCH_BYTES = 256 * 1024;

/**
 * An adapter's side. Ticks published while the connection is down are dropped and counted:
 * market data is perishable, and the next tick replaces them.
 */
export class NatsPublisher implements BusPublisher {
  private readonly subjectByTopic = new Map<string, string>();
  private readonly pending = new Map<string, BatchEncoder>();
  private readonly batch: boolean;
  private readonly maxBatch: number;
  private flushScheduled = false;
  private droppedNow = 0;
  private closed = false;

  constructor(
    private readonly link: NatsLink,
    private readonly subjects: Subjects,
    private readonly options: NatsPublisherOptions = {},
  ) {
    this.batch = options.batch !== false;
    this.maxBatch = options.maxBatch ?? 256;
  }

  publish(topic: string, payload: string): void {
    if (this.closed) return;
    if (!this.link.connected) return this.dropped(1);
    let subject = this.subjectByTopic.get(topic);
    if (subject === undefined) {
      subject = this.subjects.forTopic(topic);
      if (this.subjectByTopic.size >= TOPIC_CACHE_LIMIT) this.subjectByTopic.clear();
      this.subjectByTopic.set(topic, subject);
    }
    if (subject.length > MAX_SUBJECT_LENGTH) return this.dropped(1);
    if (!this.batch) return this.send(subject, payload, 1);
    let encoder = this.pending.get(subject);
    if (!encoder) this.pending.set(subject, (encoder = new BatchEncoder()));
    encoder.add(topic, payload);
    if (encoder.count >= this.maxBatch || encoder.size >= MAX_BATCH_BYTES) {
      this.pending.delete(subject);
      this.sendBatch(subject, encoder);
    }
    this.schedule();
  }

  private schedule(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    setImmediate(this.flush);
  }

  private readonly flush = (): void => {
    this.flushScheduled = false;
    for (const [subject, encoder] of this.pending) this.sendBatch(subject, encoder);
    this.pending.clear();
    if (this.droppedNow > 0) {
      const count = this.droppedNow;
      this.droppedNow = 0;
      this.options.onDropped?.(count);
    }
  };

  private sendBatch(subject: string, encoder: BatchEncoder): void {
    const ticks = encoder.count;
    if (ticks === 0) return;
    if (!this.link.connected) return this.dropped(ticks);
    this.send(subject, encoder.take(BATCH_PREFIX), ticks);
  }

  private send(subject: string, data: string | Buffer, ticks: number): void {
    try {
      this.link.connection.publish(subject, data);
    } catch {
      // Closed connection, or a message above the server's max_payload.
      this.dropped(ticks);
    }
  }

  /** Counted now, reported once per turn. */
  private dropped(count: number): void {
    this.droppedNow += count;
    this.schedule();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.flush();
    this.closed = true;
  }
}

/** Hands messages to a handler in the same process, one event-loop turn later, in order. */
class LocalPublisher implements BusPublisher {
  private queue: Array<[string, string]> = [];
  private scheduled = false;
  private closed = false;

  constructor(private readonly deliver: (topic: string, payload: string) => void) {}

  publish(topic: string, payload: string): void {
    if (this.closed) return;
    this.queue.push([topic, payload]);
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(this.flush);
  }

  private readonly flush = (): void => {
    this.scheduled = false;
    const queue = this.queue;
    this.queue = [];
    for (const [topic, payload] of queue) this.deliver(topic, payload);
  };

  async close(): Promise<void> {
    this.flush();
    this.closed = true;
  }
}
