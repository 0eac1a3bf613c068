/**
 * Secrets under faults: a gateway logging at its most verbose level goes through failed
 * authentications, a broker that drops the connection and then refuses the access token, and a
 * client sending garbage; neither its log nor any reply contains an API key, the pepper, or the
 * broker's API key and access token. (The redaction itself is src/observability/logger.ts.)
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type GatewayProcess, REPO_ROOT, killSpawnedProcesses, makeTempDir, removeDir, runCli, startGatewayProcess } from '../helpers/cli.js';
import { TestClient } from '../helpers/client.js';
import { FakeKite } from '../helpers/fake-kite.js';
import { LEVEL, waitForMessage } from '../helpers/logs.js';

const PEPPER = 'pepper-for-the-secrets-test-0123456789abcdef';
const KITE = { apiKey: 'kite-app-key-5ecret', accessToken: 'kite-access-token-5ecret' };
const WRONG_KEY = 'ab'.repeat(32);

let dataDir: string;
let kite: FakeKite;
let gw: GatewayProcess;
let apiKey: string;
let cliOutput = '';

beforeAll(async () => {
  dataDir = makeTempDir('tickcast-faults-');
  kite = await FakeKite.start({ ...KITE, heartbeatMs: 200 });
  const env = { API_KEY_PEPPER: PEPPER, TICKCAST_LOG_LEVEL: 'trace' };
  const cli = async (args: string[]): Promise<string> => {
    const result = await runCli([...args, '--instance', 'vault'], { dataDir, env: { ...env, KITE_API_KEY: KITE.apiKey, KITE_TOKEN: KITE.accessToken } });
    expect(result.code, result.stderr).toBe(0);
    // `keys create` shows the new key once, by design; every other command must not show a secret.
    if (args[0] !== 'keys') cliOutput += result.stdout + result.stderr;
    return result.stdout;
  };
  apiKey = JSON.parse(await cli(['keys', 'create', '--user', 'kiteuser', '--broker', 'zerodha', '--json'])).api_key;
  await cli(['symbols', 'import', '--broker', 'zerodha', `${REPO_ROOT}test/fixtures/kite-instruments.csv`]);
  await cli(['credentials', 'set', '--user', 'kiteuser', '--broker', 'zerodha', '--api-key-env', 'KITE_API_KEY', '--access-token-env', 'KITE_TOKEN']);
  gw = await startGatewayProcess({ dataDir, args: ['--instance', 'vault', '--feed', 'none'], env: { ...env, TICKCAST_KITE_URL: kite.url } });
}, 60_000);

afterAll(async () => {
  await killSpawnedProcesses();
  await kite?.close();
  removeDir(dataDir);
});

describe('secrets', () => {
  it('never reach a log line or a reply, through failed authentications, broker drops and a refused token', async () => {
    const replies: string[] = [];
    const stranger = await TestClient.connect(gw.url);
    stranger.socket.on('message', (data) => replies.push(data.toString()));
    for (const request of [{ action: 'authenticate', api_key: WRONG_KEY }, { action: 'authenticate', api_key: `${apiKey}x` }, `{"action":"authenticate","api_key":"${apiKey}"`]) {
      await stranger.request(request);
    }
    await stranger.close();

    const client = await TestClient.authenticated(gw.url, apiKey);
    replies.push(JSON.stringify(await client.request({ action: 'subscribe', symbols: [{ symbol: 'RELIANCE', exchange: 'NSE' }], mode: 1 })));
    await kite.waitFor(() => kite.openConnections().length > 0, 10_000, 'the Kite connection');
    kite.drop();
    await client.next((m) => m.type === 'feed_status' && m.status === 'reconnecting', 15_000);
    await client.next((m) => m.type === 'feed_status' && m.status === 'live', 15_000);
    // The broker stops taking the token (a re-login elsewhere): the next connect is refused.
    kite.accessToken = 'another-token';
    kite.drop();
    const refused = await client.next((m) => m.type === 'feed_status' && m.status === 'down', 20_000);
    replies.push(JSON.stringify(refused));
    await waitForMessage(gw.stderr, 'Zerodha', LEVEL.error);
    replies.push(...client.raw);
    await client.close();

    const everything = [gw.stdout(), gw.stderr(), cliOutput, ...replies].join('\n');
    expect(everything.length).toBeGreaterThan(1000); // the log is really verbose: trace level
    for (const [name, secret] of Object.entries({ apiKey, PEPPER, 'Kite API key': KITE.apiKey, 'Kite access token': KITE.accessToken })) {
      expect(everything.includes(secret), `${name} appears in the output`).toBe(false);
    }
  });
});
