/**
 * Raw broker frames end to end: a gateway with TICKCAST_RECORD_FRAMES=zerodha whose user has Kite
 * credentials, a fake Kite ticker sending every frame of the Kite vectors once, then
 * `tickcast frames list` and `tickcast frames decode` over the recorded day: the decode prints
 * exactly what pykiteconnect made of each vector (test/fixtures/vectors), and the list counts the
 * socket's messages both ways. With recording off, no frames file is written.
 */
import { cpSync, createReadStream, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CredentialStore } from '../../src/auth/credentials.js';
import { main } from '../../src/cli/main.js';
import { historyDir, openKeys } from '../../src/wiring.js';
import { importZerodhaCsv } from '../../src/symbols/import-zerodha.js';
import { TestClient, waitFor } from '../helpers/client.js';
import { FakeKite } from '../helpers/fake-kite.js';
import { type TestInstance, startTestInstance } from '../helpers/instance.js';

interface Vector {
  name: string;
  frame: 'binary' | 'text';
  direction: string;
  hex: string;
  text?: string;
  decoded: unknown;
}

const SERVER = (JSON.parse(readFileSync(new URL('../fixtures/vectors/zerodha.json', import.meta.url), 'utf8')) as Vector[]).filter((v) => v.direction === 'server->client');
/** Every frame Kite may send, its "Invalid access token." error last: the adapter ends the socket on it. */
const VECTORS = [...SERVER.filter((v) => v.name !== 'kite/text_error'), ...SERVER.filter((v) => v.name === 'kite/text_error')];

type Json = Record<string, any>;

/** pykiteconnect prints naive datetimes in IST (the generator's zone). */
const istIso = (text: string): string => new Date(Date.parse(`${text}+05:30`)).toISOString();

/** What `tickcast decode` prints for a packet pykiteconnect decoded as `py` (tick-json.ts's names; empty depth levels dropped). */
function fromPykiteconnect(py: Json): Json {
  const expected: Json = { token: String(py.instrument_token), mode: py.mode, is_index: !py.tradable, ltp: py.last_price };
  if (py.ohlc) Object.assign(expected, { open: py.ohlc.open, high: py.ohlc.high, low: py.ohlc.low, close: py.ohlc.close });
  const names: Array<[string, string]> = [
    ['volume_traded', 'volume'], ['oi', 'oi'], ['oi_day_high', 'oi_day_high'], ['oi_day_low', 'oi_day_low'],
    ['last_traded_quantity', 'last_quantity'], ['average_traded_price', 'average_price'],
    ['total_buy_quantity', 'total_buy_quantity'], ['total_sell_quantity', 'total_sell_quantity'],
  ];
  for (const [theirs, ours] of names) if (py[theirs] !== undefined && py[theirs] !== null) expected[ours] = py[theirs];
  for (const time of ['exchange_timestamp', 'last_trade_time']) if (py[time]) expected[time] = istIso(py[time]);
  if (py.depth) {
    const side = (levels: Json[]) => levels.filter((l) => l.price !== 0 || l.quantity !== 0);
    expected.depth = { buy: side(py.depth.buy), sell: side(py.depth.sell) };
  }
  return expected;
}

/** The lines `frames decode` must print for a vector's frame, decoded or skipped, as the official library says. */
function expectedLines(vector: Vector): Json[] {
  if (vector.frame === 'text') {
    const parsed = JSON.parse(vector.text!) as Json;
    return [{ decoded: { text: parsed.type, data: parsed.data } }];
  }
  if (vector.decoded === null) return [{ decoded: { heartbeat: true } }];
  const lines: Json[] = (vector.decoded as Json[]).map((py) => ({ decoded: fromPykiteconnect(py) }));
  // pykiteconnect drops a packet of unknown length silently; tickcast says so.
  if (vector.name === 'kite/unknown_length_packet_skipped') lines.push({ skipped: expect.stringContaining('unknown packet length') });
  return lines;
}

async function run(args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await main(['node', 'tickcast', ...args], { out: (t) => void (out += t), err: (t) => void (err += t) });
  return { code, out, err };
}

/** A gateway whose `kiteuser` streams from `kite`. */
async function kiteGateway(kite: FakeKite, env: Record<string, string>): Promise<{ gw: TestInstance; key: string }> {
  const gw = await startTestInstance({ TICKCAST_KITE_URL: kite.url, ...env });
  const key = await gw.createKey('kiteuser', 'zerodha');
  const { db, fernetKey } = await openKeys(gw.config);
  await importZerodhaCsv(db, createReadStream(new URL('../fixtures/kite-instruments.csv', import.meta.url)));
  new CredentialStore({ db, fernetKey }).set('kiteuser', 'zerodha', { apiKey: 'kite-app-key', accessToken: 'kite-token-1' });
  db.close();
  return { gw, key };
}

/** Polls an asynchronous `probe` until it holds (its bound only catches hangs). */
async function until(probe: () => Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await probe())) {
    if (Date.now() > deadline) throw new Error('timed out waiting for the frames to be written');
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

async function status(gw: TestInstance): Promise<Json> {
  return (await (await fetch(`${gw.url.replace('ws://', 'http://')}/api/status`)).json()) as Json;
}

describe('recording raw broker frames', () => {
  let kite: FakeKite;
  let gw: TestInstance;
  let key: string;
  let dir: string;
  let copies: string;
  let day: string;

  beforeAll(async () => {
    kite = await FakeKite.start({ apiKey: 'kite-app-key', accessToken: 'kite-token-1', heartbeatMs: 100 });
    ({ gw, key } = await kiteGateway(kite, { TICKCAST_RECORD_FRAMES: 'zerodha' }));
    dir = historyDir(gw.config);
    copies = mkdtempSync(path.join(tmpdir(), 'tickcast-frames-copy-'));
  });

  afterAll(async () => {
    await gw?.stop();
    await kite?.close();
    rmSync(copies, { recursive: true, force: true });
  });

  it('keeps every message of the Kite socket, both ways, and shows its figures on /api/status', async () => {
    const client = await TestClient.authenticated(gw.url, key);
    await client.request({ action: 'subscribe', symbols: [{ symbol: 'RELIANCE', exchange: 'NSE' }], mode: 3 });
    await waitFor(() => kite.sent('mode').length > 0);
    for (const vector of VECTORS) {
      if (vector.frame === 'text') kite.sendText(vector.text!);
      else kite.sendHex(vector.hex);
    }
    // The token error, sent last, ends the socket: by then every frame before it was received.
    await waitFor(() => kite.openConnections().length === 0, 15_000);
    await until(async () => {
      const frames = (await status(gw)).history?.frames;
      return frames !== undefined && frames.written >= VECTORS.length + 2 && frames.written === frames.recorded && frames.bytes.queued === 0;
    });
    const frames = (await status(gw)).history.frames;
    expect(frames).toMatchObject({ state: 'recording', record: ['zerodha'], shed: 0, failed: 0, connections: 1 });
    expect(frames.bytes.written).toBeGreaterThan(VECTORS.reduce((sum, v) => sum + v.hex.length / 2, 0));
    // No tick recording: the status has frames alone under history.
    expect(Object.keys((await status(gw)).history)).toEqual(['frames']);
    await client.close();
    const files = readdirSync(dir).filter((f) => /^frames-\d{4}-\d\d-\d\d\.db$/.test(f));
    expect(files).toHaveLength(1);
    day = files[0]!.slice(7, 17);
  });

  it('`frames decode` re-runs the Kite decoder: exactly what pykiteconnect decoded from each frame, in order', async () => {
    const { code, out, err } = await run(['frames', 'decode', '--history-dir', dir, '--from', day]);
    expect(err).toBe('');
    expect(code).toBe(0);
    const lines = out.trim().split('\n').map((line) => JSON.parse(line) as Json);
    for (const line of lines) {
      expect(line.connection).toBe('zerodha.kiteuser#1');
      expect(line.received_at).toEqual(expect.any(Number));
      if (line.decoded?.broker) expect(line.decoded).toMatchObject({ broker: 'zerodha', exchange: expect.any(String) });
    }
    const strip = ({ connection: _c, received_at: _r, ...rest }: Json): Json => {
      if (rest.decoded?.broker) {
        const { broker: _b, exchange: _e, ...decoded } = rest.decoded;
        return { ...rest, decoded };
      }
      return rest;
    };
    // The fake's own heartbeats come between the vectors: set aside, the rest is the vectors' packets.
    const heartbeat = (line: Json): boolean => line.decoded?.heartbeat === true;
    const got = lines.filter((line) => !heartbeat(line)).map(strip);
    const want = VECTORS.filter((v) => v.decoded !== null).flatMap(expectedLines);
    expect(got).toEqual(want);
    expect(lines.filter(heartbeat).length).toBeGreaterThan(0);
    expect(lines.map((l) => l.received_at)).toEqual([...lines.map((l) => l.received_at)].sort((a, b) => a - b));
  });

  it('`frames list` shows the socket with its messages counted both ways and their bytes', async () => {
    const { code, out } = await run(['frames', 'list', '--history-dir', dir, '--from', day]);
    expect(code).toBe(0);
    const [header, ...rows] = out.trim().split('\n');
    expect(header!.split(/\s+/)).toEqual(['CONNECTION', 'BROKER', 'FEED', 'OPENED', 'IN', 'OUT', 'BYTES', 'SOCKET']);
    expect(rows).toHaveLength(1);
    const [id, broker, feed, opened, framesIn, framesOut, bytes, ...socket] = rows[0]!.split(/\s+/);
    expect([id, broker, feed, socket.join(' ')]).toEqual(['zerodha.kiteuser#1', 'zerodha', 'zerodha.kiteuser', 'Zerodha ticker']);
    expect(opened).toMatch(new RegExp(`^${day}T`));
    // In: every heartbeat (one line each in the decode) and every other vector frame.
    const decoded = (await run(['frames', 'decode', '--history-dir', dir, '--from', day])).out.trim().split('\n').map((l) => JSON.parse(l) as Json);
    const heartbeats = decoded.filter((l) => l.decoded?.heartbeat === true).length;
    expect(Number(framesIn)).toBe(heartbeats + VECTORS.filter((v) => v.decoded !== null).length);
    // Out: what the fake received from the gateway, byte for byte the same count.
    const sent = kite.messages.filter((m) => m.connection === 1);
    expect(Number(framesOut)).toBe(sent.length);
    const vectorBytes = VECTORS.filter((v) => v.decoded !== null).reduce((sum, v) => sum + v.hex.length / 2, 0);
    expect(Number(bytes)).toBe(heartbeats + vectorBytes + sent.reduce((sum, m) => sum + Buffer.byteLength(m.raw), 0));
  });

  it('narrows to a connection or a broker, and says plainly when a range holds nothing (exit 1, naming the days held)', async () => {
    const one = await run(['frames', 'decode', '--history-dir', dir, '--from', day, '--connection', 'zerodha.kiteuser#1', '--broker', 'zerodha']);
    expect(one.code).toBe(0);
    const none = await run(['frames', 'decode', '--history-dir', dir, '--from', day, '--connection', 'zerodha.kiteuser#9']);
    expect(none.code).toBe(1);
    expect(none.err).toBe(`tickcast frames: no frames from a broker recorded from ${day}T00:00:00.000Z to ${nextDay(day)}T00:00:00.000Z of connection zerodha.kiteuser#9 in ${dir}: it holds the day ${day}\n`);
    const empty = await run(['frames', 'list', '--history-dir', dir, '--from', '2020-01-01']);
    expect(empty.code).toBe(1);
    expect(empty.err).toContain(`it holds the day ${day}`);
    expect((await run(['frames', 'decode', '--history-dir', dir, '--from', '2020-01-01', '--broker', 'angel'])).code).toBe(1);
  });

  it('refuses bad usage with exit 2', async () => {
    expect((await run(['frames', 'decode', '--history-dir', dir])).code).toBe(2);
    expect((await run(['frames', 'decode', '--history-dir', dir, '--from', 'yesterday'])).code).toBe(2);
    const broker = await run(['frames', 'list', '--history-dir', dir, '--from', day, '--broker', 'fyers']);
    expect(broker.code).toBe(2);
    expect(broker.err).toContain('--broker "fyers" is not valid');
    expect((await run(['frames', 'nothing'])).code).toBe(2);
  });

  it('reports a damaged day on stderr and decodes the others', async () => {
    cpSync(dir, copies, { recursive: true });
    writeFileSync(path.join(copies, 'frames-2020-01-02.db'), 'this is not a database at all, just some text that is long enough to look like a header');
    const { code, out, err } = await run(['frames', 'decode', '--history-dir', copies, '--from', '2020-01-01', '--to', day]);
    expect(code).toBe(0);
    expect(err).toMatch(/^tickcast frames: the frames of 2020-01-02 cannot be (opened|read): .+; reading the other days\n$/);
    expect(out.trim().split('\n').length).toBeGreaterThan(VECTORS.length);
  });
});

function nextDay(day: string): string {
  return new Date(Date.parse(`${day}T00:00:00Z`) + 86_400_000).toISOString().slice(0, 10);
}

describe('with frame recording off (the default)', () => {
  it('writes no frames file and shows no history on /api/status', async () => {
    const kite = await FakeKite.start({ apiKey: 'kite-app-key', accessToken: 'kite-token-1' });
    const { gw, key } = await kiteGateway(kite, {});
    try {
      const client = await TestClient.authenticated(gw.url, key);
      await client.request({ action: 'subscribe', symbols: [{ symbol: 'RELIANCE', exchange: 'NSE' }], mode: 1 });
      await waitFor(() => kite.sent('mode').length > 0);
      const arrived = client.next((m) => m.type === 'market_data' && m.data.ltp === 2950.55);
      const timer = setInterval(() => kite.sendHex(VECTORS[0]!.hex), 50);
      await arrived.finally(() => clearInterval(timer));
      await client.close();
      expect((await status(gw)).history).toBeUndefined();
      const dir = historyDir(gw.config);
      expect(existsSync(dir) ? readdirSync(dir).filter((f) => f.startsWith('frames-')) : []).toEqual([]);
    } finally {
      await gw.stop();
      await kite.close();
    }
  });
});
