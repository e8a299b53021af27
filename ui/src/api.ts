/**
 * The UI's data layer: the runtime's HTTP API (docs/http-api.md) as `alloy dev` offers it
 * and `alloy serve` can (the same paths under a base, an optional bearer token).
 * State-changing calls always send JSON with `content-type: application/json`.
 * Live updates come from GET /v1/stream (server-sent events), read with fetch so a token
 * can ride in the Authorization header (EventSource cannot send one).
 */
import { createSseParser, type SseMessage } from '../../src/net/sse.js';

// The runtime's own types (type-only imports: nothing of the server reaches the bundle).
import type { ExecutionSummary } from '../../src/server/runtime-server.js';
import type { ErrorInfo, StepRecord, StreamDelivery } from '../../src/engine/types.js';

export type { ErrorInfo, ExecutionSummary, StepRecord, StreamDelivery };

/** `alloy serve` adds who and what ran: the user, installation, integration and version. */
export interface ServeFields {
  installationId?: string;
  integration?: string;
  version?: number | string;
}

export interface ExecutionDetail extends ExecutionSummary, ServeFields {
  record: {
    event: unknown;
    version?: string;
    startedAt?: string;
    endedAt?: string;
    steps: Record<string, StepRecord>;
    stream?: StreamDelivery;
    error?: ErrorInfo;
  };
  delivery?: { id: string; source: string; name: string; receivedAt: string; verification: string; headers: Record<string, string> };
}

export interface WorkflowInfo {
  key: string;
  integration: string;
  name: string;
  file: string;
  description?: string;
  trigger: { kind: string; [k: string]: unknown };
  steps: { id: string; uses?: string }[];
  streams?: boolean;
  fixtures: string[];
}

export interface ExecutionQuery {
  status?: string;
  workflow?: string;
  since?: string;
  id?: string;
  cursor?: string;
  limit?: number;
  /** serve only */
  userId?: string;
  installationId?: string;
}

export interface UserInfo {
  id: string;
  name?: string;
  createdAt: string;
}

export interface InstallationInfo {
  id: string;
  userId: string;
  integration: string;
  version: number;
  status: 'active' | 'inactive';
  credentials: Record<string, string>;
  config: Record<string, unknown>;
  createdAt: string;
  updatedAt: string;
}

export interface Accepted {
  deliveryId: string;
  executions: { id: string; workflow?: string; replayOf?: string }[];
  note?: string;
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly hint?: string,
  ) {
    super(message);
  }
}

export interface ApiOptions {
  /** Prefix of every path ('' for the runtime's own origin). */
  base?: string;
  /** Bearer token (an `alloy serve` admin key or user token). */
  token?: string;
  /** Which runtime answers: `alloy dev` (default) or `alloy serve` (other routes for lists and replay). */
  runtime?: 'dev' | 'serve';
  /** Called when the runtime refuses the token (401), from any call or the stream. */
  onUnauthorized?: (error: ApiError) => void;
}

export function createApi(options: ApiOptions = {}) {
  const base = options.base ?? '';
  const serve = options.runtime === 'serve';
  const auth: Record<string, string> = options.token ? { authorization: `Bearer ${options.token}` } : {};

  async function call<T>(method: 'GET' | 'POST', path: string, body?: unknown): Promise<T> {
    try {
      return await request<T>(method, path, body);
    } catch (err) {
      if (err instanceof ApiError && err.status === 401) options.onUnauthorized?.(err);
      throw err;
    }
  }

  async function request<T>(method: 'GET' | 'POST', path: string, body?: unknown): Promise<T> {
    const res = await fetch(`${base}${path}`, {
      method,
      headers: { accept: 'application/json', ...auth, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
      body: body !== undefined ? JSON.stringify(body) : undefined,
      credentials: 'same-origin',
    });
    const text = await res.text();
    let json: any;
    try {
      json = text ? JSON.parse(text) : undefined;
    } catch {
      json = undefined;
    }
    if (!res.ok) {
      const e = json?.error;
      throw new ApiError(res.status, e?.code ?? `E_HTTP_${res.status}`, e?.message ?? `the runtime answered ${res.status}`, e?.hint);
    }
    return json as T;
  }

  const getExecution = async (id: string): Promise<ExecutionDetail> => normalizeExecution(await call('GET', `/v1/executions/${encodeURIComponent(id)}`));

  return {
    runtime: serve ? ('serve' as const) : ('dev' as const),
    async listExecutions(q: ExecutionQuery): Promise<{ executions: ExecutionSummary[]; nextCursor?: string }> {
      if (serve && q.id) {
        // serve has no id-prefix search: an id is looked up as it is.
        try {
          const e = await getExecution(q.id);
          return { executions: [e] };
        } catch (err) {
          if (err instanceof ApiError && (err.status === 404 || err.status === 400)) return { executions: [] };
          throw err;
        }
      }
      const p = new URLSearchParams();
      for (const [k, v] of Object.entries(q)) if (v !== undefined && v !== '') p.set(k, String(v));
      // serve lists oldest first unless asked.
      if (serve) p.set('order', 'desc');
      const qs = p.toString();
      return normalizePage(await call('GET', `/v1/executions${qs ? `?${qs}` : ''}`));
    },
    getExecution,
    /**
     * dev: replay (optionally with an edited event); serve: rerun with the same event, from
     * the start or `fromStep`, on the same version or `version`.
     */
    async replay(id: string, event?: unknown, rerun: { fromStep?: string; version?: number } = {}): Promise<Accepted> {
      if (serve) {
        const r = await call<{ executionIds: string[] }>('POST', `/v1/executions/${encodeURIComponent(id)}/rerun`, rerun);
        return { deliveryId: '', executions: r.executionIds.map((x) => ({ id: x, replayOf: id })) };
      }
      return call('POST', `/v1/executions/${encodeURIComponent(id)}/replay`, event === undefined ? {} : { event });
    },
    // alloy serve: users and installations (docs/serve-api.md).
    async listUsers(cursor?: string): Promise<{ users: UserInfo[]; nextCursor?: string }> {
      const body = await call<{ items: UserInfo[]; next: string | null }>('GET', `/v1/users?limit=50${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
      return { users: body.items, ...(body.next ? { nextCursor: body.next } : {}) };
    },
    getUser(id: string): Promise<UserInfo> {
      return call('GET', `/v1/users/${encodeURIComponent(id)}`);
    },
    async listInstallations(q: { userId?: string; cursor?: string }): Promise<{ installations: InstallationInfo[]; nextCursor?: string }> {
      const p = new URLSearchParams({ limit: '50' });
      if (q.userId) p.set('userId', q.userId);
      if (q.cursor) p.set('cursor', q.cursor);
      const body = await call<{ items: InstallationInfo[]; next: string | null }>('GET', `/v1/installations?${p}`);
      return { installations: body.items, ...(body.next ? { nextCursor: body.next } : {}) };
    },
    /** `version`: a number, or undefined for the published one. */
    upgradeInstallation(id: string, version?: number): Promise<InstallationInfo> {
      return call('POST', `/v1/installations/${encodeURIComponent(id)}/upgrade`, version === undefined ? {} : { version });
    },
    setInstallationActive(id: string, active: boolean): Promise<InstallationInfo> {
      return call('POST', `/v1/installations/${encodeURIComponent(id)}/${active ? 'activate' : 'deactivate'}`, {});
    },
    workflows(): Promise<{ version: string; workflows: WorkflowInfo[] }> {
      return call('GET', '/v1/workflows');
    },
    sendFixture(key: string, fixture: string): Promise<Accepted> {
      const [integration, workflow] = key.split('/');
      return call('POST', `/v1/workflows/${encodeURIComponent(integration)}/${encodeURIComponent(workflow)}/send`, { fixture });
    },
    /** Follows the event stream, reconnecting after a second when it drops; returns a stop function. */
    subscribe(onMessage: (m: SseMessage) => void, onState?: (connected: boolean) => void): () => void {
      const stop = new AbortController();
      const loop = async () => {
        while (!stop.signal.aborted) {
          try {
            const res = await fetch(`${base}/v1/stream`, { headers: { accept: 'text/event-stream', ...auth }, signal: stop.signal });
            if (res.status === 401) {
              // Retrying cannot help: the key or token is refused.
              const e = ((await res.json().catch(() => ({}))) as any)?.error;
              options.onUnauthorized?.(new ApiError(401, e?.code ?? 'E_UNAUTHORIZED', e?.message ?? 'the token was refused', e?.hint));
              stop.abort();
              break;
            }
            if (!res.ok || !res.body) throw new Error(`stream answered ${res.status}`);
            onState?.(true);
            const feed = createSseParser((m) => {
              // serve ends a stream whose key was deleted or whose token expired with an `error` event.
              if (m.event === 'error') {
                const e = JSON.parse(m.data) as { code?: string; message?: string; hint?: string };
                options.onUnauthorized?.(new ApiError(401, e.code ?? 'E_UNAUTHORIZED', e.message ?? 'the token was refused', e.hint));
                stop.abort();
                return;
              }
              onMessage(m);
            });
            const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
            for (;;) {
              const { value, done } = await reader.read();
              if (done) break;
              feed(value);
            }
          } catch {
            /* reconnect below */
          }
          onState?.(false);
          if (!stop.signal.aborted) await new Promise((r) => setTimeout(r, 1000));
        }
      };
      void loop();
      return () => stop.abort();
    },
  };
}

export type Api = ReturnType<typeof createApi>;

/**
 * Pages come as `{executions, nextCursor}` (alloy dev) or `{items, next}` (the paged lists of
 * `alloy serve`); both take `?cursor=` for the next page.
 */
export function normalizePage(body: any): { executions: ExecutionSummary[]; nextCursor?: string } {
  const executions = ((body?.executions ?? body?.items ?? []) as any[]).map(normalizeSummary);
  const next = body?.nextCursor ?? body?.next ?? undefined;
  return { executions, ...(next ? { nextCursor: String(next) } : {}) };
}

/**
 * One execution as `{execution: {...summary, record}}` (alloy dev) or a flat view with
 * `steps` as a list and `rerunOf` (alloy serve): the same shape out.
 */
export function normalizeExecution(body: any): ExecutionDetail {
  const e = body?.execution ?? body;
  if (e?.record) return e as ExecutionDetail;
  const steps: Record<string, StepRecord> = {};
  for (const s of (e?.steps ?? []) as StepRecord[]) steps[s.path] = s;
  return {
    ...e,
    ...(e?.rerunOf && !e.replayOf ? { replayOf: e.rerunOf } : {}),
    record: { event: e?.event, version: typeof e?.version === 'number' ? `v${e.version}` : e?.version, startedAt: e?.startedAt, endedAt: e?.endedAt, steps, stream: e?.stream, error: e?.error },
  } as ExecutionDetail;
}

/** One execution summary from either runtime (serve says `rerunOf` where dev says `replayOf`). */
export function normalizeSummary(s: any): ExecutionSummary & ServeFields {
  return s?.rerunOf && !s.replayOf ? { ...s, replayOf: s.rerunOf } : s;
}
