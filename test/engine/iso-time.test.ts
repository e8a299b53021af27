/** isoTime (the engine's timestamps) is `new Date(ms).toISOString()` whatever the millisecond, second or year. */
import { describe, expect, it } from 'vitest';
import { isoTime } from '../../src/engine/execute.js';

describe('isoTime', () => {
  it('matches toISOString, including across seconds, fractions and the ends of its fast range', () => {
    const base = Date.parse('2026-12-02T01:59:59.990Z');
    const samples = [0, 1, 9, 10, 99, 100, 999, 1000, 1001, 0.5, 999.999, base, base + 9, base + 10, base + 11, base + 1.7, base + 1000, -1, -1000.5, -62198755200000, 253402300799999, 253402300800000, 8.64e15];
    for (let i = 0; i < 3000; i += 7) samples.push(base + i);
    // Interleaved, so the per-second cache is hit, missed and hit again.
    for (const ms of [...samples, ...samples.reverse()]) expect(isoTime(ms), String(ms)).toBe(new Date(ms).toISOString());
  });
  it('throws as toISOString does for an invalid time', () => {
    expect(() => isoTime(NaN)).toThrow(RangeError);
    expect(() => isoTime(8.64e15 + 1)).toThrow(RangeError);
  });
});
