import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { HEAP_GROWING_PERCENT, heapFlags } from '../../src/gateway/heap-tuning.js';

describe('heapFlags', () => {
  it('asks for a smaller old-generation growth unless the operator chose one', () => {
    expect(heapFlags([])).toEqual([`--heap-growing-percent=${HEAP_GROWING_PERCENT}`]);
    expect(heapFlags(['--enable-source-maps', '--max-old-space-size=512'])).toEqual([`--heap-growing-percent=${HEAP_GROWING_PERCENT}`]);
    expect(heapFlags(['--heap-growing-percent=80'])).toEqual([]);
    expect(heapFlags(['--max-old-space-size=512', '--heap_growing_percent=10'])).toEqual([]);
    expect(heapFlags(['--heap-growing-percent-other=1'])).toEqual([`--heap-growing-percent=${HEAP_GROWING_PERCENT}`]);
  });

  it('is a flag this node accepts', () => {
    const [flag] = heapFlags([]);
    const run = spawnSync(process.execPath, [flag!, '-e', 'process.exit(0)'], { encoding: 'utf8' });
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    const help = spawnSync(process.execPath, ['--v8-options'], { encoding: 'utf8' });
    expect(help.stdout).toContain('--heap-growing-percent');
  });
});
