/** parseSourceLazily: the same values as parseSource, positions parsed only when asked for. */
import { describe, expect, it } from 'vitest';
import { parseSource, parseSourceLazily, rangeAt } from '../../src/core/source-file.js';

const TEXT = `apiVersion: alloy/v1
kind: Test
workflow: create-order
tests:
  - name: one
    clock: 2026-01-01T00:00:00Z
    event: { n: 1, on: yes, nul: ~, big: 12345678901234567890, list: [a, "b", 'c'] }
    expect:
      status: succeeded
`;

describe('parseSourceLazily', () => {
  it('yields what parseSource yields (YAML 1.2 core: timestamps stay strings, yes is a string)', () => {
    const lazy = parseSourceLazily('t.yaml', TEXT);
    expect(lazy.value).toEqual(parseSource('t.yaml', TEXT).value);
    expect((lazy.value as { tests: { clock: unknown }[] }).tests[0].clock).toBe('2026-01-01T00:00:00Z');
    expect(lazy.diagnostics).toEqual([]);
  });

  it('parses positions on first use, for located failures', () => {
    const lazy = parseSourceLazily('t.yaml', TEXT);
    const range = rangeAt(lazy, '/tests/0/expect/status');
    expect(lazy.index.position(range![0])).toEqual({ line: 9, column: 15 });
  });

  it('falls back to the positioned parser for syntax errors, duplicate keys and aliases', () => {
    const broken = parseSourceLazily('t.yaml', 'a: [1, 2\nb: 3\n');
    expect(broken.value).toBeUndefined();
    expect(broken.diagnostics[0]).toMatchObject({ code: expect.stringMatching(/^E_YAML/), line: expect.any(Number) });
    const dup = parseSourceLazily('t.yaml', 'a: 1\na: 2\n');
    expect(dup.diagnostics[0]?.code).toMatch(/^E_YAML/);
    const aliases = 'a: &x [1, 2]\nb: *x\n';
    expect(parseSourceLazily('t.yaml', aliases).doc).toBeDefined();
    expect(parseSourceLazily('t.yaml', aliases).value).toEqual(parseSource('t.yaml', aliases).value);
  });

  it('refuses explicit tags beyond YAML 1.2 core (binary, set, timestamp, custom), located, on both paths', () => {
    // They made values JSON cannot hold (a Set became {}, binary an object of bytes) or were dropped silently.
    const text = 'a: 1\nb: !!binary aGVsbG8=\nc: !!set { x }\nd: !!timestamp 2001-12-14\ne: !!js/function "f"\nf: !local 1\ng: !!str 5\n';
    for (const parsed of [parseSource('t.yaml', text), parseSourceLazily('t.yaml', text)]) {
      expect(parsed.value).toBeUndefined();
      expect(parsed.diagnostics.map((d) => [d.code, d.line])).toEqual([
        ['E_YAML_TAG', 2],
        ['E_YAML_TAG', 3],
        ['E_YAML_TAG', 4],
        ['E_YAML_TAG', 5],
        ['E_YAML_TAG', 6],
      ]);
      expect(parsed.diagnostics[0].message).toContain('!!binary');
    }
    // The core schema's own tags still work.
    expect(parseSource('t.yaml', 'g: !!str 5\nh: !!int "7"\n').value).toEqual({ g: '5', h: 7 });
  });
});

