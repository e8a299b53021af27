/**
 * The test runner's programmatic API: `runTests` finds the project's test files (or the
 * ones under the given paths), runs every test through the real engine with
 * `runHarness` (in process, concurrently, no network), checks the expectations and
 * returns located results. `alloy test` and `alloy release` are thin over it.
 */
import { realpath } from 'node:fs/promises';
import path from 'node:path';
import { compileTemplate, escapePointer, evaluateExpression, ExpressionSyntaxError, TemplateSyntaxError, type CompiledExpression } from '../core/expressions.js';
import { readDataFile } from '../core/data-file.js';
import { mapLimit } from '../core/map-limit.js';
import type { LoadedProject, LoadedTestFile, LoadedWorkflow } from '../core/project-types.js';
import { rangeAt, type SourceFile } from '../core/source-file.js';
import type { ConnectorRegistry } from '../connectors/types.js';
import { isTruthy } from '../engine/evaluate.js';
import { compiledFor, runHarness } from './harness.js';
import { lineDiff, mismatchPointer, partialMatch, project } from './match.js';
import { snapshotOf, SnapshotBook } from './snapshots.js';
import type { Expectations, HarnessResult, TestCaseDef, TestFailure, TestFileDef, TestResult, TestRunSummary, TestSetup } from './types.js';

export interface RunTestsOptions {
  project: LoadedProject;
  connectors: ConnectorRegistry;
  /** Files or folders (absolute, or relative to `cwd`); default every test file. */
  paths?: string[];
  cwd?: string;
  /** Case-insensitive substring of `<integration>/<workflow> > <test name>` or the file. */
  filter?: string;
  /** Rewrite snapshots that differ. */
  update?: boolean;
  /** Missing snapshots fail instead of being written (CI). */
  ci?: boolean;
  /** Stop starting tests after the first failure. */
  bail?: boolean;
  /** Tests in flight at once (default 8). */
  concurrency?: number;
  /** Called as each test ends (reporters stream with it). */
  onResult?: (result: TestResult) => void;
}

interface Job {
  file: LoadedTestFile;
  def: TestFileDef;
  workflow: LoadedWorkflow;
  /** `<integration>/<workflow>`, shared by the file's tests. */
  label: string;
  integrationDir: string;
  index: number;
  test: TestCaseDef;
}

export async function runTests(options: RunTestsOptions): Promise<TestRunSummary> {
  const started = performance.now();
  const { project } = options;
  const cwd = options.cwd ?? project.root;
  const wanted = (options.paths ?? []).map((p) => path.resolve(cwd, p));
  const filter = options.filter?.toLowerCase();
  const jobs: Job[] = [];
  const files = new Set<string>();
  for (const integration of project.integrations) {
    const integrationDir = path.join(project.root, integration.dir);
    for (const file of integration.tests ?? []) {
      if (!file.valid) continue;
      const abs = path.join(project.root, file.file);
      if (wanted.length && !wanted.some((w) => abs === w || abs.startsWith(w.endsWith(path.sep) ? w : w + path.sep))) continue;
      const def = file.source.value as TestFileDef;
      const workflow = integration.workflows.find((w) => w.name === def.workflow);
      if (!workflow) continue;
      const label = `${integration.name}/${workflow.name}`;
      const fileMatches = filter !== undefined && file.file.toLowerCase().includes(filter);
      def.tests.forEach((test, index) => {
        if (filter && !fileMatches && !`${label} > ${test.name}`.toLowerCase().includes(filter)) return;
        jobs.push({ file, def, workflow, label, integrationDir, index, test });
        files.add(file.file);
      });
    }
  }
  const only = jobs.some((j) => j.test.only);
  const book = new SnapshotBook(project.root, { update: options.update ?? false, ci: options.ci ?? false });
  let bailed = false;
  let notRun = 0;
  // --bail runs one test at a time, so "stop after the first failure" means exactly that.
  const results = await mapLimit(jobs, options.bail ? 1 : (options.concurrency ?? 8), async (job) => {
    if (bailed) {
      notRun++;
      return undefined;
    }
    const result = job.test.skip || (only && !job.test.only) ? skipped(job) : await runOne(job, options, book);
    if (result.state === 'failed' && options.bail) bailed = true;
    options.onResult?.(result);
    return result;
  });
  await book.save();
  const done: TestResult[] = [];
  const counts = { passed: 0, failed: 0, skipped: 0, written: 0, updated: 0 };
  for (const r of results) {
    if (r === undefined) continue;
    done.push(r);
    counts[r.state]++;
    if (r.snapshot) counts[r.snapshot]++;
  }
  return {
    ok: counts.failed === 0 && notRun === 0,
    files: files.size,
    passed: counts.passed,
    failed: counts.failed,
    skipped: counts.skipped,
    durationMs: Math.round(performance.now() - started),
    snapshots: { written: counts.written, updated: counts.updated },
    results: done,
    notRun,
  };
}

function lineOf(source: SourceFile, pointer: string): { line: number; column: number } {
  const range = rangeAt(source, pointer);
  return range ? source.index.position(range[0]) : { line: 1, column: 1 };
}

function skipped(job: Job): TestResult {
  return { file: job.file.file, workflow: job.label, name: job.test.name, state: 'skipped', durationMs: 0, failures: [] };
}

/** `defaults` under the test's own keys; maps (answers, credentials, env, secrets) merged one level deep. */
export function mergeSetup(defaults: TestSetup | undefined, test: TestSetup): TestSetup {
  if (!defaults) return test;
  const out: TestSetup = { ...defaults, ...test };
  if (test.event !== undefined || test.fixture !== undefined) {
    out.event = test.event;
    out.fixture = test.fixture;
  }
  for (const k of ['answers', 'credentials', 'env', 'secrets'] as const) {
    if (defaults[k] || test[k]) (out as Record<string, unknown>)[k] = { ...(defaults[k] ?? {}), ...(test[k] ?? {}) };
  }
  return out;
}

/** The event a setup names: inline, or a JSON file under the integration's fixtures/. */
export async function eventOf(setup: TestSetup, integrationDir: string): Promise<unknown> {
  if (setup.fixture === undefined) return setup.event ?? {};
  const fixtures = path.join(integrationDir, 'fixtures');
  const file = path.resolve(fixtures, setup.fixture);
  const outside = () => new Error(`fixture "${setup.fixture}" is outside the integration's fixtures/ folder`);
  if (!file.startsWith(fixtures + path.sep)) throw outside();
  const unreadable = (err: unknown) => new Error(`cannot read fixture ${setup.fixture}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  let real: string;
  try {
    real = await realpath(file);
    // A symlink (the file's, or fixtures/ itself) may not lead out of fixtures/: a cloned
    // repository's link to ~/.ssh or a CI secret would otherwise be read and shown in a diff.
    if (!real.startsWith(path.join(await realpath(integrationDir), 'fixtures') + path.sep)) throw outside();
  } catch (err) {
    if (!(err as NodeJS.ErrnoException).code) throw err;
    throw unreadable(err);
  }
  let text: string;
  try {
    // Opened without blocking: a named pipe would block the run for ever, a device read without end.
    text = (await readDataFile(real)).toString('utf8');
  } catch (err) {
    throw unreadable(err);
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new Error(`fixture ${setup.fixture} is not JSON: ${(err as Error).message}`);
  }
}

/**
 * A stable execution id per test, so idempotency keys, stream ids and snapshots are too.
 * Two 32-bit FNV-1a lanes: not a security boundary, and a sha256 per test cost more than
 * the rest of the runner's bookkeeping.
 */
export function testExecutionId(file: string, name: string): string {
  // The hash of `${file}\0${name}`, read in place rather than from a joined string.
  let a = 0x811c9dc5;
  let b = 0x01000193 ^ (file.length + 1 + name.length);
  for (let i = 0; i < file.length; i++) {
    const c = file.charCodeAt(i);
    a = Math.imul(a ^ c, 0x01000193);
    b = Math.imul(b ^ c ^ (a >>> 15), 0x5bd1e995);
  }
  a = Math.imul(a, 0x01000193);
  b = Math.imul(b ^ (a >>> 15), 0x5bd1e995);
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    a = Math.imul(a ^ c, 0x01000193);
    b = Math.imul(b ^ c ^ (a >>> 15), 0x5bd1e995);
  }
  return `exec_test_${(a >>> 0).toString(16).padStart(8, '0')}${(b >>> 0).toString(16).padStart(8, '0')}`;
}

async function runOne(job: Job, options: RunTestsOptions, book: SnapshotBook): Promise<TestResult> {
  const t0 = performance.now();
  const at = `/tests/${job.index}`;
  const failures: TestFailure[] = [];
  const fail = (pointer: string, message: string, extra: Partial<TestFailure> = {}) =>
    failures.push({ message, pointer, ...lineOf(job.file.source, pointer), ...extra });
  const setup = mergeSetup(job.def.defaults, job.test);
  let result: HarnessResult | undefined;
  try {
    // Inline events (most tests) skip the async fixture reader and its extra ticks.
    const event = setup.fixture === undefined ? (setup.event ?? {}) : await eventOf(setup, job.integrationDir);
    result = await runHarness({
      compiled: compiledFor(job.workflow.def),
      workflow: job.label,
      executionId: testExecutionId(job.file.file, job.test.name),
      version: 'test',
      event,
      setup,
      connectors: options.connectors,
      settings: options.project.config.apps,
    });
  } catch (err) {
    fail(job.test.fixture !== undefined ? `${at}/fixture` : `${at}/name`, (err as Error).message);
  }
  let snapshot: TestResult['snapshot'];
  if (result) {
    for (const req of result.unanswered) {
      fail(`${at}/name`, `a request no test answers: ${req.method} ${req.url}${req.body ? `\n  body: ${preview(req.json ?? req.body)}` : ''}`);
    }
    await checkExpectations(job.test.expect, result, at, fail);
    if (job.test.expect.snapshot) {
      const outcome = book.check(job.file.file, job.test.name, snapshotOf(result));
      if (outcome.state === 'mismatch') fail(`${at}/expect/snapshot`, 'snapshot mismatch (run `alloy test --update` to accept)', { diff: lineDiff(outcome.expected, outcome.actual) });
      else if (outcome.state === 'missing') fail(`${at}/expect/snapshot`, 'no snapshot stored, and CI=true does not write one (run `alloy test --update` locally)');
      else if (outcome.state === 'written' || outcome.state === 'updated') snapshot = outcome.state;
    }
  }
  const durationMs = Math.round((performance.now() - t0) * 10) / 10;
  const out: TestResult = { file: job.file.file, workflow: job.label, name: job.test.name } as TestResult;
  if (failures.length) {
    failures.sort((x, y) => x.line - y.line || x.column - y.column);
    out.line = lineOf(job.file.source, `${at}/name`).line;
  }
  out.state = failures.length ? 'failed' : 'passed';
  out.durationMs = durationMs;
  out.failures = failures;
  if (snapshot) out.snapshot = snapshot;
  if (result) out.execution = { id: result.record.id, status: result.record.status };
  return out;
}

function preview(v: unknown): string {
  const s = typeof v === 'string' ? v : JSON.stringify(v);
  return s.length > 300 ? `${s.slice(0, 299)}…` : s;
}

/** What assertions see: a compact view of the execution. */
export function assertionContext(result: HarnessResult): Record<string, unknown> {
  const r = result.record;
  const steps: Record<string, unknown> = {};
  for (const [p, s] of Object.entries(r.steps)) steps[p] = { status: s.status, attempts: s.attempts, output: s.output, inputs: s.inputs, error: s.error };
  return {
    status: r.status,
    error: r.error,
    reason: r.reason,
    event: r.event,
    steps,
    requests: result.requests.map((q) => ({ method: q.method, url: q.url, body: q.json ?? q.body, status: q.status })),
    stream: (result.stream as { data?: unknown } | undefined)?.data,
  };
}

/** Generated and recorded suites repeat the same assertions: compile each text once. */
const assertionCache = new Map<string, CompiledExpression>();
function compiledAssertion(source: string): CompiledExpression {
  let expr = assertionCache.get(source);
  if (!expr) {
    expr = compileTemplate(`{{ ${source} }}`).parts[0] as CompiledExpression;
    if (assertionCache.size > 1000) assertionCache.clear();
    assertionCache.set(source, expr);
  }
  return expr;
}

type Fail = (pointer: string, message: string, extra?: Partial<TestFailure>) => void;

function compare(fail: Fail, pointer: string, what: string, expected: unknown, actual: unknown): void {
  if (partialMatch(expected, actual)) return;
  fail(pointer + mismatchPointer(expected, actual), `${what} does not match`, { expected, actual, diff: lineDiff(expected, project(expected, actual)) });
}

/**
 * Checks a test's expectations; `test` is the test's pointer (`/tests/<i>`). Pointers are
 * built only for what fails: this runs for every test, and most pass.
 */
async function checkExpectations(expect: Expectations, result: HarnessResult, test: string, fail: Fail): Promise<void> {
  const at = `${test}/expect`;
  const r = result.record;
  const wantStatus = expect.status ?? (expect.error ? 'failed' : expect.reason !== undefined ? 'filtered' : 'succeeded');
  if (r.status !== wantStatus) {
    const why = r.error ? `: ${r.error.code} ${r.error.message}` : r.reason ? `: ${r.reason}` : '';
    fail(expect.status !== undefined ? `${at}/status` : at, `expected status ${wantStatus}, got ${r.status}${why}`, { expected: wantStatus, actual: r.status });
  }
  if (expect.error) compare(fail, `${at}/error`, 'execution error', expect.error, r.error);
  if (expect.reason !== undefined && r.reason !== expect.reason) compare(fail, `${at}/reason`, 'filter reason', expect.reason, r.reason);
  if (expect.steps) {
    for (const stepPath of Object.keys(expect.steps)) {
      const want = expect.steps[stepPath];
      const p = () => `${at}/steps/${escapePointer(stepPath)}`;
      const got = r.steps[stepPath];
      if (!got) {
        fail(p(), `step "${stepPath}" did not run (steps that ran: ${Object.keys(r.steps).join(', ') || 'none'})`);
        continue;
      }
      if (want.status !== undefined && got.status !== want.status) {
        fail(`${p()}/status`, `step "${stepPath}": expected status ${want.status}, got ${got.status}${got.error ? `: ${got.error.code} ${got.error.message}` : ''}`, { expected: want.status, actual: got.status });
      }
      if (want.attempts !== undefined && got.attempts !== want.attempts) {
        fail(`${p()}/attempts`, `step "${stepPath}": expected ${want.attempts} attempt(s), got ${got.attempts}`, { expected: want.attempts, actual: got.attempts });
      }
      if ('output' in want && !partialMatch(want.output, got.output)) compare(fail, `${p()}/output`, `step "${stepPath}" output`, want.output, got.output);
      if ('inputs' in want && !partialMatch(want.inputs, got.inputs)) compare(fail, `${p()}/inputs`, `step "${stepPath}" inputs`, want.inputs, got.inputs);
      if (want.error) compare(fail, `${p()}/error`, `step "${stepPath}" error`, want.error, got.error);
    }
  }
  if (expect.assert?.length) {
    const ctx = assertionContext(result);
    for (let i = 0; i < expect.assert.length; i++) {
      const source = expect.assert[i];
      let expr: CompiledExpression;
      try {
        expr = compiledAssertion(source);
      } catch (err) {
        if (err instanceof ExpressionSyntaxError || err instanceof TemplateSyntaxError) {
          fail(`${at}/assert/${i}`, `assertion is not a valid expression: ${err.message}`);
          continue;
        }
        throw err;
      }
      try {
        const value = await evaluateExpression(expr, ctx);
        if (!isTruthy(value)) fail(`${at}/assert/${i}`, `assertion failed: ${source}`, { actual: value });
      } catch (err) {
        fail(`${at}/assert/${i}`, `assertion could not be evaluated: ${(err as Error).message}`);
      }
    }
  }
  if (expect.requests) {
    for (let i = 0; i < expect.requests.length; i++) {
      const want = expect.requests[i];
      let matching = 0;
      for (const q of result.requests) {
        if (
          (!want.method || want.method.toUpperCase() === q.method) &&
          (want.url === undefined || (want.url.endsWith('*') ? q.url.startsWith(want.url.slice(0, -1)) : q.url === want.url)) &&
          (want.body === undefined || partialMatch(want.body, q.json ?? q.body))
        ) {
          matching++;
        }
      }
      const ok = want.count === undefined ? matching > 0 : matching === want.count;
      if (!ok) {
        const made = result.requests.map((q) => `    ${q.method} ${q.url}`).join('\n') || '    (none)';
        const what = `${want.method ?? '*'} ${want.url ?? '*'}${want.body !== undefined ? ' with the body' : ''}`;
        fail(`${at}/requests/${i}`, `expected ${want.count ?? 'at least 1'} request(s) ${what}, got ${matching}; requests made:\n${made}`, {
          ...(want.body !== undefined && result.requests.length ? { diff: lineDiff(want.body, project(want.body, result.requests.find((q) => !want.url || q.url.startsWith(want.url.replace(/\*$/, '')))?.json)) } : {}),
        });
      }
    }
  }
  if (expect.stream !== undefined) {
    const data = (result.stream as { data?: unknown } | undefined)?.data;
    if (expect.stream === false) {
      if (result.stream) fail(`${at}/stream`, 'expected nothing streamed, but the execution was streamed');
    } else if (!result.stream) {
      fail(`${at}/stream`, `expected a stream payload, but nothing was streamed${r.stream?.error ? ` (${r.stream.error.code}: ${r.stream.error.message})` : ''}`);
    } else compare(fail, `${at}/stream`, 'stream payload', expect.stream, data);
  }
}
