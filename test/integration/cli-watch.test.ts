/**
 * `tickcast watch`: as a real child process (non-terminal output: one plain line per tick)
 * against a gateway process found through the registry or given by --url; its usage errors;
 * and, in process with a pretend terminal, the in-place table.
 */
import { Command } from 'commander';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ZmqPublisher } from '../../src/bus/zeromq.js';
import { registerWatchCommand } from '../../src/cli/watch.js';
import { type GatewayProcess, TICKCAST_BIN, killSpawnedProcesses, makeTempDir, removeDir, runCli, runProcess, startGatewayProcess, tickcastEnv } from '../helpers/cli.js';
import { sleep, waitFor } from '../helpers/client.js';
import { type TestInstance, startTestInstance } from '../helpers/instance.js';

const PRICE = '\\d+\\.\\d{2}';

describe('tickcast watch (child process, not a terminal)', () => {
  let dir: string;
  let gw: GatewayProcess;
  let key: string;
  beforeAll(async () => {
    dir = makeTempDir();
    gw = await startGatewayProcess({ dataDir: dir, env: { TICKCAST_SIM_RATE: '10' } });
    key = gw.devKey!;
    expect(key).toMatch(/^[0-9a-f]{64}$/);
  });
  afterAll(async () => {
    await killSpawnedProcesses();
    removeDir(dir);
  });

  it('finds the instance in the registry and prints a line per tick with the prices', async () => {
    const result = await runCli(['watch', '--api-key-env', 'WATCH_KEY', '--mode', 'quote', '--count', '8', 'NSE:RELIANCE', 'NSE_INDEX:NIFTY', 'NSE:NOSUCH'], {
      dataDir: dir,
      env: { WATCH_KEY: key },
    });
    expect(result.code, result.stderr).toBe(0);
    const lines = result.stdout.trim().split('\n');
    expect(lines).toHaveLength(8);
    const line = new RegExp(`^(NSE:RELIANCE|NSE_INDEX:NIFTY) ltp=${PRICE} chg=[+-]?${PRICE} chg%=[+-]?${PRICE} open=${PRICE} high=${PRICE} low=${PRICE}( vol=\\d+)? time=\\S+Z seq=\\d+$`);
    for (const l of lines) expect(l).toMatch(line);
    expect(new Set(lines.map((l) => l.split(' ')[0]))).toEqual(new Set(['NSE:RELIANCE', 'NSE_INDEX:NIFTY']));
    expect(result.stderr).toContain('tickcast watch: NSE:NOSUCH: Token not found for NOSUCH on NSE');
  });

  it('--url and --api-key, depth mode: best bid and ask', async () => {
    const result = await runCli(['watch', '--url', gw.url, '--api-key', key, '--mode', 'depth', '--count', '3', 'NSE:TCS'], { dataDir: dir });
    expect(result.code, result.stderr).toBe(0);
    const lines = result.stdout.trim().split('\n');
    expect(lines).toHaveLength(3);
    for (const l of lines) expect(l).toMatch(new RegExp(`^NSE:TCS ltp=${PRICE} .* bid=${PRICE}x\\d+ ask=${PRICE}x\\d+ time=`));
  });

  it('stops and exits 0 when its reader goes away (`| head -n 2`)', async () => {
    const command = `${JSON.stringify(process.execPath)} ${JSON.stringify(TICKCAST_BIN)} watch --url ${gw.url} --api-key ${key} NSE:INFY NSE:TCS | head -n 2; echo "watch exit \${PIPESTATUS[0]}" >&2`;
    // The bound only catches a watch that keeps running after head is gone.
    const result = await runProcess('bash', ['-c', command], { env: tickcastEnv(dir), timeoutMs: 20_000 });
    expect(result.stdout.trim().split('\n')).toHaveLength(2);
    expect(result.stderr).toContain('watch exit 0');
  });

  it('LTP mode by default', async () => {
    const result = await runCli(['watch', '--api-key', key, '--count', '2', 'NSE:INFY'], { dataDir: dir });
    expect(result.code, result.stderr).toBe(0);
    for (const l of result.stdout.trim().split('\n')) expect(l).toMatch(new RegExp(`^NSE:INFY ltp=${PRICE} time=\\S+ seq=\\d+$`));
  });

  it('a refused key, a gateway that is not running, or only unknown symbols: exit 1 with the reason', async () => {
    const badKey = await runCli(['watch', '--api-key', 'f'.repeat(64), 'NSE:TCS'], { dataDir: dir });
    expect(badKey.code).toBe(1);
    expect(badKey.stderr).toBe(`tickcast watch: cannot watch ${gw.url}: Invalid API key [AUTHENTICATION_ERROR]\n`);
    expect(badKey.stdout).toBe('');

    const noGateway = await runCli(['watch', '--instance', 'elsewhere', '--api-key', key, 'NSE:TCS'], { dataDir: dir });
    expect(noGateway.code).toBe(1);
    expect(noGateway.stderr).toMatch(/^tickcast watch: no gateway of instance "elsewhere" is running \(registry sqlite:.*\); start one, or pass --url\n$/);

    const unknown = await runCli(['watch', '--api-key', key, 'NSE:NOSUCH'], { dataDir: dir });
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain('NSE:NOSUCH: Token not found for NOSUCH on NSE');
  });

  it('bad arguments: exit 2 with one clear line, nothing on stdout', async () => {
    const cases: Array<[string[], RegExp]> = [
      [['watch', '--api-key', key], /missing required argument 'instruments'/],
      [['watch', '--api-key', key, 'RELIANCE'], /^tickcast: instrument "RELIANCE" must be EXCHANGE:SYMBOL, for example NSE:RELIANCE\n$/],
      [['watch', '--api-key', key, '--mode', 'full', 'NSE:TCS'], /^tickcast: --mode "full" is not valid: expected ltp, quote or depth\n$/],
      [['watch', '--api-key', key, '--count', '0', 'NSE:TCS'], /^tickcast: --count "0" is not valid: expected a whole number greater than 0\n$/],
      [['watch', '--api-key', key, '--stale-after', '0', 'NSE:TCS'], /^tickcast: --stale-after "0" is not valid: expected a number of seconds greater than 0\n$/],
      [['watch', '--api-key', key, '--stale-after', 'soon', 'NSE:TCS'], /^tickcast: --stale-after "soon" is not valid: expected a number of seconds greater than 0\n$/],
      [['watch', 'NSE:TCS'], /^tickcast: an API key is required: give --api-key KEY or --api-key-env NAME\n$/],
      [['watch', '--api-key', key, '--api-key-env', 'X', 'NSE:TCS'], /^tickcast: give --api-key or --api-key-env, not both\n$/],
      [['watch', '--api-key-env', 'WATCH_TEST_UNSET_VAR', 'NSE:TCS'], /^tickcast: --api-key-env: environment variable WATCH_TEST_UNSET_VAR is not set\n$/],
      [['watch', '--api-key', key, '--url', 'http://127.0.0.1:1', 'NSE:TCS'], /^tickcast: --url "http:\/\/127.0.0.1:1" is not valid: expected ws:\/\/HOST:PORT or wss:\/\/HOST:PORT\n$/],
    ];
    for (const [args, message] of cases) {
      const result = await runCli(args, { dataDir: dir });
      expect(result.code, args.join(' ')).toBe(2);
      expect(result.stderr).toMatch(message);
      expect(result.stdout).toBe('');
    }
  });
});

/** `tickcast watch` run in process with a pretend terminal: its output, and the drawings in it. */
function watchOnTerminal(args: string[]): { out: () => string; err: () => string; last: () => string[]; drawings: () => string[][]; stop: () => Promise<number> } {
  let out = '';
  let err = '';
  let exit = -1;
  let stop: () => void = () => {};
  const program = new Command('tickcast').exitOverride();
  registerWatchCommand(program, { out: (t) => void (out += t), err: (t) => void (err += t) }, (code) => (exit = code), {
    terminal: { isTTY: true, columns: 200 },
    stopSignal: () => new Promise((resolve) => (stop = resolve)),
  });
  const running = program.parseAsync(['node', 'tickcast', 'watch', ...args]);
  // Each drawing is every line cleared and rewritten; the first one follows the cursor hiding.
  const drawings = (): string[][] =>
    out
      .split(/\x1b\[\d+A|\x1b\[\?25[lh]/)
      .map((d) => d.split('\n').filter((l) => l.startsWith('\r\x1b[2K')).map((l) => l.slice(5)))
      .filter((lines) => lines.length > 0);
  return {
    out: () => out,
    err: () => err,
    drawings,
    last: () => drawings().at(-1) ?? [],
    stop: async () => {
      stop();
      await running;
      return exit;
    },
  };
}

describe('tickcast watch on a terminal (in process)', () => {
  let gw: TestInstance;
  beforeAll(async () => {
    gw = await startTestInstance();
  });
  afterAll(() => gw.stop());

  it('draws a table once, then redraws it in place with the latest prices and their ages', async () => {
    const key = await gw.createKey('watcher');
    const watch = watchOnTerminal(['--url', gw.url, '--api-key', key, '--mode', 'quote', 'NSE:RELIANCE', 'NSE:SBIN']);
    const redraws = (): number => watch.out().split('\x1b[4A').length - 1; // up over header, two rows and status
    await waitFor(() => redraws() >= 3, 10_000);
    expect(await watch.stop()).toBe(0);
    expect(watch.err()).toBe('');
    const out = watch.out();
    expect(out.startsWith('\x1b[?25l')).toBe(true); // cursor hidden while drawing…
    expect(out.endsWith('\x1b[?25h')).toBe(true); // …and shown again at the end

    // The last drawing: every line cleared and rewritten, the rows with prices and ages.
    const lines = watch.last();
    expect(lines).toHaveLength(4);
    expect(lines[0]).toMatch(/^INSTRUMENT\s+LTP\s+CHG\s+CHG%\s+OPEN\s+HIGH\s+LOW\s+VOLUME\s+TIME\s+AGE$/);
    expect(lines[1]).toMatch(new RegExp(`^NSE:RELIANCE\\s+${PRICE}\\s+[+-]?${PRICE}\\s+[+-]?${PRICE}%\\s+${PRICE}\\s+${PRICE}\\s+${PRICE}\\s+\\d+\\s+\\d\\d:\\d\\d:\\d\\d\\.\\d{3}\\s+\\d\\.\\ds$`));
    expect(lines[2]).toMatch(new RegExp(`^NSE:SBIN\\s+${PRICE}`));
    // The feed's state leads once the gateway has said it (it may say so right after authentication).
    expect(lines[3]).toMatch(new RegExp(`^(feed simulator live · )?connected · simulator Quote · ${gw.url}$`));
  });

  it('marks every row while the feed is down, and the status line says so; live again, the marks go', async () => {
    const key = await gw.createKey('watcher-down');
    const watch = watchOnTerminal(['--url', gw.url, '--api-key', key, 'NSE:TCS', 'NSE:INFY']);
    const priced = (lines: string[]): boolean => lines.length === 4 && lines.slice(1, 3).every((l) => new RegExp(`^\\S+\\s+${PRICE}\\s`).test(l));
    await waitFor(() => priced(watch.last()), 10_000);
    const simulator = gw.gateway.feeds.adapter('simulator')!;
    try {
      await simulator.stop();
      await waitFor(() => watch.last()[3]?.startsWith('feed simulator down') === true, 10_000);
      const down = watch.last();
      for (const row of down.slice(1, 3)) expect(row).toMatch(new RegExp(`^NSE:\\w+\\s+${PRICE}\\s+.*\\s{2}feed down$`));
    } finally {
      await simulator.start();
      await gw.gateway.replay('simulator');
    }
    await waitFor(() => watch.last()[3]?.startsWith('feed simulator live · ') === true, 10_000);
    for (const row of watch.last().slice(1, 3)) expect(row).not.toMatch(/feed|stale|no connection/);
    expect(await watch.stop()).toBe(0);
  });
});

describe('tickcast watch on a terminal: a stream that stops ticking', () => {
  let gw: TestInstance;
  let publisher: ZmqPublisher;
  beforeAll(async () => {
    // No adapter: ticks come only from this test's publisher, so a stream stops when the test stops.
    gw = await startTestInstance({ TICKCAST_FEED: 'none' });
    publisher = new ZmqPublisher({ endpoint: gw.busEndpoint });
  });
  afterAll(async () => {
    await publisher.close();
    await gw.stop();
  });

  it('keeps redrawing without ticks: the age grows and the row is marked stale', async () => {
    const key = await gw.createKey('watcher-stale');
    const watch = watchOnTerminal(['--url', gw.url, '--api-key', key, '--stale-after', '1', 'NSE:RELIANCE']);
    const row = (): string => watch.last()[1] ?? '';
    // Published until it shows (a tick sent before the subscription exists is missed), then never again.
    const deadline = Date.now() + 10_000;
    while (!row().includes('1418.25')) {
      if (Date.now() > deadline) throw new Error(`no tick shown; last drawing:\n${watch.last().join('\n')}`);
      publisher.publish('NSE_RELIANCE_LTP', JSON.stringify({ ltp: 1418.25, timestamp: Date.now() }));
      await sleep(50);
    }
    const drawingsBefore = watch.drawings().length;
    await waitFor(() => row().endsWith('  stale'), 10_000);
    // Ages shown after the last tick keep growing: redrawn by the timer alone.
    await waitFor(() => watch.drawings().length >= drawingsBefore + 3, 10_000);
    const ages = watch
      .drawings()
      .slice(drawingsBefore)
      .map((lines) => /(\d+\.\d)s(  stale)?$/.exec(lines[1] ?? '')?.[1])
      .filter((age): age is string => age !== undefined)
      .map(Number);
    expect(ages.length).toBeGreaterThanOrEqual(3);
    expect(ages.at(-1)!).toBeGreaterThan(ages[0]!);
    expect(ages).toEqual([...ages].sort((a, b) => a - b));
    // No feed has reported a state here, so the status line names none.
    expect(watch.last()[2]).toBe(`connected · simulator LTP · ${gw.url}`);
    expect(await watch.stop()).toBe(0);
  });
});
