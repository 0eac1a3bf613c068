import { describe, expect, it } from 'vitest';
import { nestedBeyond } from '../../src/protocol/json-depth.js';

describe('nestedBeyond', () => {
  it('names the bracket that first goes past the limit', () => {
    expect(nestedBeyond('[[[1]]]', 3)).toBeUndefined();
    expect(nestedBeyond('[[[[1]]]]', 3)).toBe('[');
    expect(nestedBeyond('[{"a":{"b":[1]}}]', 3)).toBe('[');
    expect(nestedBeyond('{"a":[{"b":{}}]}', 3)).toBe('{');
    expect(nestedBeyond('{"a":[{"b":1}]}', 3)).toBeUndefined();
  });

  it('counts depth, not brackets: siblings do not add up', () => {
    expect(nestedBeyond(`[${'[],'.repeat(5000)}[]]`, 2)).toBeUndefined();
  });

  it('ignores brackets inside strings, escaped quotes included', () => {
    expect(nestedBeyond(`{"a":"${'['.repeat(5000)}"}`, 10)).toBeUndefined();
    expect(nestedBeyond(`{"a":"\\"${'{'.repeat(5000)}"}`, 10)).toBeUndefined();
    expect(nestedBeyond(`{"a":"\\\\"${',['.repeat(20)}`, 10)).toBe('[');
  });

  it('finds depth in unterminated text too (a parser would get that deep before failing)', () => {
    expect(nestedBeyond('['.repeat(2000), 1000)).toBe('[');
  });
});
