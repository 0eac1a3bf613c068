/** TICKCAST_RECORD: which streams are recorded. */
import { describe, expect, it } from 'vitest';
import { parseRecordSelection } from '../../src/history/selection.js';
import { SHARED_FEED } from '../../src/protocol/topics.js';

function selection(raw: string) {
  const parsed = parseRecordSelection(raw);
  if (!parsed.ok) throw new Error(parsed.error);
  return parsed.selection;
}

describe('parseRecordSelection', () => {
  it('records nothing when off or empty', () => {
    for (const raw of ['', 'off', ' OFF ', ' , ']) {
      const s = selection(raw);
      expect(s.any).toBe(false);
      expect(s.matches('simulator', 'NSE', 'RELIANCE')).toBe(false);
    }
  });

  it('records every stream with all', () => {
    const s = selection('all');
    expect(s.any).toBe(true);
    expect(s.matches('simulator', 'NSE', 'RELIANCE')).toBe(true);
    expect(s.matches(SHARED_FEED, 'MCX', 'GOLD')).toBe(true);
  });

  it('selects feeds, feed prefixes, streams and a feed’s streams', () => {
    const s = selection('simulator, zerodha.*, NSE:RELIANCE, shared/NSE_INDEX:NIFTY, angel.bob/NFO:NIFTY28MAR24FUT');
    expect(s.items).toEqual(['simulator', 'zerodha.*', 'NSE:RELIANCE', 'shared/NSE_INDEX:NIFTY', 'angel.bob/NFO:NIFTY28MAR24FUT']);
    expect(s.matches('simulator', 'BSE', 'TCS')).toBe(true);
    expect(s.matches('simulator2', 'BSE', 'TCS')).toBe(false);
    expect(s.matches('zerodha.alice', 'NSE', 'TCS')).toBe(true);
    expect(s.matches('zerodhax', 'NSE', 'TCS')).toBe(false);
    expect(s.matches('dhan.carol', 'NSE', 'RELIANCE')).toBe(true);
    expect(s.matches('dhan.carol', 'NSE', 'TCS')).toBe(false);
    expect(s.matches(SHARED_FEED, 'NSE_INDEX', 'NIFTY')).toBe(true);
    expect(s.matches('fyers.dave', 'NSE_INDEX', 'NIFTY')).toBe(false);
    expect(s.matches('angel.bob', 'NFO', 'NIFTY28MAR24FUT')).toBe(true);
    expect(s.matches('angel.eve', 'NFO', 'NIFTY28MAR24FUT')).toBe(false);
    // Symbols are matched as clients and brokers spell them: case-sensitive.
    expect(s.matches('dhan.carol', 'NSE', 'reliance')).toBe(false);
  });

  it('names the item it cannot read', () => {
    const bad = (raw: string) => {
      const parsed = parseRecordSelection(raw);
      return parsed.ok ? 'ok' : parsed.error;
    };
    expect(bad('all, off')).toBe('"off": "off" cannot be combined with other items');
    expect(bad('NSE:')).toMatch(/^"NSE:": expected EXCHANGE:SYMBOL/);
    expect(bad('nse:RELIANCE')).toMatch(/expected EXCHANGE:SYMBOL/);
    expect(bad('sim ulator')).toMatch(/^"sim ulator": not a feed id/);
    expect(bad('a|b/NSE:X')).toMatch(/not a feed id/);
    expect(bad('simulator/RELIANCE')).toMatch(/expected EXCHANGE:SYMBOL/);
  });
});
