/** Per-second rates from running totals sampled now and then (pure). */

export class RateMeter {
  private last: { total: number; atMs: number } | undefined;
  private current: number | undefined;

  /** Records a total; returns the rate per second since the previous sample (undefined at first). */
  sample(total: number, atMs: number): number | undefined {
    const last = this.last;
    this.last = { total, atMs };
    if (!last || atMs <= last.atMs) return this.current;
    // A smaller total means the process restarted: start over rather than show a negative rate.
    this.current = total < last.total ? undefined : ((total - last.total) * 1000) / (atMs - last.atMs);
    return this.current;
  }
}
