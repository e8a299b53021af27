/**
 * Code frames under diagnostics stay readable on long lines: a workflow written as one line of
 * JSON (or a hostile 400 KB line of `[`) printed the whole line, flooding the terminal and CI logs.
 */
import { Chalk } from 'chalk';
import { describe, expect, it } from 'vitest';
import { FRAME_LINE_WIDTH, renderDiagnostics } from '../../src/cli/render/diagnostics.js';
import { LineIndex, makeDiagnostic } from '../../src/core/diagnostics.js';

const color = new Chalk({ level: 0 });

describe('code frames', () => {
  it('cut a long line to a window around the column, the caret still under it', () => {
    const line = `${'a'.repeat(5000)}X${'b'.repeat(5000)}`;
    const text = `first\n${line}\nlast\n`;
    const index = new LineIndex(text);
    const at = text.indexOf('X');
    const d = makeDiagnostic('f.yaml', index, [at, at + 1], 'error', 'E_TEST', 'here');
    const out = renderDiagnostics([d], { color, root: '/nowhere', sources: new Map([['f.yaml', text]]) });
    for (const l of out.split('\n')) expect(l.length, l.slice(0, 40)).toBeLessThan(FRAME_LINE_WIDTH + 40);
    const lines = out.split('\n');
    const src = lines.find((l) => l.startsWith('> 2 |'))!;
    const caret = lines[lines.indexOf(src) + 1];
    expect(src[caret.indexOf('^')]).toBe('X');
    expect(src).toMatch(/^> 2 \| …a+Xb+…$/);
  });

  it('leaves ordinary lines as they are', () => {
    const text = 'name: x\nwth:\n  a: 1\n';
    const index = new LineIndex(text);
    const d = makeDiagnostic('f.yaml', index, [8, 11], 'error', 'E_TEST', 'here');
    const out = renderDiagnostics([d], { color, root: '/nowhere', sources: new Map([['f.yaml', text]]) });
    expect(out).toContain('> 2 | wth:\n    | ^^^');
    expect(out).toContain('  1 | name: x');
  });
});
