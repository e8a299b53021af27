/**
 * A client for the runtime's HTTP API (docs/http-api.md), used by `alloy emit`,
 * `executions`, `replay` and `logs`. The server is found from `--to <url>` or
 * `.alloy/dev.json` (written by `alloy dev`).
 *
 * Built on node:http, not undici: these commands make one or a few local requests, and
 * loading undici cost them about 49 ms of start-up (issue 13); node:https is loaded only for
 * an https runtime URL (a tunnel).
 */
import { randomUUID } from 'node:crypto';
import { request as httpRequest, type IncomingHttpHeaders, type IncomingMessage } from 'node:http';
import { AlloyError, UsageError } from '../errors.js';
import { signStandardWebhook, standardWebhookHeaders } from '../engine/standard-webhooks.js';
import { readDevInfo, readIngressSecret } from './dev-state.js';
import type { ExecutionSummary } from './runtime-server.js';
import type { ExecutionRecord } from '../engine/types.js';
import type { LogEntry } from './event-log.js';
import { createSseParser, type SseMessage } from '../net/sse.js';

export interface ApiResponse<T = any> {
  status: number;
  headers: Record<string, string>;
  body: T;
}

export interface AcceptedResponse {
  ok: boolean;
  duplicate?: boolean;
  deliveryId: string;
  executions: { id: string; workflow?: string; replayOf?: string }[];
  note?: string;
}

/** The most a runtime answer may be: bigger means a wrong server or a broken one, not a result to hold in memory. */
export const MAX_RESPONSE_BYTES = 16 * 1024 * 1024;

/** Paths whose requests are signed with the ingress secret (a tunnel refuses them unsigned). */
const SIGNED_INGRESS = /^\/?v1\/(run\/event|webhooks\/custom\/[^/]+)$/;

export class RuntimeClient {
  constructor(
    readonly baseUrl: string,
    readonly maxResponseBytes = MAX_RESPONSE_BYTES,
    /** The runtime's ingress secret: events and custom webhooks sent through this client are signed with it. */
    readonly ingressSecret?: string,
  ) {}

  async send(method: string, path: string, options: { body?: string | Buffer; headers?: Record<string, string>; timeoutMs?: number } = {}): Promise<ApiResponse> {
    const base = new URL(this.baseUrl);
    // Relative to the base, so a base with a path prefix (a tunnel's /t/<name>/) keeps it.
    const url = new URL(path.replace(/^\/+/, ''), base);
    // Requests (some signed with local secrets) go to this runtime only: never to a host named by a path.
    if (url.origin !== base.origin || !url.pathname.startsWith(base.pathname)) {
      throw new UsageError(`${JSON.stringify(path.slice(0, 200))} is not a path on the runtime at ${this.baseUrl}`, {
        code: 'E_RUNTIME_PATH',
        hint: 'pass a path such as /v1/run/event (no scheme or host)',
      });
    }
    const sentHeaders =
      this.ingressSecret && method === 'POST' && SIGNED_INGRESS.test(path.split('?')[0])
        ? signIngress(options.headers ?? {}, options.body ?? '', this.ingressSecret)
        : options.headers;
    let res;
    try {
      res = await sendRequest(url, method, sentHeaders, options.body, options.timeoutMs ?? 30_000);
    } catch (err) {
      throw new AlloyError('E_DEV_UNREACHABLE', `cannot reach the alloy runtime at ${this.baseUrl}: ${(err as Error).message}`, {
        hint: 'start it with `alloy dev` (or pass --to <url>)',
        cause: err,
      });
    }
    const text = await this.readText(res.body, res.headers['content-length']);
    let body: unknown = text;
    try {
      body = text ? JSON.parse(text) : undefined;
    } catch {
      /* keep text */
    }
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(res.headers)) if (v !== undefined) headers[k] = Array.isArray(v) ? v.join(', ') : v;
    return { status: res.statusCode, headers, body };
  }

  /** The body as text, at most `maxResponseBytes` (checked as it arrives, not only by Content-Length). */
  private async readText(stream: AsyncIterable<Buffer> & { destroy(err?: Error): void }, contentLength: string | string[] | undefined): Promise<string> {
    const tooLarge = () => {
      stream.destroy();
      return new AlloyError('E_RESPONSE_TOO_LARGE', `the runtime at ${this.baseUrl} answered with more than ${this.maxResponseBytes} bytes`, {
        hint: 'check that --to (or .alloy/dev.json) points at an alloy runtime; for long lists, pass --limit',
      });
    };
    if (typeof contentLength === 'string' && Number(contentLength) > this.maxResponseBytes) throw tooLarge();
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of stream) {
      size += chunk.length;
      if (size > this.maxResponseBytes) throw tooLarge();
      chunks.push(chunk);
    }
    return Buffer.concat(chunks).toString('utf8');
  }

  async health(timeoutMs = 2000): Promise<{ ok: boolean; pid: number; version: string }> {
    return (await this.expect('GET', '/healthz', [200], { timeoutMs })).body;
  }

  async emitEvent(event: string, data: unknown, userId?: string): Promise<ApiResponse<AcceptedResponse>> {
    const body = JSON.stringify({ event, ...(userId ? { userId } : {}), data });
    return this.send('POST', '/v1/run/event', { body, headers: { 'content-type': 'application/json' } });
  }

  async getExecution(id: string, waitMs?: number): Promise<ExecutionSummary & { record: ExecutionRecord }> {
    const q = waitMs ? `?wait=${Math.ceil(waitMs)}` : '';
    const res = await this.expect('GET', `/v1/executions/${encodeURIComponent(id)}${q}`, [200], { timeoutMs: (waitMs ?? 0) + 30_000 });
    return res.body.execution;
  }

  async listExecutions(filter: { status?: string; workflow?: string; limit?: number }): Promise<ExecutionSummary[]> {
    const q = new URLSearchParams();
    if (filter.status) q.set('status', filter.status);
    if (filter.workflow) q.set('workflow', filter.workflow);
    if (filter.limit) q.set('limit', String(filter.limit));
    const qs = q.toString();
    return (await this.expect('GET', `/v1/executions${qs ? `?${qs}` : ''}`, [200])).body.executions;
  }

  /** Replays the stored event, or `edited.event` instead (the body is JSON either way: state-changing routes take JSON only). */
  async replay(id: string, edited?: { event: unknown }): Promise<AcceptedResponse> {
    const res = await this.send('POST', `/v1/executions/${encodeURIComponent(id)}/replay`, {
      body: JSON.stringify(edited ?? {}),
      headers: { 'content-type': 'application/json' },
    });
    if (res.status !== 202) throw errorFromResponse(res);
    return res.body;
  }

  /**
   * Follows GET /v1/stream (server-sent events) until `signal` aborts or the runtime ends
   * the stream; resolves then. `after` asks for the log entries after that seq first.
   */
  async stream(onMessage: (message: SseMessage) => void, options: { after?: number; signal?: AbortSignal } = {}): Promise<void> {
    const url = new URL(`v1/stream${options.after !== undefined ? `?after=${options.after}` : ''}`, new URL(this.baseUrl));
    // undici only for this long-lived stream (loaded here, so the other commands start without it).
    const { request } = await import('undici');
    let res;
    try {
      res = await request(url, { method: 'GET', headers: { accept: 'text/event-stream' }, signal: options.signal, bodyTimeout: 0, headersTimeout: 10_000 });
    } catch (err) {
      if (options.signal?.aborted) return;
      throw new AlloyError('E_DEV_UNREACHABLE', `cannot reach the alloy runtime at ${this.baseUrl}: ${(err as Error).message}`, {
        hint: 'start it with `alloy dev` (or pass --to <url>)',
        cause: err,
      });
    }
    if (res.statusCode !== 200) {
      const text = await res.body.text();
      let body: unknown = text;
      try {
        body = JSON.parse(text);
      } catch {
        /* keep text */
      }
      throw errorFromResponse({ status: res.statusCode, headers: {}, body });
    }
    const feed = createSseParser(onMessage);
    res.body.setEncoding('utf8');
    try {
      for await (const chunk of res.body) feed(chunk as unknown as string);
    } catch (err) {
      if (options.signal?.aborted) return;
      throw new AlloyError('E_DEV_UNREACHABLE', `lost the alloy runtime at ${this.baseUrl}: ${(err as Error).message}`, { hint: 'is `alloy dev` still running?', cause: err });
    }
  }

  async readLogs(after?: number, limit?: number): Promise<{ entries: LogEntry[]; last: number }> {
    const q = new URLSearchParams();
    if (after !== undefined) q.set('after', String(after));
    if (limit) q.set('limit', String(limit));
    const qs = q.toString();
    return (await this.expect('GET', `/v1/logs${qs ? `?${qs}` : ''}`, [200])).body;
  }

  /** Waits until the execution ends or `timeoutMs` passes (long-polling GET ?wait=). */
  /**
   * Long-polls until the execution ends or `timeoutMs` passes. With `onProgress`, polls about
   * once a second instead and hands it each record seen meanwhile (to say what it waits for).
   */
  async waitForExecution(
    id: string,
    timeoutMs: number,
    onProgress?: (ex: ExecutionSummary & { record: ExecutionRecord }) => void,
  ): Promise<ExecutionSummary & { record: ExecutionRecord }> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const left = deadline - Date.now();
      const ex = await this.getExecution(id, Math.max(0, Math.min(left, onProgress ? 1000 : 30_000)));
      if (['succeeded', 'failed', 'filtered'].includes(ex.status) || Date.now() >= deadline) return ex;
      onProgress?.(ex);
    }
  }

  async expect(method: string, path: string, statuses: number[], options: { timeoutMs?: number } = {}): Promise<ApiResponse> {
    const res = await this.send(method, path, options);
    if (!statuses.includes(res.status)) throw errorFromResponse(res);
    return res;
  }
}

/**
 * One request on its own connection (no agent: nothing keeps the CLI's process alive after
 * it). `timeoutMs` bounds every wait for the server: the answer's head, then each gap in the body.
 */
async function sendRequest(
  url: URL,
  method: string,
  headers: Record<string, string> | undefined,
  body: string | Buffer | undefined,
  timeoutMs: number,
): Promise<{ statusCode: number; headers: IncomingHttpHeaders; body: IncomingMessage }> {
  const request = url.protocol === 'https:' ? (await import('node:https')).request : httpRequest;
  return new Promise((resolve, reject) => {
    const req = request(url, { method, headers, agent: false, timeout: timeoutMs }, (res) => {
      res.setTimeout(timeoutMs, () => res.destroy(new Error(`the answer stalled for ${timeoutMs} ms`)));
      resolve({ statusCode: res.statusCode ?? 0, headers: res.headers, body: res });
    });
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end(body);
  });
}

/**
 * Adds the Standard Webhooks headers for the ingress secret. When the request already carries
 * a Standard Webhooks signature (a custom webhook verified with its own secret), the same id and
 * timestamp are reused and this signature is appended: the header holds several (the spec allows it).
 */
export function signIngress(headers: Record<string, string>, body: string | Buffer, secret: string, nowSeconds = Math.floor(Date.now() / 1000)): Record<string, string> {
  const out = { ...headers };
  const find = (name: string) => Object.keys(out).find((k) => k.toLowerCase() === name);
  const idKey = find('webhook-id');
  const tsKey = find('webhook-timestamp');
  const sigKey = find('webhook-signature');
  const text = typeof body === 'string' ? body : body.toString('utf8');
  if (idKey && tsKey && sigKey && /^[0-9]+$/.test(out[tsKey])) {
    out[sigKey] = `${out[sigKey]} ${signStandardWebhook(secret, out[idKey], Number(out[tsKey]), text)}`;
    return out;
  }
  return { ...out, ...standardWebhookHeaders(secret, `msg_${randomUUID().replace(/-/g, '')}`, nowSeconds, text) };
}

/** Turns a JSON error body into an AlloyError with its code, message and hint. */
export function errorFromResponse(res: ApiResponse): AlloyError {
  const e = (res.body as { error?: { code?: string; message?: string; hint?: string; details?: Record<string, unknown> } })?.error;
  const exitCode = res.status === 422 || res.status === 400 ? 2 : 1;
  return new AlloyError(e?.code ?? `E_HTTP_${res.status}`, e?.message ?? `the runtime answered ${res.status}`, {
    hint: e?.hint,
    details: { status: res.status, ...(e?.details ?? {}) },
    exitCode,
  });
}

/**
 * The runtime to talk to: `--to` wins, then `.alloy/dev.json`. With `required: false`
 * returns undefined when no server is running (commands then read the log file directly).
 */
export async function findRuntime(root: string, to: string | undefined, required = true): Promise<RuntimeClient | undefined> {
  const ingressSecret = readIngressSecret(root);
  if (to) {
    // `localhost:4000` parses as a URL of scheme `localhost:` (then failed inside as "internal error Invalid URL").
    let protocol: string | undefined;
    try {
      protocol = new URL(to).protocol;
    } catch {
      protocol = undefined;
    }
    if (protocol !== 'http:' && protocol !== 'https:') {
      throw new UsageError(`--to ${to} is not an http(s) URL`, { code: 'E_BAD_URL', hint: `e.g. --to http://${/^[\w.-]+:\d+\/?$/.test(to) ? to.replace(/\/$/, '') : '127.0.0.1:4000'}` });
    }
    return new RuntimeClient(to.replace(/\/+$/, '') + '/', MAX_RESPONSE_BYTES, ingressSecret);
  }
  const info = readDevInfo(root);
  if (info) {
    const client = new RuntimeClient(info.url.replace(/\/+$/, '') + '/', MAX_RESPONSE_BYTES, ingressSecret);
    try {
      await client.health();
      return client;
    } catch {
      /* stale dev.json: the server is gone */
    }
  }
  if (!required) return undefined;
  throw new AlloyError('E_DEV_NOT_RUNNING', 'no running `alloy dev` found for this project', {
    hint: 'start `alloy dev` in this project (or pass --to <url>)',
  });
}
