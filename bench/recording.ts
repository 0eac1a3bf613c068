/**
 * What recording costs the gateway, what a recorded tick takes on disk, and what kill -9 loses
 * (docs/history.md, "Recording: measured").
 *
 *  1. Cost: the real gateway (`node bin/tickcast start`, its simulator as the feed) under a
 *     scenario's load (the seed's by default), with recording off and with `--record all`,
 *     alternated within each round (off first in odd rounds, last in even ones); per run the
 *     gateway's CPU per delivery (/proc: the whole process, its main thread and the history
 *     writer's thread), deliveries/s and loss from the clients, and the recorder's counts from
 *     /api/status at both ends of the window. Medians, and record ÷ off as the median of the
 *     per-round ratios.
 *  2. Bytes per tick: the history directory after each recording run's gateway stopped ÷ the
 *     ticks in it.
 *  3. kill -9: a gateway recording `all` under a smaller load, /api/status read until SIGKILL
 *     at a random moment 1–5 s into recording; the store is then counted read-only.
 *
 *   npm run bench:recording -- [--rounds 5] [--scenario seed] [--clients N] [--rate R] [--duration S] [--kills 5] [--kill-clients 100] [--json FILE]
 */
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { createRng } from '../src/adapters/simulator/market.js';
import { ensureBuilt } from './build.js';
import { installCleanupHandlers, runMain } from './cleanup.js';
import { type CostRun, costRun } from './recording/cost.js';
import { type KillRun, READ_GAP_MS, killRun } from './recording/kill.js';
import { SCENARIOS } from './scenarios.js';
import { buildWorkload } from './workload.js';

const MODE_NAMES: Record<number, string> = { 1: 'LTP', 2: 'Quote', 3: 'Depth' };

function median(values: Array<number | null>): number | null {
  const present = values.filter((v): v is number => v !== null && Number.isFinite(v)).sort((a, b) => a - b);
  if (present.length === 0) return null;
  const mid = present.length >> 1;
  return present.length % 2 ? present[mid]! : (present[mid - 1]! + present[mid]!) / 2;
}

const fixed = (v: number | null | undefined, digits: number): string =>
  v === null || v === undefined ? '–' : v.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
const progress = (line: string): void => void process.stderr.write(`bench: ${line}\n`);

/** The cost table's columns: label, digits, and the figure of one run. */
const COLUMNS: Array<[string, number, (r: CostRun) => number | null]> = [
  ['deliveries/s', 0, (r) => r.deliveriesPerS],
  ['bus ticks/s', 0, (r) => r.busTicksPerS],
  ['lost', 0, (r) => r.lost],
  ['gateway CPU %', 1, (r) => r.cpuPct],
  ['CPU µs/delivery', 3, (r) => r.cpuUsPerDelivery],
  ['main thread µs/delivery', 3, (r) => r.mainCpuUsPerDelivery],
  ['writer thread CPU %', 1, (r) => r.writerCpuPct],
  ['writer thread µs/delivery', 3, (r) => r.writerCpuUsPerDelivery],
  ['other threads µs/delivery', 3, (r) => r.otherCpuUsPerDelivery],
  ['ticks/s recorded (written)', 0, (r) => r.writtenPerS],
  ['writer µs/tick', 1, (r) => r.writerUsPerTick],
  ['shed', 0, (r) => r.shed],
  ['failed', 0, (r) => r.failed],
  ['host busy %', 0, (r) => r.hostBusyPct],
];
/** Columns whose record ÷ off ratio is printed. */
const RATIO_COLUMNS = new Set(['deliveries/s', 'gateway CPU %', 'CPU µs/delivery', 'main thread µs/delivery', 'other threads µs/delivery']);

async function main(): Promise<number> {
  const { values } = parseArgs({
    args: process.argv.slice(2),
    options: {
      scenario: { type: 'string', default: 'seed' },
      rounds: { type: 'string', default: '5' },
      clients: { type: 'string' },
      rate: { type: 'string' },
      duration: { type: 'string' },
      record: { type: 'string', default: 'all' },
      workers: { type: 'string', default: '2' },
      kills: { type: 'string', default: '5' },
      'kill-clients': { type: 'string', default: '100' },
      seed: { type: 'string', default: '1' },
      json: { type: 'string' },
      'no-build': { type: 'boolean' },
    },
  });
  const base = SCENARIOS[values.scenario!];
  if (!base || base.steps || base.slowFraction > 0) throw new Error('--scenario must be one of seed, wide, hot, smoke');
  const scenario = {
    ...base,
    clients: values.clients ? Number(values.clients) : base.clients,
    rate: values.rate ? Number(values.rate) : base.rate,
    durationS: values.duration ? Number(values.duration) : base.durationS,
  };
  const rounds = Number(values.rounds);
  const kills = Number(values.kills);
  const seed = Number(values.seed);
  const record = values.record!;
  installCleanupHandlers();
  ensureBuilt(!values['no-build']);
  const started = performance.now();
  const spec = { symbolsPerClient: scenario.symbolsPerClient, universe: scenario.universe, modes: scenario.modes, totalRate: scenario.rate, slowFraction: 0, seed };
  const workload = buildWorkload({ ...spec, clients: scenario.clients });

  // 1 and 2: cost and bytes per tick.
  const runs: Record<'off' | 'record', CostRun[]> = { off: [], record: [] };
  for (let round = 1; round <= rounds; round++) {
    const order = round % 2 === 1 ? (['off', 'record'] as const) : (['record', 'off'] as const);
    for (const which of order) {
      const selection = which === 'off' ? 'off' : record;
      progress(`recording ${selection}, round ${round} of ${rounds} …`);
      const r = await costRun(selection, workload, { workers: Number(values.workers), warmupS: scenario.warmupS, durationS: scenario.durationS, seed });
      progress(
        `${Math.round(r.deliveriesPerS)} deliveries/s, ${r.cpuUsPerDelivery.toFixed(3)} µs/delivery, CPU ${r.cpuPct.toFixed(0)} %` +
          (r.writtenPerS === null ? '' : `, ${Math.round(r.writtenPerS)} ticks/s recorded, writer ${fixed(r.writerCpuPct, 1)} %, shed ${r.shed}, failed ${r.failed}`) +
          `, lost ${r.lost}, host ${r.hostBusyPct.toFixed(0)} %`,
      );
      for (const warning of r.warnings) progress(`gateway: ${warning}`);
      runs[which].push(r);
    }
  }

  const lines: string[] = [
    `${scenario.name} load: ${scenario.clients} clients × ${scenario.symbolsPerClient} of ${scenario.universe} symbols (LTP/Quote/Depth ${scenario.modes.join('/')}), ` +
      `${scenario.rate} ticks/s in (${Math.round(workload.nominalDeliveriesPerS)} deliveries/s offered), ${scenario.durationS} s window; ` +
      `recording off vs \`${record}\`, alternated, median of ${rounds} round${rounds === 1 ? '' : 's'}`,
    '',
    `| recording | ${COLUMNS.map(([label]) => label).join(' | ')} |`,
    `|---|${COLUMNS.map(() => '---').join('|')}|`,
  ];
  for (const which of ['off', 'record'] as const) {
    lines.push(`| ${which === 'off' ? 'off' : record} | ${COLUMNS.map(([, digits, get]) => fixed(median(runs[which].map(get)), digits)).join(' | ')} |`);
  }
  const ratios = (get: (r: CostRun) => number | null): number[] =>
    runs.record.flatMap((r, i) => {
      const on = get(r);
      const off = get(runs.off[i]!);
      return on === null || off === null || off === 0 ? [] : [on / off];
    });
  lines.push(`| ${record} ÷ off | ${COLUMNS.map(([label, , get]) => (RATIO_COLUMNS.has(label) ? fixed(median(ratios(get)), 3) : '')).join(' | ')} |`);
  lines.push(
    '',
    `Per round, CPU µs/delivery off → ${record} (ratio) [host busy % off, ${record}]: ` +
      runs.record
        .map((r, i) => {
          const off = runs.off[i]!;
          return `${off.cpuUsPerDelivery.toFixed(3)} → ${r.cpuUsPerDelivery.toFixed(3)} (${(r.cpuUsPerDelivery / off.cpuUsPerDelivery).toFixed(3)}) [${off.hostBusyPct.toFixed(0)}, ${r.hostBusyPct.toFixed(0)}]`;
        })
        .join('; '),
  );

  // Bytes per tick, with the mode mix the store holds.
  const stores = runs.record.map((r) => r.store!).filter((s) => s && s.ticks > 0);
  if (stores.length > 0) {
    const mix = new Map<number, { ticks: number; payloadBytes: number }>();
    for (const s of stores)
      for (const [mode, m] of s.byMode) {
        const entry = mix.get(mode) ?? { ticks: 0, payloadBytes: 0 };
        entry.ticks += m.ticks;
        entry.payloadBytes += m.payloadBytes;
        mix.set(mode, entry);
      }
    const total = [...mix.values()].reduce((n, m) => n + m.ticks, 0);
    const payload = [...mix.values()].reduce((n, m) => n + m.payloadBytes, 0);
    lines.push(
      '',
      `| store after each recording run (gateway stopped) | ticks | bytes | bytes/tick | files | quick_check |`,
      '|---|---|---|---|---|---|',
      ...stores.map((s, i) => `| round ${i + 1} | ${fixed(s.ticks, 0)} | ${fixed(s.bytes, 0)} | ${fixed(s.bytes / s.ticks, 1)} | ${s.files} | ${s.ok ? 'ok' : 'FAILED'} |`),
      `| median | | | **${fixed(median(stores.map((s) => s.bytes / s.ticks)), 1)}** | | |`,
      '',
      `Mode mix recorded: ${[...mix.entries()]
        .sort(([a], [b]) => a - b)
        .map(([mode, m]) => `${MODE_NAMES[mode] ?? mode} ${((m.ticks / total) * 100).toFixed(0)} % (payload ${(m.payloadBytes / m.ticks).toFixed(0)} B)`)
        .join(', ')}; mean payload ${(payload / total).toFixed(0)} B/tick.`,
    );
  }

  // 3: kill -9.
  const killWorkload = buildWorkload({ ...spec, clients: Number(values['kill-clients']) });
  const rng = createRng(seed + 1);
  const killRuns: KillRun[] = [];
  for (let k = 1; k <= kills; k++) {
    const delayMs = Math.round(1000 + rng() * 4000);
    progress(`kill -9 ${k} of ${kills}, ${delayMs} ms into recording …`);
    const r = await killRun(killWorkload, seed, delayMs);
    progress(`recorded ${r.recorded}, written ${r.written}, in the store ${r.stored}: lost ${r.lost}–${Math.round(r.lostHigh)}`);
    killRuns.push(r);
  }
  if (killRuns.length > 0) {
    const ms = (ticks: number, r: KillRun): number => (ticks / r.ratePerS) * 1000;
    lines.push(
      '',
      `kill -9 while recording all: ${killWorkload.clients.length} clients × ${scenario.symbolsPerClient} of ${scenario.universe} symbols, ${scenario.rate} ticks/s in; ` +
        `/api/status read every ${READ_GAP_MS} ms until SIGKILL at a random moment 1–5 s into recording`,
      '',
      '| kill | recording s | recorded ticks/s | last read → kill ms | recorded (last read) | written (last read) | in the store | lost ≥ | lost ≤ (est.) | lost ms ≥ | lost ms ≤ | acknowledged missing | quick_check |',
      '|---|---|---|---|---|---|---|---|---|---|---|---|---|',
      ...killRuns.map(
        (r, i) =>
          `| ${i + 1} | ${r.recordingS.toFixed(1)} | ${fixed(r.ratePerS, 0)} | ${r.lastReadAgeMs.toFixed(1)} | ${r.recorded} | ${r.written} | ${r.stored} | ${r.lost} | ${Math.round(r.lostHigh)} | ${ms(r.lost, r).toFixed(0)} | ${ms(r.lostHigh, r).toFixed(0)} | ${r.writtenMissing} | ${r.storeOk ? 'ok' : 'FAILED'} |`,
      ),
      `| median | | ${fixed(median(killRuns.map((r) => r.ratePerS)), 0)} | ${fixed(median(killRuns.map((r) => r.lastReadAgeMs)), 1)} | | | | ${fixed(median(killRuns.map((r) => r.lost)), 0)} | ${fixed(median(killRuns.map((r) => r.lostHigh)), 0)} | ${fixed(median(killRuns.map((r) => ms(r.lost, r))), 0)} | ${fixed(median(killRuns.map((r) => ms(r.lostHigh, r))), 0)} | ${Math.max(...killRuns.map((r) => r.writtenMissing))} (max) | |`,
    );
  }

  const elapsedS = (performance.now() - started) / 1000;
  process.stdout.write(`${lines.join('\n')}\n\n_recording bench took ${elapsedS.toFixed(0)} s_\n`);
  if (values.json) {
    const strip = (r: CostRun) => ({ ...r, store: r.store && { ...r.store, byMode: Object.fromEntries(r.store.byMode) } });
    writeFileSync(
      values.json,
      JSON.stringify({ scenario: scenario.name, clients: scenario.clients, rate: scenario.rate, record, rounds, off: runs.off.map(strip), recording: runs.record.map(strip), kills: killRuns, elapsed_s: Number(elapsedS.toFixed(1)) }, null, 2) + '\n',
    );
    progress(`wrote ${values.json}`);
  }
  return 0;
}

runMain('bench', main);
