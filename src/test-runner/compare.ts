/**
 * Replay across versions: the same event through two definitions of a workflow, with the
 * app answering both as the recorded execution did (recorded.ts), and a step-level diff of
 * status, inputs, outputs and errors, the requests made and the stream payload: what
 * changes for users if version B goes live. Both runs use the same execution id, clock and
 * answers, so only the definitions differ.
 */
import type { WorkflowDef } from '../core/model.js';
import type { AppSettings } from '../core/model.js';
import type { ConnectorRegistry } from '../connectors/types.js';
import type { StepRecord } from '../engine/types.js';
import { compiledFor, runHarness } from './harness.js';
import { lineDiff } from './match.js';
import type { HarnessResult, TestSetup } from './types.js';
import { isDeepStrictEqual } from 'node:util';

export interface CompareSide {
  /** `v3`, `working tree`, … */
  label: string;
  def: WorkflowDef;
}

export type StepChangeKind = 'same' | 'changed' | 'added' | 'removed';

export interface FieldDiff {
  field: 'status' | 'inputs' | 'output' | 'error' | 'attempts';
  a: unknown;
  b: unknown;
  diff: string;
}

export interface StepChange {
  path: string;
  change: StepChangeKind;
  uses?: string;
  fields: FieldDiff[];
}

export type Verdict = 'unchanged' | 'changed' | 'fails';

export interface Comparison {
  workflow: string;
  a: string;
  b: string;
  verdict: Verdict;
  status: { a: string; b: string };
  error?: { a?: string; b?: string };
  steps: StepChange[];
  requests: { a: string[]; b: string[]; diff?: string };
  stream: { a?: unknown; b?: unknown; diff?: string };
}

export interface CompareInput {
  workflow: string;
  executionId: string;
  event: unknown;
  /** Answers, credentials, clock, env/secrets placeholders (same for both sides). */
  setup: TestSetup;
  a: CompareSide;
  b: CompareSide;
  connectors: ConnectorRegistry;
  settings?: Record<string, AppSettings>;
}

export async function compareDefinitions(input: CompareInput): Promise<Comparison> {
  const run = (side: CompareSide) =>
    runHarness({
      compiled: compiledFor(side.def),
      workflow: input.workflow,
      executionId: input.executionId,
      // One label for both: the version would otherwise differ in every stream payload.
      version: 'compare',
      event: input.event,
      setup: input.setup,
      connectors: input.connectors,
      settings: input.settings,
    });
  const [ra, rb] = [await run(input.a), await run(input.b)];
  return diffRuns(input.workflow, input.a.label, input.b.label, ra, rb);
}

function view(s: StepRecord): Record<string, unknown> {
  return { status: s.status, attempts: s.attempts, inputs: s.inputs, output: s.output, error: s.error ? { code: s.error.code, message: s.error.message } : undefined };
}

function requestLines(r: HarnessResult): string[] {
  return r.requests.map((q) => `${q.method} ${q.url}${q.body ? ` ${q.body.length > 400 ? `${q.body.slice(0, 399)}…` : q.body}` : ''}`);
}

function streamData(r: HarnessResult): unknown {
  const data = (r.stream as { data?: Record<string, unknown> } | undefined)?.data;
  if (!data) return undefined;
  const { event: _e, ...rest } = data;
  return rest;
}

export function diffRuns(workflow: string, a: string, b: string, ra: HarnessResult, rb: HarnessResult): Comparison {
  const paths = [...new Set([...Object.keys(ra.record.steps), ...Object.keys(rb.record.steps)])];
  const steps: StepChange[] = [];
  for (const p of paths) {
    const sa = ra.record.steps[p];
    const sb = rb.record.steps[p];
    if (!sa || !sb) {
      steps.push({ path: p, change: sa ? 'removed' : 'added', uses: (sa ?? sb).uses ?? (sa ?? sb).kind, fields: [] });
      continue;
    }
    const va = view(sa);
    const vb = view(sb);
    const fields: FieldDiff[] = [];
    for (const f of ['status', 'attempts', 'inputs', 'output', 'error'] as const) {
      if (!isDeepStrictEqual(va[f], vb[f])) fields.push({ field: f, a: va[f], b: vb[f], diff: lineDiff(va[f], vb[f], { context: 3 }) });
    }
    steps.push({ path: p, change: fields.length ? 'changed' : 'same', uses: sb.uses ?? sb.kind, fields });
  }
  const reqA = requestLines(ra);
  const reqB = requestLines(rb);
  const strA = streamData(ra);
  const strB = streamData(rb);
  const changed =
    ra.record.status !== rb.record.status ||
    steps.some((s) => s.change !== 'same') ||
    !isDeepStrictEqual(reqA, reqB) ||
    !isDeepStrictEqual(strA, strB);
  const fails = rb.record.status === 'failed' && ra.record.status !== 'failed';
  return {
    workflow,
    a,
    b,
    verdict: fails ? 'fails' : changed ? 'changed' : 'unchanged',
    status: { a: ra.record.status, b: rb.record.status },
    ...(ra.record.error || rb.record.error
      ? { error: { a: ra.record.error && `${ra.record.error.code}: ${ra.record.error.message}`, b: rb.record.error && `${rb.record.error.code}: ${rb.record.error.message}` } }
      : {}),
    steps,
    requests: { a: reqA, b: reqB, ...(isDeepStrictEqual(reqA, reqB) ? {} : { diff: lineDiff(reqA, reqB, { context: 3 }) }) },
    stream: { a: strA, b: strB, ...(isDeepStrictEqual(strA, strB) ? {} : { diff: lineDiff(strA, strB, { context: 3 }) }) },
  };
}
