/**
 * `npm run soak` end to end, scaled down: a real gateway process, 20 churning clients in a load
 * worker, 15 s of /api/status samples, and a verdict whose exit code matches it. Whether memory
 * grew in 15 s is not the point here (bench/soak-verdict.ts has its own tests); that the run
 * samples, churns and judges is.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { REPO_ROOT, killSpawnedProcesses, makeTempDir, removeDir, runProcess } from '../helpers/cli.js';

const dir = makeTempDir('tickcast-soak-');
afterAll(async () => {
  await killSpawnedProcesses();
  removeDir(dir);
});

describe('npm run soak', () => {
  it('samples the gateway under churn and prints a verdict', async () => {
    const jsonFile = join(dir, 'soak.json');
    // --no-build: the suite runs against the dist/ that `npm test` has just built.
    const args = ['--import', 'tsx', 'bench/soak.ts', '--clients', '20', '--rate', '100', '--minutes', '0.25', '--every', '1', '--churn', '4', '--no-build', '--json', jsonFile];
    const result = await runProcess(process.execPath, args, { env: { ...process.env }, cwd: REPO_ROOT, timeoutMs: 28_000 });
    expect([0, 1], result.stderr).toContain(result.code);

    const report = JSON.parse(readFileSync(jsonFile, 'utf8'));
    expect(report.setup.connected).toBe(20);
    expect(report.samples.length).toBeGreaterThanOrEqual(12);
    for (const sample of report.samples) {
      expect(sample.rssMb).toBeGreaterThan(10);
      expect(sample.heapMb).toBeGreaterThan(1);
      expect(sample.handles).toBeGreaterThan(0);
      expect(sample.lagP99Ms).toBeGreaterThanOrEqual(0);
    }
    // Churn replaced clients all along, and the population stayed up.
    expect(report.churn.left).toBeGreaterThan(10);
    expect(report.churn.rejoined).toBeGreaterThan(5);
    expect(report.churn.rejoinFailed).toBe(0);
    expect(report.samples.at(-1).connections).toBeGreaterThanOrEqual(15);

    expect(report.verdict.warmupS).toBe(3);
    expect(report.verdict.rss.from).toBeGreaterThan(0);
    expect(result.code).toBe(report.verdict.leak ? 1 : 0);
    expect(result.stdout).toContain('| t (s) | clients | subscriptions | ticks in/s | out/s | RSS MiB | heap MiB | lag p99 ms | handles |');
    expect(result.stdout).toMatch(report.verdict.leak ? /verdict: LEAK/ : /verdict: no leak/);
  });
});
