import { readFileSync } from 'node:fs';
import { describe, it, expect } from 'vitest';
import {
  NorenBook,
  decodeNorenText,
  lastTradeTime,
  norenSubscribe,
  norenUnsubscribe,
  type NorenDecoded,
} from '../../src/adapters/noren/decoder.js';

interface NorenVector {
  name: string;
  frame: 'text';
  direction: 'server->client' | 'client->server';
  hex: string;
  text: string;
  input?: unknown;
  decoded?: unknown;
  delivered?: string[];
  exception?: string;
  merged?: Record<string, string>;
  flattrade_client?: { delivered: string[] };
}

// The broker vectors (test/fixtures/vectors/README.md says where they come from).
const vectors = JSON.parse(readFileSync(new URL('../fixtures/vectors/noren.json', import.meta.url), 'utf8')) as NorenVector[];
const byName = (name: string): NorenVector => {
  const vector = vectors.find((v) => v.name === 'noren/' + name);
  if (!vector) throw new Error(`no vector ${name}`);
  return vector;
};
const fromServer = vectors.filter((v) => v.direction === 'server->client');
const MARKET = new Set(['tk', 'tf', 'dk', 'df']);

function market(decoded: NorenDecoded): Extract<NorenDecoded, { kind: 'market' }> {
  if (decoded.kind !== 'market') throw new Error(`expected a market message, got ${JSON.stringify(decoded)}`);
  return decoded;
}

const PRICE_KEYS: Record<string, string> = { lp: 'ltp', o: 'open', h: 'high', l: 'low', c: 'close', ap: 'averagePrice', uc: 'upperCircuit', lc: 'lowerCircuit', '52h': 'high52w', '52l': 'low52w' };
const QUANTITY_KEYS: Record<string, string> = { v: 'volume', ltq: 'lastQuantity', tbq: 'totalBuyQuantity', tsq: 'totalSellQuantity' };

describe('the Noren vectors', () => {
  it('cover what the brief asks for', () => {
    expect(vectors.length).toBeGreaterThanOrEqual(15);
    const types = new Set(fromServer.map((v) => (v.input as { t?: string } | string) && typeof v.input === 'object' ? (v.input as { t?: string }).t : 'raw'));
    for (const t of ['ck', 'ak', 'tk', 'tf', 'dk', 'df', 'h', 'om']) expect(types, t).toContain(t);
    expect(vectors.filter((v) => v.direction === 'client->server').length).toBeGreaterThanOrEqual(6);
    for (const v of vectors) expect(Buffer.from(v.hex, 'hex').toString('utf8')).toBe(v.text);
  });

  it('the official client hands every market message to subscribe_callback unchanged; the decoder reads the same fields', () => {
    for (const vector of fromServer.filter((v) => MARKET.has((v.input as { t?: string })?.t ?? ''))) {
      expect(vector.delivered, vector.name).toEqual(['subscribe_callback']);
      expect(vector.decoded, vector.name).toEqual(vector.input);
      const official = vector.decoded as Record<string, string>;
      const decoded = market(decodeNorenText(vector.text));
      expect(decoded.type).toBe(official.t);
      expect(decoded.exchange).toBe(official.e);
      expect(decoded.token).toBe(official.tk);
      for (const [key, value] of Object.entries(official)) {
        if (['t', 'e', 'tk'].includes(key)) continue;
        const expected = key === 'ts' || key === 'ltt' ? value : Number(value);
        expect(decoded.fields[key as keyof typeof decoded.fields], `${vector.name} ${key}`).toBe(expected);
      }
    }
  });

  it('merges updates per exchange|token as the official example does, and the ticks read the merged state', () => {
    const book = new NorenBook();
    for (const vector of fromServer.filter((v) => v.merged)) {
      const decoded = market(decodeNorenText(vector.text));
      const applied = book.apply(decoded);
      const merged = vector.merged!;
      const state = book.fields(decoded.exchange, decoded.token)!;
      for (const [key, value] of Object.entries(merged)) {
        if (['t', 'e', 'tk'].includes(key)) continue;
        expect(state[key as keyof typeof state], `${vector.name} ${key}`).toBe(key === 'ts' || key === 'ltt' ? value : Number(value));
      }
      expect(Object.keys(state).length, vector.name).toBe(Object.keys(merged).length - 3);
      if (applied.kind !== 'tick') throw new Error(`${vector.name}: ${applied.reason}`);
      const tick = applied.tick;
      expect(tick.broker).toBe('shoonya');
      expect(tick.exchange).toBe(merged.e);
      expect(tick.token).toBe(merged.tk);
      expect(tick.mode).toBe(merged.t === 'dk' || merged.t === 'df' || state.bp2 !== undefined ? 'full' : 'quote');
      for (const [key, field] of Object.entries(PRICE_KEYS)) {
        const raw = merged[key];
        const expected = raw === undefined || (key !== 'lp' && Number(raw) === 0) ? undefined : Number(raw);
        expect(tick[field as keyof typeof tick], `${vector.name} ${field}`).toBe(expected);
      }
      for (const [key, field] of Object.entries(QUANTITY_KEYS)) {
        const raw = merged[key];
        expect(tick[field as keyof typeof tick], `${vector.name} ${field}`).toBe(raw === undefined || tick.isIndex ? undefined : Number(raw));
      }
      expect(tick.oi).toBe(merged.oi === undefined ? undefined : Number(merged.oi));
      expect(tick.exchangeTimestamp).toBe(merged.ft === undefined ? undefined : Number(merged.ft) * 1000);
      if (tick.depth) {
        for (const [side, prefix] of [['buy', 'b'], ['sell', 's']] as const) {
          tick.depth[side].forEach((level, i) => {
            expect(level.price).toBe(Number(merged[`${prefix}p${i + 1}`] ?? 0));
            expect(level.quantity).toBe(Number(merged[`${prefix}q${i + 1}`] ?? 0));
            expect(level.orders).toBe(merged[`${prefix}o${i + 1}`] === undefined ? null : Number(merged[`${prefix}o${i + 1}`]));
          });
        }
      }
    }
  });

  it('equity, index, derivative and currency ticks', () => {
    const book = new NorenBook({ broker: 'flattrade' });
    const tickOf = (name: string) => {
      const applied = book.apply(market(decodeNorenText(byName(name).text)));
      if (applied.kind !== 'tick') throw new Error(applied.reason);
      return applied.tick;
    };
    const reliance = tickOf('tk_nse_equity_reliance');
    expect(reliance).toMatchObject({ broker: 'flattrade', token: '2885', exchange: 'NSE', mode: 'quote', isIndex: false, ltp: 2950.55, close: 2921.15, volume: 4817234, lastQuantity: 5, exchangeTimestamp: 1718186399000 });
    // ltt 15:29:59 IST on the feed time's IST day (2024-06-12).
    expect(reliance.lastTradeTime).toBe(Date.UTC(2024, 5, 12, 9, 59, 59));
    expect(reliance.depth).toBeUndefined();

    const nifty = tickOf('tk_nse_index_nifty');
    expect(nifty.isIndex).toBe(true);
    expect(nifty.volume).toBeUndefined();
    expect(nifty).toMatchObject({ ltp: 23264.85, open: 23209.3, close: 23169.4 });

    const future = tickOf('tk_nfo_future_nifty_oi');
    expect(future).toMatchObject({ exchange: 'NFO', oi: 14023350, isIndex: false });
    expect(tickOf('tf_nfo_future_nifty_oi')).toMatchObject({ oi: 14025000, ltp: 23310, volume: 4123450, exchangeTimestamp: 1718186401000 });

    expect(tickOf('tk_cds_usdinr').ltp).toBe(83.4525);

    const sbin = tickOf('dk_nse_equity_sbin_5');
    expect(sbin.mode).toBe('full');
    expect(sbin.depth!.buy).toHaveLength(5);
    expect(sbin.depth!.sell[4]).toEqual({ price: 834.3, quantity: 780, orders: 9 });
    expect(sbin).toMatchObject({ upperCircuit: 909.6, lowerCircuit: 744.3, high52w: 912, low52w: 555.25 });

    const sparse = tickOf('dk_nfo_future_nifty_sparse');
    // Level 4 on the buy side is empty but has a price; level 5 (0.00, 0) is left out.
    expect(sparse.depth!.buy).toHaveLength(4);
    expect(sparse.depth!.sell).toHaveLength(3);

    expect(tickOf('dk_nse_index_nifty').depth).toBeUndefined();
  });

  it('a partial depth update keeps the levels it does not mention', () => {
    const book = new NorenBook();
    book.apply(market(decodeNorenText(byName('dk_nse_equity_sbin_5').text)));
    const applied = book.apply(market(decodeNorenText(byName('df_nse_equity_sbin_partial').text)));
    if (applied.kind !== 'tick') throw new Error(applied.reason);
    const { depth, ltp, volume } = applied.tick;
    expect(ltp).toBe(834.15);
    expect(volume).toBe(12873450);
    expect(depth!.buy[0]).toEqual({ price: 834.05, quantity: 280, orders: 7 });
    expect(depth!.sell[0]).toEqual({ price: 834.15, quantity: 410, orders: 6 });
    expect(depth!.sell[2]).toEqual({ price: 834.2, quantity: 1290, orders: 14 });
    expect(depth!.buy[4]).toEqual({ price: 833.85, quantity: 120, orders: 3 });
  });

  it('connect acknowledgements: ck and ak, OK or refused', () => {
    expect(byName('ck_ok').delivered).toEqual(['socket_open_callback']);
    expect(decodeNorenText(byName('ck_ok').text)).toEqual({ kind: 'connect', type: 'ck', ok: true, message: 'OK' });
    expect(byName('ck_not_ok').delivered).toEqual(['socket_error_callback']);
    expect(decodeNorenText(byName('ck_not_ok').text)).toEqual({ kind: 'connect', type: 'ck', ok: false, message: 'Session Expired :  Invalid Session Key' });
    // Shoonya's 0.0.30 client ignores ak; Flattrade's opens on it.
    expect(byName('ak_ok').delivered).toEqual([]);
    expect(byName('ak_ok').flattrade_client).toEqual({ delivered: ['socket_open_callback'] });
    expect(decodeNorenText(byName('ak_ok').text)).toMatchObject({ kind: 'connect', type: 'ak', ok: true });
    expect(decodeNorenText(byName('ak_not_ok').text)).toMatchObject({ kind: 'connect', ok: false, message: 'Invalid Access Token' });
    expect(decodeNorenText('{"t":"ck","s":"Ok"}')).toMatchObject({ ok: true });
    expect(decodeNorenText('{"t":"ck"}')).toMatchObject({ ok: false, message: 'no status' });
  });

  it('heartbeats, order updates and acknowledgements', () => {
    expect(decodeNorenText(byName('h_heartbeat_reply').text)).toEqual({ kind: 'heartbeat' });
    expect(byName('om_order_update').delivered).toEqual(['order_update_callback']);
    expect(decodeNorenText(byName('om_order_update').text)).toMatchObject({ kind: 'order', data: { norenordno: '24061200000123' } });
    expect(decodeNorenText(byName('ok_order_subscription').text)).toEqual({ kind: 'ack', type: 'ok' });
  });

  it('reports what the official client raises on or ignores as invalid, never throwing', () => {
    for (const name of ['missing_t', 'not_json', 'json_array', 'unknown_type']) {
      const vector = byName(name);
      if (name !== 'unknown_type') expect(vector.exception, name).toBeTruthy();
      else expect(vector.delivered).toEqual([]);
      expect(decodeNorenText(vector.text).kind, name).toBe('invalid');
    }
  });
});

describe('decodeNorenText on bad input', () => {
  const invalid = (text: string): string => {
    const decoded = decodeNorenText(text);
    if (decoded.kind !== 'invalid') throw new Error(`${text} decoded as ${decoded.kind}`);
    expect(decoded.reason.length).toBeLessThan(300);
    return decoded.reason;
  };

  it('garbage, wrong shapes and unknown types', () => {
    for (const text of ['', '   ', 'null', '42', '"tk"', '[]', '{', '{"t":', '\u0000\u00ff', 'pong', '{"t":null}', '{"t":5}', '{"t":"x"}', '{"t":"uk"}']) invalid(text);
    expect(invalid('{"t":"' + 'z'.repeat(5000) + '"}').length).toBeLessThan(300);
    invalid('{' + ' '.repeat(70_000) + '}');
    expect(() => decodeNorenText(undefined as unknown as string)).not.toThrow();
  });

  it('market messages with a bad exchange, token or field type', () => {
    invalid('{"t":"tk","tk":"2885","lp":"1.00"}');
    invalid('{"t":"tk","e":"NSE","lp":"1.00"}');
    invalid('{"t":"tk","e":7,"tk":"2885"}');
    invalid('{"t":"tk","e":"NSE","tk":2885}');
    invalid('{"t":"tk","e":"N S E","tk":"2885"}');
    invalid('{"t":"tf","e":"NSE","tk":"2885","lp":"abc"}');
    invalid('{"t":"tf","e":"NSE","tk":"2885","lp":{"x":1}}');
    invalid('{"t":"tf","e":"NSE","tk":"2885","lp":true}');
    invalid('{"t":"tf","e":"NSE","tk":"2885","lp":"1e400"}');
    invalid('{"t":"tf","e":"NSE","tk":"2885","v":"1.5"}');
    invalid('{"t":"tf","e":"NSE","tk":"2885","v":-1}');
    invalid('{"t":"tf","e":"NSE","tk":"2885","ltt":123}');
  });

  it('accepts numbers as JSON numbers, "" and "-" as no value, and ignores unknown fields', () => {
    const decoded = market(decodeNorenText('{"t":"tf","e":"NSE","tk":"2885","lp":2950.5,"v":"100.00","ap":"","o":"-","zz":{"deep":[1]},"__proto__":{"x":1}}'));
    expect(decoded.fields).toEqual({ lp: 2950.5, v: 100 });
  });
});

describe('NorenBook', () => {
  const msg = (text: string) => market(decodeNorenText(text));

  it('an acknowledgement replaces the state; an update before any has no tick until there is a price', () => {
    const book = new NorenBook();
    expect(book.apply(msg('{"t":"tf","e":"NSE","tk":"1","v":"10"}'))).toMatchObject({ kind: 'invalid' });
    expect(book.apply(msg('{"t":"tf","e":"NSE","tk":"1","lp":"5.00"}'))).toMatchObject({ kind: 'tick', tick: { ltp: 5, volume: 10 } });
    book.apply(msg('{"t":"tk","e":"NSE","tk":"1","lp":"6.00","c":"5.50"}'));
    expect(book.fields('NSE', '1')).toEqual({ lp: 6, c: 5.5 });
  });

  it('tokens are per exchange', () => {
    const book = new NorenBook();
    book.apply(msg('{"t":"tk","e":"NSE","tk":"1","lp":"6.00"}'));
    book.apply(msg('{"t":"tk","e":"CDS","tk":"1","lp":"83.0000"}'));
    expect(book.fields('NSE', '1')!.lp).toBe(6);
    expect(book.fields('CDS', '1')!.lp).toBe(83);
  });

  it('memory is bounded: at most maxTokens, the least recently updated dropped first; forget and clear', () => {
    const book = new NorenBook({ maxTokens: 3 });
    for (const tk of ['1', '2', '3']) book.apply(msg(`{"t":"tk","e":"NSE","tk":"${tk}","lp":"1.00"}`));
    book.apply(msg('{"t":"tf","e":"NSE","tk":"1","lp":"2.00"}'));
    book.apply(msg('{"t":"tk","e":"NSE","tk":"4","lp":"1.00"}'));
    expect(book.size).toBe(3);
    expect(book.fields('NSE', '2')).toBeUndefined();
    expect(book.fields('NSE', '1')).toEqual({ lp: 2 });
    book.forget('NSE', '1');
    expect(book.size).toBe(2);
    book.clear();
    expect(book.size).toBe(0);
    // Unknown fields are never stored, whatever a message carries.
    const many = '{"t":"tk","e":"NSE","tk":"9","lp":"1.00",' + Array.from({ length: 1000 }, (_, i) => `"f${i}":"1"`).join(',') + '}';
    book.apply(msg(many));
    expect(Object.keys(book.fields('NSE', '9')!)).toEqual(['lp']);
  });

  it('the symbol master decides what is an index when given', () => {
    const book = new NorenBook({ isIndex: () => false });
    const applied = book.apply(msg(byName('tk_nse_index_nifty').text));
    expect(applied).toMatchObject({ kind: 'tick', tick: { isIndex: false } });
  });
});

describe('lastTradeTime', () => {
  const ft = Date.UTC(2024, 5, 12, 9, 59, 59); // 15:29:59 IST
  it('puts a time of day on the feed time\'s IST day, the day before if it would be in the future', () => {
    expect(lastTradeTime('15:29:59', ft)).toBe(ft);
    expect(lastTradeTime('09:15:00', ft)).toBe(Date.UTC(2024, 5, 12, 3, 45, 0));
    expect(lastTradeTime('23:59:00', ft)).toBe(Date.UTC(2024, 5, 11, 18, 29, 0));
    expect(lastTradeTime('12-06-2024 15:29:59', undefined)).toBe(ft);
  });
  it('none for epoch 0 (05:30:00), no feed time, or nonsense', () => {
    for (const value of ['05:30:00', '25:00:00', '1:2:3', '', 12, null]) expect(lastTradeTime(value, ft)).toBeUndefined();
    expect(lastTradeTime('15:29:59', undefined)).toBeUndefined();
  });
});

describe('messages to the server, as the official client sends them', () => {
  const sent = (name: string) => JSON.parse(byName(name).text) as unknown;
  it('subscribe and unsubscribe, touchline and depth, k joined with #', () => {
    expect(JSON.parse(norenSubscribe('touchline', ['NSE|2885']))).toEqual(sent('subscribe_touchline_one'));
    expect(JSON.parse(norenSubscribe('touchline', ['NSE|2885', 'NSE|26000', 'NFO|35001']))).toEqual(sent('subscribe_touchline_list'));
    expect(JSON.parse(norenSubscribe('depth', ['NSE|3045', 'NFO|35001']))).toEqual(sent('subscribe_depth'));
    expect(JSON.parse(norenUnsubscribe('touchline', ['NSE|2885', 'NSE|26000']))).toEqual(sent('unsubscribe_touchline'));
    expect(JSON.parse(norenUnsubscribe('depth', ['NSE|3045']))).toEqual(sent('unsubscribe_depth'));
  });
  it('connect: t "c" with susertoken (Shoonya client), t "a" with accesstoken (Flattrade client)', () => {
    expect(Object.keys(sent('shoonya/connect') as object)).toEqual(['t', 'uid', 'actid', 'susertoken', 'source']);
    expect(sent('shoonya/connect')).toMatchObject({ t: 'c', source: 'API' });
    expect(Object.keys(sent('flattrade/connect') as object)).toEqual(['t', 'uid', 'actid', 'accesstoken', 'source']);
    expect(sent('flattrade/connect')).toMatchObject({ t: 'a', source: 'API' });
  });
});
