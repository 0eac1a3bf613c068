/**
 * A client that sends requests and never reads its replies (issue: memory exhaustion). Replies
 * count against the client's budget like market data, so such a client is closed as a slow
 * consumer instead of growing the gateway's memory; other clients are served throughout.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { type Socket, connect } from 'node:net';
import WebSocket from 'ws';
import { TestClient, waitUntil } from '../helpers/client.js';
import { type TestInstance, startTestInstance } from '../helpers/instance.js';

const stops: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const stop of stops.splice(0).reverse()) await stop();
});

/** A client frame: text, masked with a zero key (clients must mask; zeros leave the payload as is). */
function clientFrame(text: string): Buffer {
  const payload = Buffer.from(text);
  const length = payload.length;
  const header = length < 126 ? Buffer.from([0x81, 0x80 | length]) : Buffer.from([0x81, 0x80 | 126, length >> 8, length & 255]);
  return Buffer.concat([header, Buffer.alloc(4), payload]);
}

/** A raw WebSocket client that completes the handshake, sends `frames` pings, and never reads. */
async function flooder(url: string, frames: number, authenticate: string | undefined): Promise<Socket> {
  const { hostname, port } = new URL(url);
  const socket = connect(Number(port), hostname);
  await new Promise((resolve, reject) => socket.once('connect', resolve).once('error', reject));
  socket.write(`GET / HTTP/1.1\r\nHost: ${hostname}:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\n\r\n`);
  await new Promise((resolve) => socket.once('data', resolve)); // the 101 answer
  socket.pause(); // never read again: the kernel's buffers fill, then the gateway's
  socket.on('error', () => {});
  if (authenticate) socket.write(clientFrame(JSON.stringify({ action: 'authenticate', api_key: authenticate })));
  // The pong echoes _pingId: each reply is as big as the request.
  const padding = 'x'.repeat(60 * 1024);
  for (let i = 0; i < frames && !socket.destroyed; i++) socket.write(clientFrame(JSON.stringify({ action: 'ping', _pingId: `${i} ${padding}` })));
  return socket;
}

describe('a client that never reads', () => {
  for (const authenticated of [false, true]) {
    it(`${authenticated ? 'authenticated' : 'before authentication'}: pinging with big fields gets it closed as a slow consumer; the gateway keeps serving others`, async () => {
      const gw: TestInstance = await startTestInstance();
      stops.push(() => gw.stop());
      const key = await gw.createKey('reader');
      const healthy = await TestClient.authenticated(gw.url, key);
      // 3,000 replies of 60 KiB: 180 MB if the gateway queued them all.
      const socket = await flooder(gw.url, 3000, authenticated ? key : undefined);
      stops.push(async () => void socket.destroy());
      const slow = (): number => (gw.gateway.status().clients as { slow_consumers_closed: number }).slow_consumers_closed;
      await waitUntil(() => slow() === 1, 'the slow-consumer close', 30_000);
      await waitUntil(() => gw.gateway.status().connections === 1, 'the flooder gone', 30_000);
      expect(await healthy.request({ action: 'ping' })).toMatchObject({ type: 'pong' });
      await healthy.close();
    });
  }

  it('an unsolicited pong does not count as an answer to the keepalive', async () => {
    const gw = await startTestInstance({ WS_PING_INTERVAL: '200', WS_PING_TIMEOUT: '400' });
    stops.push(() => gw.stop());
    const socket = new WebSocket(gw.url, { autoPong: false } as WebSocket.ClientOptions);
    await new Promise((resolve, reject) => socket.once('open', resolve).once('error', reject));
    // Pongs of its own accord, never the answer to the gateway's ping.
    const timer = setInterval(() => socket.readyState === WebSocket.OPEN && socket.pong(), 20);
    const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    try {
      await closed;
    } finally {
      clearInterval(timer);
    }
    expect(socket.readyState).toBe(WebSocket.CLOSED);
  });
});
