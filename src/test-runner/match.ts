/**
 * Partial deep matching for expectations: every key the expectation names must match;
 * keys it leaves out are ignored. Arrays match element by element and must have the same
 * length. A mismatch comes with a line diff (vitest's "- Expected / + Received").
 */
import { diffLines } from 'diff';

/** True when `actual` has everything `expected` names. */
export function partialMatch(expected: unknown, actual: unknown): boolean {
  if (expected === null || typeof expected !== 'object') return Object.is(expected, actual) || (expected === actual);
  if (Array.isArray(expected)) {
    if (!Array.isArray(actual) || actual.length !== expected.length) return false;
    for (let i = 0; i < expected.length; i++) if (!partialMatch(expected[i], actual[i])) return false;
    return true;
  }
  if (actual === null || typeof actual !== 'object' || Array.isArray(actual)) return false;
  const a = actual as Record<string, unknown>;
  const e = expected as Record<string, unknown>;
  // A plain loop over own keys: this runs for every expectation of every test, and
  // Object.entries(...).every allocated an array of pairs per object compared.
  for (const k of Object.keys(e)) if (!hasOwn.call(a, k) || !partialMatch(e[k], a[k])) return false;
  return true;
}

const hasOwn = Object.prototype.hasOwnProperty;

/**
 * `actual` cut down to the shape of `expected` (keys it does not name dropped), so a diff
 * shows only what the test asked about, and what is missing.
 */
export function project(expected: unknown, actual: unknown): unknown {
  if (expected === null || typeof expected !== 'object' || actual === null || typeof actual !== 'object') return actual;
  if (Array.isArray(expected)) {
    if (!Array.isArray(actual)) return actual;
    return actual.map((a, i) => (i < expected.length ? project(expected[i], a) : a));
  }
  if (Array.isArray(actual)) return actual;
  const out: Record<string, unknown> = {};
  const a = actual as Record<string, unknown>;
  for (const k of Object.keys(expected as object)) if (Object.prototype.hasOwnProperty.call(a, k)) out[k] = project((expected as Record<string, unknown>)[k], a[k]);
  return out;
}

/** Sorted keys (as vitest's pretty-format does), so key order never shows as a change. */
function sortKeys(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(sortKeys);
  if (v === null || typeof v !== 'object') return v;
  return Object.fromEntries(Object.keys(v).sort().map((k) => [k, sortKeys((v as Record<string, unknown>)[k])]));
}

function pretty(v: unknown): string {
  return v === undefined ? 'undefined' : JSON.stringify(sortKeys(v), null, 2);
}

/**
 * A line diff, expected lines prefixed `- `, received `+ `, common lines `  `. With
 * `context`, unchanged runs longer than that many lines around a change fold into `  …`.
 */
export function lineDiff(expected: unknown, actual: unknown, options: { context?: number } = {}): string {
  const lines: string[] = [];
  for (const part of diffLines(pretty(expected) + '\n', pretty(actual) + '\n')) {
    const mark = part.added ? '+ ' : part.removed ? '- ' : '  ';
    for (const line of part.value.replace(/\n$/, '').split('\n')) lines.push(mark + line);
  }
  const n = options.context;
  let body = lines;
  if (n !== undefined) {
    const keep = lines.map(() => false);
    lines.forEach((l, i) => {
      if (!l.startsWith('  ')) for (let j = Math.max(0, i - n); j <= Math.min(lines.length - 1, i + n); j++) keep[j] = true;
    });
    body = [];
    lines.forEach((l, i) => {
      if (keep[i]) body.push(l);
      else if (body[body.length - 1] !== '  …') body.push('  …');
    });
  }
  return ['- Expected', '+ Received', '', ...body].join('\n');
}

/**
 * The JSON pointer (relative to `expected`) of the first place `actual` differs, so a
 * failure points at the exact key in the test file rather than the whole mapping.
 */
export function mismatchPointer(expected: unknown, actual: unknown): string {
  if (expected === null || typeof expected !== 'object') return '';
  if (Array.isArray(expected)) {
    if (!Array.isArray(actual) || actual.length !== expected.length) return '';
    for (const [i, e] of expected.entries()) if (!partialMatch(e, actual[i])) return `/${i}${mismatchPointer(e, actual[i])}`;
    return '';
  }
  if (actual === null || typeof actual !== 'object' || Array.isArray(actual)) return '';
  const a = actual as Record<string, unknown>;
  for (const [k, v] of Object.entries(expected as Record<string, unknown>)) {
    const key = k.replace(/~/g, '~0').replace(/\//g, '~1');
    if (!Object.prototype.hasOwnProperty.call(a, k)) return `/${key}`;
    if (!partialMatch(v, a[k])) return `/${key}${mismatchPointer(v, a[k])}`;
  }
  return '';
}
