/**
 * Small HTTP helpers for the runtime server: JSON responses, errors with a status and a
 * stable code, body reading with a size limit, content-type checks, header redaction.
 * Every error answer has the same JSON shape: `{ "error": { code, message, hint?, details? } }`.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { BodyTooLargeError, readRequestBody } from '../net/read-body.js';
import { HttpError } from '../net/http-error.js';
import { JSON_MAX_DEPTH, jsonTooDeep } from '../core/json-depth.js';

export { HttpError } from '../net/http-error.js';

export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': String(Buffer.byteLength(text)),
    'cache-control': 'no-store',
    ...headers,
  });
  res.end(text);
}

export function sendError(res: ServerResponse, err: HttpError): void {
  sendJson(res, err.status, err.toBody(), err.headers);
}

/** `application/json` or any `+json` media type (RFC 6839), parameters ignored. */
export function isJsonContentType(value: string | undefined): boolean {
  if (!value) return false;
  const type = value.split(';')[0].trim().toLowerCase();
  return type === 'application/json' || /^application\/[a-z0-9.+-]+\+json$/.test(type);
}

export function requireJsonContentType(req: IncomingMessage): void {
  if (!isJsonContentType(req.headers['content-type'])) {
    throw new HttpError(
      415,
      'E_UNSUPPORTED_MEDIA_TYPE',
      `expected content-type application/json, got ${req.headers['content-type'] ?? 'none'}`,
      'send the body as JSON with `content-type: application/json`',
    );
  }
}

/** The request body's exact bytes (signatures are computed over them), or a 413 HttpError. */
export function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  return readRequestBody(req, limit).catch((err: unknown) => {
    throw err instanceof BodyTooLargeError
      ? new HttpError(413, 'E_BODY_TOO_LARGE', `request body is larger than the limit of ${limit} bytes`, 'send a smaller body')
      : err;
  });
}

/** The body parsed as JSON; 400 E_BAD_JSON when it is not, 400 E_JSON_TOO_DEEP when it nests deeper than `maxDepth`. */
export function parseJsonBody(body: Buffer, maxDepth = JSON_MAX_DEPTH): unknown {
  const text = body.toString('utf8');
  if (jsonTooDeep(text, maxDepth)) {
    throw new HttpError(400, 'E_JSON_TOO_DEEP', `the JSON body nests deeper than ${maxDepth} levels`, `flatten the document (alloy accepts at most ${maxDepth} levels of objects and arrays)`, {
      maxDepth,
    });
  }
  try {
    return JSON.parse(text);
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
