/**
 * Reads the gateway's publish-to-send latency histogram from `/metrics` (Prometheus text) and
 * estimates quantiles over the interval between two scrapes, the way Prometheus'
 * `histogram_quantile` does: linear interpolation inside the bucket that holds the rank (pure).
 */

export interface Histogram {
  /** Cumulative counts by upper bound (seconds), ascending; the last bound is +Inf. */
  buckets: Array<{ le: number; count: number }>;
  count: number;
  sum: number;
}

/** The histogram `name` in a Prometheus text exposition, or undefined if it is absent. */
export function parseHistogram(text: string, name: string): Histogram | undefined {
  const buckets: Array<{ le: number; count: number }> = [];
  let count: number | undefined;
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const rest = line.slice(name.length);
    if (rest.startsWith('_bucket{')) {
      const le = /le="([^"]+)"/.exec(rest)?.[1];
      const value = Number(rest.slice(rest.lastIndexOf(' ') + 1));
      if (le === undefined || !Number.isFinite(value)) continue;
      buckets.push({ le: le === '+Inf' ? Infinity : Number(le), count: value });
    } else if (rest.startsWith('_count ')) {
      count = Number(rest.slice('_count '.length));
    } else if (rest.startsWith('_sum ')) {
      sum = Number(rest.slice('_sum '.length));
    }
  }
  if (count === undefined || buckets.length === 0) return undefined;
  buckets.sort((a, b) => a.le - b.le);
  return { buckets, count, sum };
}

/** What was observed between two scrapes (the later minus the earlier), or the later alone. */
export function histogramDelta(later: Histogram, earlier: Histogram | undefined): Histogram {
  if (!earlier || earlier.count > later.count) return later;
  const before = new Map(earlier.buckets.map((b) => [b.le, b.count]));
  return {
    buckets: later.buckets.map((b) => ({ le: b.le, count: b.count - (before.get(b.le) ?? 0) })),
    count: later.count - earlier.count,
    sum: later.sum - earlier.sum,
  };
}

/** The q-quantile (0 < q < 1) in the histogram's unit, or undefined with no observations. */
export function quantile(histogram: Histogram, q: number): number | undefined {
  const total = histogram.buckets[histogram.buckets.length - 1]?.count ?? 0;
  if (total <= 0) return undefined;
  const rank = q * total;
  let lowerBound = 0;
  let lowerCount = 0;
  for (const { le, count } of histogram.buckets) {
    if (count >= rank) {
      // Past the last finite bound nothing is known but that bound.
      if (le === Infinity) return lowerBound;
      const inBucket = count - lowerCount;
      return inBucket <= 0 ? le : lowerBound + ((le - lowerBound) * (rank - lowerCount)) / inBucket;
    }
    lowerBound = le;
    lowerCount = count;
  }
  return lowerBound;
}
