/**
 * Ctrl-C with output piped (`tickcast start | tee log`): the signal stops the reader too, so the
 * gateway's next writes fail with EPIPE. It must still shut down gracefully: exit 0, its registry
 * entry removed, its port free. Played with real processes: a child whose pipes the test closes,
 * and a real `| head -c 100` pipeline signalled as a terminal's Ctrl-C signals it (the whole
 * process group).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { REPO_ROOT, TICKCAST_BIN, makeTempDir, removeDir, runCli, tickcastEnv } from '../helpers/cli.js';
import { sleep } from '../helpers/client.js';

/** Hang catchers only. */
const START_MS = 20_000;
const STOP_MS = 15_000;

const dirs: string[] = [];
const children: ChildProcess[] = [];
afterEach(() => {
  for (const child of children.splice(0)) {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
  for (const dir of dirs.splice(0)) removeDir(dir);
});

function tempRoot(): string {
  const root = makeTempDir('tickcast-piped-');
  dirs.push(root);
  return root;
}

interface Listed {
  instance: string;
  pid: number;
  alive: boolean;
  endpoints: { ws: string | null };
}

async function registered(root: string): Promise<Listed[]> {
  const result = await runCli(['instances', '--json'], { dataDir: root });
  expect(result.code, result.stderr).toBe(0);
  return JSON.parse(result.stdout) as Listed[];
}

/** Resolves when nothing listens on `port` any more (we can bind it ourselves). */
function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

const portOf = (url: string): number => Number(/:(\d+)$/.exec(url)![1]);

async function until<T>(read: () => Promise<T>, accept: (value: T) => boolean, what: string, ms: number): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await read();
    if (accept(value)) return value;
    if (Date.now() > deadline) throw new Error(`${what}: gave up; last ${JSON.stringify(value)}`);
    await sleep(100);
  }
}

describe('Ctrl-C with output piped', () => {
  it('the reader of stdout and stderr gone: the gateway still stops gracefully, exit 0, unregistered, port free', async () => {
    const root = tempRoot();
    const child = spawn(process.execPath, [TICKCAST_BIN, 'start', '--instance', 'piped'], {
      cwd: REPO_ROOT,
      env: tickcastEnv(root, { WEBSOCKET_PORT: '0', ZMQ_PORT: '0', TICKCAST_LOG_LEVEL: 'info' }),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.push(child);
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
    let stdout = '';
    child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    await until(async () => stdout, (text) => /Dev key|API keys/.test(text), 'the start summary', START_MS);
    const url = /WebSocket\s+(ws:\/\/\S+)/.exec(stdout)![1]!;
    expect((await registered(root)).map((e) => e.instance)).toEqual(['piped']);

    // As when `tee` dies with the Ctrl-C: nobody reads the pipes any more.
    child.stdout!.destroy();
    child.stderr!.destroy();
    child.kill('SIGINT');
    const timeout = sleep(STOP_MS).then(() => 'hung' as const);
    const result = await Promise.race([exited, timeout]);
    expect(result).toEqual({ code: 0, signal: null });
    expect(await registered(root)).toEqual([]);
    expect(await portIsFree(portOf(url))).toBe(true);
  });

  it('`tickcast start 2>&1 | head -c 100`, the process group signalled: graceful, unregistered, port free', async () => {
    const root = tempRoot();
    // head exits after 100 bytes of the summary: every later write of the gateway meets a closed pipe.
    const shell = spawn('sh', ['-c', `exec "${process.execPath}" "${TICKCAST_BIN}" start --instance headed 2>&1 | head -c 100`], {
      cwd: REPO_ROOT,
      env: tickcastEnv(root, { WEBSOCKET_PORT: '0', ZMQ_PORT: '0', TICKCAST_LOG_LEVEL: 'info' }),
      stdio: ['ignore', 'pipe', 'inherit'],
      detached: true, // a process group of its own, as a terminal's job is
    });
    children.push(shell);
    let shown = '';
    shell.stdout!.setEncoding('utf8').on('data', (chunk: string) => (shown += chunk));
    const [gateway] = await until(() => registered(root), (entries) => entries.some((e) => e.alive && e.endpoints.ws), 'the gateway registered', START_MS);
    expect(gateway!.instance).toBe('headed');
    await until(async () => shown.length, (n) => n === 100, 'head to take its 100 bytes', START_MS);

    process.kill(-shell.pid!, 'SIGINT');
    // Gone, or a zombie waiting for whoever adopted it: either way it has exited.
    const gone = (): boolean => {
      try {
        return readFileSync(`/proc/${gateway!.pid}/stat`, 'utf8').split(') ')[1]!.startsWith('Z');
      } catch {
        return true;
      }
    };
    await until(async () => gone(), (done) => done, 'the gateway to exit', STOP_MS);
    // A crash would have left its entry behind (listed, not alive); a graceful stop removes it.
    expect(await registered(root)).toEqual([]);
    expect(await portIsFree(portOf(gateway!.endpoints.ws!))).toBe(true);
  });
});
