/** parseSourceLazily: the same values as parseSource, positions parsed only when asked for. */
import { describe, expect, it } from 'vitest';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { findConfig } from '../../src/core/find-config.js';
import { parseFastPath, parseSource, parseSourceLazily, rangeAt, resolvePlainScalar } from '../../src/core/source-file.js';

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

/** Plain scalars and what the YAML 1.2 core schema makes of them (yaml.org/spec/1.2.2 10.3.2). */
const TABLE: [string, unknown][] = [
  ['0b11', '0b11'], ['-0x1F', '-0x1F'], ['+0x1F', '+0x1F'], ['0x1F', 31], ['0xff', 255], ['0X1F', '0X1F'], ['0x', '0x'], ['0x_1', '0x_1'],
  ['0o17', 15], ['-0o17', '-0o17'], ['0o8', '0o8'], ['0O17', '0O17'], ['012', 12], ['08', 8], ['00', 0], ['0', 0], ['-0', 0], ['+0', 0],
  ['+12', 12], ['-12', -12], ['1_000', '1_000'], ['12345678901234567890', 12345678901234567890],
  ['.5', 0.5], ['-.5', -0.5], ['+.5', 0.5], ['1.', 1], ['+3.', 3], ['0.0', 0], ['-0.0', -0], ['1e3', 1000], ['1E3', 1000], ['1e+3', 1000],
  ['-1.5e-3', -0.0015], ['.5e1', 5], ['1e', '1e'], ['e3', 'e3'], ['1.0_0', '1.0_0'], ['.', '.'], ['+', '+'], ['1:20', '1:20'],
  ['.inf', Infinity], ['.Inf', Infinity], ['.INF', Infinity], ['+.inf', Infinity], ['-.Inf', -Infinity], ['-.INF', -Infinity],
  ['.iNf', '.iNf'], ['inf', 'inf'], ['Infinity', 'Infinity'], ['.NaN', NaN], ['.nan', NaN], ['.NAN', NaN], ['-.nan', '-.nan'], ['NaN', 'NaN'],
  ['~', null], ['null', null], ['Null', null], ['NULL', null], ['nULL', 'nULL'], ['None', 'None'],
  ['true', true], ['True', true], ['TRUE', true], ['false', false], ['False', false], ['FALSE', false], ['tRUE', 'tRUE'],
  ['yes', 'yes'], ['no', 'no'], ['on', 'on'], ['off', 'off'], ['y', 'y'], ['n', 'n'], ['Yes', 'Yes'],
  ['2001-12-14', '2001-12-14'], ['2001-12-14T21:59:43Z', '2001-12-14T21:59:43Z'],
];

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

  it('resolves every untagged plain scalar as the YAML 1.2 core schema says, the same on both paths', () => {
    // yaml.org/spec/1.2.2 10.3.2: null, bool, int (decimal, 0o, 0x), float (incl. .inf, .nan); all else a string.
    // Before, the fast path (js-yaml) read 0b11, -0x1F, +0x1F and -0o17 as numbers and -.5, +.5 as strings,
    // and the positioned path read -0 as -0, and under %YAML 1.1 yes as true and dates as Dates.
    const same = (a: unknown, b: unknown) => Object.is(a, b);
    const texts = (s: string) => [
      [`v: ${s}\n`, (v: Record<string, unknown>) => v.v],
      [`%YAML 1.1\n---\nv: ${s}\n`, (v: Record<string, unknown>) => v.v],
      [`v: [${s}, x]\n`, (v: Record<string, unknown[]>) => v.v[0]],
      [`v:\n  - ${s}\n`, (v: Record<string, unknown[]>) => v.v[0]],
    ] as const;
    const wrong: string[] = [];
    for (const [scalar, want] of TABLE) {
      if (!same(resolvePlainScalar(scalar), want)) wrong.push(`resolvePlainScalar(${scalar}): ${String(resolvePlainScalar(scalar))}`);
      for (const [text, pick] of texts(scalar)) {
        const slow = parseSource('t.yaml', text);
        const fast = parseFastPath('t.yaml', text);
        const got = [slow.diagnostics.length ? 'diagnostics' : pick(slow.value as never), fast ? pick(fast.value as never) : 'not taken'];
        if (!same(got[0], want) || !same(got[1], want)) wrong.push(`${JSON.stringify(text)}: positioned ${String(got[0])}, fast ${String(got[1])}, want ${String(want)}`);
      }
      // As a key: both paths give the same property name.
      const key = `${scalar}: 1\n`;
      const slowKeys = Object.keys(parseSource('t.yaml', key).value as object);
      const fastKeys = Object.keys(parseFastPath('t.yaml', key)?.value as object);
      if (slowKeys.join() !== fastKeys.join()) wrong.push(`key ${scalar}: positioned ${slowKeys.join()}, fast ${fastKeys.join()}`);
    }
    expect(wrong).toEqual([]);
    // Quoted, they are strings on both paths.
    for (const text of ['v: "0x1F"\n', "v: '~'\n", 'v: "true"\n']) {
      expect(parseSource('t.yaml', text).value).toEqual(parseFastPath('t.yaml', text)?.value);
      expect(typeof (parseSource('t.yaml', text).value as { v: unknown }).v).toBe('string');
    }
  });

  it('keys become the same property names on both paths; list or map keys are refused on both', () => {
    // The positioned path made a null key "" (js-yaml: "null"), kept `2` and `"2"` as one key silently,
    // and wrote a list key as "[ a, b ]" (js-yaml: "a,b") with a process warning.
    for (const text of ['~: 1\n', 'null: 1\n', 'Null: 1\n']) {
      expect(parseSource('t.yaml', text).value, text).toEqual({ null: 1 });
      expect(parseFastPath('t.yaml', text)?.value, text).toEqual({ null: 1 });
    }
    for (const text of ['2: a\n"2": b\n', 'null: a\n"null": b\n', '~: a\nnull: b\n', '0x10: a\n16: b\n', '1: a\n1.0: b\n']) {
      for (const parsed of [parseSource('t.yaml', text), parseSourceLazily('t.yaml', text)]) {
        expect(parsed.value, text).toBeUndefined();
        expect(parsed.diagnostics.map((d) => [d.code, d.line]), text).toEqual([['E_YAML_DUPLICATE_KEY', 2]]);
      }
    }
    for (const text of ['ok: 1\n[a, b]: 1\n', 'ok: 1\n{a: 1}: 2\n', 'ok: 1\n? [1, 2]\n: x\n', 'ok: {x: 1, [a]: 2}\n']) {
      for (const parsed of [parseSource('t.yaml', text), parseSourceLazily('t.yaml', text)]) {
        expect(parsed.value, text).toBeUndefined();
        expect(parsed.diagnostics.map((d) => d.code), text).toEqual(['E_YAML_KEY']);
      }
    }
    // Text that only looks like such a key still parses, on the positioned path.
    expect(parseSourceLazily('t.yaml', 'a: "[x]: y"\nb: what ? no\n').value).toEqual({ a: '[x]: y', b: 'what ? no' });
  });

  it('the config search (store and serve commands read its value) resolves scalars as the definitions do', async () => {
    // It parsed with the yaml package's defaults: under %YAML 1.1, yes was true and 0b11 was 3.
    const dir = await mkdtemp(path.join(os.tmpdir(), 'alloy-yaml-config-'));
    try {
      for (const header of ['', '%YAML 1.1\n---\n']) {
        const text = `${header}name: x\nt:\n${TABLE.map(([scalar], i) => `  k${i}: ${scalar}\n`).join('')}`;
        await writeFile(path.join(dir, 'alloy.config.yaml'), text);
        const found = (await findConfig(dir))?.config as { t: Record<string, unknown> };
        const wrong = TABLE.flatMap(([scalar, want], i) => (Object.is(found.t[`k${i}`], want) ? [] : [`${scalar}: ${String(found.t[`k${i}`])}`]));
        expect(wrong, header).toEqual([]);
        expect(found).toEqual(parseSource('alloy.config.yaml', text).value);
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
