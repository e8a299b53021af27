/** schemas/test.schema.json and the runner's types (src/test-runner/types.ts) name the same keys. */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { AnswerDef, Expectations, HttpAnswerDef, RequestExpectation, StepExpectation, TestCaseDef, TestFileDef, TestSetup } from '../../src/test-runner/types.js';
import { REPO_ROOT } from '../helpers/cli.js';

type Keys<T> = Record<keyof T, true>;
const file: Keys<TestFileDef> = { apiVersion: true, kind: true, workflow: true, defaults: true, tests: true };
const setup: Keys<TestSetup> = { event: true, fixture: true, user: true, clock: true, credentials: true, env: true, secrets: true, answers: true, http: true, fake: true, stream: true };
const test: Keys<TestCaseDef> = { ...setup, name: true, skip: true, only: true, expect: true };
const answer: Keys<AnswerDef> = { returns: true, status: true, retryAfter: true, error: true };
const httpAnswer: Keys<HttpAnswerDef> = { method: true, url: true, status: true, headers: true, body: true, times: true };
const expectations: Keys<Expectations> = { status: true, error: true, reason: true, steps: true, assert: true, requests: true, stream: true, snapshot: true };
const step: Keys<StepExpectation> = { status: true, output: true, inputs: true, attempts: true, error: true };
const request: Keys<RequestExpectation> = { method: true, url: true, body: true, count: true };

type Schema = { properties?: Record<string, Schema>; $defs?: Record<string, Schema>; items?: Schema; additionalProperties?: Schema };
const schema = JSON.parse(readFileSync(path.join(REPO_ROOT, 'schemas', 'test.schema.json'), 'utf8')) as Schema;
const keys = (o: object | undefined) => Object.keys(o ?? {}).sort();
const d = schema.$defs!;

describe('test schema and runner types agree', () => {
  it.each([
    ['file', schema, file],
    ['setup', d.setup, setup],
    ['test', d.test, test],
    ['answer', d.answer, answer],
    ['http answer', d.setup.properties!.http.items!, httpAnswer],
    ['expect', d.expect, expectations],
    ['expect.steps', d.expect.properties!.steps.additionalProperties!, step],
    ['expect.requests', d.expect.properties!.requests.items!, request],
  ] as const)('%s', (_name, s, model) => {
    expect(keys(s.properties)).toEqual(keys(model));
  });
});
