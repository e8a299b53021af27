/** The workflow engine: compile, plan (pure), execute (I/O passed in), stream, sign. */
export { compileWorkflow, WorkflowCompileError } from './compile.js';
export type { CompiledWorkflow, CompiledStep, CompiledStream } from './compile.js';
export { plan } from './plan.js';
export type { ExecutionPlan, PlannedStep, PlanOptions } from './plan.js';
export { executeWorkflow, createExecutionRecord } from './execute.js';
export type { ExecutionInit } from './execute.js';
export { ExpressionFailure, isTruthy } from './evaluate.js';
export { CheckpointError, ExecutionInterruptedError, ExecutionTimeoutError } from './errors.js';
export {
  parseRetryAfter,
  backoffDelay,
  backoffCeiling,
  resolveRetryPolicy,
  isRetryable,
  isRetryableStatus,
  isNetworkError,
  STEP_RETRY_DEFAULTS,
  STREAM_RETRY_DEFAULTS,
} from './retry.js';
export type { ResolvedRetryPolicy } from './retry.js';
export { parseDuration, tryParseDuration } from './duration.js';
export { createRedactor, isSecretKey, redactActionInput, REDACTED } from './redact.js';
export type { Redactor } from './redact.js';
export {
  signStandardWebhook,
  verifyStandardWebhook,
  standardWebhookHeaders,
  decodeWebhookSecret,
  DEFAULT_TOLERANCE_SECONDS,
} from './standard-webhooks.js';
export type { StandardWebhookHeaders, VerifyResult } from './standard-webhooks.js';
export { deliverStream, streamPayload, STREAM_EVENT_TYPE } from './stream.js';
export { realClock, setLongTimeout, MAX_TIMER_MS } from './clock.js';
export type * from './types.js';
