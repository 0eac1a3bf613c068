/** The broker adapter contract (broker-contract.ts) for Zerodha Kite and Angel SmartAPI, each against its fake server. */
import { AngelAdapter } from '../../src/adapters/angel/angel-adapter.js';
import type { BrokerCredentials } from '../../src/adapters/broker.js';
import { KiteAdapter } from '../../src/adapters/zerodha/kite-adapter.js';
import type { Mode } from '../../src/protocol/modes.js';
import { formatTopic } from '../../src/protocol/topics.js';
import { FakeAngel, encodeAngelPacket } from '../helpers/fake-angel.js';
import { FakeKite, kiteFrame, kitePacket } from '../helpers/fake-kite.js';
import { brokerContract } from './broker-contract.js';

const RELIANCE = { exchange: 'NSE', symbol: 'RELIANCE' };

const KITE_TOKEN = 738561;
const KITE_MODE: Record<string, Mode> = { ltp: 1, quote: 2, full: 3 };

brokerContract({
  name: 'Zerodha',
  feed: 'zerodha.alice',
  credentials: { apiKey: 'kite-app-key', accessToken: 'token-day-1' },
  renewed: { apiKey: 'kite-app-key', accessToken: 'token-day-2' },
  expired: { apiKey: 'kite-app-key', accessToken: 'token-day-0' },
  secret: (credentials) => credentials.accessToken,
  stream: RELIANCE,
  ltpTopic: formatTopic('zerodha.alice', 'NSE', 'RELIANCE', 1),
  symbols: { lookup: (broker, exchange, symbol) => (broker === 'zerodha' && exchange === 'NSE' && symbol === 'RELIANCE' ? { token: `${KITE_TOKEN}`, brexchange: 'NSE' } : undefined) },
  adapter: (options) => new KiteAdapter(options),
  async server(credentials) {
    const fake = await FakeKite.start({ apiKey: credentials.apiKey, accessToken: credentials.accessToken, heartbeatMs: 50 });
    return {
      url: fake.url,
      connections: () => fake.connections,
      open: () => fake.openConnections().length,
      attempts: () => fake.upgrades.map((u) => ({ secret: u.accessToken ?? '', accepted: u.accepted })),
      accept(next: BrokerCredentials) {
        fake.apiKey = next.apiKey;
        fake.accessToken = next.accessToken;
      },
      held(connection) {
        // A token counts as held once its `mode` arrived (Kite's default before it is quote).
        let subscribes = 0;
        let mode: Mode | undefined;
        for (const m of fake.messages) {
          if (m.connection !== connection) continue;
          const tokens = (m.a === 'mode' ? (m.v as [string, number[]])[1] : (m.v as number[])) ?? [];
          if (!tokens.includes(KITE_TOKEN)) continue;
          if (m.a === 'subscribe') subscribes += 1;
          if (m.a === 'unsubscribe') mode = undefined;
          if (m.a === 'mode') mode = KITE_MODE[(m.v as [string, number[]])[0]];
        }
        return { subscribes, modes: mode === undefined ? [] : [mode] };
      },
      tick: (ltp) => fake.send(kiteFrame([kitePacket(8, { instrument_token: KITE_TOKEN, last_price: ltp })])),
      garbage() {
        for (const frame of [Buffer.from([0xff]), Buffer.from([0, 1, 0, 9, 1, 2]), Buffer.from('ff'.repeat(40), 'hex'), kiteFrame([Buffer.alloc(13)])]) fake.send(frame);
        fake.sendText('not json at all');
      },
      silent: (on) => (on ? fake.goSilent() : fake.resume()),
      drop: () => fake.drop(),
      close: () => fake.close(),
    };
  },
});

const ANGEL_GOOD: BrokerCredentials = { apiKey: 'angel-api-key', accessToken: 'jwt-1', clientCode: 'A123456', feedToken: 'feed-1' };

brokerContract({
  name: 'Angel',
  feed: 'angel.alice',
  credentials: ANGEL_GOOD,
  renewed: { ...ANGEL_GOOD, accessToken: 'jwt-2', feedToken: 'feed-2' },
  expired: { ...ANGEL_GOOD, accessToken: 'jwt-0', feedToken: 'feed-0' },
  secret: (credentials) => credentials.feedToken ?? '',
  stream: RELIANCE,
  ltpTopic: formatTopic('angel.alice', 'NSE', 'RELIANCE', 1),
  symbols: { lookup: (broker, exchange, symbol) => (broker === 'angel' && exchange === 'NSE' && symbol === 'RELIANCE' ? { token: '2885', brexchange: 'NSE' } : undefined) },
  adapter: (options) => new AngelAdapter({ ...options, pingMs: 100 }),
  async server(credentials) {
    const headers = (c: BrokerCredentials) => ({ authorization: `Bearer ${c.accessToken}`, apiKey: c.apiKey, clientCode: c.clientCode!, feedToken: c.feedToken! });
    const fake = await FakeAngel.start(headers(credentials));
    return {
      url: fake.url,
      connections: () => fake.connections,
      open: () => fake.open,
      attempts: () => fake.attempts.map((a) => ({ secret: a.feedToken, accepted: a.accepted === true })),
      accept: (next) => fake.expect(headers(next)),
      held(connection) {
        let subscribes = 0;
        const modes = new Set<Mode>();
        for (const request of fake.requestsOn(connection)) {
          const names = request.params.tokenList.some((group) => group.exchangeType === 1 && group.tokens.includes('2885'));
          if (!names) continue;
          if (request.action === 1) {
            subscribes += 1;
            modes.add(request.params.mode as Mode);
          } else modes.delete(request.params.mode as Mode);
        }
        return { subscribes, modes: [...modes].sort() };
      },
      tick: (ltp) => fake.push(encodeAngelPacket({ mode: 1, exchangeType: 1, token: '2885', ltp })),
      garbage() {
        for (const frame of [Buffer.from([1]), Buffer.from('ff'.repeat(51), 'hex'), Buffer.from([9, 1, 0x32])]) fake.push(frame);
        fake.sendText('not json at all');
      },
      silent(on) {
        fake.silent = on;
      },
      drop: () => fake.drop(),
      close: () => fake.close(),
    };
  },
});
