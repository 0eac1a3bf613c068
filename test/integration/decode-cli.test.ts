/** `tickcast decode`: captured frames → readable ticks (every vector of every broker with a decoder). */
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
  it('decodes every server frame of every broker into JSON lines with the required fields', async () => {
    for (const [broker, file] of [['zerodha', 'zerodha'], ['angel', 'angel'], ['dhan', 'dhan'], ['upstox', 'upstox'], ['shoonya', 'noren']] as const) {
      // (An empty frame cannot be given as an argument.)
      for (const vector of vectors(file).filter((v) => v.direction === 'server->client' && (v.frame === 'binary' || file === 'noren') && v.hex !== '')) {
        const { code, out, err } = await run(['decode', '--broker', broker, vector.hex]);
        if (code !== 0) {
          // Frames the official library also refuses are reported, not printed.
          expect(err, vector.name).toMatch(/^tickcast decode: frame 1: .+\n$/);
          continue;
        }
        for (const line of out.trim().split('\n')) {
          const tick = JSON.parse(line);
          // Not market data: heartbeats, Dhan's OI / previous-close / status / disconnect packets, Upstox's market status, Noren's acks.
          if (tick.heartbeat || tick.broker === undefined) continue;
          expect(tick, vector.name).toMatchObject({ token: expect.any(String), exchange: expect.any(String), mode: expect.any(String) });
          // A last price is a number, or absent where the frame carried none (depth-20 packets, an
          // Upstox feed without its LTPC): missing is not zero. Kite's and Angel's price packets always carry one.
          if ('ltp' in tick || ['zerodha', 'angel'].includes(broker) && tick.mode !== 'depth20') expect(tick.ltp, vector.name).toEqual(expect.any(Number));
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

  it('merges the Noren messages of one run per instrument, as the adapter does', async () => {
    const byName = new Map(vectors('noren').map((v) => [v.name, v.hex]));
    const { code, out } = await run(['decode', '--broker', 'shoonya', byName.get('noren/tk_nse_equity_reliance')!, byName.get('noren/tf_nse_equity_reliance_ltp')!]);
    expect(code).toBe(0);
    const [ack, update] = out.trim().split('\n').map((l) => JSON.parse(l));
    // The update carries a new last price only: the rest of the instrument's state is kept.
    expect(update.ltp).not.toBe(ack.ltp);
    expect([update.token, update.open, update.high, update.low, update.close]).toEqual([ack.token, ack.open, ack.high, ack.low, ack.close]);
    expect(ack.open).toEqual(expect.any(Number));
  });

  it('refuses an unknown broker with a usage error', async () => {
    const { code, err } = await run(['decode', '--broker', 'fyers', '00']);
    expect(code).toBe(2);
    expect(err).toContain('--broker "fyers" is not valid: expected one of zerodha, angel, dhan, upstox, shoonya, flattrade');
  });

  it('reads hex lines from standard input', () => {
    const lines = vectors('angel').slice(0, 3).map((v) => v.hex).join('\n') + '\n';
    const result = spawnSync(process.execPath, [TICKCAST_BIN, 'decode', '--broker', 'angel'], { cwd: REPO_ROOT, input: lines, encoding: 'utf8' });
    expect(result.status, result.stderr).toBe(0);
    expect(result.stdout.trim().split('\n')).toHaveLength(3);
  });
});
