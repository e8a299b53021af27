/**
 * Outbound HTTP for connectors: an HttpClient over undici, and the one place responses and
 * network failures become errors.StepError with the retry facts the engine needs
 * (`retryable`, `status`, `retryAfterMs`). The engine owns the retry loop.
 */
import { errors, type Dispatcher } from 'undici';
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
  return (req: HttpRequest): Promise<HttpResponse> => {
    // The same checks and errors as undici's `request` (its parseURL) before anything is sent.
    let url: URL;
    try {
      url = parsedUrl(req.url);
    } catch (err) {
      return Promise.reject(err);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      return Promise.reject(new errors.InvalidArgumentError('Invalid URL protocol: the URL must start with `http:` or `https:`.'));
    }
    // The caller's headers as given (undici only reads them), copied only to add the user agent.
    const given = req.headers ?? {};
    const headers = options.userAgent && !hasHeader(given, 'user-agent') ? { ...given, 'user-agent': options.userAgent } : given;
    return new Promise<HttpResponse>((resolve, reject) => {
      const call = new Call(req, maxBytes, resolve, reject);
      // Aborted by the caller's signal or by a timer cleared when the call ends; the reasons
      // are the caller's, or a TimeoutError. No AbortController per call: the call is aborted
      // through undici's dispatch controller (a controller's signal is an EventTarget, and
      // making one and adding and removing undici's listener on it cost more than the rest of
      // the call's bookkeeping at thousands of calls a second; AbortSignal.timeout +
      // AbortSignal.any cost a timer that lives the full timeout and weakly referenced
      // dependants per call).
      const signal = req.signal;
      if (signal?.aborted) return call.abort(signal.reason);
      call.timer = setTimeout(() => call.abort(new DOMException('The operation was aborted due to timeout', 'TimeoutError')), timeoutMs);
      if (signal) {
        const onAbort = () => call.abort(signal.reason);
        signal.addEventListener('abort', onAbort, { once: true });
        call.unlink = () => signal.removeEventListener('abort', onAbort);
      }
      // undici's low-level API (https://undici.nodejs.org/#/docs/api/Dispatcher?id=dispatcherdispatchoptions-handler):
      // the response is collected by `call` itself, without the Readable stream and the
      // per-request async resource of `request`.
      try {
        dispatcher.dispatch(
          {
            origin: url.origin,
            path: url.search ? `${url.pathname}${url.search}` : url.pathname,
            method: req.method.toUpperCase() as Dispatcher.HttpMethod,
            headers,
            body: req.body,
          },
          call,
        );
      } catch (err) {
        // undici's Agent reports errors through the handler; a custom dispatcher may throw:
        // settle now, so the timer and the signal's listener do not outlive the call.
        call.fail(err);
      }
    });
  };
}

/**
 * One outbound call as an undici dispatch handler: collects the response body (up to the
 * cap), settles once, and aborts through the dispatch controller, or at once when undici has
 * not handed one over yet (the call still waits for a connection; undici's `request` answers
 * such an abort only once the call reaches a socket).
 */
class Call implements Dispatcher.DispatchHandler {
  timer: NodeJS.Timeout | undefined;
  unlink: (() => void) | undefined;
  private controller: Dispatcher.DispatchController | undefined;
  private reason: unknown;
  private aborted = false;
  private settled = false;
  private status = 0;
  private headers: Record<string, string> = {};
  private chunks: Buffer[] = [];
  private size = 0;

  constructor(
    private readonly req: HttpRequest,
    private readonly maxBytes: number,
    private readonly resolve: (res: HttpResponse) => void,
    private readonly reject: (err: unknown) => void,
  ) {}

  abort(reason: unknown): void {
    if (this.aborted || this.settled) return;
    this.aborted = true;
    this.reason = reason;
    if (this.controller) this.controller.abort(reason as Error);
    else this.fail(reason);
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.controller = controller;
    // A request undici starts again (a pipelined one whose socket failed) collects afresh.
    this.chunks = [];
    this.size = 0;
    if (this.aborted) controller.abort(this.reason as Error);
  }

  onResponseStart(controller: Dispatcher.DispatchController, statusCode: number, headers: Record<string, string | string[] | undefined>): void {
    if (statusCode < 200) return; // 1xx: the final answer follows
    this.status = statusCode;
    this.headers = flattenHeaders(headers);
    const declared = Number(this.headers['content-length']);
    if (Number.isFinite(declared) && declared > this.maxBytes) controller.abort(tooLarge(this.req, this.maxBytes, `(Content-Length ${declared}) exceeds`));
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (this.settled) return;
    this.size += chunk.length;
    if (this.size > this.maxBytes) {
      controller.abort(tooLarge(this.req, this.maxBytes, 'exceeds'));
      return;
    }
    this.chunks.push(chunk);
  }

  onResponseEnd(): void {
    if (this.settled) return;
    const bytes = this.chunks.length === 1 ? this.chunks[0] : Buffer.concat(this.chunks, this.size);
    const res = { status: this.status, headers: this.headers, text: decoder.decode(bytes) };
    this.done();
    this.resolve(res);
  }

  onResponseError(_controller: Dispatcher.DispatchController, err: Error): void {
    this.fail(err);
  }

  fail(err: unknown): void {
    if (this.settled) return;
    this.done();
    this.reject(err);
  }

  private done(): void {
    this.settled = true;
    clearTimeout(this.timer);
    this.unlink?.();
    this.chunks = [];
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

/** Stateless between calls (decode without `stream: true`), so one instance serves all. */
const decoder = new TextDecoder();

function flattenHeaders(headers: Record<string, string | string[] | undefined>): Record<string, string> {
  const out: Record<string, string> = {};
  // for-in over own keys: no [name, value] array per header (one set per response).
  for (const name in headers) {
    if (!Object.hasOwn(headers, name)) continue;
    const value = headers[name];
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
    protocol = parsedUrl(url).protocol;
  } catch {
    return false;
  }
  return protocol === 'http:' || protocol === 'https:';
}

const PARSED_URLS_MAX = 256;
/** Longer URL texts are parsed each time: an event could otherwise pin megabytes here. */
const PARSED_URL_MAX_CHARS = 2048;
const parsedUrls = new Map<string, URL>();
/**
 * `new URL(text)` for reading only (never changed: it is shared), remembered for the next
 * call with the same text: an http step's URL was parsed three times per call (the step, the
 * action's check, the client), and a workflow calls the same few URLs again and again. Held
 * in this process's memory only, as the call itself is; cleared when full. Not remembered: a
 * long text, and a URL with user info or a query (they may carry credentials, kept no longer
 * than the call).
 */
export function parsedUrl(text: string): URL {
  if (typeof text !== 'string' || text.length > PARSED_URL_MAX_CHARS) return new URL(text); // mapped from data: anything at all
  let url = parsedUrls.get(text);
  if (url === undefined) {
    url = new URL(text); // throws for a bad URL: nothing remembered
    if (url.username || url.password || url.search) return url;
    if (parsedUrls.size >= PARSED_URLS_MAX) parsedUrls.clear();
    parsedUrls.set(text, url);
  }
  return url;
}

/**
 * Sends one request for an action: adds `Idempotency-Key` from the context (unless the
 * caller set one), passes the step's abort signal, and turns network failures and non-2xx
 * answers into StepError. Returns only successful responses.
 */
export function sendActionRequest(
  ctx: Pick<ActionContext, 'http' | 'idempotencyKey' | 'signal' | 'now'>,
  req: HttpRequest,
  label: string,
  options?: { hint?: string; allowStatus?: (status: number) => boolean },
): Promise<HttpResponse> {
  // Not an async function: one promise chain per call, not an async frame over the client's
  // promise. Every failure is still a rejection, never a synchronous throw.
  let headers: Record<string, string>;
  try {
    if (!isHttpUrl(req.url)) {
      // A bad URL is a mapping or configuration mistake: retrying cannot fix it.
      throw new StepError(`${label}: "${safeUrl(req.url)}" is not an absolute http(s) URL`, {
        code: 'E_INPUT',
        retryable: false,
        hint: 'Check the base URL (connector `baseUrl` or apps.<name>.baseUrl) and the request path.',
      });
    }
    headers = { ...(req.headers ?? {}) };
    if (ctx.idempotencyKey && !hasHeader(headers, 'idempotency-key')) headers['Idempotency-Key'] = ctx.idempotencyKey;
  } catch (err) {
    return Promise.reject(err);
  }
  let sent: Promise<HttpResponse>;
  try {
    sent = ctx.http({ ...req, headers, signal: req.signal ?? ctx.signal });
  } catch (err) {
    return Promise.reject(stepErrorFromNetwork(err, label, ctx.signal));
  }
  return Promise.resolve(sent).then(
    (res) => {
      if (options?.allowStatus?.(res.status)) return res;
      // 2xx and 3xx need no error (nor the clock's time for one).
      if (res.status < 400) return res;
      const error = stepErrorFromResponse(res, { nowMs: ctx.now(), label, hint: options?.hint });
      if (error) throw error;
      return res;
    },
    (err: unknown) => {
      throw stepErrorFromNetwork(err, label, ctx.signal);
    },
  );
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
