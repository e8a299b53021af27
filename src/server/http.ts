/**
 * Small HTTP helpers for the runtime server, over the shared kit (src/http): JSON responses,
 * errors with a status and a stable code, body reading with a size limit, content-type
 * checks, header redaction.
 * Every error answer has the same JSON shape: `{ "error": { code, message, hint?, details? } }`.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { HttpError } from '../http/error.js';
import { sendJson } from '../http/respond.js';

export { HttpError } from '../http/error.js';

export { sendJson } from '../http/respond.js';
export { isJsonContentType, readBody, requireJsonContentType } from '../http/body.js';

export function sendError(res: ServerResponse, err: HttpError): void {
  sendJson(res, err.status, err.toBody(), err.headers);
}

export function parseJsonBody(body: Buffer): unknown {
  try {
    return JSON.parse(body.toString('utf8'));
  } catch (err) {
    throw new HttpError(400, 'E_BAD_JSON', `request body is not valid JSON: ${(err as Error).message}`, 'send a JSON document');
  }
}

/** Header names whose values are credentials: never stored, logged or recorded. */
const CREDENTIAL_HEADER_RE = /^(authorization|proxy-authorization|cookie|set-cookie)$|token|secret|api[-_]?key|passw(or)?d|credential/i;

/**
 * Lower-cased headers with credentials removed. Signatures (X-Shopify-Hmac-Sha256,
 * webhook-signature) are kept: they are not secrets, only proofs over this body, and
 * keeping them lets a stored delivery be verified again.
 */
export function redactHeaders(headers: IncomingMessage['headers']): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined) continue;
    const key = name.toLowerCase();
    if (CREDENTIAL_HEADER_RE.test(key)) continue;
    out[key] = Array.isArray(value) ? value.join(', ') : value;
  }
  return out;
}

export function headerValue(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name.toLowerCase()];
  return Array.isArray(v) ? v[0] : v;
}
