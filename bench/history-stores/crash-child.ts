/**
 * The process bench/history-stores.ts kills: generates a day of ticks (the same ones the parent
 * generates for the same arguments), then appends them batch after batch to a store, telling the
 * parent after every append returned (the batch is committed). The parent sends SIGKILL mid-run.
 */
import { candidates } from './stores.js';
import { generateDay, packDayBatch } from './ticks.js';

const args = JSON.parse(process.argv[2]!) as { candidate: string; dir: string; ticks: number; symbols: number; seed: number; batch: number; sqliteSync: 'full' | 'normal' };
const day = generateDay(args.ticks, args.symbols, args.seed);
const store = await candidates({ sqliteSync: args.sqliteSync }).find((c) => c.name === args.candidate)!.open(args.dir);
process.send!({ ready: true });
for (let from = 0, n = 0; from < day.count; from += args.batch) {
  await store.append(packDayBatch(day, from, Math.min(day.count, from + args.batch)));
  process.send!({ committed: ++n });
}
await store.close();
process.send!({ finished: true });
