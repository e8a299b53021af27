/**
 * Trigger schemas, action inputs and installation config are user-written JSON Schemas whose
 * `pattern`s run against event data. ajv compiles them with the `u` flag by default, and V8
 * does not re-run a unicode regex on its linear-time engine, so `^(a+)+$` against 30 "a"s and
 * a "b" held the thread for minutes (every request of `alloy dev` and `alloy serve` waited).
 */
import { describe, expect, it } from 'vitest';
import { getUserAjv } from '../../src/core/schema-check.js';

describe('patterns in user schemas', () => {
  it('a pattern that backtracks catastrophically on event data does not hold the thread', () => {
    const validate = getUserAjv().compile({
      type: 'object',
      properties: { s: { type: 'string', pattern: '^(a+)+$' } },
      patternProperties: { '^(b+)+$': { type: 'string' } },
    });
    const t0 = performance.now();
    expect(validate({ s: `${'a'.repeat(30)}!` })).toBe(false);
    expect(validate({ [`${'b'.repeat(30)}!`]: 1 })).toBe(true);
    expect(performance.now() - t0).toBeLessThan(1000);
  });

  it('patterns keep their meaning: unicode classes and code point escapes, invalid patterns still refused', () => {
    const ajv = getUserAjv();
    const letters = ajv.compile({ type: 'string', pattern: '^\\p{L}+$' });
    expect(letters('Zoë')).toBe(true);
    expect(letters('a1')).toBe(false);
    const smile = ajv.compile({ type: 'string', pattern: '^\\u{1F600}$' });
    expect(smile('😀')).toBe(true);
    expect(smile('uuuu')).toBe(false);
    const plain = ajv.compile({ type: 'string', pattern: '^[A-Z]{2}-\\d+$' });
    expect(plain('AB-12')).toBe(true);
    expect(plain('ab-12')).toBe(false);
    // Valid without `u` but not with it: ajv refused it before, and still does.
    expect(() => ajv.compile({ type: 'string', pattern: '\\-a' })).toThrow();
  });

  it('surrogates written as \\uD83D escapes keep the `u` meaning (a range of emoji, a pair that is one character)', () => {
    const ajv = getUserAjv();
    // Without `u` this range is "out of order" (its ends are lone surrogates) and would not compile.
    const emoji = ajv.compile({ type: 'string', pattern: '^[\\uD83D\\uDE00-\\uD83D\\uDE4F]+$' });
    expect(emoji('😀🙏')).toBe(true);
    expect(emoji('a')).toBe(false);
    // With `u` a surrogate class matches only a lone surrogate, never half of a pair.
    const halves = ajv.compile({ type: 'string', pattern: '^[\\uD800-\\uDBFF][\\uDC00-\\uDFFF]$' });
    expect(halves('😀')).toBe(false);
  });
});
