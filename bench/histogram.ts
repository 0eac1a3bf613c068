/**
 * A latency histogram in microseconds with HDR-style log-linear buckets: exact below 128 µs,
 * then 64 buckets per power of two (under 1.6 % relative error), up to about 35 minutes. It is
 * a fixed Uint32Array, so recording allocates nothing, and histograms from several processes
 * merge by adding counts.
 */
const LINEAR = 128;
const HALF = LINEAR / 2;
/** 2^31 µs, beyond anything a benchmark window can see; larger values land in the last bucket. */
const MAX_SHIFT = 24;
const BUCKETS = LINEAR + MAX_SHIFT * HALF;

/** The sparse form sent between processes: [bucket, count] pairs plus the exact maximum. */
export interface HistogramData {
  buckets: Array<[number, number]>;
  count: number;
  maxUs: number;
}

export class Histogram {
  private readonly counts = new Uint32Array(BUCKETS);
  count = 0;
  maxUs = 0;

  record(us: number): void {
    const v = us > 0 ? Math.floor(us) : 0;
    this.counts[bucketOf(v)]!++;
    this.count++;
    if (v > this.maxUs) this.maxUs = v;
  }

  reset(): void {
    this.counts.fill(0);
    this.count = 0;
    this.maxUs = 0;
  }

  toData(): HistogramData {
    const buckets: Array<[number, number]> = [];
    for (let i = 0; i < BUCKETS; i++) if (this.counts[i]! > 0) buckets.push([i, this.counts[i]!]);
    return { buckets, count: this.count, maxUs: this.maxUs };
  }

  add(data: HistogramData): void {
    for (const [bucket, n] of data.buckets) this.counts[bucket]! += n;
    this.count += data.count;
    if (data.maxUs > this.maxUs) this.maxUs = data.maxUs;
  }

  /** The value at quantile q (0–1), as the middle of its bucket, capped at the exact maximum. */
  quantileUs(q: number): number | null {
    if (this.count === 0) return null;
    const rank = Math.max(1, Math.ceil(q * this.count));
    let seen = 0;
    for (let i = 0; i < BUCKETS; i++) {
      seen += this.counts[i]!;
      if (seen >= rank) {
        const [low, width] = boundsOf(i);
        return Math.min(this.maxUs, low + (width - 1) / 2);
      }
    }
    return this.maxUs;
  }
}

function bucketOf(v: number): number {
  if (v < LINEAR) return v;
  const msb = 31 - Math.clz32(Math.min(v, 0x7fffffff));
  const shift = Math.min(msb - 6, MAX_SHIFT);
  const top = Math.min(v / 2 ** shift, LINEAR - 1) | 0; // in [64, 128)
  return LINEAR + (shift - 1) * HALF + (top - HALF);
}

/** [lowest value, width] of a bucket. */
function boundsOf(bucket: number): [number, number] {
  if (bucket < LINEAR) return [bucket, 1];
  const shift = Math.floor((bucket - LINEAR) / HALF) + 1;
  const top = ((bucket - LINEAR) % HALF) + HALF;
  return [top * 2 ** shift, 2 ** shift];
}
