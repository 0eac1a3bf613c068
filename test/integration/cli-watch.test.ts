/**
 * `tickcast watch`: as a real child process (non-terminal output: one plain line per tick)
 * against a gateway process found through the registry or given by --url; its usage errors;
 * and, in process with a pretend terminal, the in-place table.
 */
import { Command } from 'commander';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { registerWatchCommand } from '../../src/cli/watch.js';
import { type GatewayProcess, killSpawnedProcesses, makeTempDir, removeDir, runCli, startGatewayProcess } from '../helpers/cli.js';
import { waitFor } from '../helpers/client.js';
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

describe('tickcast watch on a terminal (in process)', () => {
  let gw: TestInstance;
  beforeAll(async () => {
    gw = await startTestInstance();
  });
  afterAll(() => gw.stop());

  it('draws a table once, then redraws it in place with the latest prices', async () => {
    const key = await gw.createKey('watcher');
    let out = '';
    let err = '';
    let exit = -1;
    let stop: () => void = () => {};
    const program = new Command('tickcast').exitOverride();
    registerWatchCommand(program, { out: (t) => void (out += t), err: (t) => void (err += t) }, (code) => (exit = code), {
      terminal: { isTTY: true, columns: 200 },
      stopSignal: () => new Promise((resolve) => (stop = resolve)),
    });
    const running = program.parseAsync(['node', 'tickcast', 'watch', '--url', gw.url, '--api-key', key, '--mode', 'quote', 'NSE:RELIANCE', 'NSE:SBIN']);

    const redraws = (): number => out.split('\x1b[4A').length - 1; // up over header, two rows and status
    await waitFor(() => redraws() >= 3, 10_000);
    stop();
    await running;
    expect(exit).toBe(0);
    expect(err).toBe('');
    expect(out.startsWith('\x1b[?25l')).toBe(true); // cursor hidden while drawing…
    expect(out.endsWith('\x1b[?25h')).toBe(true); // …and shown again at the end

    // The last drawing: every line cleared and rewritten, the rows with prices.
    const last = out.slice(out.lastIndexOf('\x1b[4A') + 4, out.lastIndexOf('\x1b[?25h'));
    const lines = last.split('\n').filter(Boolean).map((l) => l.replace('\r\x1b[2K', ''));
    expect(lines).toHaveLength(4);
    expect(lines[0]).toMatch(/^INSTRUMENT\s+LTP\s+CHG\s+CHG%\s+OPEN\s+HIGH\s+LOW\s+VOLUME\s+TIME$/);
    expect(lines[1]).toMatch(new RegExp(`^NSE:RELIANCE\\s+${PRICE}\\s+[+-]?${PRICE}\\s+[+-]?${PRICE}%\\s+${PRICE}\\s+${PRICE}\\s+${PRICE}\\s+\\d+\\s+\\d\\d:\\d\\d:\\d\\d\\.\\d{3}$`));
    expect(lines[2]).toMatch(new RegExp(`^NSE:SBIN\\s+${PRICE}`));
    expect(lines[3]).toBe(`live · simulator Quote · ${gw.url}`);
  });
});
