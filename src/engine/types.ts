/**
 * Engine types: the execution record (JSON-serializable, what checkpoints persist and
 * what `alloy run`, `alloy executions` and streams show) and the dependencies the
 * executor gets passed in. The engine holds no global state and does no hidden I/O.
 */
import type { AppSettings, StepKind } from '../core/model.js';
import type { ConnectorRegistry, HttpClient } from '../connectors/types.js';
import type { ExpressionLimits } from '../core/expression-limits.js';

export type ExecutionStatus = 'queued' | 'running' | 'succeeded' | 'failed' | 'filtered';
export type StepStatus = 'running' | 'succeeded' | 'failed' | 'skipped';

/** An error as stored in a record (secrets redacted). */
export interface ErrorInfo {
  message: string;
  code: string;
  /** HTTP status when the failure came from a response. */
  status?: number;
  retryable?: boolean;
  /** Step path where it happened. */
  step?: string;
  /** For expression failures: JSON pointer of the field inside the step, and the expression. */
  field?: string;
  expression?: string;
  /** `file:line:column` in the workflow file, for an expression that hit its limit (when known). */
  location?: string;
  /** What to do about it, when the error says. */
  hint?: string;
}

export interface StepRecord {
  /** `id` at top level; `<each>[i].<id>` inside an each iteration. */
  path: string;
  id: string;
  name?: string;
  kind: StepKind;
  uses?: string;
  status: StepStatus;
  /** Calls made (actions, delays); 0 for skipped and container steps. */
  attempts: number;
  /** `console.log` lines of a code step, secrets redacted. */
  logs?: string[];
  /** Resolved inputs, secrets redacted. */
  inputs?: unknown;
  /** Output, secret values redacted. */
  output?: unknown;
  error?: ErrorInfo;
  /** Failed but handled by `onError: continue` or onError steps; the execution went on. */
  handled?: boolean;
  /**
   * Set on a non-idempotent action's record just before its call: a host must store this
   * checkpoint durably, because after a crash it is what stops the call being made twice.
   */
  callInFlight?: boolean;
  /** While the step sleeps before its next attempt: when that attempt is due (ISO). Cleared when it starts. */
  retryAt?: string;
  startedAt: string;
  endedAt?: string;
  durationMs?: number;
}

export interface StreamDelivery {
  status: 'delivered' | 'failed';
  url: string;
  /** The Standard Webhooks message id (stable across retries). */
  messageId: string;
  attempts: number;
  statusCode?: number;
  error?: ErrorInfo;
  at: string;
}

export interface ExecutionRecord {
  id: string;
  /** `<integration>/<workflow>`. */
  workflow: string;
  /** Release version (`v3`) or a working-tree hash. */
  version?: string;
  userId?: string;
  /** The trigger event (the data expressions see as `event`). */
  event: unknown;
  status: ExecutionStatus;
  createdAt: string;
  startedAt?: string;
  endedAt?: string;
  durationMs?: number;
  /** Why the execution was filtered (the `stop` step's value). */
  reason?: string;
  /** The failure that ended the execution. */
  error?: ErrorInfo;
  /** Step records keyed by step path, in the order they started. */
  steps: Record<string, StepRecord>;
  stream?: StreamDelivery;
  /** While the stream delivery sleeps before its next attempt: attempts made so far and when the next is due (ISO). */
  streamRetry?: { attempts: number; at: string };
}

export interface Clock {
  now(): number;
  /** Resolves after `ms`, or rejects when `signal` aborts. */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

export interface EngineLogger {
  debug(message: string, fields?: Record<string, unknown>): void;
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
}

export interface EngineDeps {
  connectors: ConnectorRegistry;
  http: HttpClient;
  clock: Clock;
  /** Uniform in [0, 1): backoff jitter. Seed it in tests. */
  random(): number;
  /**
   * Persists the record; awaited after every step. If it throws, the execution stops (a crash).
   * `changed` lists the step records changed since the previous checkpoint (empty for a change
   * of the execution's own status), so a checkpoint can cost what changed, not the record's size.
   */
  checkpoint(record: ExecutionRecord, changed: readonly StepRecord[]): Promise<void>;
  logger: EngineLogger;
  /** Connection fields of `app` for `userId` (credentials included; never logged or stored). */
  resolveConnection(app: string, userId: string | undefined): Promise<Record<string, string>>;
  /** Per-app settings from the project config. */
  settings?: Record<string, AppSettings>;
  /** Visible as `secrets` to the stream url/secret only; their values are redacted everywhere. */
  secrets?: Record<string, string>;
  /** Visible as `env` to the stream url/secret only. */
  env?: Record<string, string | undefined>;
  /** The installation's config values (`alloy serve`): `{{ config.x }}` in templates and `config` in code steps (`{}` in dev). */
  config?: Record<string, unknown>;
  /** The code step's sandbox (default: one per process, loaded on first use). */
  codeSandbox?: () => Promise<{ run(code: string, input: import('./code-sandbox.js').CodeInput, limits?: { cpuMs?: number }): Promise<import('./code-sandbox.js').CodeResult> }>;
  /**
   * Aborting it interrupts the run (shutdown): calls in flight are aborted and
   * executeWorkflow rejects with ExecutionInterruptedError, leaving the record resumable.
   */
  signal?: AbortSignal;
  /**
   * `signal` is this execution's alone (no other execution listens on it; serve's runner):
   * a workflow without a `timeout` then runs under it as is, instead of under a controller of
   * the engine's linked to it (an AbortSignal and a listener per execution were measurable).
   */
  signalOwned?: boolean;
  /** Time and memory bounds of each expression evaluation; default DEFAULT_EXPRESSION_LIMITS. */
  limits?: ExpressionLimits;
  /**
   * `file:line:column` of character `offset` of the template at JSON `pointer` in the
   * workflow's file, added to E_EXPRESSION_LIMIT errors; optional (hosts that know the file).
   */
  locate?(pointer: string, offset: number): Promise<string | undefined>;
}
