/**
 * Every JSON log line of a real gateway and its out-of-process adapter has each key once, through
 * a client's session, the adapter killed and restarted, and both shut down. A JSON parser keeps
 * only the last of repeated keys, so the lines are scanned raw; the scanner here is the test's
 * own, independent of the logger's.
 */
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { killSpawnedProcesses, makeTempDir, removeDir, startAdapterCliProcess, startGatewayProcess } from '../helpers/cli.js';
import { TestClient, sleep } from '../helpers/client.js';
import { logLines, waitForMessage } from '../helpers/logs.js';

const dirs: string[] = [];
afterEach(async () => {
  await killSpawnedProcesses();
  for (const dir of dirs.splice(0)) removeDir(dir);
});

/** The keys of a JSON object's top level, repeats included, read character by character. */
function rawTopLevelKeys(line: string): string[] {
  const keys: string[] = [];
  let depth = 0;
  let atKey = false;
  let i = 0;
  while (i < line.length) {
    const c = line[i]!;
    if (c === '"') {
      let j = i + 1;
      let text = '';
      while (line[j] !== '"') {
        if (j >= line.length) throw new Error(`unterminated string in ${line}`);
        text += line[j] === '\\' ? line.slice(j, j + 2) : line[j];
        j += line[j] === '\\' ? 2 : 1;
      }
      if (depth === 1 && atKey) keys.push(text);
      atKey = false;
      i = j + 1;
      continue;
    }
    if (c === '{' || c === '[') {
      depth++;
      atKey = c === '{' && depth === 1;
    } else if (c === '}' || c === ']') {
      depth--;
    } else if (c === ',' && depth === 1) {
      atKey = true;
    }
    i++;
  }
  return keys;
}

/** `[line, repeated keys]` for every JSON line with a key more than once. */
function repeats(output: string): Array<[string, string[]]> {
  const found: Array<[string, string[]]> = [];
  for (const line of output.split('\n')) {
    if (!line.startsWith('{')) continue;
    const keys = rawTopLevelKeys(line);
    const repeated = [...new Set(keys.filter((key, i) => keys.indexOf(key) !== i))];
    if (repeated.length > 0) found.push([line, repeated]);
  }
  return found;
}

describe('log lines', () => {
  it('the scan sees what a JSON parser hides', () => {
    expect(repeats('{"level":30,"pid":1,"feed":"a","x":{"feed":"b"},"pid":2,"msg":"m"}\nnot json\n{"a":"\\"a\\":","a":1}')).toEqual([
      ['{"level":30,"pid":1,"feed":"a","x":{"feed":"b"},"pid":2,"msg":"m"}', ['pid']],
      ['{"a":"\\"a\\":","a":1}', ['a']],
    ]);
    expect(repeats('{"a":[{"a":1},{"a":2}],"b":"a"}')).toEqual([]);
  });

  it('a gateway and an out-of-process adapter write no key twice, through restarts and shutdown', async () => {
    const root = makeTempDir('tickcast-logkeys-');
    dirs.push(root);
    const env = { TICKCAST_REGISTRY: `sqlite:${join(root, 'registry.db')}`, TICKCAST_REGISTRY_TTL_SECONDS: '2', TICKCAST_LOG_LEVEL: 'debug' };
    const gw = await startGatewayProcess({ dataDir: root, args: ['--instance', 'logkeys', '--feed', 'none'], env });
    const first = startAdapterCliProcess({ dataDir: root, args: ['--instance', 'logkeys', '--sim-rate', '20'], env });
    await first.ready;

    // A client's session: authentication, a subscription with an unknown symbol, ticks.
    const client = await TestClient.authenticated(gw.url, gw.devKey!);
    const symbols = [{ symbol: 'TCS', exchange: 'NSE' }, { symbol: 'NOSUCH', exchange: 'NSE' }];
    for (let attempt = 0; ; attempt++) {
      const reply = await client.request({ action: 'subscribe', symbols, mode: 3 });
      if (reply.subscriptions[0].status === 'success') break;
      if (attempt === 100) throw new Error(`not served: ${JSON.stringify(reply)}`);
      await sleep(100); // the adapter's hello may still be on its way
    }
    await client.marketData('TCS');

    // The adapter killed (the gateway marks it down), then back (welcomed, replayed), then stopped.
    first.child.kill('SIGKILL');
    await first.exited;
    const down = await waitForMessage(gw.stderr, 'adapter down');
    const second = startAdapterCliProcess({ dataDir: root, args: ['--instance', 'logkeys', '--sim-rate', '20'], env });
    await second.ready;
    await waitForMessage(gw.stderr, 'replayed subscriptions to adapter');
    await client.close();
    expect(await second.stop('SIGINT')).toBe(0);
    expect(await gw.stop('SIGINT')).toBe(0);

    const outputs = { gateway: gw.stderr(), 'first adapter': first.stderr(), 'second adapter': second.stderr() };
    for (const [name, output] of Object.entries(outputs)) {
      expect(logLines(output).length, `${name} logged`).toBeGreaterThan(2);
      expect(repeats(output), `${name}: lines with a key twice`).toEqual([]);
    }
    // `pid` is the writer's; the adapter's has a name of its own.
    expect(down).toMatchObject({ pid: gw.child.pid, adapterPid: first.child.pid });
    const messages = logLines(outputs.gateway).map((line) => line.msg);
    for (const expected of ['gateway started', 'adapter connected', 'adapter back (restarted or reconnected)', 'shutting down', 'stopped']) expect(messages).toContain(expected);
  });
});
