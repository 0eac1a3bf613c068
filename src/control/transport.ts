/**
 * The seam between the control protocol and what carries it. A transport moves frames (one
 * string each, `<mac> <json>`, codec.ts) between this process and peers it knows by address, and
 * says who sent each frame; it knows nothing of their content. ZeroMQ: transport-zmq.ts; NATS:
 * transport-nats.ts. The gateway and adapter ends (gateway-control.ts, adapter-control.ts) work
 * unchanged over either.
 */
export interface ControlTransport {
  /** Where peers reach this end, for logs and status lines. */
  readonly endpoint: string;
  /** False while the transport's own link is down (NATS): peers' silence then is not theirs. */
  readonly connected: boolean;
  /**
   * Every frame received, with its sender's address (opaque: a ZeroMQ routing id, a NATS inbox).
   * Set once, before any frame can arrive.
   */
  onFrame(handler: (from: string, data: Uint8Array) => void): void;
  /** The link came back after an outage of its own (the peers' silence meanwhile was not theirs). */
  onReconnect(handler: () => void): void;
  /**
   * Sends one frame to one peer. Resolves false when the transport knows it did not go (the peer
   * is gone, its queue is full, the link is down); true means handed over, not delivered.
   */
  send(to: string, frame: string): Promise<boolean>;
  /** Lets frames already sent leave, then closes. Whoever created the transport closes it. */
  close(): Promise<void>;
}

/** An adapter's transport: it can also reach every gateway at once, to announce itself. */
export interface AdapterTransport extends ControlTransport {
  announce(frame: string): void;
}
