/**
 * Reporters for test runs: the terminal one (in the manner of vitest: a line per test,
 * failures with file:line:col, a code frame and a diff, then a summary line), JUnit XML for
 * CI systems, and the JSON shape `alloy test --json` prints.
 */
import type { ChalkInstance } from 'chalk';
import type { LoadedProject } from '../core/project-types.js';
import type { TestResult, TestRunSummary } from './types.js';

/** One line as a test ends. */
export function formatResultLine(r: TestResult, c: ChalkInstance): string {
  const mark = r.state === 'passed' ? c.green('✓') : r.state === 'failed' ? c.red('×') : c.yellow('↓');
  const snap = r.snapshot ? c.dim(` (snapshot ${r.snapshot})`) : '';
  return ` ${mark} ${c.dim(`${r.file} >`)} ${r.name} ${c.dim(`${r.durationMs}ms`)}${snap}`;
}

function codeFrame(text: string, line: number, column: number, c: ChalkInstance): string[] {
  const lines = text.split('\n');
  const out: string[] = [];
  const width = String(Math.min(lines.length, line + 1)).length;
  for (let n = Math.max(1, line - 1); n <= Math.min(lines.length, line + 1); n++) {
    const mark = n === line ? c.red('>') : ' ';
    out.push(`  ${mark} ${c.dim(String(n).padStart(width) + ' |')} ${lines[n - 1].replace(/\r$/, '')}`);
    if (n === line) out.push(`    ${' '.repeat(width)} ${c.dim('|')} ${' '.repeat(Math.max(0, column - 1))}${c.red('^')}`);
  }
  return out;
}

/** The failures block and the summary line. */
export function formatSummary(summary: TestRunSummary, project: Pick<LoadedProject, 'integrations'>, c: ChalkInstance): string {
  const out: string[] = [];
  const failed = summary.results.filter((r) => r.state === 'failed');
  if (failed.length) {
    out.push('', c.red.bold(`⎯⎯⎯⎯⎯⎯ Failed Tests ${failed.length} ⎯⎯⎯⎯⎯⎯`), '');
    const sources = new Map<string, string>();
    for (const i of project.integrations) for (const t of i.tests ?? []) sources.set(t.file, t.source.text);
    for (const r of failed) {
      out.push(c.red.bold(` FAIL `) + ` ${r.file} > ${r.name}`);
      for (const f of r.failures) {
        out.push(`${c.red('AssertionError')}: ${f.message}`);
        if (f.diff) out.push('', ...f.diff.split('\n').map((l) => (l.startsWith('- ') ? c.green(l) : l.startsWith('+ ') ? c.red(l) : l)).map((l) => `  ${l}`), '');
        out.push(c.cyan(` ❯ ${r.file}:${f.line}:${f.column}`));
        const text = sources.get(r.file);
        if (text) out.push(...codeFrame(text, f.line, f.column, c));
        out.push('');
      }
    }
  }
  const parts = [
    summary.failed ? c.red(`${summary.failed} failed`) : '',
    summary.passed ? c.green(`${summary.passed} passed`) : '',
    summary.skipped ? c.yellow(`${summary.skipped} skipped`) : '',
    summary.notRun ? c.yellow(`${summary.notRun} not run (--bail)`) : '',
  ].filter(Boolean);
  const total = summary.passed + summary.failed + summary.skipped + summary.notRun;
  out.push('', ` ${c.dim('Test Files')}  ${summary.files} file(s)`);
  out.push(` ${c.dim('     Tests')}  ${parts.join(c.dim(' | ')) || '0'} ${c.dim(`(${total})`)}`);
  if (summary.snapshots.written || summary.snapshots.updated) {
    out.push(` ${c.dim(' Snapshots')}  ${summary.snapshots.written} written, ${summary.snapshots.updated} updated`);
  }
  out.push(` ${c.dim('  Duration')}  ${summary.durationMs}ms`);
  return out.join('\n');
}

const xmlEscape = (s: string) =>
  s
    // eslint-disable-next-line no-control-regex
    .replace(/[\u0000-\u0008\u000B\u000C\u000E-\u001F]/g, '')
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;');

/** JUnit XML (the Jenkins/GitLab/GitHub flavour): one testsuite per test file. */
export function toJunitXml(summary: TestRunSummary): string {
  const byFile = new Map<string, TestResult[]>();
  for (const r of summary.results) byFile.set(r.file, [...(byFile.get(r.file) ?? []), r]);
  const secs = (ms: number) => (ms / 1000).toFixed(3);
  const out = [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<testsuites name="alloy test" tests="${summary.results.length}" failures="${summary.failed}" errors="0" skipped="${summary.skipped}" time="${secs(summary.durationMs)}">`,
  ];
  for (const [file, results] of byFile) {
    const time = results.reduce((s, r) => s + r.durationMs, 0);
    out.push(
      `  <testsuite name="${xmlEscape(file)}" tests="${results.length}" failures="${results.filter((r) => r.state === 'failed').length}" errors="0" skipped="${results.filter((r) => r.state === 'skipped').length}" time="${secs(time)}">`,
    );
    for (const r of results) {
      const open = `    <testcase classname="${xmlEscape(r.workflow)}" name="${xmlEscape(r.name)}" file="${xmlEscape(r.file)}"${r.line ? ` line="${r.line}"` : ''} time="${secs(r.durationMs)}"`;
      if (r.state === 'passed') out.push(`${open}/>`);
      else if (r.state === 'skipped') out.push(`${open}>`, '      <skipped/>', '    </testcase>');
      else {
        out.push(`${open}>`);
        for (const f of r.failures) {
          const body = [`${r.file}:${f.line}:${f.column}`, f.message, f.diff ?? ''].filter(Boolean).join('\n');
          out.push(`      <failure message="${xmlEscape(f.message.split('\n')[0])}" type="AssertionError">${xmlEscape(body)}</failure>`);
        }
        out.push('    </testcase>');
      }
    }
    out.push('  </testsuite>');
  }
  out.push('</testsuites>');
  return out.join('\n') + '\n';
}
