/**
 * V8 heap settings for a process that runs a gateway. They hold for the whole process, so the
 * entry points that start one apply them (the roles in roles/: the gateway, the NATS node, the
 * cluster worker's main), not the Gateway class: every way of running one (`tickcast start`, its
 * workers, tests through startGateway) gets them without flags on the command line.
 *
 * `--heap-growing-percent`: after a full collection V8 lets the old generation grow to a multiple
 * of what was live before collecting again, up to 4× on a machine with a large heap limit. A
 * gateway's old generation is mostly sessions and subscriptions, and under steady load almost
 * nothing more is promoted, so what was promoted while thousands of clients connected and
 * subscribed (requests, replies, promises of the subscribe chain) stayed resident indefinitely:
 * about 6 KB per client with 5000 clients. Growing by 25 % of what is live collects it soon after
 * the burst; CPU per delivery under load did not change measurably (docs/benchmarks.md).
 *
 * Not set here: a smaller young generation (`--max-semi-space-size`) would save up to ~30 MB more,
 * but V8 fixes its size at start-up and capping it cost ~20 % CPU per delivery when measured.
 *
 * An operator's own value wins: `node --heap-growing-percent=N bin/tickcast start` (node does not
 * accept this flag in NODE_OPTIONS).
 */
import v8 from 'node:v8';

export const HEAP_GROWING_PERCENT = 25;

/** The flags to set, given node's command-line options (V8 accepts `_` for `-` in flag names). */
export function heapFlags(execArgv: readonly string[]): string[] {
  const given = execArgv.map((arg) => arg.replaceAll('_', '-'));
  const has = (flag: string): boolean => given.some((arg) => arg === `--${flag}` || arg.startsWith(`--${flag}=`));
  return has('heap-growing-percent') ? [] : [`--heap-growing-percent=${HEAP_GROWING_PERCENT}`];
}

/** Applies `heapFlags` to this process (idempotent). */
export function tuneHeap(): void {
  for (const flag of heapFlags(process.execArgv)) v8.setFlagsFromString(flag);
}
