/**
 * Sparklines (pure): a bounded series of recent prices per instrument, sampled by time so the
 * line spans the same period whatever the tick rate, and the SVG path that draws it.
 */

export class PriceSeries {
  private readonly values: number[] = [];
  private lastAt = -Infinity;

  /**
   * @param capacity points kept (the oldest are dropped)
   * @param intervalMs a new point at most this often; ticks in between update the last point
   */
  constructor(
    readonly capacity = 60,
    readonly intervalMs = 1000,
  ) {}

  add(value: number, nowMs: number): void {
    if (!Number.isFinite(value)) return;
    if (this.values.length > 0 && nowMs - this.lastAt < this.intervalMs) {
      this.values[this.values.length - 1] = value;
      return;
    }
    this.values.push(value);
    this.lastAt = nowMs;
    if (this.values.length > this.capacity) this.values.shift();
  }

  points(): readonly number[] {
    return this.values;
  }
}

/**
 * The `d` of an SVG path through `values`, scaled into a width × height box with `pad` pixels
 * kept free at the top and bottom. A flat series is drawn mid-height; fewer than two points draw
 * nothing.
 */
export function sparklinePath(values: readonly number[], width: number, height: number, pad = 2): string {
  if (values.length < 2) return '';
  let min = Infinity;
  let max = -Infinity;
  for (const v of values) {
    if (v < min) min = v;
    if (v > max) max = v;
  }
  const span = max - min;
  const step = width / (values.length - 1);
  const usable = height - 2 * pad;
  let d = '';
  values.forEach((v, i) => {
    const x = i * step;
    const y = span === 0 ? height / 2 : pad + usable - ((v - min) / span) * usable;
    d += `${i === 0 ? 'M' : 'L'}${x.toFixed(1)} ${y.toFixed(1)}`;
  });
  return d;
}
