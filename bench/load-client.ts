/**
 * A load-generator worker (forked by measure.ts, never inside the server under test). It opens
 * its share of the clients, authenticates and subscribes each, then for every market-data frame
 * whose publish timestamp falls in the measurement window it counts the frame against (client,
 * stream), notes its `seq`, and records publish-to-receive latency (slow readers: every frame
 * read during the window). Per message: two byte searches, one short string for the stream key,
 * a few digits parsed in place; no JSON.parse, no other allocation. For a soak, `churn` replaces
 * set-up clients by new connections with the same plans, continuously.
 */
import { Histogram } from './histogram.js';
import type { ClientPlan, FromWorker, StreamName, ToWorker } from './messages.js';
import { RawWebSocket } from './raw-ws.js';

/** Every JSON market_data envelope starts like this (src/protocol/encoding.ts, and the baseline's). */
const MARKET_DATA = Buffer.from('{"type":"market_data","symbol":');
const MODE_FIELD = Buffer.from(',"mode":');
const TIMESTAMP_FIELD = Buffer.from('"timestamp":');
/** tickcast's `seq` extension ends the envelope: `…,"broker":"x","seq":123}`. */
const SEQ_FIELD = Buffer.from(',"seq":');
const READ_BUFFER_BYTES = 64 * 1024;

interface Client {
  plan: ClientPlan;
  socket: RawWebSocket | null;
  /** stream id → position in plan.streams */
  slots: Map<number, number>;
  counts: Uint32Array;
  /** The newest publish timestamp received (fast clients), to tell when the window has drained. */
  latestTs: number;
  /** Per stream, the first and last `seq` received among the window's ticks (0: none). */
  firstSeq: Float64Array;
  lastSeq: Float64Array;
  state: 'connecting' | 'authenticating' | 'authenticated' | 'subscribing' | 'ready' | 'leaving' | 'closed';
  /** Closed after it was set up (failures while setting up are reported as such instead). */
  disconnected: boolean;
  closeReason: string;
  /** A replacement opened by churn: it sets itself up, outside the connect and subscribe phases. */
  rejoin: boolean;
}

function newClient(plan: ClientPlan, rejoin: boolean): Client {
  return {
    plan,
    socket: null,
    slots: new Map(plan.streams.map((id, slot) => [id, slot])),
    counts: new Uint32Array(plan.streams.length),
    latestTs: 0,
    firstSeq: new Float64Array(plan.streams.length),
    lastSeq: new Float64Array(plan.streams.length),
    state: 'connecting',
    disconnected: false,
    closeReason: '',
    rejoin,
  };
}

const send = (message: FromWorker): void => {
  process.send?.(message);
};

/**
 * Epoch ms with sub-ms precision, aligned with Date.now() (which the publishers stamp with):
 * the offset of the monotonic clock is read at the moment Date.now() ticks over. A late read
 * (the process descheduled in between) only makes an offset smaller, so the largest of a few
 * readings is the best. The first performance.now() is slow (lazy setup), hence the warm-up call.
 */
function preciseClock(): () => number {
  performance.now();
  let offset = -Infinity;
  for (let i = 0; i < 5; i++) {
    const start = Date.now();
    let ms = start;
    while (ms === start) ms = Date.now();
    offset = Math.max(offset, ms - performance.now());
  }
  return () => offset + performance.now();
}

function run(config: Extract<ToWorker, { type: 'connect' }>): void {
  const url = new URL(config.url);
  const now = preciseClock();
  // Reads are processed synchronously, so every fast connection can share one buffer.
  const fastBuffer = Buffer.allocUnsafe(READ_BUFFER_BYTES);
  const slowBuffer = Buffer.allocUnsafe(Math.max(256, config.slowReadBytes));
  const keys = new Map<string, number>();
  config.streams.forEach((s: StreamName, id) => keys.set(streamKey(s), id));

  const fast = new Histogram();
  const slow = new Histogram();
  let t0 = Infinity;
  let t1 = -Infinity;
  let unexpected = 0;
  let withoutSeq = 0;

  const clients: Client[] = config.clients.map((plan) => newClient(plan, false));
  const churn = { left: 0, rejoined: 0, failed: 0, errors: [] as string[] };

  // Phase 1 opens and authenticates every client; phase 2 subscribes them, so the ticks (which
  // start with the first subscription) do not slow down the remaining handshakes. Each phase
  // keeps `concurrency` clients in flight: enough to be quick, few enough that the server never
  // stalls for long (a stalled simulator puts its streams in step, which makes the load bursty).
  let next = 0;
  let toSubscribe: Client[] = [];
  let phase = new Phase(clients.length, (ok, failed, errors) => send({ type: 'connected', ok, failed, errors }));
  const advance = (): void => {
    if (next < clients.length) open();
    else subscribeNext();
  };
  const fail = (client: Client, error: string): void => {
    if (client.state === 'closed') return;
    const setUp = client.state === 'ready' || client.state === 'authenticated' || client.state === 'leaving';
    client.disconnected = setUp;
    client.state = 'closed';
    client.closeReason = error;
    client.socket?.close(error);
    if (setUp) return;
    if (client.rejoin) {
      churn.failed++;
      if (churn.errors.length < 5) churn.errors.push(error);
      return;
    }
    phase.fail(error);
    advance();
  };

  const onMarketData = (client: Client, buf: Buffer, start: number, end: number, nowMs: number): void => {
    const keyStart = start + MARKET_DATA.length;
    const modeAt = buf.indexOf(MODE_FIELD, keyStart);
    const id = modeAt > 0 && modeAt < end ? keys.get(buf.toString('latin1', keyStart, modeAt)) : undefined;
    const slot = id === undefined ? undefined : client.slots.get(id);
    if (slot === undefined) {
      unexpected++;
      return;
    }
    const tsAt = buf.indexOf(TIMESTAMP_FIELD, modeAt);
    if (tsAt < 0 || tsAt >= end) {
      unexpected++;
      return;
    }
    let ts = 0;
    for (let i = tsAt + TIMESTAMP_FIELD.length; i < end; i++) {
      const digit = buf[i]! - 48;
      if (digit < 0 || digit > 9) break;
      ts = ts * 10 + digit;
    }
    if (client.plan.slow) {
      // A slow reader is still reading old ticks when the window ends, so it is judged by what
      // it reads during the window: how much, and how old.
      if (nowMs < t0 || nowMs >= t1) return;
      client.counts[slot]!++;
      slow.record((nowMs - ts) * 1000);
      return;
    }
    if (ts > client.latestTs) client.latestTs = ts;
    if (ts < t0 || ts >= t1) return;
    client.counts[slot]!++;
    fast.record((nowMs - ts) * 1000);
    const seq = seqOf(buf, start, end);
    if (seq === 0) {
      withoutSeq++;
      return;
    }
    if (client.firstSeq[slot] === 0) client.firstSeq[slot] = seq;
    if (seq > client.lastSeq[slot]!) client.lastSeq[slot] = seq;
  };

  const onReply = (client: Client, text: string): void => {
    let reply: { type?: string; status?: string; message?: string; subscriptions?: Array<{ status?: string }> };
    try {
      reply = JSON.parse(text);
    } catch {
      return;
    }
    if (reply.status === 'error') {
      if (client.state === 'leaving') replace(client);
      else if (client.state !== 'ready') fail(client, `${client.state}: ${reply.message ?? text}`);
      return;
    }
    if (reply.type === 'unsubscribe' && client.state === 'leaving') return replace(client);
    if (client.rejoin) return onRejoinReply(client, reply);
    if (reply.type === 'auth' && client.state === 'authenticating') {
      client.state = 'authenticated';
      phase.ok();
      advance();
    } else if (reply.type === 'subscribe' && client.state === 'subscribing') {
      const refused = (reply.subscriptions ?? []).filter((s) => s.status !== 'success').length;
      if (refused > 0) return fail(client, `subscribe: ${refused} symbols refused (${reply.message ?? ''})`);
      client.state = 'ready';
      phase.ok();
      advance();
    }
  };

  const subscribeAll = (): void => {
    toSubscribe = clients.filter((c) => c.state === 'authenticated').reverse();
    phase = new Phase(toSubscribe.length, (ok, failed, errors) => send({ type: 'ready', ok, failed, errors }));
    for (let i = 0; i < config.concurrency; i++) subscribeNext();
  };

  function subscribeNext(): void {
    const client = toSubscribe.pop();
    if (!client) return;
    if (client.state !== 'authenticated') {
      phase.fail(`closed before subscribing: ${client.closeReason}`);
      return subscribeNext();
    }
    subscribe(client, 'subscribe');
  }

  function subscribe(client: Client, action: 'subscribe' | 'unsubscribe'): void {
    client.state = action === 'subscribe' ? 'subscribing' : 'leaving';
    const symbols = client.plan.streams.map((id) => config.streams[id]!);
    client.socket!.sendText(JSON.stringify({ action, symbols, mode: client.plan.mode }));
  }

  /** Churn: `count` set-up fast clients leave, half of them unsubscribing first; each is replaced. */
  function churnClients(count: number): void {
    const candidates: number[] = [];
    clients.forEach((c, i) => {
      if (c.state === 'ready' && !c.plan.slow) candidates.push(i);
    });
    for (let k = 0; k < count && candidates.length > 0; k++) {
      const pick = Math.floor(Math.random() * candidates.length);
      const client = clients[candidates[pick]!]!;
      candidates[pick] = candidates[candidates.length - 1]!;
      candidates.pop();
      churn.left++;
      // Unsubscribe and wait for the reply, or drop the connection with subscriptions held.
      if (churn.left % 2 === 0) subscribe(client, 'unsubscribe');
      else replace(client);
    }
  }

  /** Closes a client and opens a new connection with the same plan in its place. */
  function replace(client: Client): void {
    const index = clients.indexOf(client);
    client.state = 'closed';
    client.socket?.close('churn');
    if (index < 0) return;
    const fresh = newClient(client.plan, true);
    clients[index] = fresh;
    connect(fresh);
  }

  function onRejoinReply(client: Client, reply: { type?: string; message?: string; subscriptions?: Array<{ status?: string }> }): void {
    if (reply.type === 'auth' && client.state === 'authenticating') {
      subscribe(client, 'subscribe');
    } else if (reply.type === 'subscribe' && client.state === 'subscribing') {
      const refused = (reply.subscriptions ?? []).filter((s) => s.status !== 'success').length;
      if (refused > 0) return fail(client, `subscribe: ${refused} symbols refused (${reply.message ?? ''})`);
      client.state = 'ready';
      churn.rejoined++;
    }
  }

  function open(): void {
    if (next >= clients.length) return;
    connect(clients[next++]!);
  }

  function connect(client: Client): void {
    const slowReader = client.plan.slow;
    client.state = 'connecting';
    client.socket = new RawWebSocket(
      {
        host: url.hostname,
        port: Number(url.port),
        path: url.pathname || '/',
        readBuffer: slowReader ? slowBuffer.subarray(0, config.slowReadBytes) : fastBuffer,
        now,
        ...(slowReader ? { pauseAfterRead: () => (client.state === 'ready' ? config.slowPauseMs : 0) } : {}),
      },
      {
        onOpen: () => {
          client.state = 'authenticating';
          // Any key works on the baseline; tickcast gets its dev key.
          const auth: Record<string, unknown> = { action: 'authenticate', api_key: config.apiKey };
          if (config.seq) auth.seq = true;
          client.socket!.sendText(JSON.stringify(auth));
        },
        onText: (buf, start, end, nowMs) => {
          if (end - start > MARKET_DATA.length && buf.compare(MARKET_DATA, 0, MARKET_DATA.length, start, start + MARKET_DATA.length) === 0) {
            onMarketData(client, buf, start, end, nowMs);
          } else {
            onReply(client, buf.toString('utf8', start, end));
          }
        },
        onClose: (why) => fail(client, `${client.state}: ${why}`),
      },
    );
  }

  for (let i = 0; i < Math.min(config.concurrency, clients.length); i++) open();

  process.on('message', (message: ToWorker) => {
    if (message.type === 'subscribe') {
      subscribeAll();
    } else if (message.type === 'window') {
      t0 = message.t0;
      t1 = message.t1;
    } else if (message.type === 'progress') {
      send({ type: 'progress', caughtUp: clients.every((c) => c.plan.slow || c.state !== 'ready' || c.latestTs >= t1) });
    } else if (message.type === 'churn') {
      churnClients(message.count);
    } else if (message.type === 'report') {
      const closedClients = clients.filter((c) => c.disconnected);
      send({
        type: 'report',
        counts: clients.map((c) => Array.from(c.counts)),
        firstSeq: clients.map((c) => Array.from(c.firstSeq)),
        lastSeq: clients.map((c) => Array.from(c.lastSeq)),
        withoutSeq,
        fast: fast.toData(),
        slow: slow.toData(),
        closed: closedClients.length,
        closeReasons: [...new Set(closedClients.map((c) => c.closeReason))].slice(0, 5),
        unexpected,
        churned: churn.left,
        rejoined: churn.rejoined,
        rejoinFailed: churn.failed,
        rejoinErrors: churn.errors,
      });
    }
  });
}

/** The `seq` at the end of an envelope, read backwards from the closing brace; 0 if there is none. */
function seqOf(buf: Buffer, start: number, end: number): number {
  let i = end - 2;
  let seq = 0;
  let scale = 1;
  while (i > start && buf[i]! >= 48 && buf[i]! <= 57) {
    seq += (buf[i]! - 48) * scale;
    scale *= 10;
    i--;
  }
  if (scale === 1 || i - SEQ_FIELD.length + 1 < start) return 0;
  return buf.compare(SEQ_FIELD, 0, SEQ_FIELD.length, i - SEQ_FIELD.length + 1, i + 1) === 0 ? seq : 0;
}

/** Counts clients through one phase and reports once every one has succeeded or failed. */
class Phase {
  private succeeded = 0;
  private failed = 0;
  private readonly errors: string[] = [];

  constructor(
    private readonly total: number,
    private readonly done: (ok: number, failed: number, errors: string[]) => void,
  ) {
    if (total === 0) done(0, 0, []);
  }

  ok(): void {
    this.succeeded++;
    this.check();
  }

  fail(error: string): void {
    this.failed++;
    if (this.errors.length < 5) this.errors.push(error);
    this.check();
  }

  private check(): void {
    if (this.succeeded + this.failed === this.total) this.done(this.succeeded, this.failed, this.errors);
  }
}

/** What follows `"symbol":` up to `,"mode":` in an envelope, e.g. `"TCS","exchange":"NSE"`. */
function streamKey({ exchange, symbol }: StreamName): string {
  return `${JSON.stringify(symbol)},"exchange":${JSON.stringify(exchange)}`;
}

// The parent going away (Ctrl-C, crash) closes the channel: leave with it.
process.on('disconnect', () => process.exit(0));
process.once('message', (message: ToWorker) => {
  if (message.type !== 'connect') {
    send({ type: 'fatal', message: `expected connect, got ${message.type}` });
    return;
  }
  try {
    run(message);
  } catch (error) {
    send({ type: 'fatal', message: (error as Error).stack ?? String(error) });
  }
});
send({ type: 'hello' });
