/**
 * Small HTTP helpers for the runtime server: JSON responses, errors with a status and a
 * stable code, body reading with a size limit, content-type checks, header redaction.
 * Every error answer has the same JSON shape: `{ "error": { code, message, hint?, details? } }`.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { HttpError, parseJson, sendJson } from '../http/index.js';
import { JSON_MAX_DEPTH } from '../core/json-depth.js';

// The shared HTTP kit (src/http) does the work; these names are the runtime server's.
export { HttpError, isJsonContentType, readBody, requireJsonContentType, sendJson, headerValue } from '../http/index.js';

export function sendError(res: ServerResponse, err: HttpError): void {
  sendJson(res, err.status, err.toBody(), err.headers);
}

/** The body parsed as JSON; 400 E_BAD_JSON when it is not (an empty body included), 400 E_JSON_TOO_DEEP past `maxDepth`. */
export function parseJsonBody(body: Buffer, maxDepth = JSON_MAX_DEPTH): unknown {
  if (body.length === 0) throw new HttpError(400, 'E_BAD_JSON', 'request body is empty', 'send a JSON document');
  return parseJson(body, maxDepth);
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

