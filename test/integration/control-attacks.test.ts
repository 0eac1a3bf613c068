/**
 * Posing as an adapter, against a real gateway over real ZeroMQ: a local process without the
 * instance's control key cannot take a broker's users, squat a user's feed id, or make the
 * gateway remember it; an adapter of the instance that leaves tells its users.
 */
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import * as zmq from 'zeromq';
import { systemClock } from '../../src/clock.js';
import { AdapterControl } from '../../src/control/adapter-control.js';
import { encodeFrame } from '../../src/control/codec.js';
import { GatewayControl } from '../../src/control/gateway-control.js';
import { loadInstanceKey } from '../../src/control/keys.js';
import { MAX_PEERS, PROTOCOL_VERSION } from '../../src/control/protocol.js';
import { ZmqAdapterTransport, ZmqGatewayTransport } from '../../src/control/transport-zmq.js';
import type { Adapter, FeedStatus, FeedStatusEvent, SubscribeResult } from '../../src/feed.js';
import { silentLogger } from '../../src/observability/logger.js';
import { makeTempDir, removeDir, runCli } from '../helpers/cli.js';
import { TestClient, sleep, waitUntil } from '../helpers/client.js';
import { type TestInstance, startTestInstance } from '../helpers/instance.js';

const logger = silentLogger();

/** An upstream that takes every subscription and never ticks. */
class QuietAdapter implements Adapter {
  readonly broker = 'zerodha';
  readonly subscribed: string[] = [];
  constructor(readonly feed: string) {}
  async start(): Promise<void> {}
  async stop(): Promise<void> {}
  async subscribe(stream: { exchange: string; symbol: string }): Promise<SubscribeResult> {
    this.subscribed.push(`${stream.exchange}:${stream.symbol}`);
    return { ok: true };
  }
  async unsubscribe(): Promise<void> {}
  status(): FeedStatus {
    return 'live';
  }
  onStatus(_listener: (event: FeedStatusEvent) => void): void {}
}

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function gateway(): Promise<TestInstance> {
  // No feed serves zerodha: its users are told so and wait for an adapter.
  const gw = await startTestInstance({ TICKCAST_FEED: 'none', TICKCAST_BUS_BROKERS: 'none' });
  cleanups.push(() => gw.stop());
  return gw;
}

/** An adapter process's control end, with `key`, serving `brokers` under `feed`. */
function adapter(gw: TestInstance, feed: string, key: Buffer): { control: AdapterControl; upstream: QuietAdapter; found: () => boolean; refusals: string[] } {
  const upstream = new QuietAdapter(feed);
  const transport = new ZmqAdapterTransport(gw.controlEndpoint, logger);
  let found = false;
  const refusals: string[] = [];
  const control = new AdapterControl({
    transport,
    key,
    adapter: upstream,
    brokers: ['zerodha'],
    instance: gw.config.instance,
    heartbeatMs: 100,
    clock: systemClock,
    logger,
    onGatewayFound: () => (found = true),
    onRefused: (message) => refusals.push(message),
  });
  control.start();
  cleanups.push(async () => {
    await control.stop();
    await transport.close();
  });
  return { control, upstream, found: () => found, refusals };
}

const instanceKey = (gw: TestInstance): Buffer => loadInstanceKey(join(gw.dataDir, gw.config.instance, 'control.key'), { create: false });

describe('a process posing as an adapter', () => {
  it("without the instance's key it never takes a broker's users; an adapter of the instance does, and its users hear when it leaves", async () => {
    const gw = await gateway();
    const dave = await TestClient.authenticated(gw.url, await gw.createKey('dave', 'zerodha'));
    expect(await dave.next((m) => m.type === 'feed_status')).toMatchObject({ feed: 'none', status: 'unavailable' });

    const rogue = adapter(gw, 'rogue', randomBytes(32));
    // Ten of its announcements, at the rogue's pace; the gateway's own heartbeat is 1 s.
    await sleep(2500);
    expect(rogue.found()).toBe(false);
    expect(dave.messages.filter((m) => m.type === 'feed_status')).toEqual([]);
    // Still no feed: the symbol is refused, and the rogue hears of nothing.
    expect((await dave.request({ action: 'subscribe', symbols: [{ exchange: 'NSE', symbol: 'RELIANCE' }], mode: 1 })).status).not.toBe('success');
    expect(rogue.upstream.subscribed).toEqual([]);

    // The same, with the key: the user is moved to it and told.
    const legit = adapter(gw, 'legit', instanceKey(gw));
    expect(await dave.next((m) => m.type === 'feed_status', 10_000)).toMatchObject({ feed: 'legit', status: 'live' });
    expect(await dave.request({ action: 'subscribe', symbols: [{ exchange: 'NSE', symbol: 'RELIANCE' }], mode: 1 })).toMatchObject({ status: 'success' });
    await waitUntil(() => legit.upstream.subscribed.includes('NSE:RELIANCE'), 'the subscription at the adapter');

    await legit.control.stop();
    // Told once that it is live (the move and the adapter's attach tell the same thing), then down.
    expect(await dave.next((m) => m.type === 'feed_status', 10_000)).toMatchObject({ feed: 'legit', status: 'down' });
    await dave.close();
  });

  it("cannot squat a user's feed id: without the key it is not heard, with it the id is refused as the user's", async () => {
    const gw = await gateway();
    const rogue = adapter(gw, 'zerodha.dave', randomBytes(32));
    await sleep(1500);
    expect(rogue.found()).toBe(false);
    expect(rogue.refusals).toEqual([]); // not even answered

    const keyed = adapter(gw, 'zerodha.dave', instanceKey(gw));
    await waitUntil(() => keyed.refusals.length > 0, 'the refusal', 10_000);
    expect(keyed.refusals[0]).toMatch(/user's own broker feed/);
    expect(keyed.found()).toBe(false);
  });
});

describe('a flood of announcements', () => {
  it('2,000 fake adapters: without the key none is tracked; with it, ones that never register are forgotten, and at most MAX_PEERS are tracked at once', async () => {
    const key = randomBytes(32);
    const transport = await ZmqGatewayTransport.bind('tcp://127.0.0.1:0', logger);
    const offered: string[] = [];
    const control = new GatewayControl({
      transport,
      key,
      instance: 'default',
      gateway: 'gw-1',
      heartbeatMs: 50,
      clock: systemClock,
      logger,
      onAdapter: (remote) => {
        offered.push(remote.feed);
        return { accept: true };
      },
    });
    cleanups.push(async () => {
      await control.close();
      await transport.close();
    });
    const dealer = new zmq.Dealer({ linger: 0 });
    dealer.connect(transport.endpoint);
    cleanups.push(() => dealer.close());
    const announce = (feed: string, withKey: Buffer): string =>
      encodeFrame(
        { type: 'announce', protocol: PROTOCOL_VERSION, feed, broker: 'zerodha', brokers: ['zerodha'], instance: 'default', pid: 4242, host: 'h', epoch: 7, heartbeatMs: 1000 },
        withKey,
      );

    for (let i = 0; i < 2000; i++) await dealer.send(announce(`fake${i}`, randomBytes(32)));
    await waitUntil(() => control.counters.unauthenticated === 2000, 'every fake announcement refused');
    expect(control.feedCount).toBe(0);

    // Keyed, but nobody answers the registers: never offered to the gateway, tracked up to the
    // limit (the announced heartbeat is 1 s, so each stays for 3 s), then forgotten.
    for (let i = 0; i < 2000; i++) await dealer.send(announce(`keyed${i}`, key));
    await waitUntil(() => control.feedCount === MAX_PEERS, 'the tracked feeds capped at MAX_PEERS');
    await waitUntil(() => control.feedCount === 0, 'the unregistered feeds forgotten', 10_000);
    expect(offered).toEqual([]);
  });
});

describe('the control key of an adapter', () => {
  it('a configured key file that does not exist stops `tickcast adapter` with exit 2 naming it (a made-up key would never be heard)', async () => {
    const dir = makeTempDir();
    cleanups.push(() => removeDir(dir));
    const missing = join(dir, 'copied', 'control.key');
    const result = await runCli(['adapter', '--bus', 'tcp://127.0.0.1:1', '--control', 'tcp://127.0.0.1:2', '--control-key-file', missing], { dataDir: dir });
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(`control key file ${missing} does not exist`);
    expect(existsSync(missing)).toBe(false);
  });
});
