/**
 * The bus carries ticks from adapters to the gateway. Every message is OpenAlgo's two frames,
 * `[topic, JSON payload]`. Implementations: ZeroMQ (bus/zeromq.ts).
 */

export interface BusMessage {
  topic: Buffer;
  payload: Buffer;
}

/** The gateway's side: binds the instance's endpoint; publishers connect to it. */
export interface BusSubscriber {
  /** The endpoint actually bound (a `tcp://host:0` request resolves to the real port). */
  readonly endpoint: string;
  /** Called for every message; bad messages are the caller's to count and skip. */
  onMessage(handler: (message: BusMessage) => void): void;
  close(): Promise<void>;
}

/** An adapter's side. `publish` never blocks the caller; messages are sent in order. */
export interface BusPublisher {
  publish(topic: string, payload: string | Buffer): void;
  close(): Promise<void>;
}
