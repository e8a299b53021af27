/**
 * What HTTP says about retrying, shared by connectors (which classify responses) and the
 * engine (which waits and retries): pure functions, no I/O.
 */

/**
 * Retry-After (RFC 9110 §10.2.3) is either delta-seconds or an HTTP-date. Returns the wait
 * in ms from `nowMs`, 0 for a date in the past, undefined when absent or unparseable.
 * Fractional seconds are accepted because Shopify's REST API sends `Retry-After: 2.0`.
 */
export function parseRetryAfter(value: string | undefined | null, nowMs: number): number | undefined {
  if (value === undefined || value === null) return undefined;
  const v = value.trim();
  if (v === '') return undefined;
  if (/^\d+(\.\d+)?$/.test(v)) {
    const ms = Math.ceil(Number(v) * 1000);
    return Number.isFinite(ms) ? ms : undefined; // 400 digits of seconds is not a wait
  }
  // HTTP-date: IMF-fixdate (and the obsolete RFC 850 / asctime forms Date.parse also reads).
  if (!/[A-Za-z]/.test(v)) return undefined;
  const at = Date.parse(v);
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, at - nowMs);
}

/** Statuses worth retrying: 408 Request Timeout, 429 Too Many Requests, 5xx. Other 4xx fail at once. */
export function isRetryableStatus(status: number): boolean {
  return status === 408 || status === 429 || status >= 500;
}
