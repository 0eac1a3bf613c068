/** `tickcast decode`: captured frames → readable ticks (every vector of both brokers). */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { main } from '../../src/cli/main.js';
import { REPO_ROOT, TICKCAST_BIN } from '../helpers/cli.js';

interface Vector {
  name: string;
  hex: string;
  frame: string;
  direction: string;
}

const vectors = (broker: string): Vector[] =>
  JSON.parse(readFileSync(new URL(`../fixtures/vectors/${broker}.json`, import.meta.url), 'utf8')) as Vector[];

async function run(args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await main(['node', 'tickcast', ...args], { out: (t) => void (out += t), err: (t) => void (err += t) });
  return { code, out, err };
}

describe('tickcast decode', () => {
  it('decodes every server frame of both brokers into JSON lines with the required fields', async () => {
    for (const broker of ['zerodha', 'angel']) {
      for (const vector of vectors(broker).filter((v) => v.direction === 'server->client' && v.frame === 'binary')) {
        const { code, out, err } = await run(['decode', '--broker', broker, vector.hex]);
        if (code !== 0) {
          // Frames the official library also refuses are reported, not printed.
          expect(err, vector.name).toMatch(/^tickcast decode: frame 1: .+\n$/);
          continue;
        }
        for (const line of out.trim().split('\n')) {
          const tick = JSON.parse(line);
          if (tick.heartbeat) continue;
          expect(tick, vector.name).toMatchObject({ token: expect.any(String), exchange: expect.any(String), mode: expect.any(String) });
          // Depth-20 packets carry no last price; every other packet does.
          if (tick.mode !== 'depth20') expect(tick.ltp, vector.name).toEqual(expect.any(Number));
          if ('exchange_timestamp' in tick) expect(tick.exchange_timestamp).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
          if ('depth' in tick) expect(tick.depth).toMatchObject({ buy: expect.any(Array), sell: expect.any(Array) });
        }
      }
    }
  });

  it('gives the values the vectors were built from (Kite CDS scaled by 1e7)', async () => {
    const cds = vectors('zerodha').find((v) => v.name.includes('cds'))!;
    const { out } = await run(['decode', '--broker', 'zerodha', cds.hex]);
    expect(JSON.parse(out)).toMatchObject({ exchange: 'CDS', ltp: 83.4525 });
  });

  it('reports bad hex and bad frames clearly, exits 1, and still prints the good ones', async () => {
    const good = vectors('zerodha')[0]!.hex;
    const { code, out, err } = await run(['decode', '--broker', 'zerodha', 'xyz', good, 'abc', '0001000c00']);
    expect(code).toBe(1);
    expect(out.trim().split('\n')).toHaveLength(1);
    expect(err).toContain('frame 1: not hexadecimal: "xyz"');
    expect(err).toContain('frame 3: odd number of hex digits (3)');
    expect(err).toMatch(/frame 4: .+/);
  });

  it('refuses an unknown broker with a usage error', async () => {
    const { code, err } = await run(['decode', '--broker', 'upstox', '00']);
    expect(code).toBe(2);
    expect(err).toContain('--broker "upstox" is not valid: expected zerodha or angel');
  });

  it('reads hex lines from standard input', () => {
    const lines = vectors('angel').slice(0, 3).map((v) => v.hex).join('\n') + '\n';
    const result = spawnSync(process.execPath, [TICKCAST_BIN, 'decode', '--broker', 'angel'], { cwd: REPO_ROOT, input: lines, encoding: 'utf8' });
    expect(result.status, result.stderr).toBe(0);
    expect(result.stdout.trim().split('\n')).toHaveLength(3);
  });
});
