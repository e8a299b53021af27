/**
 * Small HTTP helpers for the runtime server: JSON responses, errors with a status and a
 * stable code, body reading with a size limit, content-type checks, header redaction.
 * Every error answer has the same JSON shape: `{ "error": { code, message, hint?, details? } }`.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';

export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly hint?: string,
    readonly details?: Record<string, unknown>,
    readonly headers?: Record<string, string>,
  ) {
    super(message);
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

/**
 * Reads the whole body as the exact bytes received (signatures are computed over them).
 * A declared content-length above the limit is refused before reading; a streamed body
 * that grows past it is cut off. Either way: 413.
 */
export function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const tooLarge = () =>
    new HttpError(413, 'E_BODY_TOO_LARGE', `request body is larger than the limit of ${limit} bytes`, 'send a smaller body');
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > limit) {
    req.resume();
    return Promise.reject(tooLarge());
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    req.on('data', (chunk: Buffer) => {
      if (done) return;
      size += chunk.length;
      if (size > limit) {
        done = true;
        reject(tooLarge());
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => {
      if (done) return;
      done = true;
      resolve(chunks.length === 1 ? chunks[0] : Buffer.concat(chunks));
    });
    req.on('error', (err) => {
      if (done) return;
      done = true;
      reject(err);
    });
  });
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
