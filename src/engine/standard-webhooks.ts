/**
 * Standard Webhooks signing and verification (https://www.standardwebhooks.com, spec
 * "Verifying webhooks"): headers `webhook-id`, `webhook-timestamp` (unix seconds) and
 * `webhook-signature` = space-separated `v1,<base64 HMAC-SHA256(id.timestamp.body)>`,
 * keyed with the base64-decoded part of a `whsec_<base64>` secret.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { AlloyError } from '../errors.js';

const SECRET_PREFIX = 'whsec_';
/** Default tolerance for the timestamp, as the reference libraries use (5 minutes). */
export const DEFAULT_TOLERANCE_SECONDS = 300;

export interface StandardWebhookHeaders {
  'webhook-id': string;
  'webhook-timestamp': string;
  'webhook-signature': string;
}

export function decodeWebhookSecret(secret: string): Buffer {
  const b64 = secret.startsWith(SECRET_PREFIX) ? secret.slice(SECRET_PREFIX.length) : secret;
  const key = Buffer.from(b64, 'base64');
  if (key.length === 0) {
    throw new AlloyError('E_STREAM_SECRET', 'the stream secret is empty or not base64', {
      hint: 'Use a secret of the form whsec_<base64>, e.g. from `openssl rand -base64 32`.',
    });
  }
  return key;
}

/** `v1,<base64>` for one message. `timestamp` is unix seconds. */
export function signStandardWebhook(secret: string, id: string, timestamp: number, body: string): string {
  const mac = createHmac('sha256', decodeWebhookSecret(secret)).update(`${id}.${timestamp}.${body}`).digest('base64');
  return `v1,${mac}`;
}

/** The three headers to send with `body`. */
export function standardWebhookHeaders(secret: string, id: string, timestamp: number, body: string): StandardWebhookHeaders {
  return {
    'webhook-id': id,
    'webhook-timestamp': String(timestamp),
    'webhook-signature': signStandardWebhook(secret, id, timestamp, body),
  };
}

export interface VerifyResult {
  ok: boolean;
  /** Why it failed, naming the header. */
  reason?: string;
}

/**
 * Verifies a delivery. `headers` has lower-cased names; `nowSeconds` is the receiver's
 * clock. Passes when any `v1` signature in the header matches (keys rotate).
 */
export function verifyStandardWebhook(
  secret: string,
  headers: Record<string, string | string[] | undefined>,
  body: string,
  options: { nowSeconds: number; toleranceSeconds?: number },
): VerifyResult {
  const one = (name: string) => {
    const v = headers[name];
    return Array.isArray(v) ? v[0] : v;
  };
  const id = one('webhook-id');
  const ts = one('webhook-timestamp');
  const sig = one('webhook-signature');
  if (!id) return { ok: false, reason: 'missing webhook-id header' };
  if (!ts) return { ok: false, reason: 'missing webhook-timestamp header' };
  if (!sig) return { ok: false, reason: 'missing webhook-signature header' };
  if (!/^[0-9]+$/.test(ts)) return { ok: false, reason: 'webhook-timestamp is not unix seconds' };
  const timestamp = Number(ts);
  const tolerance = options.toleranceSeconds ?? DEFAULT_TOLERANCE_SECONDS;
  if (Math.abs(options.nowSeconds - timestamp) > tolerance) {
    return { ok: false, reason: `webhook-timestamp is more than ${tolerance}s away from now` };
  }
  const expected = Buffer.from(signStandardWebhook(secret, id, timestamp, body).slice(3), 'base64');
  for (const candidate of sig.split(' ')) {
    const comma = candidate.indexOf(',');
    if (comma < 0 || candidate.slice(0, comma) !== 'v1') continue;
    const given = Buffer.from(candidate.slice(comma + 1), 'base64');
    // timingSafeEqual throws on different lengths; compare lengths first (not secret).
    if (given.length === expected.length && timingSafeEqual(given, expected)) return { ok: true };
  }
  return { ok: false, reason: 'no webhook-signature matches' };
}
