/**
 * A worker's link to its primary: requests with ids and a timeout, and dispatch of what the
 * primary sends. The transport (Node's cluster IPC in production) is injected.
 */
import { type PrimaryMessage, type RequestResult, type WorkerMessage, isPrimaryMessage } from './messages.js';

/** Worker messages the primary answers with a `result`. */
type Request = Extract<WorkerMessage, { type: 'interest' | 'user_feed' | 'collect' | 'key_reserve' | 'auth_admit' | 'auth_settle' }>;
type RequestBody = Request extends infer R ? (R extends Request ? Omit<R, 'id'> : never) : never;

export interface PrimaryChannelOptions {
  send: (message: WorkerMessage) => void;
  /** How long a request waits for the primary's answer. Default 10 s. */
  timeoutMs?: number;
}

export class PrimaryChannel {
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (result: RequestResult) => void; timer: NodeJS.Timeout }>();
  private listener: (message: Exclude<PrimaryMessage, { type: 'result' }>) => void = () => {};

  constructor(private readonly options: PrimaryChannelOptions) {}

  /** Sends a request; resolves with the primary's result, or a failure if it does not answer. */
  request(body: RequestBody): Promise<RequestResult> {
    const id = this.nextId++;
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        resolve({ ok: false, message: 'the gateway primary did not answer in time' });
      }, this.options.timeoutMs ?? 10_000);
      this.pending.set(id, { resolve, timer });
      try {
        this.options.send({ ...body, id } as WorkerMessage);
      } catch (error) {
        clearTimeout(timer);
        this.pending.delete(id);
        resolve({ ok: false, message: `cannot reach the gateway primary: ${(error as Error).message}` });
      }
    });
  }

  /** A message that expects no answer. */
  send(message: Exclude<WorkerMessage, Request>): void {
    this.options.send(message);
  }

  /** Everything but results goes to this listener. */
  onMessage(listener: (message: Exclude<PrimaryMessage, { type: 'result' }>) => void): void {
    this.listener = listener;
  }

  /** Feed it what arrives from the primary; returns false for something that is not a primary message. */
  receive(message: unknown): boolean {
    if (!isPrimaryMessage(message)) return false;
    if (message.type === 'result') {
      const waiting = this.pending.get(message.id);
      if (waiting) {
        this.pending.delete(message.id);
        clearTimeout(waiting.timer);
        waiting.resolve(message.result);
      }
      return true;
    }
    this.listener(message);
    return true;
  }

  /** The primary is gone: every waiting request fails now. */
  close(): void {
    for (const [id, waiting] of this.pending) {
      clearTimeout(waiting.timer);
      waiting.resolve({ ok: false, message: 'the gateway primary is gone' });
      this.pending.delete(id);
    }
  }
}
