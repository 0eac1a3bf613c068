import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MAX_SUBJECT_LENGTH, Subjects, escapeToken, unescapeToken } from '../../src/bus/subjects.js';
import type { Mode } from '../../src/protocol/modes.js';
import { SHARED_FEED } from '../../src/protocol/topics.js';

/** What NATS forbids inside a token, and what it treats as wildcards. */
const FORBIDDEN = /[.*>\s]/;

/** Strings without lone surrogates (those cannot be UTF-8 encoded, so they cannot round-trip). */
const wellFormed = fc.string({ unit: 'binary', maxLength: 60 }).filter((s) => !/[\uD800-\uDFFF]/.test(s.replace(/[\uD800-\uDBFF][\uDC00-\uDFFF]/g, '')));

describe('subject tokens', () => {
  it('keeps plain symbols readable and escapes the awkward ones', () => {
    expect(escapeToken('RELIANCE')).toBe('RELIANCE');
    expect(escapeToken('BAJAJ-AUTO')).toBe('BAJAJ-AUTO');
    expect(escapeToken('SOL_INR')).toBe('SOL_INR');
    expect(escapeToken('M&M')).toBe('M%26M');
    expect(escapeToken('NIFTY 50')).toBe('NIFTY%2050');
    expect(escapeToken('BRK.B')).toBe('BRK%2EB');
    expect(escapeToken('*')).toBe('%2A');
    expect(escapeToken('>')).toBe('%3E');
    expect(escapeToken('%')).toBe('%25');
    expect(escapeToken('')).toBe('%');
    expect(escapeToken('é')).toBe('%C3%A9');
    expect(escapeToken('\t\n')).toBe('%09%0A');
  });

  it('round-trips awkward symbols', () => {
    for (const text of ['BRK.B', 'NIFTY 50', 'a*b>c', '>', '*', '.', '..', '%', '%25', '', ' ', 'महिंद्रा', '🚀.🌕', 'a\u0000b', 'tickcast.x.tick.>']) {
      const token = escapeToken(text);
      expect(token).not.toMatch(FORBIDDEN);
      expect(token).not.toBe('');
      expect(unescapeToken(token)).toBe(text);
    }
  });

  it('round-trips any well-formed string, and the token is always a legal NATS token', () => {
    fc.assert(
      fc.property(wellFormed, (text) => {
        const token = escapeToken(text);
        expect(token).toMatch(/^[A-Za-z0-9_%-]+$/);
        expect(unescapeToken(token)).toBe(text);
      }),
      { numRuns: 2000 },
    );
  });

  it('gives different strings different tokens', () => {
    fc.assert(
      fc.property(wellFormed, wellFormed, (a, b) => {
        fc.pre(a !== b);
        expect(escapeToken(a)).not.toBe(escapeToken(b));
      }),
      { numRuns: 2000 },
    );
  });

  it('refuses tokens that are not in canonical form, so no two tokens mean the same text', () => {
    for (const token of ['', 'a.b', 'a b', 'a*', '>', '%2e', '%41', '%4', '%G0', '%%', 'é', '%FF', '%C3', '%C3%28', '%ED%A0%80']) {
      expect(unescapeToken(token), token).toBeUndefined();
    }
  });

  it('decoding then encoding any accepted token gives the token back', () => {
    fc.assert(
      fc.property(fc.stringMatching(/^(?:[A-Za-z0-9_-]|%[0-9A-Fa-f]{2}|%)*$/), (token) => {
        const text = unescapeToken(token);
        if (text !== undefined) expect(escapeToken(text)).toBe(token);
      }),
      { numRuns: 2000 },
    );
  });
});

describe('instance subjects', () => {
  const subjects = new Subjects('default');

  it('lays out tick subjects as tickcast.<instance>.tick.<feed>.<exchange>.<symbol>.<MODE>', () => {
    expect(subjects.tick('simulator', 'NSE', 'RELIANCE', 1)).toBe('tickcast.default.tick.simulator.NSE.RELIANCE.LTP');
    expect(subjects.tick(SHARED_FEED, 'NSE_INDEX', 'NIFTY 50', 2)).toBe('tickcast.default.tick._.NSE_INDEX.NIFTY%2050.QUOTE');
    expect(subjects.tick('zerodha.alice', 'NSE', 'M&M', 3)).toBe('tickcast.default.tick.zerodha%2Ealice.NSE.M%26M.DEPTH');
    expect(subjects.streamWildcard('simulator', 'NSE', 'TCS')).toBe('tickcast.default.tick.simulator.NSE.TCS.*');
    expect(subjects.announce).toBe('tickcast.default.ctl.announce');
    expect(subjects.controlPeer('sim-1')).toBe('tickcast.default.ctl.peer.sim-1');
    expect(subjects.controlPeer('0123456789abcdef')).toBe('tickcast.default.ctl.peer.0123456789abcdef');
    // Empty: the prefix every inbox starts with.
    expect(subjects.controlPeer('')).toBe('tickcast.default.ctl.peer.');
    expect(subjects.allTicks).toBe('tickcast.default.tick.>');
  });

  it('parses a tick subject back to its stream, for awkward symbols and the shared feed', () => {
    const streams: Array<[string, string, string, Mode]> = [
      ['simulator', 'NSE', 'BRK.B', 1],
      [SHARED_FEED, 'NSE', 'NIFTY 50', 2],
      ['a.b-c_d', 'MCX', '*>', 3],
      ['simulator', 'NSE', 'महिंद्रा', 1],
      ['simulator', 'X', '', 2],
      ['simulator', '', 'EMPTY-EXCHANGE', 3],
    ];
    for (const [feed, exchange, symbol, mode] of streams) {
      const subject = subjects.tick(feed, exchange, symbol, mode);
      expect(subject.split('.')).toHaveLength(7);
      expect(subjects.parseTick(subject)).toEqual({ feed, exchange, symbol, mode });
    }
  });

  it('round-trips any stream', () => {
    const feed = fc.oneof(fc.constant(SHARED_FEED), fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/));
    fc.assert(
      fc.property(feed, wellFormed, wellFormed, fc.constantFrom<Mode>(1, 2, 3), (f, exchange, symbol, mode) => {
        const subject = subjects.tick(f, exchange, symbol, mode);
        expect(subject.split('.')).toHaveLength(7);
        expect(subject.length).toBeLessThan(MAX_SUBJECT_LENGTH);
        expect(subjects.parseTick(subject)).toEqual({ feed: f, exchange, symbol, mode });
      }),
      { numRuns: 1000 },
    );
  });

  it('refuses subjects of other instances, other shapes, bad modes and bad tokens', () => {
    for (const subject of [
      'tickcast.other.tick.simulator.NSE.TCS.LTP',
      'tickcast.default.tick.simulator.NSE.TCS',
      'tickcast.default.tick.simulator.NSE.TCS.LTP.x',
      'tickcast.default.tick.simulator.NSE.TCS.ltp',
      'tickcast.default.tick.simulator.NSE.TCS.FULL',
      'tickcast.default.tick.simulator.NSE.%2e.LTP',
      'tickcast.default.tick.%5Fbad.NSE.TCS.LTP', // a feed id cannot start with _
      'tickcast.default.tick.a%7Cb.NSE.TCS.LTP', // nor hold |
      'tickcast.default.event.a.b',
    ]) {
      expect(subjects.topicOf(subject), subject).toBeUndefined();
    }
  });

  it('maps bus topics to subjects and back', () => {
    for (const topic of ['simulator|NSE_RELIANCE_LTP', 'NSE_INDEX_NIFTY_QUOTE', 'CRYPTO_SOL_INR_DEPTH', 'zerodha.alice|NSE_M&M_LTP']) {
      const subject = subjects.forTopic(topic);
      expect(subject.startsWith('tickcast.default.tick.')).toBe(true);
      expect(subjects.topicOf(subject)).toEqual({ topic, tick: true });
    }
    for (const topic of ['CACHE_INVALIDATE_AUTH', 'dev_orders', 'not a topic', 'x.y']) {
      const subject = subjects.forTopic(topic);
      expect(subject.startsWith('tickcast.default.event.')).toBe(true);
      expect(subjects.topicOf(subject)).toEqual({ topic, tick: false });
    }
  });

  it('escapes the instance name too', () => {
    expect(new Subjects('desk_1').allTicks).toBe('tickcast.desk_1.tick.>');
    expect(new Subjects('a.b').tick('f', 'NSE', 'X', 1)).toBe('tickcast.a%2Eb.tick.f.NSE.X.LTP');
    expect(new Subjects('a.b').controlPeer('p1')).toBe('tickcast.a%2Eb.ctl.peer.p1');
  });
});
