/**
 * The baseline: the least a WebSocket broadcast server can do on this machine for the same load,
 * so tickcast can be reported as a ratio of it. Run in its own process by run.ts.
 *
 * Same tick source as the gateway (the simulator adapter and market, same seed, rate and
 * symbols, so same payloads and timestamps), but no bus, no topic parsing, no auth, and the
 * simplest budget policy: while a client has more than `maxBufferedBytes` unsent, its market
 * data is skipped (tickcast conflates instead). Each tick's `market_data` envelope is serialised and framed ONCE
 * per delivery mode and the same bytes are written to every subscriber's TCP socket, corked for
 * the burst and uncorked when the burst is done. It speaks the protocol subset the load
 * generator uses: authenticate (any key; `"seq": true` numbers each stream's ticks as tickcast's
 * extension does), subscribe, market_data.
 *
 *   argv[2]: JSON {"symbols": "NSE:TCS,…", "ratePerStream": 4, "seed": 1, "maxBufferedBytes": 4194304}
 */
import type { Socket } from 'node:net';
import { type WebSocket, WebSocketServer } from 'ws';
import { parseInstrumentList } from '../src/adapters/simulator/instruments.js';
import { SimulatedMarket, createRng } from '../src/adapters/simulator/market.js';
import { SimulatorAdapter } from '../src/adapters/simulator/simulator-adapter.js';
import { createLogger } from '../src/observability/logger.js';
import { projectPayload } from '../src/protocol/mode-payload.js';
import type { Mode } from '../src/protocol/modes.js';
import { formatTopic } from '../src/protocol/topics.js';
import type { FromBaseline, ToBaseline } from './messages.js';

interface Options {
  symbols: string;
  ratePerStream: number;
  seed: number;
  maxBufferedBytes: number;
}

interface Stream {
  exchange: string;
  symbol: string;
  /** Subscriber → bit mask of the modes it holds (bit m-1 for mode m), as the gateway keeps it. */
  subscribers: Map<Client, number>;
  /** The mode the simulator ticks this stream at: the highest any subscriber holds. */
  upstream: Mode | 0;
  /** Ticks published, for clients that asked for `seq` (as tickcast numbers them). */
  seq: number;
}

interface Client {
  ws: WebSocket;
  tcp: Socket;
  streams: Set<Stream>;
  corked: boolean;
  /** Asked for tickcast's `seq` extension in authenticate. */
  seq: boolean;
}

const FEED = 'bench';
const BROKER = 'simulator';
const TICK_INTERVAL_MS = 20;
const options = JSON.parse(process.argv[2] ?? '{}') as Options;
const send = (message: FromBaseline): void => {
  process.send?.(message);
};

const instruments = parseInstrumentList(options.symbols);
const streams = new Map<string, Stream>();
/** Topic → stream and the tick's mode: the simulator publishes by topic. */
const topics = new Map<string, { stream: Stream; mode: Mode }>();
for (const { exchange, symbol } of instruments) {
  const stream: Stream = { exchange, symbol, subscribers: new Map(), upstream: 0, seq: 0 };
  streams.set(`${exchange}:${symbol}`, stream);
  for (const mode of [1, 2, 3] as const) topics.set(formatTopic(FEED, exchange, symbol, mode), { stream, mode });
}

let corked: Client[] = [];
let burstMs = 0;
let t0 = Infinity;
let t1 = -Infinity;
let published = 0;
let dropped = 0;
/** This tick's frames by delivery mode (1–3), and with `seq` (4–6); its payload per mode. */
const frames: Array<Buffer | undefined> = new Array(7);
const payloads: Array<string | undefined> = new Array(4);

/**
 * One tick: one envelope per held mode ≤ the tick's (and `seq` or not) actually needed, with
 * that mode's payload, written to every subscriber — tickcast's rule for a publisher that sends
 * each stream once at its highest mode, as the simulator does.
 */
function publish(topic: string, payload: string): void {
  const route = topics.get(topic);
  if (!route) return;
  const { stream } = route;
  const inWindow = burstMs >= t0 && burstMs < t1;
  if (inWindow) published++;
  stream.seq++;
  frames.fill(undefined);
  payloads.fill(undefined);
  const below = (1 << route.mode) - 1;
  for (const [client, mask] of stream.subscribers) {
    const held = mask & below;
    if (held === 0) continue;
    if (client.tcp.writableLength > options.maxBufferedBytes) {
      if (inWindow) dropped++;
      continue;
    }
    if (!client.corked) {
      client.corked = true;
      client.tcp.cork();
      corked.push(client);
    }
    for (let mode = 1 as Mode; mode <= route.mode; mode++) {
      if (!(held & (1 << (mode - 1)))) continue;
      const slot = client.seq ? mode + 3 : mode;
      const text = (payloads[mode] ??= projectPayload(payload, route.mode, mode, 'simulator') ?? payload);
      client.tcp.write((frames[slot] ??= textFrame(envelope(stream.symbol, stream.exchange, mode, text, client.seq ? stream.seq : undefined))));
    }
  }
}

/** tickcast's JSON `market_data` envelope, byte for byte: the publisher's payload verbatim inside. */
function envelope(symbol: string, exchange: string, mode: Mode, payload: string, seq: number | undefined): string {
  return (
    `{"type":"market_data","symbol":${JSON.stringify(symbol)},"exchange":${JSON.stringify(exchange)},"mode":${mode},` +
    `"data":${payload},"broker":"${BROKER}"${seq === undefined ? '' : `,"seq":${seq}`}}`
  );
}

/** A complete unmasked WebSocket text frame (RFC 6455 §5.2), built once per envelope. */
function textFrame(text: string): Buffer {
  const body = Buffer.from(text);
  const n = body.length;
  const header = n < 126 ? 2 : n < 65536 ? 4 : 10;
  const frame = Buffer.allocUnsafe(header + n);
  frame[0] = 0x81;
  if (header === 2) frame[1] = n;
  else if (header === 4) {
    frame[1] = 126;
    frame.writeUInt16BE(n, 2);
  } else {
    frame[1] = 127;
    frame.writeUInt32BE(Math.floor(n / 2 ** 32), 2);
    frame.writeUInt32BE(n >>> 0, 6);
  }
  body.copy(frame, header);
  return frame;
}

const logger = createLogger('error', process.stderr);
const simulator = new SimulatorAdapter({
  feed: FEED,
  broker: BROKER,
  market: new SimulatedMarket({ instruments, rng: createRng(options.seed), now: () => Date.now() }),
  publisher: { publish, close: async () => {} },
  ratePerSymbol: options.ratePerStream,
  clock: { now: () => Date.now() },
  logger,
});

// The simulator's own timer period; driving it here lets each burst be uncorked as one.
setInterval(() => {
  burstMs = Date.now();
  simulator.emitDue(burstMs);
  const sockets = corked;
  corked = [];
  for (const client of sockets) {
    client.corked = false;
    client.tcp.uncork();
  }
}, TICK_INTERVAL_MS);

async function handle(client: Client, text: string): Promise<void> {
  let request: { action?: string; type?: string; symbols?: Array<{ exchange?: string; symbol?: string }>; mode?: number; seq?: boolean };
  try {
    request = JSON.parse(text);
  } catch {
    client.ws.send(JSON.stringify({ status: 'error', code: 'INVALID_JSON', message: 'Invalid JSON message' }));
    return;
  }
  const action = request.action || request.type;
  if (action === 'authenticate' || action === 'auth') {
    client.seq = request.seq === true;
    client.ws.send(JSON.stringify({ type: 'auth', status: 'success', message: 'Authentication successful', broker: BROKER, user_id: 'bench', seq: client.seq }));
    return;
  }
  if (action !== 'subscribe') {
    client.ws.send(JSON.stringify({ status: 'error', code: 'INVALID_ACTION', message: `Invalid action: ${action}` }));
    return;
  }
  const mode = (request.mode === 1 || request.mode === 2 || request.mode === 3 ? request.mode : 2) as Mode;
  const subscriptions = [];
  for (const { exchange = '', symbol = '' } of request.symbols ?? []) {
    const stream = streams.get(`${exchange}:${symbol}`);
    if (!stream) {
      subscriptions.push({ symbol, exchange, status: 'error', message: `Token not found for ${symbol} on ${exchange}` });
      continue;
    }
    stream.subscribers.set(client, (stream.subscribers.get(client) ?? 0) | (1 << (mode - 1)));
    client.streams.add(stream);
    if (mode > stream.upstream) {
      stream.upstream = mode;
      await simulator.subscribe({ exchange, symbol }, mode, 5);
    }
    subscriptions.push({ symbol, exchange, status: 'success', mode, depth: 5, broker: BROKER });
  }
  client.ws.send(JSON.stringify({ type: 'subscribe', status: 'success', subscriptions, message: 'Subscription processing complete', broker: BROKER }));
}

const server = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: false, clientTracking: false, maxPayload: 1024 * 1024 });
server.on('connection', (ws) => {
  const tcp = (ws as unknown as { _socket: Socket })._socket;
  tcp.setNoDelay(true);
  const client: Client = { ws, tcp, streams: new Set(), corked: false, seq: false };
  let pending = Promise.resolve();
  ws.on('message', (data) => {
    pending = pending.then(() => handle(client, data.toString()));
  });
  ws.on('error', () => {});
  ws.on('close', () => {
    for (const stream of client.streams) stream.subscribers.delete(client);
  });
});
server.on('listening', () => {
  const address = server.address();
  send({ type: 'listening', port: typeof address === 'object' && address ? address.port : 0 });
});

process.on('message', (message: ToBaseline) => {
  if (message.type === 'window') {
    t0 = message.t0;
    t1 = message.t1;
  } else if (message.type === 'report') {
    send({ type: 'report', published, dropped });
  }
});
process.on('disconnect', () => process.exit(0));
process.on('SIGTERM', () => process.exit(0));
