/**
 * Human rendering of diagnostics: `path:line:col  severity  CODE  message`, a code frame
 * around the position, and the hint. The --json form is the Diagnostic objects themselves.
 */
import { count } from './count.js';
import { closeSync, constants as fsConstants, fstatSync, openSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { ChalkInstance } from 'chalk';
import { LineIndex, type Diagnostic } from '../../core/diagnostics.js';
import { MAX_DEFINITION_BYTES } from '../../core/source-file.js';

export interface RenderOptions {
  color: ChalkInstance;
  /** Project root, to read sources for code frames. */
  root: string;
  /** Source texts already in memory, by file. */
  sources?: Map<string, string>;
  frames?: boolean;
}

export function renderDiagnostics(list: readonly Diagnostic[], options: RenderOptions): string {
  const c = options.color;
  const cache = new Map<string, LineIndex | null>();
  const indexFor = (file: string): LineIndex | null => {
    if (!cache.has(file)) {
      const text = options.sources?.get(file) ?? tryRead(path.resolve(options.root, file));
      cache.set(file, text === undefined ? null : new LineIndex(text));
    }
    return cache.get(file) ?? null;
  };
  const blocks = list.map((d) => {
    const sev = d.severity === 'error' ? c.red('error') : c.yellow('warning');
    const lines = [`${c.bold(`${d.file}:${d.line}:${d.column}`)}  ${sev}  ${c.dim(d.code)}  ${d.message}`];
    if (options.frames !== false) {
      const index = indexFor(d.file);
      if (index && index.text.length > 0) lines.push(...codeFrame(index, d, c));
    }
    if (d.hint) lines.push(`  ${c.cyan('hint:')} ${d.hint}`);
    return lines.join('\n');
  });
  return blocks.join('\n\n');
}

/**
 * A file's text for a code frame, when it is a regular file alloy would have read: never a
 * device or a pipe (a committed `workflows/x.yaml -> /dev/zero` or a FIFO made `alloy validate`
 * read without end, or wait for ever), never more than a definition file may hold.
 */
function tryRead(file: string): string | undefined {
  let fd: number | undefined;
  try {
    fd = openSync(file, fsConstants.O_RDONLY | (fsConstants.O_NONBLOCK ?? 0));
    const info = fstatSync(fd);
    if (!info.isFile() || info.size > MAX_DEFINITION_BYTES) return undefined;
    const text = readFileSync(fd, 'utf8');
    return text.includes('\u0000') ? undefined : text;
  } catch {
    return undefined;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/** Characters of a source line shown in a frame; a longer line (minified JSON) is cut around the column. */
export const FRAME_LINE_WIDTH = 120;

function codeFrame(index: LineIndex, d: Diagnostic, c: ChalkInstance): string[] {
  const first = Math.max(1, d.line - 1);
  const last = Math.min(index.lineCount, d.line + 1);
  const width = String(last).length;
  // One window for the three lines, starting a little before the column (a 400 KB line of
  // `[` printed whole flooded the terminal).
  const start = Math.max(0, d.column - 1 - 40);
  const clip = (line: string) => {
    if (line.length <= FRAME_LINE_WIDTH && start === 0) return line;
    const cut = line.slice(start, start + FRAME_LINE_WIDTH);
    return `${start > 0 ? '…' : ''}${cut}${start + FRAME_LINE_WIDTH < line.length ? '…' : ''}`;
  };
  const out: string[] = [];
  for (let n = first; n <= last; n++) {
    const text = index.lineText(n).replace(/\t/g, ' ');
    const gutter = String(n).padStart(width);
    if (n === d.line) {
      out.push(`${c.red('>')} ${c.dim(gutter + ' |')} ${clip(text)}`);
      const span = d.endLine === d.line ? Math.max(1, d.endColumn - d.column) : Math.max(1, text.length - d.column + 1);
      const at = d.column - 1 - start + (start > 0 ? 1 : 0);
      out.push(`  ${' '.repeat(width)} ${c.dim('|')} ${' '.repeat(Math.max(0, at))}${c.red('^'.repeat(Math.min(span, 80, Math.max(1, FRAME_LINE_WIDTH - (d.column - 1 - start)))))}`);
    } else {
      out.push(`  ${c.dim(gutter + ' |')} ${clip(text)}`);
    }
  }
  return out;
}

export function summarize(list: readonly Diagnostic[], fileCount: number): { errors: number; warnings: number; text: string } {
  const errors = list.filter((d) => d.severity === 'error').length;
  const warnings = list.length - errors;
  const files = new Set(list.map((d) => d.file)).size;
  const text =
    list.length === 0
      ? `${count(fileCount, 'file')} checked, no problems`
      : `${count(errors, 'error')}, ${count(warnings, 'warning')} in ${count(files, 'file')} (${count(fileCount, 'file')} checked)`;
  return { errors, warnings, text };
}
