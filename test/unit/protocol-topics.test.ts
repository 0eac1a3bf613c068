import { describe, expect, it } from 'vitest';
import { formatTopic, parseTopic } from '../../src/protocol/topics.js';

describe('parseTopic (spec §3.2)', () => {
  it.each([
    ['NSE_RELIANCE_LTP', '', 'NSE', 'RELIANCE', 1],
    ['NSE_INDEX_NIFTY_LTP', '', 'NSE_INDEX', 'NIFTY', 1],
    ['BSE_INDEX_SENSEX_QUOTE', '', 'BSE_INDEX', 'SENSEX', 2],
    ['MCX_INDEX_MCXCOMDEX_DEPTH', '', 'MCX_INDEX', 'MCXCOMDEX', 3],
    ['GLOBAL_INDEX_DJI_LTP', '', 'GLOBAL_INDEX', 'DJI', 1],
    ['CRYPTO_SOL_INR_LTP', '', 'CRYPTO', 'SOL_INR', 1],
    ['NSE_TCS:20_DEPTH', '', 'NSE', 'TCS:20', 3],
    ['NSE_RELIANCE:30_DEPTH', '', 'NSE', 'RELIANCE:30', 3],
    ['NFO_NIFTY30DEC26FUT:50_DEPTH', '', 'NFO', 'NIFTY30DEC26FUT:50', 3],
    ['NSE_RELIANCE:20_LTP', '', 'NSE', 'RELIANCE:20', 1],
    ['dhan.alice|NSE_RELIANCE:20_DEPTH', 'dhan.alice', 'NSE', 'RELIANCE:20', 3],
    ['NSE_RELIANCE_quote', '', 'NSE', 'RELIANCE', 2],
    ['NFO_NIFTY30DEC26FUT_Depth', '', 'NFO', 'NIFTY30DEC26FUT', 3],
    ['NSEIX_INDEX_GIFTNIFTY_LTP', '', 'NSEIX', 'INDEX_GIFTNIFTY', 1],
    ['simulator|NSE_RELIANCE_QUOTE', 'simulator', 'NSE', 'RELIANCE', 2],
    ['zerodha.alice|NSE_INDEX_NIFTY_LTP', 'zerodha.alice', 'NSE_INDEX', 'NIFTY', 1],
    ['bad feed|NSE_A_LTP', '', 'bad feed|NSE', 'A', 1],
  ])('%s', (topic, feed, exchange, symbol, mode) => {
    expect(parseTopic(topic)).toEqual({ kind: 'market', feed, exchange, symbol, mode });
  });

  it.each([
    ['CACHE_INVALIDATE_AUTH_alice', 'cache_invalidate'],
    ['CACHE_INVALIDATE_ALL_bob', 'cache_invalidate'],
    ['ZERODHA_alice_orders', 'orders'],
    ['ANALYZE_alice_orders', 'orders'],
    ['ANALYZE_john_doe_orders', 'orders'],
    ['ANALYZE__orders', 'orders'],
    ['sim|ANALYZE_alice_orders', 'orders'],
    ['deltaexchange_positions', 'ignored'],
    ['deltaexchange_margins', 'ignored'],
    ['NSE_LTP', 'invalid'],
    ['NSE_RELIANCE_FULL', 'invalid'],
    ['NSE__LTP', 'invalid'],
    ['NSE_INDEX_LTP', 'invalid'],
    ['', 'invalid'],
  ])('%s → %s', (topic, kind) => {
    expect(parseTopic(topic).kind).toBe(kind);
  });

  it('round-trips formatTopic', () => {
    for (const [feed, exchange, symbol] of [['', 'NSE_INDEX', 'NIFTY'], ['sim', 'CRYPTO', 'BTC_USDT'], ['', 'NSE', 'M&M'], ['', 'NSE', 'RELIANCE:20'], ['dhan', 'NFO', 'NIFTY30DEC26FUT:50']] as const) {
      for (const mode of [1, 2, 3] as const) {
        expect(parseTopic(formatTopic(feed, exchange, symbol, mode))).toEqual({ kind: 'market', feed, exchange, symbol, mode });
      }
    }
  });
});
