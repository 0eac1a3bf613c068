/**
 * The bus for adapters that run in the gateway's own process (the simulator, users' broker
 * feeds): their ticks reach the gateway's bus handler directly, as ZeroMQ's inproc transport
 * would, without encoding, copying or a trip through ZeroMQ's I/O thread. The gateway's
 * endpoint still takes every other publisher (adapter processes, OpenAlgo's own) as before.
 *
 * Ticks published during one event-loop turn are handed over on the next (setImmediate), never
 * inside the publisher's call: an adapter that publishes while the gateway waits on it (say,
 * inside `subscribe`) must not see its tick fanned out before the gateway has finished.
 */
import type { BusPublisher, BusSubscriber } from './bus.js';

type Handler = (topic: string, payload: string, batched: boolean) => void;

export class LocalPublishing implements BusSubscriber {
  private handler: Handler = () => {};
  private pending: string[] = [];
  private scheduled = false;

  constructor(private readonly inner: BusSubscriber) {}

  get endpoint(): string {
    return this.inner.endpoint;
  }

  onMessage(handler: Handler): void {
    this.handler = handler;
    this.inner.onMessage(handler);
  }

  onMalformed(handler: (reason: string) => void): void {
    this.inner.onMalformed(handler);
  }

  close(): Promise<void> {
    this.pending = [];
    return this.inner.close();
  }

  /** A publisher for an in-process adapter. Its ticks count as tickcast's own (checked as batched ones are). */
  publisher(): BusPublisher {
    return {
      publish: (topic, payload) => {
        this.pending.push(topic, payload);
        if (!this.scheduled) {
          this.scheduled = true;
          setImmediate(this.deliver);
        }
      },
      close: async () => {},
    };
  }

  private readonly deliver = (): void => {
    this.scheduled = false;
    const pending = this.pending;
    this.pending = [];
    for (let i = 0; i < pending.length; i += 2) this.handler(pending[i]!, pending[i + 1]!, true);
  };
}
