/** Test helpers for the engine: real 127.0.0.1 servers, a fetch HttpClient, small connectors, a fake clock. */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { ConnectorRegistry, ConnectorRuntime, HttpClient } from '../../src/connectors/types.js';
import type { Step, WorkflowDef } from '../../src/core/model.js';
import { StepError } from '../../src/errors.js';
import { parseRetryAfter } from '../../src/engine/retry.js';
import type { Clock, EngineDeps, EngineLogger, ExecutionRecord } from '../../src/engine/types.js';

export interface RecordedRequest {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  body: string;
}

export interface TestServer {
  url: string;
  requests: RecordedRequest[];
  close(): Promise<void>;
}

export type Handler = (req: RecordedRequest, res: http.ServerResponse) => void | Promise<void>;

export async function startServer(handler: Handler): Promise<TestServer> {
  const requests: RecordedRequest[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', async () => {
      const rec = { method: req.method ?? 'GET', url: req.url ?? '/', headers: req.headers, body: Buffer.concat(chunks).toString('utf8') };
      requests.push(rec);
      try {
        await handler(rec, res);
      } catch (err) {
        res.statusCode = 500;
        res.end(String(err));
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

export function json(res: http.ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) {
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(JSON.stringify(body));
}

/** A plain fetch-based HttpClient (the connectors side ships the production one). */
export const fetchHttp: HttpClient = async (req) => {
  const res = await fetch(req.url, { method: req.method, headers: req.headers, body: req.body, signal: req.signal });
  const headers: Record<string, string> = {};
  res.headers.forEach((v, k) => {
    headers[k] = v;
  });
  return { status: res.status, headers, text: await res.text() };
};

/** A minimal `http` connector: request { method, url, headers, body } -> { status, body }. */
export const httpRuntime: ConnectorRuntime = {
  manifest: { apiVersion: 'alloy/v1', kind: 'Connector', name: 'http', baseUrl: '', auth: { type: 'none' } },
  actions: {
    request: async (input, ctx) => {
      const body = input.body === undefined ? undefined : typeof input.body === 'string' ? input.body : JSON.stringify(input.body);
      const res = await ctx.http({
        method: String(input.method ?? 'GET'),
        url: String(input.url),
        headers: { 'idempotency-key': ctx.idempotencyKey, ...((input.headers as Record<string, string>) ?? {}) },
        body,
        signal: ctx.signal,
      });
      const parsed = res.text && res.headers['content-type']?.includes('json') ? JSON.parse(res.text) : res.text;
      if (res.status >= 400) {
        throw new StepError(`HTTP ${res.status}`, {
          code: 'E_HTTP',
          status: res.status,
          retryable: res.status === 408 || res.status === 429 || res.status >= 500,
          retryAfterMs: parseRetryAfter(res.headers['retry-after'], ctx.now()),
        });
      }
      return { status: res.status, body: parsed };
    },
  },
};

/** A connector with a secret connection field, calling `<settings.baseUrl>/ping` with a bearer token. */
export const acmeRuntime: ConnectorRuntime = {
  manifest: {
    apiVersion: 'alloy/v1',
    kind: 'Connector',
    name: 'acme',
    baseUrl: '{{ connection.baseUrl }}',
    auth: { type: 'bearer', value: '{{ connection.apiKey }}' },
    connection: { apiKey: { secret: true, env: 'ACME_API_KEY' }, account: { env: 'ACME_ACCOUNT' } },
  },
  actions: {
    ping: async (input, ctx) => {
      const res = await ctx.http({
        method: 'POST',
        url: `${ctx.settings.baseUrl}/ping`,
        headers: { authorization: `Bearer ${ctx.connection.apiKey}`, 'content-type': 'application/json', 'idempotency-key': ctx.idempotencyKey },
        body: JSON.stringify(input),
        signal: ctx.signal,
      });
      if (res.status >= 400) {
        throw new StepError(`acme answered ${res.status} for key ${ctx.connection.apiKey}`, {
          status: res.status,
          retryable: res.status >= 500,
        });
      }
      return JSON.parse(res.text);
    },
  },
};

export function registry(...runtimes: ConnectorRuntime[]): ConnectorRegistry {
  const map = new Map(runtimes.map((r) => [r.manifest.name, r]));
  return { get: (n) => map.get(n), names: () => [...map.keys()] };
}

export interface FakeClock extends Clock {
  sleeps: number[];
}

/** Time moves only when something sleeps; sleeps resolve at once and are recorded. */
export function fakeClock(start = Date.parse('2026-01-01T00:00:00Z')): FakeClock {
  let now = start;
  const sleeps: number[] = [];
  return {
    sleeps,
    now: () => now,
    sleep: async (ms, signal) => {
      if (signal?.aborted) throw signal.reason;
      sleeps.push(ms);
      now += ms;
    },
  };
}

/** mulberry32: a small seeded PRNG for jitter tests. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export const silentLogger: EngineLogger & { lines: string[] } = Object.assign(
  {
    lines: [] as string[],
  },
  {
    debug() {},
    info() {},
    warn() {},
  },
);

export function makeDeps(overrides: Partial<EngineDeps> = {}): EngineDeps & { checkpoints: ExecutionRecord[] } {
  const checkpoints: ExecutionRecord[] = [];
  return {
    connectors: registry(httpRuntime, acmeRuntime),
    http: fetchHttp,
    clock: fakeClock(),
    random: seededRandom(42),
    checkpoint: async (r) => {
      checkpoints.push(JSON.parse(JSON.stringify(r)));
    },
    logger: silentLogger,
    resolveConnection: async () => ({}),
    ...overrides,
    checkpoints,
  };
}

export function workflow(steps: Step[], extra: Partial<WorkflowDef> = {}): WorkflowDef {
  return { apiVersion: 'alloy/v1', kind: 'Workflow', name: 'test-flow', trigger: { event: 'test.event' }, steps, ...extra };
}
