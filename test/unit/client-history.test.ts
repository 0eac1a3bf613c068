/**
 * `client.history()` against a local HTTP server answering canned bodies: lines split across
 * chunks (and a UTF-8 character split across them), the truncation line, empty answers with
 * `X-Tickcast-History`, the gateway's JSON errors, bodies cut off mid-way (never taken for a
 * short answer), leaving early, `close()` during a read; and the URL and arguments it sends.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { LineSplitter, httpBaseOf, readHistoryLine } from '../../src/client/history.js';
import { type HistoryTick, TickcastClient, TickcastClientError } from '../../src/client/index.js';

type Handler = (request: IncomingMessage, response: ServerResponse) => void;

let server: Server;
let port: number;
let handler: Handler = (_request, response) => response.end();
const requests: Array<{ url: string; key: string | undefined }> = [];
const clients: TickcastClient[] = [];

beforeAll(async () => {
  server = createServer((request, response) => {
    requests.push({ url: request.url ?? '', key: request.headers['x-api-key'] as string | undefined });
    handler(request, response);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as AddressInfo).port;
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});
afterEach(async () => {
  requests.length = 0;
  await Promise.all(clients.splice(0).map((c) => c.close()));
});

function client(options: Partial<ConstructorParameters<typeof TickcastClient>[0]> = {}): TickcastClient {
  const c = new TickcastClient({ url: `ws://127.0.0.1:${port}`, apiKey: 'k-123', reconnect: false, ...options });
  clients.push(c);
  return c;
}

const JSONL = { 'content-type': 'application/x-ndjson; charset=utf-8', 'x-tickcast-feed': 'simulator', 'x-tickcast-limit': '1000' };
const RANGE = { exchange: 'NSE', symbol: 'RELIANCE', from: 1_714_621_500_000, to: 1_714_621_600_000 };

function line(i: number, extra: Record<string, unknown> = {}): string {
  return `${JSON.stringify({ ts: 1_714_621_500_000 + i, exchange_ts: i % 2 === 0 ? 1_714_621_499_000 + i : null, exchange: 'NSE', symbol: 'RELIANCE', mode: 2, data: { ltp: 1400 + i, name: 'Reliance — Δ', ...extra } })}\n`;
}

function expected(i: number): HistoryTick {
  return { exchange: 'NSE', symbol: 'RELIANCE', mode: 2, data: { ltp: 1400 + i, name: 'Reliance — Δ' }, receivedAt: 1_714_621_500_000 + i, exchangeTs: i % 2 === 0 ? 1_714_621_499_000 + i : null };
}

/** Writes `body` in pieces of `size` bytes (splitting lines and UTF-8 characters), with a pause between. */
function chunked(body: string, size: number, end = true): Handler {
  return (_request, response) => {
    response.writeHead(200, JSONL);
    const bytes = Buffer.from(body);
    let at = 0;
    const step = (): void => {
      if (response.destroyed) return;
      if (at >= bytes.length) {
        if (end) response.end();
        else response.socket?.destroy();
        return;
      }
      response.write(bytes.subarray(at, at + size));
      at += size;
      setTimeout(step, 1);
    };
    step();
  };
}

async function collect<T>(iterable: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of iterable) out.push(item);
  return out;
}

async function failure(iterable: AsyncIterable<unknown>, seen: unknown[] = []): Promise<TickcastClientError> {
  try {
    for await (const item of iterable) seen.push(item);
  } catch (error) {
    expect(error).toBeInstanceOf(TickcastClientError);
    return error as TickcastClientError;
  }
  throw new Error('the iteration did not fail');
}

describe('client.history()', () => {
  it('yields every tick of a body whose lines (and characters) are split across chunks, and a summary of a complete answer', async () => {
    const body = Array.from({ length: 50 }, (_, i) => line(i)).join('');
    handler = chunked(body, 7);
    const answer = client().history({ ...RANGE, from: new Date(RANGE.from), to: '2024-05-02T04:26:40Z', mode: 'quote', limit: 1000 });
    expect(answer.summary).toBeUndefined();
    const ticks = await collect(answer);
    expect(ticks).toEqual(Array.from({ length: 50 }, (_, i) => expected(i)));
    expect(answer.summary).toEqual({ count: 50, truncated: false, limit: 1000, damagedDays: [], feed: 'simulator' });

    expect(requests).toHaveLength(1);
    expect(requests[0]!.key).toBe('k-123');
    const url = new URL(requests[0]!.url, 'http://x');
    expect(url.pathname).toBe('/api/ticks');
    expect(Object.fromEntries(url.searchParams)).toEqual({ exchange: 'NSE', symbol: 'RELIANCE', from: String(RANGE.from), to: '2024-05-02T04:26:40Z', mode: '2', format: 'jsonl', limit: '1000' });
  });

  it('ends at the truncation line and reports it, with damaged days', async () => {
    handler = chunked(`${line(0)}${line(1)}{"truncated":true,"limit":2,"damaged_days":["2024-05-01"]}\n`, 5);
    const answer = client().history({ ...RANGE, limit: 2 });
    expect(await collect(answer)).toEqual([expected(0), expected(1)]);
    expect(answer.summary).toEqual({ count: 2, truncated: true, limit: 2, damagedDays: ['2024-05-01'], feed: 'simulator' });
  });

  it('an empty answer with X-Tickcast-History none or no-feed is an empty iteration, the reason on the summary', async () => {
    for (const reason of ['none', 'no-feed'] as const) {
      handler = (_request, response) => {
        response.writeHead(200, { 'content-type': JSONL['content-type'], 'x-tickcast-limit': '1000', 'x-tickcast-history': reason, 'content-length': '0' });
        response.end();
      };
      const answer = client().history(RANGE);
      expect(await collect(answer)).toEqual([]);
      expect(answer.summary).toEqual({ count: 0, truncated: false, limit: 1000, damagedDays: [], history: reason });
    }
  });

  it("an HTTP error is a TickcastClientError with the gateway's code and message", async () => {
    handler = (_request, response) => {
      response.writeHead(400, { 'content-type': 'application/json' });
      response.end(JSON.stringify({ status: 'error', code: 'RANGE_TOO_LARGE', message: 'The range … is longer than 24 h' }));
    };
    const error = await failure(client().history(RANGE));
    expect(error.code).toBe('RANGE_TOO_LARGE');
    expect(error.message).toBe('The range … is longer than 24 h');

    handler = (_request, response) => {
      response.writeHead(502, { 'content-type': 'text/html' });
      response.end('<h1>Bad gateway</h1>');
    };
    const proxy = await failure(client().history(RANGE));
    expect(proxy.code).toBe('PROTOCOL_ERROR');
    expect(proxy.message).toContain('HTTP 502');
  });

  it('a body cut off mid-way throws CONNECTION_LOST after the ticks that came, and leaves no summary', async () => {
    handler = chunked(`${line(0)}${line(1)}${line(2).slice(0, 20)}`, 9, false);
    const seen: unknown[] = [];
    const answer = client().history(RANGE);
    const error = await failure(answer, seen);
    expect(error.code).toBe('CONNECTION_LOST');
    expect(error.message).toContain('cut off after 2 ticks');
    expect(seen).toEqual([expected(0), expected(1)]);
    expect(answer.summary).toBeUndefined();

    // Cut at a line boundary: the chunked body still never ended.
    handler = chunked(`${line(0)}`, 1000, false);
    expect((await failure(client().history(RANGE))).code).toBe('CONNECTION_LOST');
  });

  it('a body that ends cleanly in the middle of a line throws too', async () => {
    const body = `${line(0)}${line(1).slice(0, 30)}`;
    handler = (_request, response) => {
      response.writeHead(200, { ...JSONL, 'content-length': String(Buffer.byteLength(body)) });
      response.end(body);
    };
    const error = await failure(client().history(RANGE));
    expect(error.code).toBe('CONNECTION_LOST');
    expect(error.message).toContain('middle of a line');
  });

  it('a malformed line, lines after the last line, or a non-jsonl answer are PROTOCOL_ERROR', async () => {
    for (const body of [`${line(0)}not json\n`, `{"truncated":true,"limit":1}\n${line(0)}`, `{"ts":"x","exchange":"NSE"}\n`]) {
      handler = chunked(body, 1000);
      expect((await failure(client().history(RANGE))).code).toBe('PROTOCOL_ERROR');
    }
    handler = (_request, response) => {
      response.writeHead(200, { 'content-type': 'text/html' });
      response.end('<html></html>');
    };
    expect((await failure(client().history(RANGE))).message).toContain('not jsonl');
  });

  it('leaving the loop early closes the response, so the gateway stops its read', async () => {
    let closed = false;
    handler = (request, response) => {
      response.writeHead(200, JSONL);
      let i = 0;
      const timer = setInterval(() => response.write(line(i++)), 2);
      response.on('close', () => {
        clearInterval(timer);
        closed = true;
      });
    };
    const answer = client().history(RANGE);
    let n = 0;
    for await (const tick of answer) {
      expect(tick).toEqual(expected(n));
      if (++n === 3) break;
    }
    await expect.poll(() => closed).toBe(true);
    expect(answer.summary).toBeUndefined();
  });

  it('close() aborts a read in progress with CLIENT_CLOSED; a read is iterated once', async () => {
    handler = (_request, response) => {
      response.writeHead(200, JSONL);
      response.write(line(0)); // and nothing more
    };
    const c = client();
    const answer = c.history(RANGE);
    const seen: unknown[] = [];
    const pending = failure(answer, seen);
    await expect.poll(() => seen.length).toBe(1);
    await c.close();
    expect((await pending).code).toBe('CLIENT_CLOSED');
    expect(() => answer[Symbol.asyncIterator]()).toThrow(/iterated once/);
  });

  it('an unreachable gateway is CONNECT_FAILED; no answer within requestTimeoutMs is REQUEST_TIMEOUT', async () => {
    const gone = createServer();
    await new Promise<void>((resolve) => gone.listen(0, '127.0.0.1', resolve));
    const gonePort = (gone.address() as AddressInfo).port;
    await new Promise((resolve) => gone.close(resolve));
    expect((await failure(client({ url: `ws://127.0.0.1:${gonePort}` }).history(RANGE))).code).toBe('CONNECT_FAILED');

    handler = () => {}; // never answers
    expect((await failure(client({ requestTimeoutMs: 200 }).history(RANGE))).code).toBe('REQUEST_TIMEOUT');
  });

  it('httpUrl overrides the base (a path prefix is kept); bad arguments throw INVALID_ARGUMENT before any request', async () => {
    handler = chunked(line(0), 1000);
    const answer = client({ url: 'ws://127.0.0.1:1', httpUrl: `http://127.0.0.1:${port}/prefix/` }).history(RANGE);
    expect(await collect(answer)).toEqual([expected(0)]);
    expect(requests[0]!.url.startsWith('/prefix/api/ticks?')).toBe(true);

    const c = client();
    const bad = [
      { ...RANGE, exchange: '' },
      { ...RANGE, from: Number.NaN },
      { ...RANGE, from: 1.5 },
      { ...RANGE, to: new Date('nope') },
      { ...RANGE, to: '  ' },
      { ...RANGE, mode: 'candles' as never },
      { ...RANGE, limit: 0 },
    ];
    for (const options of bad) expect(() => c.history(options)).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
    expect(() => client({ httpUrl: 'ftp://x' })).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
    expect(requests).toHaveLength(1);
  });

  it('derives the HTTP base from the WebSocket URL', () => {
    expect(httpBaseOf('ws://127.0.0.1:8765')).toBe('http://127.0.0.1:8765');
    expect(httpBaseOf('wss://feed.example.com/ws?x=1')).toBe('https://feed.example.com');
    expect(httpBaseOf('WSS://[::1]:9000')).toBe('https://[::1]:9000');
  });

  it('splits lines across pieces and reads tick and end lines', () => {
    const splitter = new LineSplitter();
    expect(splitter.push('ab')).toEqual([]);
    expect(splitter.push('c\nde\n\nf')).toEqual(['abc', 'de', '']);
    expect(splitter.rest).toBe('f');
    expect(splitter.push('\n')).toEqual(['f']);
    expect(splitter.rest).toBe('');
    expect(readHistoryLine('{"truncated":false,"limit":5,"damaged_days":["2024-05-03"]}')).toEqual({ kind: 'end', truncated: false, limit: 5, damagedDays: ['2024-05-03'] });
    expect(readHistoryLine(line(1).trim())).toEqual({ kind: 'tick', tick: expected(1) });
  });
});
