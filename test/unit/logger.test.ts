/** The logger writes each key once per line, whoever added it: bindings, nested children, the call. */
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger, topLevelKeys, withUniqueKeys } from '../../src/observability/logger.js';

function capture(): { stream: Writable; lines: () => string[] } {
  let text = '';
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      text += chunk.toString();
      done();
    },
  });
  return { stream, lines: () => text.split('\n').filter(Boolean) };
}

describe('logger', () => {
  it('a key bound twice, or bound and given again, is written once with its latest value', () => {
    const out = capture();
    const root = createLogger('info', out.stream);
    const feedLogger = root.child({ feed: 'zerodha.alice' }).child({ feed: 'zerodha.alice', broker: 'zerodha' });
    feedLogger.info({ feed: 'zerodha.alice', streams: 3 }, 'connected');
    root.child({ part: 'control' }).warn({ part: 'other', reason: 'x' }, 'refused');
    root.info({ n: 1 }, 'plain');
    const [first, second, third] = out.lines();
    expect(topLevelKeys(first!)).toEqual(['level', 'time', 'pid', 'feed', 'broker', 'streams', 'msg']);
    expect(JSON.parse(first!)).toMatchObject({ pid: process.pid, feed: 'zerodha.alice', broker: 'zerodha', streams: 3, msg: 'connected' });
    expect(topLevelKeys(second!)).toEqual(['level', 'time', 'pid', 'part', 'reason', 'msg']);
    expect(JSON.parse(second!).part).toBe('other');
    expect(topLevelKeys(third!)).toEqual(['level', 'time', 'pid', 'n', 'msg']);
  });

  it('reads top-level keys without being fooled by strings or nesting, and leaves unique lines as they are', () => {
    expect(topLevelKeys('{"a":"{\\"b\\":1,","c":[{"a":1}],"d":{"a":{"e":2}},"a":3}')).toEqual(['a', 'c', 'd', 'a']);
    const line = '{"level":30,"msg":"x \\"y\\" , {"}\n';
    expect(withUniqueKeys(line)).toBe(line);
    expect(withUniqueKeys('{"a":1,"b":2,"a":3}\n')).toBe('{"a":3,"b":2}\n');
  });

  it('keeps the password of DATABASE_URL out, raw or parsed', () => {
    const out = capture();
    const logger = createLogger('info', out.stream);
    logger.info({ DATABASE_URL: 'postgresql://oa:hunter2@db/oa', config: { database: { kind: 'postgresql', user: 'oa', password: 'hunter2', display: 'postgresql://oa@db:5432/oa' } } }, 'starting');
    const [line] = out.lines();
    expect(line).not.toContain('hunter2');
    expect(JSON.parse(line!).config.database).toMatchObject({ password: '[redacted]', display: 'postgresql://oa@db:5432/oa' });
  });
});
