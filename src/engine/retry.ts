/**
 * Retry policy: exponential backoff with FULL jitter (AWS Architecture Blog, "Exponential
 * Backoff And Jitter"): before attempt n+1 sleep random() * min(maxDelay, initialDelay *
 * factor^(n-1)). A server's Retry-After (RFC 9110 §10.2.3) replaces the computed delay.
 * Retried: StepErrors marked retryable, network errors, 408, 429 and 5xx; other 4xx fail at once.
 */
import type { RetryPolicy } from '../core/model.js';
import { StepError } from '../errors.js';
import { parseRetryAfter, isRetryableStatus } from '../core/http-retry.js';
import { parseDuration } from './duration.js';

export interface ResolvedRetryPolicy {
  attempts: number;
  initialDelayMs: number;
  maxDelayMs: number;
  factor: number;
}

export const STEP_RETRY_DEFAULTS: ResolvedRetryPolicy = { attempts: 1, initialDelayMs: 500, maxDelayMs: 30_000, factor: 2 };
export const STREAM_RETRY_DEFAULTS: ResolvedRetryPolicy = { ...STEP_RETRY_DEFAULTS, attempts: 5 };

export function resolveRetryPolicy(
  policy: RetryPolicy | undefined,
  defaults: ResolvedRetryPolicy,
  where = 'retry',
): ResolvedRetryPolicy {
  if (!policy) return defaults;
  return {
    attempts: Math.max(1, Math.floor(policy.attempts ?? defaults.attempts)),
    initialDelayMs:
      policy.initialDelay === undefined ? defaults.initialDelayMs : parseDuration(policy.initialDelay, `${where}.initialDelay`),
    maxDelayMs: policy.maxDelay === undefined ? defaults.maxDelayMs : parseDuration(policy.maxDelay, `${where}.maxDelay`),
    factor: policy.factor ?? defaults.factor,
  };
}

/** The ceiling of the backoff before attempt `failedAttempt + 1` (1-based failed attempt). */
export function backoffCeiling(policy: ResolvedRetryPolicy, failedAttempt: number): number {
  return Math.min(policy.maxDelayMs, policy.initialDelayMs * policy.factor ** (failedAttempt - 1));
}

/** Full-jitter delay in [0, ceiling). */
export function backoffDelay(policy: ResolvedRetryPolicy, failedAttempt: number, random: () => number): number {
  return Math.floor(random() * backoffCeiling(policy, failedAttempt));
}

export { parseRetryAfter, isRetryableStatus };

const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'UND_ERR_CLOSED',
]);

/** True for errors from the network layer (connection refused/reset, DNS, fetch failed). */
export function isNetworkError(err: unknown): boolean {
  let e: unknown = err;
  for (let depth = 0; e && typeof e === 'object' && depth < 4; depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && NETWORK_CODES.has(code)) return true;
    if (e instanceof TypeError && e.message === 'fetch failed') return true;
    e = (e as { cause?: unknown }).cause;
  }
  return false;
}

export function isRetryable(err: unknown): boolean {
  if (err instanceof StepError) return err.retryable || (err.status !== undefined && isRetryableStatus(err.status));
  return isNetworkError(err);
}

/**
 * How long to wait before the next attempt: the server's Retry-After when given, else jitter.
 * Retry-After is capped at the policy's maxDelay: a worker never sleeps longer than the
 * workflow allows (`Retry-After: 86400`, or a digit string that parses to Infinity, would
 * otherwise hold it for a day or forever). Raise `retry.maxDelay` to honour longer waits.
 */
export function retryDelay(
  err: unknown,
  policy: ResolvedRetryPolicy,
  failedAttempt: number,
  random: () => number,
): number {
  if (err instanceof StepError && typeof err.retryAfterMs === 'number' && err.retryAfterMs >= 0) {
    return Math.min(err.retryAfterMs, policy.maxDelayMs);
  }
  return backoffDelay(policy, failedAttempt, random);
}
