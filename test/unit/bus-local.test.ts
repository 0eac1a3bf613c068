import { describe, expect, it } from 'vitest';
import type { BusSubscriber } from '../../src/bus/bus.js';
import { LocalPublishing } from '../../src/bus/local.js';

/** A stand-in for the ZeroMQ subscriber: records what the gateway registers on it. */
function innerBus(): BusSubscriber & { handler?: (topic: string, payload: string, batched: boolean) => void; closed: boolean; malformed?: (reason: string) => void } {
  const bus = {
    endpoint: 'tcp://127.0.0.1:5555',
    closed: false,
    handler: undefined as ((topic: string, payload: string, batched: boolean) => void) | undefined,
    malformed: undefined as ((reason: string) => void) | undefined,
    onMessage(handler: (topic: string, payload: string, batched: boolean) => void) {
      bus.handler = handler;
    },
    onMalformed(handler: (reason: string) => void) {
      bus.malformed = handler;
    },
    async close() {
      bus.closed = true;
    },
  };
  return bus;
}

const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe('LocalPublishing: in-process adapters publish straight to the gateway', () => {
  it('hands a turn’s ticks to the gateway on the next turn, in order, as tickcast’s own', async () => {
    const local = new LocalPublishing(innerBus());
    const seen: string[] = [];
    local.onMessage((topic, payload, batched) => seen.push(`${topic} ${payload} ${batched}`));
    const publisher = local.publisher();
    publisher.publish('simulator|NSE_INFY_LTP', '{"ltp":1.5}');
    publisher.publish('simulator|NSE_TCS_QUOTE', '{"ltp":2.5}');
    // Never inside the publisher's call: the gateway may be waiting on this adapter right now.
    expect(seen).toEqual([]);
    await nextTurn();
    expect(seen).toEqual(['simulator|NSE_INFY_LTP {"ltp":1.5} true', 'simulator|NSE_TCS_QUOTE {"ltp":2.5} true']);
    publisher.publish('simulator|NSE_INFY_LTP', '{"ltp":1.6}');
    await nextTurn();
    expect(seen).toHaveLength(3);
  });

  it('leaves the bus endpoint to every other publisher, with the same handler', () => {
    const inner = innerBus();
    const local = new LocalPublishing(inner);
    const handler = (): void => {};
    const onBad = (): void => {};
    local.onMessage(handler);
    local.onMalformed(onBad);
    expect(local.endpoint).toBe('tcp://127.0.0.1:5555');
    expect(inner.handler).toBe(handler);
    expect(inner.malformed).toBe(onBad);
  });

  it('drops what is pending when closed, and closes the endpoint', async () => {
    const inner = innerBus();
    const local = new LocalPublishing(inner);
    const seen: string[] = [];
    local.onMessage((topic) => seen.push(topic));
    local.publisher().publish('simulator|NSE_INFY_LTP', '{}');
    await local.close();
    await nextTurn();
    expect(seen).toEqual([]);
    expect(inner.closed).toBe(true);
  });
});
