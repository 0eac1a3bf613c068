/**
 * The broker adapter contract (broker-contract.ts) for the Noren adapter in its two dialects,
 * Shoonya and Flattrade, each against the fake Noren server; then what is Noren's own: the
 * connect message per dialect, a refusal in the login's answer, merging of partial updates, and
 * the vectors of test/fixtures/vectors/noren.json streamed and published with OpenAlgo's keys.
 *
 * Two places where Noren does not map one to one onto the contract's server view:
 * - Noren refuses a login in its answer (`ak`/`ck` NOT_OK), not at the upgrade: an "attempt" is a
 *   connect message, accepted when the fake answered it OK.
 * - One touchline subscription serves LTP and Quote, so the wire cannot tell mode 1 from 2: for a
 *   touchline held, `held()` reports the touchline mode the adapter holds the scrip at; depth is
 *   mode 3, from the wire. And Noren has no LTP-only message: the adapter publishes each stream
 *   once, at the mode held, and the gateway makes the lower modes' messages (last-values.ts); the
 *   publisher below does the same for the LTP topic the contract reads.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { BrokerCredentials, BrokerFeedOptions, BrokerInstrument } from '../../src/adapters/broker.js';
import { NOREN_DIALECTS, NorenAdapter, type NorenAdapterOptions, type NorenDialectName } from '../../src/adapters/noren/noren-adapter.js';
import type { BusPublisher } from '../../src/bus/bus.js';
import { systemClock } from '../../src/clock.js';
import type { FeedStatusEvent } from '../../src/feed.js';
import { silentLogger } from '../../src/observability/logger.js';
import { projectPayload } from '../../src/protocol/mode-payload.js';
import type { Mode } from '../../src/protocol/modes.js';
import { formatTopic, parseTopic } from '../../src/protocol/topics.js';
import { FakeNoren, loadNorenVectors } from '../helpers/fake-noren.js';
import { brokerContract } from './broker-contract.js';
import { until } from '../helpers/broker-kit.js';

const RELIANCE = { exchange: 'NSE', symbol: 'RELIANCE' };
const SCRIP = 'NSE|2885';
const USER = 'FA12345';

/** Publishes as given, plus the LTP message the gateway would make from a higher-mode tick. */
function withLtpProjection(inner: BusPublisher, broker: string): BusPublisher {
  return {
    publish(topic, payload) {
      inner.publish(topic, payload);
      const parsed = parseTopic(topic);
      if (parsed.kind !== 'market' || parsed.mode === 1) return;
      const ltp = projectPayload(payload, parsed.mode, 1, broker);
      if (ltp !== undefined) inner.publish(formatTopic(parsed.feed, parsed.exchange, parsed.symbol, 1), ltp);
    },
    close: () => inner.close(),
  };
}

function norenContract(dialect: NorenDialectName): void {
  const { label } = NOREN_DIALECTS[dialect];
  const feed = `${dialect}.alice`;
  const credentials: BrokerCredentials = { apiKey: '', clientCode: USER, accessToken: 'token-day-1' };
  let adapter: NorenAdapter | undefined;
  brokerContract({
    name: label,
    feed,
    credentials,
    renewed: { ...credentials, accessToken: 'token-day-2' },
    expired: { ...credentials, accessToken: 'token-day-0' },
    secret: (c) => c.accessToken,
    stream: RELIANCE,
    ltpTopic: formatTopic(feed, 'NSE', 'RELIANCE', 1),
    symbols: { lookup: (broker, exchange, symbol) => (broker === dialect && exchange === 'NSE' && symbol === 'RELIANCE' ? { token: '2885', brexchange: 'NSE' } : undefined) },
    adapter: (options) => (adapter = new NorenAdapter({ ...options, dialect, heartbeatMs: 100, publisher: withLtpProjection(options.publisher, dialect) })),
    async server(accepted) {
      const fake = await FakeNoren.start({ connect: 'a', uid: accepted.clientCode!, token: accepted.accessToken });
      return {
        url: fake.url,
        connections: () => fake.connections,
        open: () => fake.openConnections().length,
        attempts: () => fake.logins.map((login) => ({ secret: login.token, accepted: login.accepted })),
        accept(next) {
          fake.uid = next.clientCode!;
          fake.token = next.accessToken;
        },
        held(connection) {
          const subscribes = fake.sent(connection).filter((m) => (m.t === 't' || m.t === 'd') && m.scrips.includes(SCRIP)).length;
          const held = fake.held(connection).get(SCRIP);
          const modes: Mode[] = [];
          if (held?.touchline) modes.push(Math.min(adapter?.upstreamModes().get(SCRIP) ?? 2, 2) as Mode);
          if (held?.depth) modes.push(3);
          return { subscribes, modes };
        },
        tick(ltp) {
          const last = Math.max(0, ...fake.openConnections());
          const depth = fake.held(last).get(SCRIP)?.depth === true;
          fake.send({ t: depth ? 'df' : 'tf', e: 'NSE', tk: '2885', lp: (ltp / 100).toFixed(2), ft: '1718186400' });
        },
        garbage() {
          for (const text of [
            'Invalid Message',
            '[1,2,3]',
            '{"e":"NSE","tk":"2885","lp":"5.00"}',
            '{"t":"zz","e":"NSE","tk":"2885","lp":"5.00"}',
            '{"t":"tf","e":"NSE","tk":"2885","lp":"five"}',
            '{"t":"tf","e":"NSE","tk":"2885","lp":5e400}',
            '{"t":"tf","e":"NSE","tk":"2885","lp":"5.00"',
            '{"t":"tf","e":"NSE|X","tk":"2885","lp":"5.00"}',
            '{"t":"tf","e":"NSE","tk":"2885","x":' + '['.repeat(20) + ']'.repeat(20) + '}',
            '{"t":"tf","e":"NSE","tk":"2885","ts":"' + 'x'.repeat(70 * 1024) + '"}',
            '',
          ])
            fake.send(text);
          fake.sendBinary(Buffer.from([0xff, 0, 1, 2]));
        },
        silent: (on) => (on ? fake.goSilent() : fake.resume()),
        drop: () => fake.drop(),
        close: () => fake.close(),
      };
    },
  });
}

norenContract('shoonya');
norenContract('flattrade');

// ---------------------------------------------------------------------------------------------

const vectors = loadNorenVectors();
const vector = (name: string) => {
  const found = vectors.find((v) => v.name === `noren/${name}`);
  if (!found) throw new Error(`no vector ${name}`);
  return found;
};

class Published implements BusPublisher {
  readonly messages: Array<{ topic: string; payload: Record<string, any> }> = [];
  publish(topic: string, payload: string): void {
    this.messages.push({ topic, payload: JSON.parse(payload) as Record<string, any> });
  }
  async close(): Promise<void> {}
}

/** Symbol master rows by OpenAlgo (exchange, symbol). */
const MASTER: Record<string, BrokerInstrument> = {
  'NSE:RELIANCE': { token: '2885', brexchange: 'NSE' },
  'NSE:SBIN': { token: '3045', brexchange: 'NSE' },
  'NSE_INDEX:NIFTY': { token: '26000', brexchange: 'NSE_INDEX' },
  'NFO:NIFTY27JUN24FUT': { token: '35001', brexchange: 'NFO' },
  'CDS:USDINR26JUN24FUT': { token: '1153', brexchange: 'CDS' },
};

describe('Noren adapter: what is Noren’s own', () => {
  const running: Array<{ adapter: NorenAdapter; fake: FakeNoren }> = [];
  afterEach(async () => {
    for (const { adapter, fake } of running.splice(0)) {
      await adapter.stop();
      await fake.close();
    }
  });

  async function setup(
    dialect: NorenDialectName,
    options: { connect?: 'a' | 'c'; serverConnect?: 'a' | 'c'; token?: string; extra?: Partial<NorenAdapterOptions>; master?: Record<string, BrokerInstrument> } = {},
  ) {
    const fake = await FakeNoren.start({ connect: options.serverConnect ?? options.connect ?? 'a', uid: USER, token: 'good-token' });
    const publisher = new Published();
    const statuses: FeedStatusEvent[] = [];
    const master = options.master ?? MASTER;
    const stored: BrokerCredentials = { apiKey: '', clientCode: USER, accessToken: options.token ?? 'good-token' };
    const symbols: BrokerFeedOptions['symbols'] = { lookup: (broker, exchange, symbol) => (broker === dialect ? master[`${exchange}:${symbol}`] : undefined) };
    const adapter = new NorenAdapter({
      dialect,
      connect: options.connect,
      feed: `${dialect}.alice`,
      user: 'alice',
      url: fake.url,
      symbols,
      credentials: { load: async () => stored },
      publisher,
      clock: systemClock,
      logger: silentLogger(),
      silenceMs: 2000,
      heartbeatMs: 100,
      backoff: { initialMs: 50, maxMs: 200, jitter: 0.1 },
      authRetryMs: 60_000,
      batchDelayMs: 10,
      ...options.extra,
    });
    adapter.onStatus((event) => statuses.push(event));
    running.push({ adapter, fake });
    return { fake, publisher, adapter, statuses };
  }

  async function live(adapter: NorenAdapter, statuses: FeedStatusEvent[]): Promise<void> {
    await adapter.start();
    await until(() => statuses.some((e) => e.status === 'live'), 'live');
  }

  for (const [dialect, connect, field, ack] of [
    ['shoonya', undefined, 'accesstoken', 'ak'],
    ['flattrade', undefined, 'accesstoken', 'ak'],
    ['shoonya', 'c', 'susertoken', 'ck'],
  ] as const) {
    it(`${dialect}${connect ? ` (connect: ${connect})` : ''}: logs in with t:"${connect ?? 'a'}" and ${field}, answered ${ack}, and subscribes only after the OK`, async () => {
      const { fake, adapter, statuses } = await setup(dialect, { connect });
      await adapter.subscribe(RELIANCE, 1, 5);
      await live(adapter, statuses);
      await until(() => fake.sent(1, 't').length === 1, 'the touchline subscribe');
      expect(fake.logins).toHaveLength(1);
      const sent = JSON.parse(fake.logins[0]!.raw) as Record<string, string>;
      // The same fields, in the same order, as the official clients' (vectors) — our token.
      const official = vector(connect === 'c' ? 'shoonya/connect' : 'flattrade/connect').decoded as Record<string, string>;
      expect(Object.keys(sent)).toEqual(Object.keys(official));
      expect(sent).toEqual({ ...official, [field]: 'good-token' });
      expect(fake.logins[0]!.accepted).toBe(true);
      expect(fake.otherTexts).toEqual([]);
      expect(fake.sent(1)).toEqual([{ connection: 1, t: 't', scrips: [SCRIP], raw: '{"t":"t","k":"NSE|2885"}' }]);
      expect(statuses.map((e) => e.status)).toEqual(['reconnecting', 'live']);
    });
  }

  it('uses the dialects’ endpoints: Shoonya’s OAuth API and Flattrade’s PiConnect', () => {
    expect(NOREN_DIALECTS.shoonya).toEqual({ label: 'Shoonya', url: 'wss://api.shoonya.com/NorenWSAPI/', connect: 'a' });
    expect(NOREN_DIALECTS.flattrade).toEqual({ label: 'Flattrade', url: 'wss://piconnect.flattrade.in/PiConnectWSAPI/', connect: 'a' });
  });

  for (const dialect of ['shoonya', 'flattrade'] as const) {
    it(`${dialect}: a refused login goes down with the broker’s reason and does not retry`, async () => {
      const { fake, adapter, statuses } = await setup(dialect, { token: 'expired-token' });
      fake.refusal = 'Invalid Access Token';
      await adapter.subscribe(RELIANCE, 2, 5);
      await adapter.start();
      await until(() => statuses.some((e) => e.status === 'down'), 'down');
      const label = NOREN_DIALECTS[dialect].label;
      const down = statuses.find((e) => e.status === 'down')!;
      expect(down.message).toMatch(new RegExp(`^${label} refused the login .*Invalid Access Token`));
      expect(adapter.statusMessage()).toBe(down.message);
      await new Promise((resolve) => setTimeout(resolve, 400));
      expect(fake.logins.map((l) => l.accepted)).toEqual([false]);
      expect(fake.connections).toBe(1);
      expect(fake.messages).toEqual([]);
      expect(adapter.status()).toBe('down');
      expect(adapter.stats()).toMatchObject({ logins: 1, loginsRefused: 1 });
      expect(statuses.map((e) => e.status)).toEqual(['reconnecting', 'down']);
    });
  }

  it('a login in the wrong dialect is refused by the server, and reported', async () => {
    const { fake, adapter, statuses } = await setup('shoonya', { serverConnect: 'c' });
    await adapter.start();
    await until(() => statuses.some((e) => e.status === 'down'), 'down');
    expect(fake.logins).toMatchObject([{ t: 'a', accepted: false }]);
    expect(statuses.find((e) => e.status === 'down')!.message).toMatch(/^Shoonya refused the login .*Invalid Session Key/);
  });

  it('a login with no answer is not live, and is replaced after the login timeout', async () => {
    const { fake, adapter, statuses } = await setup('flattrade', { extra: { loginTimeoutMs: 150 } });
    fake.mute = true;
    await adapter.start();
    await until(() => fake.logins.length >= 2, 'a second login');
    expect(statuses.some((e) => e.status === 'live')).toBe(false);
    expect(adapter.status()).toBe('reconnecting');
    expect(adapter.statusMessage()).toBeTruthy();
    fake.mute = false;
    await until(() => statuses.some((e) => e.status === 'live'), 'live after an answered login');
  });

  it('sends WebSocket pings (every wsPingMs, 30 s unless set) besides the text heartbeat; their pongs keep a quiet feed alive', async () => {
    const quick = await setup('shoonya', { extra: { wsPingMs: 50, heartbeatMs: 60_000, silenceMs: 300 } });
    await live(quick.adapter, quick.statuses);
    await until(() => quick.fake.pings >= 3, 'three pings');
    // Past silenceMs with no text at all: the pongs alone keep the socket.
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(quick.fake.heartbeats).toBe(0);
    expect(quick.fake.connections).toBe(1);
    expect(quick.adapter.status()).toBe('live');
    const usual = await setup('flattrade');
    await live(usual.adapter, usual.statuses);
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(usual.fake.pings).toBe(0);
  });

  it('LTP ↔ Quote is one touchline (nothing sent); Depth swaps touchline for depth; unsubscribing drops what is held', async () => {
    const { fake, adapter, statuses, publisher } = await setup('shoonya');
    await live(adapter, statuses);
    await adapter.subscribe(RELIANCE, 1, 5);
    await until(() => fake.sent(1).length === 1, 't');
    await adapter.subscribe(RELIANCE, 2, 5);
    await new Promise((resolve) => setTimeout(resolve, 60));
    expect(fake.sent(1).map((m) => m.t)).toEqual(['t']);
    // Published at the mode now held: Quote.
    fake.send(vector('tk_nse_equity_reliance').text);
    await until(() => publisher.messages.length === 1, 'the quote');
    expect(publisher.messages[0]!.topic).toBe(formatTopic('shoonya.alice', 'NSE', 'RELIANCE', 2));
    expect(await adapter.subscribe(RELIANCE, 3, 5)).toEqual({ ok: true, depth: 5 });
    await until(() => fake.sent(1).length === 3, 'u + d');
    expect(fake.sent(1).map((m) => m.raw)).toEqual(['{"t":"t","k":"NSE|2885"}', '{"t":"u","k":"NSE|2885"}', '{"t":"d","k":"NSE|2885"}']);
    await adapter.unsubscribe(RELIANCE);
    await until(() => fake.sent(1).length === 4, 'ud');
    expect(fake.sent(1)[3]!.raw).toBe('{"t":"ud","k":"NSE|2885"}');
    expect(fake.held(1).size).toBe(0);
  });

  it('splits subscriptions at 100 scrips a message', async () => {
    const master: Record<string, BrokerInstrument> = {};
    for (let i = 0; i < 250; i++) master[`NSE:S${i}`] = { token: String(10_000 + i), brexchange: 'NSE' };
    const { fake, adapter, statuses } = await setup('flattrade', { master });
    await live(adapter, statuses);
    for (let i = 0; i < 250; i++) await adapter.subscribe({ exchange: 'NSE', symbol: `S${i}` }, 2, 5);
    await until(() => fake.sent(1, 't').reduce((n, m) => n + m.scrips.length, 0) === 250, 'all 250 scrips');
    expect(fake.sent(1, 't').map((m) => m.scrips.length)).toEqual([100, 100, 50]);
    expect(fake.sent(1, 't')[0]!.scrips[0]).toBe('NSE|10000');
  });

  it('resolves the symbol master: indices on their exchange, unknown exchanges refused', async () => {
    const master: Record<string, BrokerInstrument> = {
      ...MASTER,
      'BSE_INDEX:SENSEX': { token: '1', brexchange: 'BSE_INDEX' },
      'NCDEX:GUAR': { token: '7', brexchange: 'NCDEX' },
    };
    const { fake, adapter, statuses } = await setup('shoonya', { master });
    await live(adapter, statuses);
    await adapter.subscribe({ exchange: 'NSE_INDEX', symbol: 'NIFTY' }, 1, 5);
    await adapter.subscribe({ exchange: 'BSE_INDEX', symbol: 'SENSEX' }, 1, 5);
    await adapter.subscribe({ exchange: 'MCX', symbol: 'NOPE' }, 1, 5).then((r) => expect(r).toEqual({ ok: false, message: 'Token not found for NOPE on MCX' }));
    expect(await adapter.subscribe({ exchange: 'NCDEX', symbol: 'GUAR' }, 1, 5)).toEqual({ ok: false, message: 'Exchange NCDEX of GUAR is not supported by the Shoonya feed' });
    await until(() => fake.sent(1, 't').length === 1, 'the subscribe');
    expect(fake.sent(1, 't')[0]!.scrips).toEqual(['NSE|26000', 'BSE|1']);
  });

  it('merges partial tf updates: every published tick carries the full state; a reconnect starts afresh', async () => {
    const { fake, adapter, statuses, publisher } = await setup('shoonya');
    fake.quote(SCRIP, vector('tk_nse_equity_reliance').input as Record<string, string>);
    await adapter.subscribe(RELIANCE, 2, 5);
    await live(adapter, statuses);
    await until(() => publisher.messages.length === 1, 'the acknowledgement’s tick');
    for (const name of ['tf_nse_equity_reliance_ltp', 'tf_nse_equity_reliance_trade']) fake.send(vector(name).text);
    await until(() => publisher.messages.length === 3, 'two updates');
    const [ack, ltpOnly, trade] = publisher.messages.map((m) => m.payload);
    const full = vector('tk_nse_equity_reliance').input as Record<string, string>;
    expect(ack).toMatchObject({ ltp: 2950.55, volume: Number(full.v), open: Number(full.o), high: Number(full.h), low: Number(full.l), close: Number(full.c) });
    for (const [payload, name] of [[ltpOnly, 'tf_nse_equity_reliance_ltp'], [trade, 'tf_nse_equity_reliance_trade']] as const) {
      const merged = vector(name).merged as Record<string, string>;
      expect(payload).toMatchObject({
        symbol: 'RELIANCE',
        exchange: 'NSE',
        mode: 2,
        ltp: Number(merged.lp),
        volume: Number(merged.v),
        open: Number(merged.o),
        high: Number(merged.h),
        low: Number(merged.l),
        close: Number(merged.c),
        average_price: Number(merged.ap),
        last_quantity: Number(merged.ltq ?? 0),
        total_buy_quantity: Number(merged.tbq),
        total_sell_quantity: Number(merged.tsq),
        shoonya_timestamp: Number(merged.ft),
      });
    }
    expect(trade).toMatchObject({ last_trade_time: '15:30:00', last_quantity: 100 });

    // After a drop the book starts afresh: an update alone has no last price to build on… unless it carries one.
    fake.quote(SCRIP, { lp: '2960.00' });
    fake.drop();
    await until(() => fake.sent(2, 't').length === 1 && publisher.messages.length === 4, 'resubscribed with a fresh acknowledgement');
    fake.send({ t: 'tf', e: 'NSE', tk: '2885', v: '10' });
    await until(() => publisher.messages.length === 5, 'the update');
    expect(publisher.messages[4]!.payload).toMatchObject({ ltp: 2960, volume: 10, open: 0, close: 0 });
  });

  for (const dialect of ['shoonya', 'flattrade'] as const) {
    it(`${dialect}: streams the vectors and publishes the merged state with OpenAlgo’s field names`, async () => {
      const { fake, adapter, statuses, publisher } = await setup(dialect);
      const streams: Array<[string, string, Mode]> = [
        ['NSE', 'RELIANCE', 2],
        ['NSE', 'SBIN', 3],
        ['NSE_INDEX', 'NIFTY', 2],
        ['NFO', 'NIFTY27JUN24FUT', 3],
        ['CDS', 'USDINR26JUN24FUT', 2],
      ];
      const byScrip = new Map<string, { exchange: string; symbol: string; mode: Mode; index: boolean }>();
      for (const [exchange, symbol, mode] of streams) {
        expect(await adapter.subscribe({ exchange, symbol }, mode, 5)).toMatchObject({ ok: true });
        const row = MASTER[`${exchange}:${symbol}`]!;
        byScrip.set(`${row.brexchange.replace('_INDEX', '')}|${row.token}`, { exchange, symbol, mode, index: exchange.endsWith('_INDEX') });
      }
      await live(adapter, statuses);
      await until(() => fake.held(1).size === 5, 'five scrips held');

      const inbound = vectors.filter((v) => v.direction === 'server->client' && !/^noren\/(ck|ak)_/.test(v.name));
      for (const v of inbound) fake.send(v.text);
      const market = inbound.filter((v) => /^noren\/(tk|tf|dk|df)_/.test(v.name));
      await until(() => publisher.messages.length === market.length, `${market.length} ticks`);
      await until(() => adapter.stats().invalid === 4, 'the four invalid vectors counted');
      expect(adapter.stats()).toMatchObject({ accountMessages: 2, ticks: market.length, pending: 0, unrouted: 0 });

      // A reference merge of the raw strings: an acknowledgement replaces, an update overlays.
      const state = new Map<string, Record<string, string>>();
      const quoteKeys = ['symbol', 'exchange', 'mode', 'ltp', 'ltt', 'last_trade_time', `${dialect}_timestamp`, 'timestamp', 'volume', 'open', 'high', 'low', 'close', 'average_price', 'percent_change', 'last_quantity', 'total_buy_quantity', 'total_sell_quantity', 'change', 'change_percent'];
      const depthKeys = [...quoteKeys, 'depth', 'depth_level', 'upper_circuit', 'lower_circuit', '52_week_high', '52_week_low', 'oi', dialect === 'flattrade' ? 'total_traded_value' : 'open_interest'];
      market.forEach((v, i) => {
        const input = v.input as Record<string, string>;
        const scrip = `${input.e}|${input.tk}`;
        const merged = input.t === 'tk' || input.t === 'dk' ? { ...input } : { ...state.get(scrip), ...input };
        state.set(scrip, merged);
        const stream = byScrip.get(scrip)!;
        const mode = Math.min(stream.mode, input.t!.startsWith('d') ? 3 : 2) as Mode;
        const { topic, payload } = publisher.messages[i]!;
        expect(topic, v.name).toBe(formatTopic(`${dialect}.alice`, stream.exchange, stream.symbol, mode));
        expect(Object.keys(payload).sort(), v.name).toEqual((mode === 3 ? depthKeys : quoteKeys).slice().sort());
        const num = (key: string) => Number(merged[key] ?? 0);
        expect(payload, v.name).toMatchObject({
          symbol: stream.symbol,
          exchange: stream.exchange,
          mode,
          ltp: num('lp'),
          open: num('o'),
          high: num('h'),
          low: num('l'),
          close: num('c'),
          average_price: num('ap'),
          volume: stream.index ? 0 : num('v'),
          [`${dialect}_timestamp`]: num('ft'),
        });
        if (mode === 3) {
          for (const [side, p] of [['buy', 'b'], ['sell', 's']] as const) {
            const levels = [1, 2, 3, 4, 5].map((n) => ({ price: num(`${p}p${n}`), quantity: num(`${p}q${n}`), orders: num(`${p}o${n}`) }));
            expect(payload.depth[side], `${v.name} ${side}`).toEqual(levels);
          }
          expect(payload, v.name).toMatchObject({ depth_level: 5, upper_circuit: num('uc'), lower_circuit: num('lc'), '52_week_high': num('52h'), '52_week_low': num('52l'), oi: num('oi') });
          if (dialect === 'shoonya') expect(payload.open_interest, v.name).toBe(num('oi'));
          else expect(payload.total_traded_value, v.name).toBe(Math.round(num('v') * num('ap')));
        }
      });
    });
  }
});
