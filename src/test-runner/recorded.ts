/**
 * From the event log to tests and comparisons. An execution record stores the event and,
 * per step, the resolved inputs and the output (secrets redacted), but not the raw HTTP
 * responses behind an action. That is enough to replay: each action step's recorded output
 * (or error) becomes its answer, keyed by step path, so the same execution runs again with
 * the app answering as it did. What a raw response held beyond the action's output (headers,
 * fields the connector dropped) is not replayed; docs/testing.md says so.
 */
import { stringify } from 'yaml';
import { createRedactor, REDACTED } from '../engine/redact.js';
import type { ExecutionRecord, StepRecord } from '../engine/types.js';
import type { WorkflowDef } from '../core/model.js';
import type { AnswerDef, Expectations, TestCaseDef, TestFileDef, TestSetup } from './types.js';

/** The app's answers, as recorded: per action step path, plus per action for steps a new version adds. */
export function answersFromRecord(record: ExecutionRecord): Record<string, AnswerDef> {
  const out: Record<string, AnswerDef> = {};
  const byAction: Record<string, AnswerDef> = {};
  for (const s of Object.values(record.steps)) {
    if (s.kind !== 'action' || !s.uses || (s.status !== 'succeeded' && s.status !== 'failed')) continue;
    const answer = answerOf(s);
    out[s.path] = answer;
    byAction[s.uses] ??= answer;
  }
  return { ...byAction, ...out };
}

function answerOf(s: StepRecord): AnswerDef {
  if (s.status === 'failed' && s.error) {
    if (s.error.status !== undefined && s.error.status >= 400) return { status: s.error.status };
    return { error: { code: s.error.code, message: s.error.message, ...(s.error.retryable !== undefined ? { retryable: s.error.retryable } : {}) } };
  }
  return { returns: s.output ?? null };
}

const WHSEC_PLACEHOLDER = 'whsec_' + Buffer.from('alloy-test-placeholder-secret-000').toString('base64');

/**
 * Placeholders for what the stream url/secret read (`env.X`, `secrets.Y`): tests never
 * read the real ones, and the harness answers the stream whatever its URL.
 */
export function streamPlaceholders(def: WorkflowDef): Pick<TestSetup, 'env' | 'secrets'> {
  const env: Record<string, string> = {};
  const secrets: Record<string, string> = {};
  const url = typeof def.stream?.url === 'string' ? def.stream.url : '';
  const secret = typeof def.stream?.secret === 'string' ? def.stream.secret : '';
  for (const m of `${url} ${secret}`.matchAll(/\benv\s*\.\s*([A-Za-z_][A-Za-z0-9_]*)/g)) env[m[1]] = `https://stream.alloy.test/${m[1].toLowerCase()}`;
  for (const m of `${url} ${secret}`.matchAll(/\bsecrets\s*\.\s*([A-Za-z_][A-Za-z0-9_]*)/g)) secrets[m[1]] = WHSEC_PLACEHOLDER;
  return { ...(Object.keys(env).length ? { env } : {}), ...(Object.keys(secrets).length ? { secrets } : {}) };
}

/** A test file (as YAML text) reproducing a stored execution; secret-looking values redacted. */
export function testFileFromRecord(record: ExecutionRecord, def: WorkflowDef, schemaRef: string): string {
  const redact = createRedactor();
  const expectSteps: NonNullable<Expectations['steps']> = {};
  for (const s of Object.values(record.steps)) {
    if (s.status === 'running') continue;
    const e: NonNullable<Expectations['steps']>[string] = { status: s.status };
    if (s.status === 'succeeded' && s.output !== undefined && s.kind !== 'each' && s.kind !== 'if' && s.kind !== 'branch') e.output = s.output;
    if (s.status === 'failed' && s.error) e.error = { code: s.error.code };
    expectSteps[s.path] = e;
  }
  const expect: Expectations = { status: record.status === 'queued' || record.status === 'running' ? 'succeeded' : record.status };
  if (record.status === 'failed' && record.error) expect.error = { code: record.error.code };
  if (record.status === 'filtered' && record.reason !== undefined) expect.reason = record.reason;
  expect.steps = expectSteps;
  const test: TestCaseDef = {
    name: `replays ${record.id}`,
    event: record.event,
    ...(record.userId ? { user: record.userId } : {}),
    ...(record.startedAt ? { clock: record.startedAt } : {}),
    expect,
  };
  const answers = Object.fromEntries(Object.entries(answersFromRecord(record)).filter(([k]) => !k.includes('/') || !Object.values(record.steps).some((s) => s.uses === k)));
  if (Object.keys(answers).length) test.answers = answers;
  const file: TestFileDef = { apiVersion: 'alloy/v1', kind: 'Test', workflow: def.name, tests: [test] };
  const safe = redact.value(file, { byKey: true });
  // Placeholders go in after redaction (a secret's name would redact its placeholder).
  Object.assign(safe.tests[0], streamPlaceholders(def));
  const header = `# yaml-language-server: $schema=${schemaRef}\n# Recorded by \`alloy test --record ${record.id}\`${record.version ? ` (version ${record.version})` : ''}. Values that looked like secrets read ${REDACTED}.\n`;
  return header + stringify(safe, { lineWidth: 0 });
}
