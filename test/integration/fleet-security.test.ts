/**
 * A secured fleet, as real processes: nats-server with TLS and an authorization config giving
 * each role its own user and permissions (docs/scale-out.md, "Secure fleet"), Redis with an ACL
 * user, one gateway node (nkey seed file) and one adapter (user and password in the URL). It
 * works end to end; the bus refuses what each role may not do; a bus user without the control key
 * cannot make the node unready.
 */
import fs from 'node:fs';
import path from 'node:path';
import { connect, type NatsConnection, nkeys } from 'nats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NatsLink } from '../../src/bus/nats.js';
import { Subjects } from '../../src/bus/subjects.js';
import { ErrorCode, TickcastError } from '../../src/errors.js';
import { silentLogger } from '../../src/observability/logger.js';
import { type AdapterProcess, type GatewayProcess, killSpawnedProcesses, makeTempDir, removeDir, runCli, startAdapterCliProcess, startGatewayProcess } from '../helpers/cli.js';
import { type Message, TestClient, sleep } from '../helpers/client.js';
import { type NatsServer, startNatsServer } from '../helpers/nats-server.js';
import { type RedisServer, startRedisServer } from '../helpers/redis-server.js';
import { makeCertificate } from '../helpers/tls-cert.js';

const INSTANCE = 'secure';
const PEPPER = 'test-pepper-0123456789abcdef0123456789';
const ADAPTER_PASSWORD = 'adapter-pw-8d1f0c2a';
const OPENALGO_PASSWORD = 'openalgo-pw-4b7e9a13';
const READER_PASSWORD = 'reader-pw-2c5d8e71';
const REDIS_PASSWORD = 'redis-pw-91e3f6b0';
const subjects = new Subjects(INSTANCE);

/** The authorization of docs/scale-out.md for one instance, with TLS. */
function natsConfig(nodeKey: string, dir: string): string {
  const p = `tickcast.${INSTANCE}`;
  return `
tls {
  cert_file: "${path.join(dir, 'server.pem')}"
  key_file: "${path.join(dir, 'server.key')}"
}
authorization {
  NODE = {
    publish: { allow: ["${p}.ctl.peer.>"] }
    subscribe: { allow: ["${p}.tick.>", "${p}.event.>", "${p}.ctl.announce", "${p}.ctl.peer.>"] }
  }
  ADAPTER = {
    publish: { allow: ["${p}.tick.>", "${p}.ctl.announce", "${p}.ctl.peer.>"] }
    subscribe: { allow: ["${p}.ctl.peer.>"] }
  }
  OPENALGO = {
    publish: { allow: ["${p}.event.>", "${p}.tick._.>"] }
    subscribe: { deny: [">"] }
  }
  users = [
    { nkey: ${nodeKey}, permissions: $NODE }
    { user: adapter, password: "${ADAPTER_PASSWORD}", permissions: $ADAPTER }
    { user: openalgo, password: "${OPENALGO_PASSWORD}", permissions: $OPENALGO }
    { user: reader, password: "${READER_PASSWORD}", permissions: { subscribe: { allow: ["${p}.ctl.announce"] }, publish: { deny: [">"] } } }
  ]
}
`;
}

let dir: string;
let dataDir: string;
let nats: NatsServer;
let redis: RedisServer;
let env: Record<string, string>;
let node: GatewayProcess;
let adapter: AdapterProcess;
let apiKey: string;
const connections: NatsConnection[] = [];

const busUrl = (credentials = ''): string => `tls://${credentials}127.0.0.1:${nats.port}`;
const ca = (): string => path.join(dir, 'ca.pem');

/** A raw nats.js client of the test, over TLS. */
async function rawClient(user: string, pass: string): Promise<NatsConnection> {
  const nc = await connect({ servers: [`127.0.0.1:${nats.port}`], user, pass, tls: { caFile: ca() }, reconnect: false });
  connections.push(nc);
  return nc;
}

beforeAll(async () => {
  dir = makeTempDir('tickcast-fleet-');
  dataDir = makeTempDir('tickcast-fleet-data-');
  makeCertificate(dir);
  const nodeUser = nkeys.createUser();
  const seedFile = path.join(dir, 'node.nk');
  fs.writeFileSync(seedFile, `${new TextDecoder().decode(nodeUser.getSeed())}\n`, { mode: 0o600 });
  [nats, redis] = await Promise.all([
    startNatsServer({ config: natsConfig(nodeUser.getPublicKey(), dir) }),
    startRedisServer({
      aclUsers: [`user tickcast on >${REDIS_PASSWORD} ~tickcast:* resetchannels -@all +@connection +select +info +scan +eval +get +mget +set +del +exists +hget +hgetall +hset +pexpire +pttl`],
    }),
  ]);
  const common = {
    TICKCAST_INSTANCE: INSTANCE,
    TICKCAST_REGISTRY: `redis://tickcast:${REDIS_PASSWORD}@127.0.0.1:${redis.port}/0`,
    TICKCAST_REGISTRY_TTL_SECONDS: '3',
    TICKCAST_FEED: 'none',
    TICKCAST_DEV_KEY: 'false',
    API_KEY_PEPPER: PEPPER,
    TICKCAST_SIM_SYMBOLS: 'NSE:TCS,NSE:INFY',
    TICKCAST_SIM_RATE: '20',
    TICKCAST_NATS_CA: ca(),
  };
  env = { ...common, TICKCAST_BUS: busUrl(), TICKCAST_NATS_NKEY_SEED: seedFile };
  const created = await runCli(['keys', 'create', '--user', 'trader', '--json'], { dataDir, env });
  expect(created.code, created.stderr).toBe(0);
  apiKey = JSON.parse(created.stdout).api_key;
  node = await startGatewayProcess({ dataDir, env, args: ['--node', 'node-a'] });
  // The adapter: its own NATS user, its password in the URL; the node's control key (same data directory).
  adapter = startAdapterCliProcess({ dataDir, env: { ...common, TICKCAST_BUS: busUrl(`adapter:${ADAPTER_PASSWORD}@`) }, args: ['--feed-id', 'sim'] });
  await adapter.ready;
}, 60_000);

afterAll(async () => {
  for (const nc of connections.splice(0)) await nc.close().catch(() => undefined);
  await killSpawnedProcesses();
  await Promise.all([nats?.stop(), redis?.stop()]);
  if (dir) removeDir(dir);
  if (dataDir) removeDir(dataDir);
});

async function waitUntil(condition: () => boolean | Promise<boolean>, what: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

async function authenticatedClient(): Promise<TestClient> {
  return TestClient.authenticated(node.url, apiKey);
}

async function subscribed(c: TestClient, symbol: string): Promise<Message[]> {
  const ticks: Message[] = [];
  c.socket.on('message', (data) => {
    const message = JSON.parse(data.toString()) as Message;
    if (message.type === 'market_data') ticks.push(message);
  });
  await waitUntil(async () => (await c.request({ action: 'subscribe', symbols: [{ exchange: 'NSE', symbol }], mode: 1 })).status === 'success', `subscribe ${symbol}`);
  return ticks;
}

const readyz = async (): Promise<number> => (await fetch(`http://127.0.0.1:${node.wsPort}/readyz`)).status;

describe('a secured fleet', () => {
  it('a node and an adapter with their own users work end to end: a client gets ticks', async () => {
    const c = await authenticatedClient();
    try {
      const ticks = await subscribed(c, 'TCS');
      await waitUntil(() => ticks.length >= 3, 'ticks through the secured bus');
      expect(ticks[0]).toMatchObject({ type: 'market_data', symbol: 'TCS', exchange: 'NSE' });
      expect(await readyz()).toBe(200);
    } finally {
      await c.close();
    }
  });

  it('no password, token, nkey or creds file appears in what the processes print', () => {
    const printed = node.stdout() + node.stderr() + adapter.stdout() + adapter.stderr();
    for (const secret of [ADAPTER_PASSWORD, REDIS_PASSWORD]) expect(printed).not.toContain(secret);
    expect(printed).not.toMatch(/SU[A-Z2-7]{56}/);
    expect(printed).toContain(`tls://127.0.0.1:${nats.port}`);
  });

  it("the adapter's user cannot publish an order update; OpenAlgo's user can, and only that reaches the client", async () => {
    const c = await authenticatedClient();
    try {
      const updates: Message[] = [];
      c.socket.on('message', (data) => {
        const message = JSON.parse(data.toString()) as Message;
        if (message.type === 'order_update') updates.push(message);
      });
      expect(await c.request({ action: 'subscribe_orders' })).toMatchObject({ status: 'success' });
      const subject = subjects.forTopic('ZERODHA_trader_orders');
      const forged = await rawClient('adapter', ADAPTER_PASSWORD);
      const refusals: string[] = [];
      void (async () => {
        for await (const status of forged.status()) {
          const context = (status as { permissionContext?: { operation: string; subject: string } }).permissionContext;
          if (status.type === 'error' && context) refusals.push(`${String(status.data)} ${context.operation} ${context.subject}`);
        }
      })();
      forged.publish(subject, '{"type": "order_update", "user_id": "trader", "mode": "live", "orderid": "FORGED"}');
      await forged.flush();
      await waitUntil(() => refusals.includes(`PERMISSIONS_VIOLATION publish ${subject}`), 'the server to refuse the publish');

      const openalgo = await rawClient('openalgo', OPENALGO_PASSWORD);
      // Until the node has subscribed (it has by now), keep publishing the genuine one.
      await waitUntil(async () => {
        openalgo.publish(subject, '{"type": "order_update", "user_id": "trader", "mode": "live", "orderid": "REAL"}');
        await openalgo.flush();
        await sleep(100);
        return updates.length > 0;
      }, 'the genuine order update');
      await c.request({ action: 'ping' });
      expect(updates.length).toBeGreaterThan(0);
      for (const update of updates) expect(update.orderid).toBe('REAL');
    } finally {
      await c.close();
    }
  });

  it('a client without credentials, or with a wrong password, cannot connect', async () => {
    for (const servers of [[busUrl()], [busUrl('adapter:wrong-password@')]]) {
      const error = await NatsLink.connect({ servers, security: { caFile: ca() }, name: 'intruder', logger: silentLogger(), connectTimeoutMs: 3000 }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(TickcastError);
      expect(error).toMatchObject({ code: ErrorCode.BUS_UNREACHABLE });
      expect((error as Error).message).toMatch(/Authorization Violation/i);
      expect((error as Error).message).toContain(`tls://127.0.0.1:${nats.port}`);
      expect((error as Error).message).not.toContain('wrong-password');
    }
  });

  it('without the CA the TLS handshake fails', async () => {
    const untrusted = await NatsLink.connect({ servers: [busUrl(`reader:${READER_PASSWORD}@`)], name: 'x', logger: silentLogger(), connectTimeoutMs: 3000 }).catch((e: unknown) => e);
    expect(untrusted).toMatchObject({ code: ErrorCode.BUS_UNREACHABLE });
    expect((untrusted as Error).message).toMatch(/certificate/i);
  });

  it('a user without permission to read ticks gets none: the server refuses the subscription', async () => {
    const reader = await rawClient('reader', READER_PASSWORD);
    const got: string[] = [];
    let refused: Error | undefined;
    reader.subscribe(subjects.allTicks, {
      callback: (err, msg) => {
        if (err) refused = err;
        else got.push(msg.subject);
      },
    });
    await reader.flush();
    await waitUntil(() => refused !== undefined, 'the server to refuse the subscription');
    expect(refused!.message).toMatch(/Permissions Violation for Subscription/i);
    // Ticks are flowing meanwhile (a client holds a stream), and none reached the reader.
    const c = await authenticatedClient();
    try {
      const ticks = await subscribed(c, 'INFY');
      await waitUntil(() => ticks.length >= 3, 'ticks to flow');
      expect(got).toEqual([]);
    } finally {
      await c.close();
    }
  });
});

describe('forged control frames on the NATS bus (a bus user without the control key)', () => {
  it('a forged or replayed bye / announce does not make /readyz answer 503', async () => {
    expect(await readyz()).toBe(200);
    // The adapter's NATS user may publish on the control subjects, but holds no control key here.
    const attacker = await rawClient('adapter', ADAPTER_PASSWORD);
    const seen: Array<{ subject: string; reply?: string; frame: string }> = [];
    attacker.subscribe(subjects.controlPeer('>'), {
      callback: (_err, msg) => seen.push({ subject: msg.subject, reply: msg.reply, frame: new TextDecoder().decode(msg.data) }),
    });
    await attacker.flush();
    await waitUntil(() => seen.some((s) => s.frame.includes('"type":"heartbeat"') && s.frame.includes('"status"')), "the adapter's heartbeat answer to the node");
    const toNode = seen.find((s) => s.frame.includes('"type":"heartbeat"') && s.frame.includes('"status"'))!;
    const [mac, json] = [toNode.frame.slice(0, 64), toNode.frame.slice(65)];
    const fields = JSON.parse(json) as Record<string, unknown>;
    const bye = JSON.stringify({ ...fields, type: 'bye', status: undefined, resync: undefined });
    const frames = [
      `${mac} ${bye}`, // the real MAC on a changed frame
      `${'0'.repeat(64)} ${bye}`, // a made-up MAC
      toNode.frame, // a verbatim replay of a real frame
      `${'a'.repeat(64)} ${JSON.stringify({ type: 'announce', protocol: 2, feed: 'sim', broker: 'simulator', brokers: ['simulator'], pid: 1, host: 'evil', epoch: 'ffffffffffffffff' })}`,
      'not a frame at all',
    ];
    for (let round = 0; round < 20; round++) {
      for (const frame of frames) {
        attacker.publish(toNode.subject, frame, toNode.reply === undefined ? undefined : { reply: toNode.reply });
        attacker.publish(subjects.announce, frame);
      }
      await attacker.flush();
      expect(await readyz()).toBe(200);
      await sleep(50);
    }
    // And still serving ticks.
    const c = await authenticatedClient();
    try {
      const ticks = await subscribed(c, 'TCS');
      await waitUntil(() => ticks.length >= 2, 'ticks after the forgeries');
    } finally {
      await c.close();
    }
    expect(await readyz()).toBe(200);
  });
});
