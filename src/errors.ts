/**
 * Error classes with stable codes and hints. Commands throw these; one place
 * (src/cli/handle-errors.ts) turns them into a message and an exit code.
 *
 * Exit codes: 0 ok, 1 failure, 2 usage or validation error.
 */

export const EXIT_OK = 0;
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;

export interface AlloyErrorOptions {
  /** One sentence that names the fix: the flag, the file, the command to run. */
  hint?: string;
  exitCode?: number;
  cause?: unknown;
  /** Extra machine-readable details for --json output (never secrets). */
  details?: Record<string, unknown>;
}

/** A user-facing error: printed without a stack trace unless ALLOY_DEBUG=1. */
export class AlloyError extends Error {
  readonly code: string;
  readonly hint?: string;
  readonly exitCode: number;
  readonly details?: Record<string, unknown>;

  constructor(code: string, message: string, options: AlloyErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.hint = options.hint;
    this.exitCode = options.exitCode ?? EXIT_FAILURE;
    this.details = options.details;
  }

  toJSON(): Record<string, unknown> {
    return { code: this.code, message: this.message, hint: this.hint, ...(this.details ? { details: this.details } : {}) };
  }
}

/** Bad flags, arguments or invocation: exit 2. */
export class UsageError extends AlloyError {
  constructor(message: string, options: Omit<AlloyErrorOptions, 'exitCode'> & { code?: string } = {}) {
    super(options.code ?? 'E_USAGE', message, { ...options, exitCode: EXIT_USAGE });
  }
}

/** Definitions failed validation; the diagnostics have been (or will be) printed. Exit 2. */
export class ValidationFailedError extends AlloyError {
  readonly diagnostics: readonly unknown[];
  constructor(message: string, diagnostics: readonly unknown[], options: Omit<AlloyErrorOptions, 'exitCode'> = {}) {
    super('E_VALIDATION', message, { ...options, exitCode: EXIT_USAGE });
    this.diagnostics = diagnostics;
  }
}

/** Something named by the user does not exist (integration, version, execution...). */
export class NotFoundError extends AlloyError {
  constructor(what: string, options: Omit<AlloyErrorOptions, 'exitCode'> & { code?: string } = {}) {
    super(options.code ?? 'E_NOT_FOUND', what, { ...options, exitCode: EXIT_FAILURE });
  }
}

/** A required credential or setting is missing; the hint names the variable to set. */
export class MissingSecretError extends AlloyError {
  constructor(message: string, hint: string) {
    super('E_MISSING_SECRET', message, { hint, exitCode: EXIT_FAILURE });
  }
}

/** Store corruption, lock conflicts, races lost against a remote. */
export class StoreError extends AlloyError {}

/** Step failure inside the engine. `retryable` says what retrying should do (cf. inngest's NonRetriableError). */
export class StepError extends AlloyError {
  readonly retryable: boolean;
  readonly status?: number;
  /** Milliseconds to wait before the next attempt, from Retry-After or a throttle report. */
  readonly retryAfterMs?: number;
  constructor(
    message: string,
    options: AlloyErrorOptions & { code?: string; retryable?: boolean; status?: number; retryAfterMs?: number } = {},
  ) {
    super(options.code ?? 'E_STEP', message, options);
    this.retryable = options.retryable ?? false;
    this.status = options.status;
    this.retryAfterMs = options.retryAfterMs;
  }
}

export function isAlloyError(err: unknown): err is AlloyError {
  return err instanceof AlloyError;
}
