/**
 * The bus carries ticks from adapters to the gateway. A message is OpenAlgo's two frames,
 * `[topic, JSON payload]`, or a tickcast batch of such pairs (bus/batch.ts); subscribers hand
 * their handler one (topic, payload) pair at a time either way. Implementations: ZeroMQ
 * (bus/zeromq.ts) and NATS (bus/nats.ts).
 */

/**
 * Which streams a gateway wants from the bus. ZeroMQ's subscriber takes everything and has none;
 * NATS's subscribes to exactly these streams. Both calls are idempotent.
 */
export interface StreamInterest {
  /** Some client of this gateway holds (or is about to hold) the stream. */
  want(feed: string, exchange: string, symbol: string): void;
  /** No client of this gateway holds the stream any more. */
  drop(feed: string, exchange: string, symbol: string): void;
}

/** The gateway's side: binds the instance's endpoint; publishers connect to it. */
export interface BusSubscriber {
  /** The endpoint actually bound (a `tcp://host:0` request resolves to the real port). */
  readonly endpoint: string;
  /**
   * Called for every (topic, payload); checking them is the handler's job. `batched` is true for
   * entries of a tickcast `@batch` message (written by tickcast's own publishers).
   */
  onMessage(handler: (topic: string, payload: string, batched: boolean) => void): void;
  /** Called for a message that is neither `[topic, payload]` nor a well-formed batch (skipped). */
  onMalformed(handler: (reason: string) => void): void;
  /** Set when the bus delivers only the streams it is told about. */
  readonly interest?: StreamInterest;
  close(): Promise<void>;
}

/** An adapter's side. `publish` never blocks the caller; messages are sent in order. */
export interface BusPublisher {
  publish(topic: string, payload: string): void;
  close(): Promise<void>;
}
