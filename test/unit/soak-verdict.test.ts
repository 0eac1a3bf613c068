/** The soak's verdict: memory growth after warm-up, from /api/status samples. */
import { describe, expect, it } from 'vitest';
import { type SoakSample, VerdictError, median, sampleTable, soakVerdict, verdictText } from '../../bench/soak-verdict.js';

/** A sample every 5 s over `durationS`, RSS and heap from `rss(t)`. */
function run(durationS: number, rss: (t: number) => number, handles: (t: number) => number = () => 1000): SoakSample[] {
  const samples: SoakSample[] = [];
  for (let t = 0; t <= durationS; t += 5) {
    samples.push({ t, connections: 1000, subscriptions: 20_000, rssMb: rss(t), heapMb: rss(t) / 2, lagP99Ms: 12, handles: handles(t) });
  }
  return samples;
}

describe('soakVerdict', () => {
  it('a flat run with a GC sawtooth is no leak', () => {
    const samples = run(600, (t) => 200 + (t % 30 === 0 ? 8 : 0));
    const verdict = soakVerdict(samples, { durationS: 600 });
    expect(verdict.warmupS).toBe(120);
    expect(verdict.samplesJudged).toBe(97);
    expect(verdict.span).toBe(12);
    expect(verdict.rss.from).toBe(200);
    expect(verdict.rss.to).toBe(200);
    expect(verdict.leak).toBe(false);
  });

  it('ignores growth during warm-up', () => {
    const samples = run(600, (t) => (t < 120 ? 100 + t : 220));
    const verdict = soakVerdict(samples, { durationS: 600 });
    expect(verdict.rss.pct).toBe(0);
    expect(verdict.leak).toBe(false);
  });

  it('steady growth past the limit after warm-up is a leak', () => {
    // 200 MiB growing 0.05 MiB/s: +~22 MiB between the two medians, about 11 %.
    const samples = run(600, (t) => 200 + 0.05 * t);
    const verdict = soakVerdict(samples, { durationS: 600 });
    expect(verdict.rss.pct).toBeGreaterThan(5);
    expect(verdict.leak).toBe(true);
    expect(verdictText(verdict)).toContain('verdict: LEAK');
  });

  it('growth within the limit is no leak, and the limit is an option', () => {
    const samples = run(600, (t) => 200 + 0.02 * t); // about 4.4 %
    expect(soakVerdict(samples, { durationS: 600 }).leak).toBe(false);
    expect(soakVerdict(samples, { durationS: 600, limitPct: 2 }).leak).toBe(true);
  });

  it('reports heap and handles beside RSS', () => {
    const samples = run(600, () => 200, (t) => 1000 + t);
    const verdict = soakVerdict(samples, { durationS: 600 });
    expect(verdict.heap.pct).toBe(0);
    expect(verdict.handles.to).toBeGreaterThan(verdict.handles.from);
    expect(verdict.leak).toBe(false);
    expect(verdictText(verdict)).toContain('verdict: no leak');
  });

  it('a short run takes single samples, never overlapping', () => {
    const samples = run(15, (t) => 100 + t); // t = 0, 5, 10, 15; warm-up 3 s
    const verdict = soakVerdict(samples, { durationS: 15 });
    expect(verdict.samplesJudged).toBe(3);
    expect(verdict.span).toBe(1);
    expect([verdict.rss.from, verdict.rss.to]).toEqual([105, 115]);
  });

  it('refuses to judge with fewer than 2 samples after warm-up', () => {
    expect(() => soakVerdict(run(5, () => 100), { durationS: 60 })).toThrow(VerdictError);
  });

  it('prints one table row per sample', () => {
    const table = sampleTable(run(10, () => 100));
    expect(table.split('\n')).toHaveLength(2 + 3);
    expect(table).toContain('| 10 | 1000 | 20000 | 100.0 | 50.0 | 12.0 | 1000 |');
  });

  it('median', () => {
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 2, 3])).toBe(2.5);
    expect(median([])).toBeNaN();
  });
});
