/**
 * What one broker socket should carry against what it has been told (pure). A socket that
 * opens has been told nothing, so its first diff is the whole wanted set: a reconnect is a full
 * resubscription with no extra code.
 */

export interface SubscriptionDiff<K, V> {
  /** Told entries that are gone or whose value changed, in the order they were told. */
  readonly stale: ReadonlyArray<{ key: K; value: V; changed: boolean }>;
  /** Wanted entries that are new or changed, in wanted order; `before` is what was told. */
  readonly fresh: ReadonlyArray<{ key: K; value: V; before: V | undefined }>;
}

export class SubscriptionBook<K, V> {
  private readonly wanted = new Map<K, V>();
  private told = new Map<K, V>();
  private dirty = false;

  constructor(private readonly same: (a: V, b: V) => boolean = Object.is) {}

  get size(): number {
    return this.wanted.size;
  }

  /** `undefined` lets go of `key`. */
  want(key: K, value: V | undefined): void {
    if (value === undefined) this.wanted.delete(key);
    else this.wanted.set(key, value);
    this.dirty = true;
  }

  /** The socket was replaced: it has been told nothing. */
  forget(): void {
    this.told = new Map();
    this.dirty = true;
  }

  /**
   * The difference since the last take, which is then counted as told; undefined when nothing
   * changed. The caller sends it at once (a failed send ends the socket, and the next forgets).
   */
  take(): SubscriptionDiff<K, V> | undefined {
    if (!this.dirty) return undefined;
    this.dirty = false;
    const stale: Array<{ key: K; value: V; changed: boolean }> = [];
    const fresh: Array<{ key: K; value: V; before: V | undefined }> = [];
    for (const [key, value] of this.told) {
      const want = this.wanted.get(key);
      if (want === undefined || !this.same(want, value)) stale.push({ key, value, changed: want !== undefined });
    }
    for (const [key, value] of this.wanted) {
      const before = this.told.get(key);
      if (before === undefined || !this.same(before, value)) fresh.push({ key, value, before });
    }
    this.told = new Map(this.wanted);
    return stale.length > 0 || fresh.length > 0 ? { stale, fresh } : undefined;
  }
}

/** `items` in consecutive slices of at most `size` (a broker's per-message limit). */
export function* chunks<T>(items: readonly T[], size: number): Generator<T[]> {
  for (let i = 0; i < items.length; i += size) yield items.slice(i, i + size);
}
