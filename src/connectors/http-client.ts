/**
 * Outbound HTTP for connectors: an HttpClient over undici, and the one place responses and
 * network failures become errors.StepError with the retry facts the engine needs
 * (`retryable`, `status`, `retryAfterMs`). The engine owns the retry loop.
 */
import { EventEmitter } from 'node:events';
import { request, type Dispatcher } from 'undici';
import { StepError } from '../errors.js';
import { parseRetryAfter, isRetryableStatus } from '../core/http-retry.js';
import type { ActionContext, HttpClient, HttpRequest, HttpResponse } from './types.js';
import { EgressDeniedError, egressAgent, type EgressPolicy } from './egress.js';

export interface HttpClientOptions {
  /** Upper bound for one call (connect to last body byte). Default 30 s. */
  timeoutMs?: number;
  /** undici dispatcher (Agent, MockAgent); default the global one. */
  dispatcher?: Dispatcher;
  userAgent?: string;
  /**
   * Largest response body read, in bytes; a longer one fails the call with a non-retryable
   * StepError E_RESPONSE_TOO_LARGE (the body is held in memory and stored in records).
   * Default 10 MiB.
   */
  maxResponseBytes?: number;
  /**
   * Where calls may connect, checked at connect time (connectors/egress.ts). Used when no
   * `dispatcher` is given; without either, the policy is `{ loopback: true }`.
   */
  egress?: EgressPolicy;
}

const DEFAULT_TIMEOUT_MS = 30_000;
export const DEFAULT_MAX_RESPONSE_BYTES = 10 * 1024 * 1024;

/** An HttpClient over undici's `request`; a call is aborted by its own signal or the timeout. */
export function createHttpClient(options: HttpClientOptions = {}): HttpClient {
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const maxBytes = options.maxResponseBytes ?? DEFAULT_MAX_RESPONSE_BYTES;
  const dispatcher = options.dispatcher ?? egressAgent(options.egress ?? { loopback: true });
  return async (req: HttpRequest): Promise<HttpResponse> => {
    // One abort handle per call, fired by the caller's signal or by a timer cleared when the
    // call ends; the reasons are the caller's, or a TimeoutError. The handle is an
    // EventEmitter (undici's `signal` takes one: https://undici.nodejs.org/#/docs/api/Dispatcher?id=parameter-requestoptions),
    // not an AbortController: a controller's signal is an EventTarget, and making one and
    // adding and removing undici's listener on it cost more than the rest of the call's
    // bookkeeping at thousands of calls a second. (AbortSignal.timeout + AbortSignal.any cost
    // a timer that lives the full timeout and weakly referenced dependants per call.)
    const abort = new CallAbort();
    const timer = setTimeout(() => abort.abort(new DOMException('The operation was aborted due to timeout', 'TimeoutError')), timeoutMs);
    const unlink = req.signal ? abort.follow(req.signal) : undefined;
    try {
      // The caller's headers as given (undici only reads them), copied only to add the user agent.
      const given = req.headers ?? {};
      const headers = options.userAgent && !hasHeader(given, 'user-agent') ? { ...given, 'user-agent': options.userAgent } : given;
      const res = await request(req.url, {
        method: req.method.toUpperCase() as Dispatcher.HttpMethod,
        headers,
        body: req.body,
        signal: abort,
        dispatcher,
      });
      const responseHeaders = flattenHeaders(res.headers);
      const text = await readBodyCapped(res.body, responseHeaders, maxBytes, req);
      return { status: res.statusCode, headers: responseHeaders, text };
    } finally {
      clearTimeout(timer);
      unlink?.();
    }
  };
}

/**
 * The abort handle of one outbound call, in the shape undici's `signal` option accepts besides
 * an AbortSignal (an EventEmitter with `aborted` and `reason`): aborted once, by the caller's
 * signal or the call's timeout, with that reason.
 */
class CallAbort extends EventEmitter {
  aborted = false;
  reason: unknown = undefined;
  abort(reason: unknown): void {
    if (this.aborted) return;
    this.aborted = true;
    this.reason = reason;
    this.emit('abort');
  }
  /** Aborts with `source`'s reason when it aborts; returns the function that stops following. */
  follow(source: AbortSignal): () => void {
    if (source.aborted) {
      this.abort(source.reason);
      return () => {};
    }
    const onAbort = () => this.abort(source.reason);
    source.addEventListener('abort', onAbort, { once: true });
    return () => source.removeEventListener('abort', onAbort);
  }
}

/**
 * Aborts `target` (with the same reason) when `source` aborts; returns the function that
 * stops following. Cheaper than AbortSignal.any for a short-lived link that is undone.
 */
export function followSignal(source: AbortSignal, target: AbortController): () => void {
  if (source.aborted) {
    target.abort(source.reason);
    return () => {};
  }
  const onAbort = () => target.abort(source.reason);
  source.addEventListener('abort', onAbort, { once: true });
  return () => source.removeEventListener('abort', onAbort);
}

function tooLarge(req: HttpRequest, maxBytes: number, what: string): StepError {
  // Asking again gets the same body: not retryable.
  return new StepError(`${req.method.toUpperCase()} ${safeUrl(req.url)}: the response body ${what} the ${maxBytes}-byte limit`, {
    code: 'E_RESPONSE_TOO_LARGE',
    retryable: false,
    hint: 'Ask the API for less (paging, fields, filters), or raise maxResponseBytes in createHttpClient.',
    details: { maxResponseBytes: maxBytes },
  });
}

/** Reads the body as UTF-8 text, stopping (and discarding the connection) past `maxBytes`. */
async function readBodyCapped(body: Dispatcher.ResponseData['body'], headers: Record<string, string>, maxBytes: number, req: HttpRequest): Promise<string> {
  const declared = Number(headers['content-length']);
  if (Number.isFinite(declared) && declared > maxBytes) {
    body.destroy();
    throw tooLarge(req, maxBytes, `(Content-Length ${declared}) exceeds`);
  }
  // Plain 'data'/'end' listeners: an async iterator over the stream costs more per call.
  const bytes = await new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > maxBytes) {
        cleanup();
        body.destroy();
        reject(tooLarge(req, maxBytes, 'exceeds'));
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = () => {
      cleanup();
      resolve(chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, size));
    };
    const onError = (err: Error) => {
      cleanup();
      reject(err);
    };
    // Destroyed without an error (nor an end): the body is cut short.
    const onClose = () => onError(Object.assign(new Error('the response body ended early'), { code: 'ERR_STREAM_PREMATURE_CLOSE' }));
    // The 'error' listener stays: destroying the body (over the cap) emits an AbortError,
    // which must not become an uncaught exception; rejecting a settled promise is a no-op.
    const cleanup = () => {
      body.off('data', onData);
      body.off('end', onEnd);
      body.off('close', onClose);
    };
    body.on('data', onData);
    body.on('end', onEnd);
    body.on('error', onError);
    body.on('close', onClose);
  });
  // TextDecoder (like undici's body.text()) drops a UTF-8 BOM and replaces invalid bytes.
  return decoder.decode(bytes);
}

/** Stateless between calls (decode without `stream: true`), so one instance serves all. */
const decoder = new TextDecoder();

function flattenHeaders(headers: Record<string, string | string[] | undefined>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined) continue;
    out[name.toLowerCase()] = Array.isArray(value) ? value.join(', ') : value;
  }
  return out;
}

// Both are called on every request and response: names of another length are skipped
// before lower-casing (which makes a string per header name otherwise).
export function hasHeader(headers: Record<string, string>, name: string): boolean {
  const lower = name.toLowerCase();
  for (const k of Object.keys(headers)) if (k.length === lower.length && k.toLowerCase() === lower) return true;
  return false;
}

export function getHeader(headers: Record<string, string | undefined>, name: string): string | undefined {
  const lower = name.toLowerCase();
  for (const k of Object.keys(headers)) if (k.length === lower.length && k.toLowerCase() === lower) return headers[k];
  return undefined;
}

export { parseRetryAfter, isRetryableStatus };

export interface ResponseErrorOptions {
  nowMs: number;
  /** What was called, for the message, e.g. "shopify createOrder" or "POST https://api.acme.com/orders". */
  label: string;
  hint?: string;
}

/** The StepError for a non-2xx response; undefined for 2xx/3xx. */
export function stepErrorFromResponse(res: HttpResponse, options: ResponseErrorOptions): StepError | undefined {
  if (res.status < 400) return undefined;
  const retryable = isRetryableStatus(res.status);
  const retryAfterMs = retryable ? parseRetryAfter(getHeader(res.headers, 'retry-after'), options.nowMs) : undefined;
  const snippet = bodySnippet(res.text);
  return new StepError(`${options.label} failed with HTTP ${res.status}${snippet ? `: ${snippet}` : ''}`, {
    code: res.status === 429 ? 'E_RATE_LIMITED' : 'E_HTTP',
    retryable,
    status: res.status,
    retryAfterMs,
    hint: options.hint ?? hintForStatus(res.status),
    details: { status: res.status, ...(retryAfterMs !== undefined ? { retryAfterMs } : {}) },
  });
}

function hintForStatus(status: number): string | undefined {
  if (status === 401 || status === 403) return 'Check the connection credentials for this app (see docs/connectors.md).';
  if (status === 404) return 'Check the URL, the API version and the id in the step input.';
  if (status === 429) return 'The API is rate limiting: the step is retried after the time it asked for.';
  return undefined;
}

/** Network failure, timeout or abort → StepError. Aborts by the caller's own signal are not retried. */
export function stepErrorFromNetwork(err: unknown, label: string, callerSignal?: AbortSignal): StepError {
  if (err instanceof StepError) return err;
  const denied = egressDenial(err);
  if (denied) return denied;
  const e = err as { name?: string; code?: string; message?: string };
  if (callerSignal?.aborted) {
    // The engine aborts with its own StepError (step timeout): keep its code and retry advice.
    if (callerSignal.reason instanceof StepError) return callerSignal.reason;
    return new StepError(`${label} was cancelled`, { code: 'E_ABORTED', retryable: false, cause: err });
  }
  const timedOut = e?.name === 'TimeoutError' || e?.code === 'UND_ERR_HEADERS_TIMEOUT' || e?.code === 'UND_ERR_BODY_TIMEOUT';
  const detail = e?.code ? `${e.code}: ${e.message ?? ''}` : (e?.message ?? String(err));
  return new StepError(`${label} ${timedOut ? 'timed out' : 'failed'} (${detail.trim()})`, {
    code: timedOut ? 'E_TIMEOUT' : 'E_NETWORK',
    retryable: true,
    cause: err,
  });
}

/** The EgressDeniedError behind a failed call (undici may wrap the connect error). */
export function egressDenial(err: unknown): EgressDeniedError | undefined {
  for (let e = err, i = 0; e && i < 4; e = (e as { cause?: unknown }).cause, i++) if (e instanceof EgressDeniedError) return e;
  return undefined;
}

function bodySnippet(text: string): string {
  const oneLine = text.replace(/\s+/g, ' ').trim();
  return oneLine.length > 300 ? `${oneLine.slice(0, 300)}…` : oneLine;
}

/** The URL without query string or credentials, safe for messages. */
export function safeUrl(url: string): string {
  try {
    const u = new URL(url);
    return `${u.origin}${u.pathname}`;
  } catch {
    return url.split('?')[0];
  }
}

/** An absolute http(s) URL (one parse; URL.canParse and then new URL made two). */
function isHttpUrl(url: string): boolean {
  let protocol: string;
  try {
    protocol = new URL(url).protocol;
  } catch {
    return false;
  }
  return protocol === 'http:' || protocol === 'https:';
}

/**
 * Sends one request for an action: adds `Idempotency-Key` from the context (unless the
 * caller set one), passes the step's abort signal, and turns network failures and non-2xx
 * answers into StepError. Returns only successful responses.
 */
export async function sendActionRequest(
  ctx: Pick<ActionContext, 'http' | 'idempotencyKey' | 'signal' | 'now'>,
  req: HttpRequest,
  label: string,
  options: { hint?: string; allowStatus?: (status: number) => boolean } = {},
): Promise<HttpResponse> {
  if (!isHttpUrl(req.url)) {
    // A bad URL is a mapping or configuration mistake: retrying cannot fix it.
    throw new StepError(`${label}: "${safeUrl(req.url)}" is not an absolute http(s) URL`, {
      code: 'E_INPUT',
      retryable: false,
      hint: 'Check the base URL (connector `baseUrl` or apps.<name>.baseUrl) and the request path.',
    });
  }
  const headers: Record<string, string> = { ...(req.headers ?? {}) };
  if (ctx.idempotencyKey && !hasHeader(headers, 'idempotency-key')) headers['Idempotency-Key'] = ctx.idempotencyKey;
  let res: HttpResponse;
  try {
    res = await ctx.http({ ...req, headers, signal: req.signal ?? ctx.signal });
  } catch (err) {
    throw stepErrorFromNetwork(err, label, ctx.signal);
  }
  if (options.allowStatus?.(res.status)) return res;
  const error = stepErrorFromResponse(res, { nowMs: ctx.now(), label, hint: options.hint });
  if (error) throw error;
  return res;
}

/** Parses a JSON body; an unparseable one is a non-retryable StepError naming the call. */
export function parseJsonBody(res: HttpResponse, label: string): unknown {
  if (res.text === '') return undefined;
  try {
    return JSON.parse(res.text);
  } catch {
    throw new StepError(`${label} returned a body that is not JSON: ${bodySnippet(res.text)}`, {
      code: 'E_BAD_RESPONSE',
      retryable: false,
      status: res.status,
    });
  }
}

/** JSON when the response says so (or looks like it), else the text. */
export function decodeBody(res: HttpResponse): unknown {
  const type = getHeader(res.headers, 'content-type') ?? '';
  if (/[/+]json\b/i.test(type)) {
    try {
      return res.text === '' ? null : JSON.parse(res.text);
    } catch {
      return res.text;
    }
  }
  return res.text;
}
