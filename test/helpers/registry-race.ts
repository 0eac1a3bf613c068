/**
 * A child process for registry tests: opens the registry, prints `ready`, waits for `go` on stdin,
 * claims the entry described on the command line with its own pid, prints the result as JSON and
 * then stays alive (holding its claim) until killed, so tests can race real processes and
 * `kill -9` them.
 *
 *   node --import tsx test/helpers/registry-race.ts '{"url":"sqlite:/tmp/x.db","name":"race","resources":[]}'
 *
 * Tests import `raceClaim`, which runs such children and returns their results.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { systemClock } from '../../src/clock.js';
import { openRegistry } from '../../src/registry/open.js';

export interface RaceArgs {
  url: string;
  redisPrefix?: string;
  instance?: string;
  name: string;
  resources: string[];
}

export interface RaceResult {
  pid: number;
  ok: boolean;
  id?: string;
  holderPid?: number;
  conflict?: string;
  error?: string;
}

async function main(): Promise<void> {
  const args = JSON.parse(process.argv[2] ?? '{}') as RaceArgs;
  const registry = await openRegistry(args.url, { clock: systemClock, redisPrefix: args.redisPrefix });
  const lines = readline.createInterface({ input: process.stdin });
  const go = new Promise<void>((resolve) => lines.on('line', (line) => line.trim() === 'go' && resolve()));
  process.stdout.write('ready\n');
  await go;
  let result: RaceResult;
  try {
    const claim = await registry.claim({
      id: randomUUID(),
      instance: args.instance ?? 'race',
      role: 'gateway',
      name: args.name,
      pid: process.pid,
      host: os.hostname(),
      endpoints: {},
      resources: args.resources,
      startedAt: Date.now(),
    });
    result = claim.ok
      ? { pid: process.pid, ok: true, id: claim.entry.id }
      : { pid: process.pid, ok: false, holderPid: claim.holder.pid, conflict: claim.conflict };
  } catch (err) {
    result = { pid: process.pid, ok: false, error: (err as Error).message };
  }
  process.stdout.write(`${JSON.stringify(result)}\n`);
  // Hold the claim until killed, as a running gateway would.
  setInterval(() => undefined, 60_000);
}

export interface Racers {
  results: RaceResult[];
  /** SIGKILLs every child and waits until each is gone (reaped, so its pid is really dead). */
  kill(): Promise<void>;
}

const HELPER = fileURLToPath(import.meta.url);
const REPO = path.resolve(path.dirname(HELPER), '..', '..');

/** Starts `count` children, lets them claim at the same moment once all are ready, and collects their results. */
export async function raceClaim(count: number, args: RaceArgs): Promise<Racers> {
  const children: ChildProcess[] = [];
  const kill = async (): Promise<void> => {
    await Promise.all(
      children.map((child) => {
        if (child.exitCode !== null || child.signalCode !== null) return undefined;
        const gone = new Promise((resolve) => child.once('exit', resolve));
        child.kill('SIGKILL');
        return gone;
      }),
    );
  };
  try {
    const lines = Array.from({ length: count }, () => {
      const child = spawn(process.execPath, ['--import', 'tsx', HELPER, JSON.stringify(args)], {
        cwd: REPO,
        stdio: ['pipe', 'pipe', 'pipe'],
      });
      children.push(child);
      let stderr = '';
      child.stderr?.on('data', (chunk) => (stderr += chunk.toString()));
      const output = readline.createInterface({ input: child.stdout! });
      const queue: string[] = [];
      const waiters: ((line: string) => void)[] = [];
      output.on('line', (line) => {
        const waiter = waiters.shift();
        if (waiter) waiter(line);
        else queue.push(line);
      });
      const next = (): Promise<string> =>
        new Promise((resolve, reject) => {
          const queued = queue.shift();
          if (queued !== undefined) return resolve(queued);
          waiters.push(resolve);
          child.once('exit', (code) => reject(new Error(`race child exited (${code}): ${stderr.trim()}`)));
        });
      return { child, next };
    });
    const ready = await Promise.all(lines.map(({ next }) => next()));
    if (!ready.every((line) => line === 'ready')) throw new Error(`race children not ready: ${ready.join(' | ')}`);
    for (const { child } of lines) child.stdin!.write('go\n');
    const results = await Promise.all(lines.map(async ({ next }) => JSON.parse(await next()) as RaceResult));
    return { results, kill };
  } catch (err) {
    await kill();
    throw err;
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((err: unknown) => {
    process.stdout.write(`${JSON.stringify({ pid: process.pid, ok: false, error: (err as Error).message })}\n`);
    process.exit(1);
  });
}
