/** Internal control-flow signals and error shaping for the executor. */
import { AlloyError, StepError } from '../errors.js';
import { isNetworkError } from './retry.js';
import type { Redactor } from './redact.js';
import type { ErrorInfo } from './types.js';

/** A `stop` step ended the execution as filtered. */
export class FilteredSignal extends Error {
  constructor(readonly reason: string) {
    super(`filtered: ${reason}`);
  }
}

/** A step failed and nothing handled it; carries the stored error info up through containers. */
export class StepFailed extends Error {
  constructor(readonly info: ErrorInfo) {
    super(info.message);
  }
}

/** The checkpoint call threw: persistence is gone, so the run stops where it is (a crash). */
export class CheckpointError extends AlloyError {
  constructor(cause: unknown) {
    super('E_CHECKPOINT', `saving the execution record failed: ${(cause as Error)?.message ?? String(cause)}`, {
      cause,
      hint: 'The execution can be resumed from its last saved record.',
    });
  }
}

/**
 * `deps.signal` aborted (the runtime is shutting down): the run stops where it is, leaving
 * the record `running` so it can be resumed from its last checkpoint, like after a crash.
 */
export class ExecutionInterruptedError extends AlloyError {
  constructor() {
    super('E_INTERRUPTED', 'the execution was interrupted before it ended', {
      hint: 'It resumes from its last checkpoint when given back to executeWorkflow.',
    });
  }
}

/** The workflow's `timeout` passed. */
export class ExecutionTimeoutError extends StepError {
  constructor(ms: number) {
    super(`the execution ran longer than its timeout of ${ms} ms`, {
      code: 'E_EXECUTION_TIMEOUT',
      retryable: false,
      hint: 'Raise the workflow `timeout`, or lower step retries and delays.',
    });
  }
}

/**
 * A step of an action declared `idempotent: false` whose call may have reached the service
 * (caught `running` on resume, or its step timeout fired mid-call): calling it again could
 * apply it twice, so it fails instead, through the step's normal onError handling.
 */
export function outcomeUnknownError(path: string, uses: string, why: string, cause?: unknown): StepError {
  return new StepError(`step "${path}" (${uses}): ${why}; the outcome is unknown and the action is not idempotent, so it is not called again`, {
    code: 'E_OUTCOME_UNKNOWN',
    retryable: false,
    hint: `The call may have taken effect: check the service for what step "${path}" would have created (its inputs are in the execution record) before replaying.`,
    ...(cause !== undefined ? { cause } : {}),
  });
}

export function toErrorInfo(err: unknown, step: string, redactor: Redactor): ErrorInfo {
  if (err instanceof StepFailed) return err.info;
  if (err instanceof AlloyError) {
    const d = err.details ?? {};
    const info: ErrorInfo = { message: redactor.text(err.message), code: err.code, step: typeof d.step === 'string' ? d.step : step };
    if (err instanceof StepError) {
      if (err.status !== undefined) info.status = err.status;
      info.retryable = err.retryable;
    }
    if (typeof d.field === 'string') info.field = d.field;
    if (typeof d.expression === 'string') info.expression = redactor.text(d.expression);
    if (err.hint) info.hint = err.hint;
    return info;
  }
  const message = redactor.text((err as Error)?.message ?? String(err));
  if (isNetworkError(err)) {
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    const detail = cause?.code ?? cause?.message;
    return { message: redactor.text(detail ? `${message} (${detail})` : message), code: 'E_NETWORK', retryable: true, step };
  }
  return { message, code: 'E_STEP_INTERNAL', step };
}
