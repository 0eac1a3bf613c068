/**
 * The NATS tick bus against a real nats-server the test starts itself: publishers, a gateway
 * node's interest-driven subscriber, batching, malformed messages, awkward symbols and a server
 * restart.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { NatsLink, NatsPublisher, NatsTickSubscriber } from '../../src/bus/nats.js';
import { Subjects } from '../../src/bus/subjects.js';
import { ErrorCode, TickcastError } from '../../src/errors.js';
import { silentLogger } from '../../src/observability/logger.js';
import { formatTopic } from '../../src/protocol/topics.js';
import { freePort, type NatsServer, startNatsServer } from '../helpers/nats-server.js';
import { sleep, waitUntil } from '../helpers/client.js';

const logger = silentLogger();
let server: NatsServer;
const cleanups: Array<() => Promise<void> | void> = [];

beforeAll(async () => {
  server = await startNatsServer();
});
afterAll(async () => {
  await server?.stop();
});
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});


async function link(name: string): Promise<NatsLink> {
  const created = await NatsLink.connect({ servers: [server.url], name, logger });
  cleanups.push(() => created.close());
  return created;
}

interface Received {
  topic: string;
  payload: string;
  batched: boolean;
}

async function node(instance = 'test'): Promise<{ subscriber: NatsTickSubscriber; received: Received[]; malformed: string[]; link: NatsLink }> {
  const nodeLink = await link('node');
  const subscriber = new NatsTickSubscriber(nodeLink, new Subjects(instance), logger);
  cleanups.push(() => subscriber.close());
  const received: Received[] = [];
  const malformed: string[] = [];
  subscriber.onMessage((topic, payload, batched) => received.push({ topic, payload, batched }));
  subscriber.onMalformed((reason) => malformed.push(reason));
  return { subscriber, received, malformed, link: nodeLink };
}

/** Makes sure the server has processed a link's subscriptions. */
const settled = (l: NatsLink): Promise<void> => l.connection.flush();

const tick = (n: number): string => `{"ltp":${n}.5,"timestamp":${1700000000000 + n}}`;

describe('NATS tick bus', () => {
  it('delivers only the streams the node wants, until it drops them', async () => {
    const { subscriber, received, link: nodeLink } = await node();
    const publisherLink = await link('adapter');
    const publisher = new NatsPublisher(publisherLink, new Subjects('test'));
    subscriber.interest.want('simulator', 'NSE', 'TCS');
    await settled(nodeLink);

    publisher.publish('simulator|NSE_TCS_LTP', tick(1));
    publisher.publish('simulator|NSE_INFY_LTP', tick(2));
    publisher.publish('simulator|NSE_TCS_DEPTH', tick(3));
    await waitUntil(() => received.length >= 2, 'two TCS ticks');
    await sleep(100);
    expect(received.map((r) => [r.topic, r.payload])).toEqual([
      ['simulator|NSE_TCS_LTP', tick(1)],
      ['simulator|NSE_TCS_DEPTH', tick(3)],
    ]);
    expect(subscriber.streamCount).toBe(1);

    subscriber.interest.drop('simulator', 'NSE', 'TCS');
    subscriber.interest.drop('simulator', 'NSE', 'TCS'); // idempotent
    await settled(nodeLink);
    publisher.publish('simulator|NSE_TCS_LTP', tick(4));
    await publisherLink.connection.flush();
    await sleep(100);
    expect(received).toHaveLength(2);
    expect(subscriber.streamCount).toBe(0);
  });

  it("batches one stream's ticks of one event-loop turn into one message, in order; off, one message per tick", async () => {
    const { subscriber, received, link: nodeLink } = await node();
    const subjects = new Subjects('test');
    const raw: string[] = [];
    const spy = nodeLink.connection.subscribe(subjects.allTicks, { callback: (_err, msg) => raw.push(msg.subject) });
    cleanups.push(() => spy.unsubscribe());
    subscriber.interest.want('sim', 'NSE', 'TCS');
    subscriber.interest.want('sim', 'NSE', 'INFY');
    await settled(nodeLink);

    const batching = new NatsPublisher(await link('batching'), subjects);
    for (let i = 0; i < 5; i++) batching.publish('sim|NSE_TCS_LTP', tick(i));
    batching.publish('sim|NSE_INFY_QUOTE', tick(9));
    await waitUntil(() => received.length === 6, 'six ticks');
    expect(raw).toHaveLength(2); // one message per stream
    expect(received.filter((r) => r.topic === 'sim|NSE_TCS_LTP').map((r) => r.payload)).toEqual([0, 1, 2, 3, 4].map(tick));
    expect(received.every((r) => r.batched)).toBe(true);

    received.length = 0;
    raw.length = 0;
    const plain = new NatsPublisher(await link('plain'), subjects, { batch: false });
    for (let i = 0; i < 5; i++) plain.publish('sim|NSE_TCS_LTP', tick(i));
    await waitUntil(() => received.length === 5, 'five plain ticks');
    expect(raw).toHaveLength(5);
    expect(received.map((r) => r.payload)).toEqual([0, 1, 2, 3, 4].map(tick));
    expect(received.every((r) => !r.batched)).toBe(true);
  });

  it('splits a batch past maxBatch entries', async () => {
    const { subscriber, received, link: nodeLink } = await node();
    const subjects = new Subjects('test');
    const raw: number[] = [];
    const spy = nodeLink.connection.subscribe(subjects.allTicks, { callback: (_err, msg) => raw.push(msg.data.length) });
    cleanups.push(() => spy.unsubscribe());
    subscriber.interest.want('sim', 'NSE', 'TCS');
    await settled(nodeLink);
    const publisher = new NatsPublisher(await link('adapter'), subjects, { maxBatch: 4 });
    for (let i = 0; i < 10; i++) publisher.publish('sim|NSE_TCS_LTP', tick(i));
    await waitUntil(() => received.length === 10, 'ten ticks');
    expect(raw).toHaveLength(3);
    expect(received.map((r) => r.payload)).toEqual([...Array(10).keys()].map(tick));
  });

  it('delivers event topics (orders, cache invalidation) whatever the interest', async () => {
    const { received, link: nodeLink } = await node();
    await settled(nodeLink);
    const publisher = new NatsPublisher(await link('publisher'), new Subjects('test'), { batch: false });
    publisher.publish('dev_orders', '{"user_id":"dev","status":"complete"}');
    publisher.publish('CACHE_INVALIDATE_AUTH', '{"user_id":"dev"}');
    await waitUntil(() => received.length === 2, 'two events');
    expect(received.map((r) => r.topic)).toEqual(['dev_orders', 'CACHE_INVALIDATE_AUTH']);
  });

  it('round-trips awkward symbols end to end', async () => {
    const { subscriber, received, link: nodeLink } = await node();
    const symbols = ['BRK.B', 'NIFTY 50', '*', '>', 'A.*.>', 'महिंद्रा', '%41', 'M&M'];
    for (const symbol of symbols) subscriber.interest.want('sim', 'NSE', symbol);
    await settled(nodeLink);
    const publisher = new NatsPublisher(await link('adapter'), new Subjects('test'));
    symbols.forEach((symbol, i) => publisher.publish(formatTopic('sim', 'NSE', symbol, 2), tick(i)));
    await waitUntil(() => received.length === symbols.length, 'a tick per symbol');
    expect(received.map((r) => r.topic).sort()).toEqual(symbols.map((s) => formatTopic('sim', 'NSE', s, 2)).sort());
    // A wildcard-looking symbol is a literal: it matched only its own stream.
    expect(received.filter((r) => r.topic === formatTopic('sim', 'NSE', '*', 2))).toHaveLength(1);
  });

  it('counts malformed messages and keeps delivering', async () => {
    const { subscriber, received, malformed, link: nodeLink } = await node();
    const subjects = new Subjects('test');
    subscriber.interest.want('sim', 'NSE', 'TCS');
    await settled(nodeLink);
    const raw = await link('raw');
    raw.connection.publish('tickcast.test.event.a.b', '{}'); // an event subject with two tokens
    raw.connection.publish(subjects.tick('sim', 'NSE', 'TCS', 1), Buffer.concat([Buffer.from('@batch'), Buffer.from([0, 9, 65])]));
    const foreign = Buffer.concat([Buffer.from('@batch'), Buffer.from([0, 13]), Buffer.from('sim|NSE_X_LTP'), Buffer.from([0, 0, 0, 2]), Buffer.from('{}')]);
    raw.connection.publish(subjects.tick('sim', 'NSE', 'TCS', 1), foreign);
    raw.connection.publish(subjects.tick('sim', 'NSE', 'TCS', 1), tick(7));
    await waitUntil(() => received.length === 1 && malformed.length === 3, 'one tick and three faults');
    expect(received[0]).toEqual({ topic: 'sim|NSE_TCS_LTP', payload: tick(7), batched: false });
    expect(malformed.join('\n')).toMatch(/not a well-formed tickcast subject/);
    expect(malformed.join('\n')).toMatch(/truncated topic/);
    expect(malformed.join('\n')).toMatch(/another stream's topic/);
  });

  it("keeps another instance's ticks out", async () => {
    const { subscriber, received, link: nodeLink } = await node('a');
    subscriber.interest.want('sim', 'NSE', 'TCS');
    await settled(nodeLink);
    const other = new NatsPublisher(await link('b'), new Subjects('b'));
    other.publish('sim|NSE_TCS_LTP', tick(1));
    const mine = new NatsPublisher(await link('a'), new Subjects('a'));
    mine.publish('sim|NSE_TCS_LTP', tick(2));
    await waitUntil(() => received.length === 1, 'the own tick');
    await sleep(100);
    expect(received.map((r) => r.payload)).toEqual([tick(2)]);
  });

  it('a local publisher reaches only its own node', async () => {
    const a = await node();
    const b = await node();
    a.subscriber.localPublisher().publish('zerodha.alice|NSE_TCS_LTP', tick(1));
    await waitUntil(() => a.received.length === 1, 'the local tick');
    await sleep(100);
    expect(a.received[0]).toEqual({ topic: 'zerodha.alice|NSE_TCS_LTP', payload: tick(1), batched: true });
    expect(b.received).toHaveLength(0);
  });

  it('survives a nats-server restart: subscriptions come back, ticks published meanwhile are dropped and counted', async () => {
    const { subscriber, received, link: nodeLink } = await node();
    subscriber.interest.want('sim', 'NSE', 'TCS');
    await settled(nodeLink);
    let dropped = 0;
    const publisherLink = await link('adapter');
    const publisher = new NatsPublisher(publisherLink, new Subjects('test'), { onDropped: (n) => (dropped += n) });
    publisher.publish('sim|NSE_TCS_LTP', tick(1));
    await waitUntil(() => received.length === 1, 'the first tick');

    await server.kill();
    await waitUntil(() => !publisherLink.connected, 'the publisher to notice');
    publisher.publish('sim|NSE_TCS_LTP', tick(2));
    await waitUntil(() => dropped === 1, 'the drop to be counted');

    await server.restart();
    await waitUntil(() => publisherLink.connected && nodeLink.connected, 'both to reconnect', 10_000);
    await nodeLink.connection.flush();
    publisher.publish('sim|NSE_TCS_LTP', tick(3));
    await waitUntil(() => received.length === 2, 'a tick after the restart', 10_000);
    expect(received.map((r) => r.payload)).toEqual([tick(1), tick(3)]);
  });

  it('an unreachable bus is a clear error naming it, without credentials', async () => {
    const port = await freePort();
    const error = await NatsLink.connect({ servers: [`nats://user:secret@127.0.0.1:${port}`], name: 'x', logger, connectTimeoutMs: 1000 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TickcastError);
    expect((error as TickcastError).code).toBe(ErrorCode.BUS_UNREACHABLE);
    expect((error as Error).message).toContain(`nats://127.0.0.1:${port}`);
    expect((error as Error).message).not.toContain('secret');
  });
});
