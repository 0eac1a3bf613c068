/**
 * The bus endpoint going away and coming back: an external publisher (a plain ZeroMQ PUB that
 * connects, as OpenAlgo's publishers do) stays connected while the gateway behind the endpoint is
 * stopped or killed and started again on the same port; its ticks reach clients of the new gateway
 * without the publisher doing anything.
 */
import { join } from 'node:path';
import * as zmq from 'zeromq';
import { afterEach, describe, expect, it } from 'vitest';
import { killSpawnedProcesses, makeTempDir, removeDir, startGatewayProcess } from '../helpers/cli.js';
import { TestClient, sleep } from '../helpers/client.js';
import { waitForMessage } from '../helpers/logs.js';

const dirs: string[] = [];
const publishers: zmq.Publisher[] = [];
afterEach(async () => {
  for (const publisher of publishers.splice(0)) publisher.close();
  await killSpawnedProcesses();
  for (const dir of dirs.splice(0)) removeDir(dir);
});

/** Publishes NSE_RELIANCE_LTP every 50 ms with an ever-growing ltp until stopped; `sent` is the last value. */
function publishForever(endpoint: string): { sent: () => number; stop: () => Promise<void> } {
  const socket = new zmq.Publisher();
  publishers.push(socket);
  socket.connect(endpoint);
  let n = 0;
  let running = true;
  const loop = (async () => {
    while (running) {
      n++;
      // Awaited one at a time (zeromq's rule); with no gateway connected, a PUB drops the message.
      await socket.send(['NSE_RELIANCE_LTP', JSON.stringify({ ltp: 1000 + n, timestamp: Date.now() })]);
      await sleep(50);
    }
  })();
  return {
    sent: () => 1000 + n,
    stop: async () => {
      running = false;
      await loop;
    },
  };
}

describe.each(['SIGTERM', 'SIGKILL'] as const)('the gateway behind a bus endpoint, ended with %s and started again on the same port', (signal) => {
  it('an external publisher that stayed connected feeds the new gateway: ticks resume', async () => {
    const root = makeTempDir('tickcast-faults-');
    dirs.push(root);
    const env = { TICKCAST_REGISTRY: `sqlite:${join(root, 'registry.db')}`, TICKCAST_LOG_LEVEL: 'info' };
    const first = await startGatewayProcess({ dataDir: root, args: ['--instance', 'relay', '--feed', 'none'], env });
    const publisher = publishForever(first.busEndpoint);
    try {
      const client = await TestClient.authenticated(first.url, first.devKey!);
      expect((await client.request({ action: 'subscribe', symbols: [{ symbol: 'RELIANCE', exchange: 'NSE' }], mode: 1 })).status).toBe('success');
      const before = await client.marketData('RELIANCE');
      expect(before.data.ltp).toBeGreaterThan(1000);

      if (signal === 'SIGKILL') {
        first.child.kill('SIGKILL');
        await first.exited;
      } else {
        expect(await first.stop('SIGTERM')).toBe(0);
      }
      await client.closed;
      const sentWhileDown = publisher.sent();

      const second = await startGatewayProcess({ dataDir: root, args: ['--instance', 'relay', '--feed', 'none'], env: { ...env, ZMQ_PORT: String(first.busPort) } });
      expect(second.busEndpoint).toBe(first.busEndpoint);
      expect(await waitForMessage(second.stderr, 'gateway started')).toMatchObject({ bus: first.busEndpoint });
      const again = await TestClient.authenticated(second.url, first.devKey!);
      expect((await again.request({ action: 'subscribe', symbols: [{ symbol: 'RELIANCE', exchange: 'NSE' }], mode: 1 })).status).toBe('success');
      // ZeroMQ reconnects the publisher by itself; the first tick may take a reconnect interval.
      const resumed = await again.next((m) => m.type === 'market_data' && m.data.ltp > sentWhileDown, 15_000);
      expect(resumed).toMatchObject({ symbol: 'RELIANCE', exchange: 'NSE', mode: 1 });
      const next = await again.next((m) => m.type === 'market_data' && m.data.ltp > resumed.data.ltp);
      expect(next.data.ltp).toBeGreaterThan(resumed.data.ltp);
      await again.close();
    } finally {
      await publisher.stop();
    }
  });
});
