/**
 * Keeps the gateway's view of this connection's subscriptions equal to what the application
 * holds. Changes are marked dirty as they happen and sent together (one request per mode rather
 * than one per call, which keeps a burst of `subscribe` calls under the gateway's request rate);
 * a fresh connection marks everything dirty, which is how resubscription works. Pure.
 */
import type { Held } from './subscriptions.js';
import type { Instrument, Mode } from './types.js';

const pairKey = (key: string, mode: Mode): string => `${mode}|${key}`;

export interface Plan {
  subscribe: Map<Mode, Instrument[]>;
  unsubscribe: Map<Mode, Instrument[]>;
}

export class SubscriptionSync {
  /** Pairs a subscribe was sent for on this connection (and not unsubscribed since). */
  private readonly sent = new Set<string>();
  /** Pairs the gateway confirmed on this connection. */
  private readonly acked = new Set<string>();
  private readonly dirty = new Map<string, Held>();

  markDirty(held: Held): void {
    this.dirty.set(pairKey(held.key, held.mode), held);
  }

  /** A new connection: nothing is held by the gateway yet; everything held must be sent. */
  reset(held: readonly Held[]): void {
    this.sent.clear();
    this.acked.clear();
    this.dirty.clear();
    for (const h of held) this.markDirty(h);
  }

  get hasWork(): boolean {
    return this.dirty.size > 0;
  }

  /** What to send now, given what the application holds; records it as sent. */
  plan(holds: (key: string, mode: Mode) => boolean): Plan {
    const plan: Plan = { subscribe: new Map(), unsubscribe: new Map() };
    for (const [pair, held] of this.dirty) {
      const want = holds(held.key, held.mode);
      const have = this.sent.has(pair);
      if (want && !have) {
        this.sent.add(pair);
        push(plan.subscribe, held.mode, held.instrument);
      } else if (!want && have) {
        this.sent.delete(pair);
        this.acked.delete(pair);
        push(plan.unsubscribe, held.mode, held.instrument);
      }
    }
    this.dirty.clear();
    return plan;
  }

  /** The gateway answered a subscribe for the pair. A refused pair is no longer held by it. */
  answered(key: string, mode: Mode, ok: boolean): void {
    const pair = pairKey(key, mode);
    if (!this.sent.has(pair)) return; // unsubscribed meanwhile
    if (ok) this.acked.add(pair);
    else this.sent.delete(pair);
  }

  /** A subscribe request was refused as a whole (for example the request rate): send it again later. */
  retry(held: readonly Held[]): void {
    for (const h of held) {
      const pair = pairKey(h.key, h.mode);
      if (this.acked.has(pair)) continue;
      this.sent.delete(pair);
      this.markDirty(h);
    }
  }

  /** An unsubscribe request was refused as a whole: the gateway still holds the pairs; send it again later. */
  retryUnsubscribe(held: readonly Held[]): void {
    for (const h of held) {
      this.sent.add(pairKey(h.key, h.mode));
      this.markDirty(h);
    }
  }

  isAcknowledged(key: string, mode: Mode): boolean {
    return this.acked.has(pairKey(key, mode));
  }
}

function push(map: Map<Mode, Instrument[]>, mode: Mode, instrument: Instrument): void {
  let list = map.get(mode);
  if (!list) map.set(mode, (list = []));
  list.push(instrument);
}
