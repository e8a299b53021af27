/**
 * The one HTTP error of alloy's servers (runtime, store, relay, serve): an AlloyError with a
 * status, so a route can throw it and a command can print it. Every server answers errors as
 * `{ "error": { code, message, hint?, details? } }` (see toBody), with one code per failure.
 */
import { AlloyError } from '../errors.js';

export class HttpError extends AlloyError {
  constructor(
    readonly status: number,
    code: string,
    message: string,
    hint?: string,
    details?: Record<string, unknown>,
    readonly headers?: Record<string, string>,
  ) {
    super(code, message, { hint, details });
  }
  toBody(): { error: Record<string, unknown> } {
    return {
      error: {
        code: this.code,
        message: this.message,
        ...(this.hint ? { hint: this.hint } : {}),
        ...(this.details ? { details: this.details } : {}),
      },
    };
  }
}

/** The one 413 code (the store server used to say E_TOO_LARGE, the runtime E_BODY_TOO_LARGE). */
export const BODY_TOO_LARGE = 'E_BODY_TOO_LARGE';
