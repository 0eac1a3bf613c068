/** Corker: sockets corked during a burst are uncorked once at its end, after the batches are written. */
import { describe, expect, it } from 'vitest';
import { type Corkable, Corker } from '../../src/gateway/corker.js';

const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** A session whose socket records cork and uncork calls into a shared log. */
function session(name: string, log: string[], tcp = true): Corkable {
  return {
    corked: false,
    tcp: tcp ? ({ cork: () => log.push(`cork ${name}`), uncork: () => log.push(`uncork ${name}`) } as unknown as Corkable['tcp']) : undefined,
    flushBatch: () => log.push(`batch ${name}`),
  };
}

describe('Corker', () => {
  it('corks a socket once per burst and uncorks it on the next turn', async () => {
    const log: string[] = [];
    const corker = new Corker();
    const a = session('a', log);
    corker.cork(a);
    corker.cork(a);
    expect(a.corked).toBe(true);
    expect(log).toEqual(['cork a']);
    await nextTurn();
    expect(log).toEqual(['cork a', 'uncork a']);
    expect(a.corked).toBe(false);
    // A new burst corks it again.
    corker.cork(a);
    await nextTurn();
    expect(log).toEqual(['cork a', 'uncork a', 'cork a', 'uncork a']);
  });

  it('writes the deferred batches before uncorking, so they leave in the same flush', async () => {
    const log: string[] = [];
    const corker = new Corker();
    const a = session('a', log);
    const b = session('b', log);
    corker.cork(a);
    corker.defer(b);
    corker.cork(b);
    corker.defer(a);
    expect(log).toEqual(['cork a', 'cork b']);
    await nextTurn();
    expect(log).toEqual(['cork a', 'cork b', 'batch b', 'batch a', 'uncork a', 'uncork b']);
  });

  it('skips a session without a socket, and runs each defer once', async () => {
    const log: string[] = [];
    const corker = new Corker();
    const gone = session('gone', log, false);
    corker.cork(gone);
    expect(gone.corked).toBe(false);
    corker.defer(gone);
    corker.defer(gone);
    await nextTurn();
    expect(log).toEqual(['batch gone', 'batch gone']);
    await nextTurn();
    expect(log).toEqual(['batch gone', 'batch gone']);
  });

  it('schedules one flush per burst however many sessions it touches', async () => {
    const log: string[] = [];
    const corker = new Corker();
    for (let i = 0; i < 5; i++) corker.cork(session(String(i), log));
    await nextTurn();
    expect(log.filter((line) => line.startsWith('uncork'))).toHaveLength(5);
    // Nothing left for a later turn.
    await nextTurn();
    expect(log.filter((line) => line.startsWith('uncork'))).toHaveLength(5);
  });
});
