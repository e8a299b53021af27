/**
 * Test files (`integrations/<name>/tests/*.test.yaml`, schemas/test.schema.json) as types,
 * and what running them yields. docs/testing.md describes the format.
 */
import type { ExecutionRecord } from '../engine/types.js';

export interface AnswerDef {
  returns?: unknown;
  status?: number;
  /** Seconds. */
  retryAfter?: number;
  error?: { code: string; message?: string; retryable?: boolean };
}

export interface HttpAnswerDef {
  method?: string;
  /** Exact, or a prefix ending in `*`. */
  url: string;
  status?: number;
  headers?: Record<string, string>;
  body?: unknown;
  times?: number;
}

export interface TestSetup {
  event?: unknown;
  fixture?: string;
  user?: string;
  clock?: string;
  credentials?: Record<string, Record<string, string>>;
  env?: Record<string, string>;
  secrets?: Record<string, string>;
  /** Per action (`shopify/createOrder`) or step path. */
  answers?: Record<string, AnswerDef | AnswerDef[]>;
  http?: HttpAnswerDef[];
  fake?: { app: 'shopify'; customers?: Record<string, unknown>[]; failNext?: number };
  stream?: { status?: number };
}

export interface RequestExpectation {
  method?: string;
  url?: string;
  body?: unknown;
  count?: number;
}

export interface StepExpectation {
  status?: 'succeeded' | 'failed' | 'skipped';
  output?: unknown;
  inputs?: unknown;
  attempts?: number;
  error?: Record<string, unknown>;
}

export interface Expectations {
  status?: 'succeeded' | 'failed' | 'filtered';
  error?: Record<string, unknown>;
  reason?: string;
  steps?: Record<string, StepExpectation>;
  assert?: string[];
  requests?: RequestExpectation[];
  /** Partial match on the streamed payload's `data`; false: nothing streamed. */
  stream?: unknown;
  snapshot?: boolean;
}

export interface TestCaseDef extends TestSetup {
  name: string;
  skip?: boolean;
  only?: boolean;
  expect: Expectations;
}

export interface TestFileDef {
  apiVersion: 'alloy/v1';
  kind: 'Test';
  workflow: string;
  defaults?: TestSetup;
  tests: TestCaseDef[];
}

/** A request made through the test's HTTP seam. */
export interface SeenRequest {
  method: string;
  url: string;
  /** Lower-cased names; credentials (auth headers) redacted. */
  headers: Record<string, string>;
  body: string;
  /** Parsed JSON body, when it was JSON. */
  json?: unknown;
  /** Who answered: an `http` entry, the fake, the stream receiver; `none` when nothing did. */
  answeredBy: 'http' | 'fake' | 'stream' | 'none';
  status?: number;
}

/** An action call answered from `answers`. */
export interface AnsweredCall {
  step: string;
  action: string;
  input: unknown;
}

/** What one run through the engine produced. */
export interface HarnessResult {
  record: ExecutionRecord;
  requests: SeenRequest[];
  calls: AnsweredCall[];
  /** The streamed payload (Standard Webhooks body), when a stream POST was made. */
  stream?: Record<string, unknown>;
  /** Requests no test answered (each also failed its step). */
  unanswered: SeenRequest[];
}

/** One failed expectation, located in the test file. */
export interface TestFailure {
  message: string;
  /** JSON pointer into the test file. */
  pointer: string;
  line: number;
  column: number;
  /** Unified diff (expected -, actual +), when values were compared. */
  diff?: string;
  expected?: unknown;
  actual?: unknown;
}

export type TestState = 'passed' | 'failed' | 'skipped';

export interface TestResult {
  /** Test file, relative to the project root. */
  file: string;
  /** `<integration>/<workflow>`. */
  workflow: string;
  name: string;
  state: TestState;
  durationMs: number;
  failures: TestFailure[];
  /** Snapshot written or rewritten by this run. */
  snapshot?: 'written' | 'updated';
  /** Line of the test's `name:` in the file; set for failed tests (finding it parses the file's positions). */
  line?: number;
  execution?: { id: string; status: string };
}

export interface TestRunSummary {
  ok: boolean;
  files: number;
  passed: number;
  failed: number;
  skipped: number;
  durationMs: number;
  snapshots: { written: number; updated: number };
  results: TestResult[];
  /** Tests not run because --bail stopped the run. */
  notRun: number;
}
