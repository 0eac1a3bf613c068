/**
 * The OpenAlgo bridge against a gateway played by Python (test/python/bridge_selftest.py): its
 * protocol edges one scenario at a time (conflicting opens, held modes answered from what is
 * held, digests after replays, every adapter fault, garbage and forged frames), with OpenAlgo's
 * connection pooling on (its default) and off (each adapter then takes the tagged publisher as
 * its own publish_market_data).
 */
import { describe, expect, it } from 'vitest';
import { REPO_ROOT, runProcess } from '../helpers/cli.js';
import { PYTHON } from '../helpers/openalgo-db.js';

const SELFTEST = `${REPO_ROOT}test/python/bridge_selftest.py`;

describe('the OpenAlgo bridge, scenario by scenario', () => {
  it.each([
    ['with OpenAlgo connection pooling', []],
    ['without it', ['--no-pooling']],
  ])('%s', async (_name, args) => {
    const result = await runProcess(PYTHON, [SELFTEST, ...args], { env: { ...process.env, PYTHONDONTWRITEBYTECODE: '1' }, timeoutMs: 240_000 });
    expect(result.code, result.stdout + result.stderr).toBe(0);
    expect(result.stdout).toMatch(/all passed\s*$/);
    expect(result.stdout).not.toMatch(/^FAIL/m);
  }, 240_000);
});
