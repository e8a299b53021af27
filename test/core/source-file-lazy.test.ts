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

  it('resolves the YAML 1.2 core tags as the core schema says, the same on both paths', () => {
    // `!!float 1` was "unsupported YAML tag" on the positioned path and 1 on the fast one.
    const text = [
      'a: !!float 1',
      'b: !!float "2"',
      'c: !!float -1.5e3',
      'd: !!int 0x1F',
      'e: !!int 0o17',
      'f: !!int "-12"',
      'g: !!bool True',
      'h: !!null ~',
      'i: !!null',
      'j: !!str 3',
      'k: !!map { x: !!seq [ !!int 1 ] }',
      '',
    ].join('\n');
    const want = { a: 1, b: 2, c: -1500, d: 31, e: 15, f: -12, g: true, h: null, i: null, j: '3', k: { x: [1] } };
    const slow = parseSource('t.yaml', text);
    expect(slow.diagnostics).toEqual([]);
    expect(slow.value).toEqual(want);
    const lazy = parseSourceLazily('t.yaml', text);
    expect(lazy.diagnostics).toEqual([]);
    expect(lazy.value).toEqual(want);
    expect(parseSource('t.yaml', 'x: !!float .inf\n').value).toEqual(parseSourceLazily('t.yaml', 'x: !!float .inf\n').value);
  });

  it('a value that does not fit its core tag is a located E_YAML_TAG saying so, on both paths', () => {
    // YAML 1.1 forms js-yaml took (1_000, 0b11, yes) are not YAML 1.2 core: refused on both paths, not a value on one.
    const cases: [string, string][] = [
      ['!!int abc', '"abc" does not fit its tag !!int'],
      ['!!int 1.5', '"1.5" does not fit its tag !!int'],
      ['!!int 1_000', '"1_000" does not fit its tag !!int'],
      ['!!int 0b11', '"0b11" does not fit its tag !!int'],
      ['!!float abc', '"abc" does not fit its tag !!float'],
      ['!!bool yes', '"yes" does not fit its tag !!bool'],
      ['!!null x', '"x" does not fit its tag !!null'],
      ['!!map [1]', 'does not fit its tag !!map'],
      ['!!str { a: 1 }', 'does not fit its tag !!str'],
    ];
    for (const [value, message] of cases) {
      const text = `ok: 1\nbad: ${value}\n`;
      for (const parsed of [parseSource('t.yaml', text), parseSourceLazily('t.yaml', text)]) {
        expect(parsed.value, value).toBeUndefined();
        expect(parsed.diagnostics, value).toEqual([expect.objectContaining({ code: 'E_YAML_TAG', line: 2, column: 6, message: expect.stringContaining(message) })]);
      }
    }
  });
});

