/** The soak's verdict: memory growth after warm-up, from /api/status samples. */
import { describe, expect, it } from 'vitest';
import { type SoakSample, VerdictError, sampleTable, soakVerdict, verdictText } from '../../bench/soak-verdict.js';

/** A sample every 5 s over `durationS`, RSS from `rss(t)`, heap half of it. */
function run(durationS: number, rss: (t: number) => number, handles: (t: number) => number = () => 1000): SoakSample[] {
  const samples: SoakSample[] = [];
  for (let t = 0; t <= durationS; t += 5) {
    samples.push({ t, connections: 1000, subscriptions: 20_000, rssMb: rss(t), heapMb: rss(t) / 2, lagP99Ms: 12, handles: handles(t), ticksIn: t * 2000, ticksOut: t * 80_000 });
  }
  return samples;
}

/** RSS climbing 70 MiB over 35 s, then collected: the shape the seed load shows. */
const sawtooth = (t: number): number => 150 + (t % 35) * 2;

describe('soakVerdict', () => {
  it('a flat run with a garbage-collection sawtooth is no leak', () => {
    const verdict = soakVerdict(run(600, sawtooth), { durationS: 600 });
    expect(verdict.warmupS).toBe(120);
    expect(verdict.samplesJudged).toBe(97);
    expect(verdict.span).toBe(24);
    expect([verdict.rss.from, verdict.rss.to, verdict.rss.pct]).toEqual([150, 150, 0]);
    expect(verdict.leak).toBe(false);
  });

  it('a leak under the sawtooth raises the floor, and is caught', () => {
    const verdict = soakVerdict(run(600, (t) => sawtooth(t) + 0.05 * t), { durationS: 600 });
    expect(verdict.rss.pct).toBeGreaterThan(5);
    expect(verdict.leak).toBe(true);
    expect(verdictText(verdict)).toContain('verdict: LEAK');
  });

  it('ignores growth during warm-up', () => {
    const verdict = soakVerdict(run(600, (t) => (t < 120 ? 100 + t : 220)), { durationS: 600 });
    expect(verdict.rss.pct).toBe(0);
    expect(verdict.leak).toBe(false);
  });

  it('growth within the limit is no leak, and the limit is an option', () => {
    // 200 MiB + 0.02 MiB/s: floors 202.4 and 209.7, +3.6 %.
    const samples = run(600, (t) => 200 + 0.02 * t);
    expect(soakVerdict(samples, { durationS: 600 }).rss.pct).toBeCloseTo(3.6, 1);
    expect(soakVerdict(samples, { durationS: 600 }).leak).toBe(false);
    expect(soakVerdict(samples, { durationS: 600, limitPct: 2 }).leak).toBe(true);
  });

  it('reports heap and handles beside RSS; only RSS decides', () => {
    const verdict = soakVerdict(run(600, () => 200, (t) => 1000 + t), { durationS: 600 });
    expect(verdict.heap.pct).toBe(0);
    expect(verdict.handles.to).toBeGreaterThan(verdict.handles.from);
    expect(verdict.leak).toBe(false);
    expect(verdictText(verdict)).toContain('verdict: no leak');
  });

  it('a short run compares single samples, never the same one', () => {
    const verdict = soakVerdict(run(15, (t) => 100 + t), { durationS: 15 }); // t = 0, 5, 10, 15; warm-up 3 s
    expect(verdict.samplesJudged).toBe(3);
    expect(verdict.span).toBe(1);
    expect([verdict.rss.from, verdict.rss.to]).toEqual([105, 115]);
  });

  it('refuses to judge with fewer than 2 samples after warm-up', () => {
    expect(() => soakVerdict(run(5, () => 100), { durationS: 60 })).toThrow(VerdictError);
  });

  it('prints one row per sample, with rates since the previous one', () => {
    const table = sampleTable(run(10, () => 100)).split('\n');
    expect(table).toHaveLength(2 + 3);
    expect(table[2]).toBe('| 0 | 1000 | 20000 | – | – | 100.0 | 50.0 | 12.0 | 1000 |');
    expect(table[4]).toBe('| 10 | 1000 | 20000 | 2,000 | 80,000 | 100.0 | 50.0 | 12.0 | 1000 |');
  });
});
