/**
 * `alloy serve` as a programmatic API: the Embedded API (/v1, route modules under api/),
 * the store API (/v1/store, when store tokens are configured) and the runner, over one
 * ServeState. The CLI command (src/cli/commands/serve.ts) only parses flags and calls this.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AppSettings } from '../core/model.js';
import { createConnectorRegistry } from '../connectors/registry.js';
import { createHttpClient } from '../connectors/http-client.js';
import type { HttpClient } from '../connectors/types.js';
import { HttpError } from '../http/error.js';
import { listen } from '../http/listen.js';
import { UsageError } from '../errors.js';
import { createRouter, type Route } from '../http/router.js';
import { authenticate, authorize } from './auth.js';
import { createConnections } from './connections.js';
import { parsePublicUrl, parseRedirectOrigins } from './oauth.js';
import type { Keyring } from './crypto.js';
import type { DefinitionSource } from './definitions.js';
import { createMetrics } from './metrics.js';
import { createRunner, type Runner, type RunnerOptions } from './runner.js';
import { CostLimiter } from './limiter.js';
import { createServeTimers, type ServeTimers } from './timers.js';
import { realClock } from '../engine/clock.js';
import { realTimerClock, type TimerClock } from '../server/time-ports.js';
import type { SchedulerEvent } from '../server/scheduler.js';
import type { PollerEvent } from '../server/poller.js';
import type { ServeState } from './state/types.js';
import { makeContext, type ApiContext, type ApiRoute, type ServeDeps } from './api/context.js';
import { userRoutes } from './api/users.js';
import { credentialRoutes } from './api/credentials.js';
import { installationRoutes } from './api/installations.js';
import { eventRoutes } from './api/events.js';
import { executionRoutes } from './api/executions.js';
import { opsRoutes } from './api/ops.js';
import { streamRoutes, uiRoutes } from './api/web-ui.js';
import { createLiveFeed } from './live-feed.js';

/** Every route of the Embedded API, in the order they are mounted. */
export const SERVE_ROUTES: ApiRoute[] = [...opsRoutes, ...userRoutes, ...credentialRoutes, ...installationRoutes, ...eventRoutes, ...executionRoutes, ...streamRoutes];

export type ServeRole = 'api' | 'worker' | 'all';
export const SERVE_ROLES: readonly ServeRole[] = ['api', 'worker', 'all'];

export interface ServeServerOptions {
  state: ServeState;
  keyring: Keyring;
  source: DefinitionSource;
  /** Per-app settings (baseUrl for a local fake, apiVersion, OAuth scopes). */
  settings?: Record<string, AppSettings & { scopes?: string }>;
  env?: Record<string, string | undefined>;
  /** Outbound HTTP; default a client under `egress`. */
  http?: HttpClient;
  /**
   * Where outbound calls may connect (connectors/egress.ts). Serve refuses loopback by
   * default (a workflow must not reach services on the server's own machine); `allow` takes
   * the config's `egress.allow` (e.g. a local fake Shopify in tests).
   */
  egress?: { loopback?: boolean; allow?: readonly string[] };
  host?: string;
  port?: number;
  /** Base URL the outside world reaches this server at (OAuth redirect URIs); default the listening URL. */
  publicUrl?: string;
  /**
   * Origins an OAuth flow's `redirectAfter` may be on (`serve.oauth.redirectOrigins`); without
   * them a localhost page only. Checked here: a bad entry is a UsageError.
   */
  oauthRedirectOrigins?: string | readonly string[];
  /** Mounted under /v1/store (the store API with its own tokens), tried when no /v1 route matches. */
  storeHandler?: (req: IncomingMessage, res: ServerResponse) => Promise<boolean>;
  concurrency?: number;
  perInstallation?: number;
  perShop?: number;
  /** The execution queue; default in-process (one process over SQLite). */
  queue?: RunnerOptions['queue'];
  /**
   * `all` (default) serves the API and runs executions; `api` serves the API and only
   * enqueues; `worker` runs executions and serves only the ops routes (health, metrics).
   */
  role?: ServeRole;
  /** PostgreSQL: seconds after which a silent worker's executions go to another (pg-queue.ts). Default 30. */
  recoverAfterSeconds?: number;
  maxBodyBytes?: number;
  /** Open sockets at most; more are closed at once (default: src/http/listen.ts, 1024). */
  maxConnections?: number;
  now?: () => number;
  /** The clock schedules and polls run on (tests pass a manual one). */
  timerClock?: TimerClock;
  /** How often schedules and polls re-read the installations (other processes change them too). Default 15 s. */
  timersRefreshMs?: number;
  /** Every schedule tick, poll run and error of the timers (tests, and what `log` is told about errors). */
  onTimerEvent?(event: SchedulerEvent | PollerEvent): void;
  log?: (message: string, fields?: Record<string, unknown>) => void;
}

export interface ServeServer {
  url: string;
  runner: Runner;
  timers: ServeTimers;
  close(): Promise<void>;
}

export async function startServeServer(options: ServeServerOptions): Promise<ServeServer> {
  const now = options.now ?? Date.now;
  const env = options.env ?? process.env;
  const http = options.http ?? createHttpClient({ egress: { loopback: options.egress?.loopback ?? false, allow: options.egress?.allow } });
  const settings = options.settings ?? {};
  const metrics = createMetrics();
  const log = options.log ?? (() => {});
  const role = options.role ?? 'all';
  const oauthRedirectOrigins = parseRedirectOrigins(options.oauthRedirectOrigins, 'serve.oauth.redirectOrigins');
  const publicUrl = parsePublicUrl(options.publicUrl, 'publicUrl');
  const connections = createConnections({ state: options.state, keyring: options.keyring, env, settings, http, now });
  // Over PostgreSQL the queue is shared by every serve process (pg-boss, loaded only then).
  let queue = options.queue;
  if (!queue && (options.state as { kind?: string }).kind === 'postgres') {
    const { pgQueue } = await import('./queue/pg-queue.js');
    queue = pgQueue({ recoverAfterSeconds: options.recoverAfterSeconds, log });
  } else if (!queue && role !== 'all') {
    throw new UsageError(`--role ${role} needs the state in PostgreSQL`, { hint: 'SQLite is owned by one process: run --role all, or give --database postgres://… to every process.' });
  }
  // One cost limiter per process: the executions' calls and the polls wait for the same bucket per (app, shop).
  const costs = new CostLimiter({ now, sleep: realClock.sleep }, options.state.buckets);
  const auth = (header: string | undefined) => authenticate(header, options.state.apiKeys, options.keyring, now(), options.state.users);
  const live = createLiveFeed({ state: options.state, authenticate: auth, onError: (err) => log('live feed error', { error: (err as Error).message }) });
  const runner = createRunner({
    costs,
    state: options.state,
    source: options.source,
    connections,
    keyring: options.keyring,
    settings,
    env,
    http,
    now,
    concurrency: options.concurrency,
    perInstallation: options.perInstallation,
    perShop: options.perShop,
    queue,
    work: role !== 'api',
    onFinished: (_row, record) => {
      metrics.executionFinished(record.status);
      live.wake();
    },
    onError: (id, err) => log('execution error', { execution: id, error: (err as Error).message }),
  });
  const timerClock = options.timerClock ?? realTimerClock;
  const timers = createServeTimers({
    state: options.state,
    source: options.source,
    connections,
    settings,
    http,
    costs,
    runner,
    metrics,
    clock: timerClock,
    refreshMs: options.timersRefreshMs,
    onEvent: (e) => {
      options.onTimerEvent?.(e);
      if (e.type === 'error') log('schedule/poll error', { target: e.target ?? e.workflow, error: e.message });
    },
  });
  let url = '';
  const deps: ServeDeps = {
    state: options.state,
    keyring: options.keyring,
    source: options.source,
    runner,
    connections,
    connectors: createConnectorRegistry({ userConnectors: [] }),
    http,
    metrics,
    live,
    env,
    now,
    publicUrl: () => publicUrl ?? url,
    oauthRedirectOrigins,
    log,
    maxBodyBytes: options.maxBodyBytes ?? 1024 * 1024,
  };
  // A worker answers only the ops routes (health, readiness, metrics): it takes no API traffic.
  const routes = (role === 'worker' ? opsRoutes : SERVE_ROUTES).map((r) => {
    // Worked out once per route, not per request.
    const name = `${r.method} ${r.path}`;
    // This process changed an installation: its schedules and polls follow at once (others on their next refresh).
    const refreshesTimers = r.method !== 'GET' && (r.path.startsWith('/v1/installations') || (r.method === 'DELETE' && r.path.startsWith('/v1/users')));
    return {
      method: r.method,
      path: r.path,
      handler: async (c: ApiContext) => {
        c.bodyFields = r.fields;
        try {
          if (r.access !== 'public') {
            c.principal = await auth(c.req.headers.authorization);
            authorize(c.principal, r.access, name);
          }
          await r.handler(c);
          if (refreshesTimers) void timers.refresh().catch(() => undefined);
        } catch (err) {
          // The state database gone (PostgreSQL restarting, network) is not a bug: tell the
          // client to retry, as /readyz tells the load balancer; nothing was acknowledged.
          if (!(err instanceof HttpError) && !(await options.state.ping().catch(() => false))) {
            log('state database unavailable', { route: `${r.method} ${r.path}`, error: err instanceof Error ? err.message : String(err) });
            throw new HttpError(503, 'E_UNAVAILABLE', 'the state database is not answering', 'Retry later (with the same Idempotency-Key, a request that was stored after all is not stored twice).', undefined, { 'retry-after': '5' });
          }
          throw err;
        }
      },
    };
  });
  // The web UI's files sit outside the API (no auth: the page holds no data).
  const handler = createRouter<ApiContext>([...routes, ...(role === 'worker' ? [] : (uiRoutes() as Route<ApiContext>[]))], {
    context: (base) => makeContext(base, deps),
    fallback: role === 'worker' ? undefined : options.storeHandler,
    onResponse: (i) => metrics.request(i),
    onInternalError: (err, i) => log('internal error', { route: `${i.method} ${i.route}`, error: err instanceof Error ? err.message : String(err) }),
  });
  const server = await listen((req, res) => void handler(req, res), {
    host: options.host,
    port: options.port,
    maxConnections: options.maxConnections,
    onConnectionsFull: (info) => log('connections refused: the limit of open connections is reached', { ...info, hint: 'raise --max-connections (ALLOY_SERVE_MAX_CONNECTIONS), or run more processes' }),
  });
  url = server.url;
  try {
    await runner.start();
  } catch (err) {
    // Nothing may keep the process up after a failed start (the listening socket, the
    // queue's timers, the pool): the caller reports the error and the process exits.
    live.close();
    await server.close().catch(() => undefined);
    await runner.stop(0).catch(() => undefined);
    await options.state.close().catch(() => undefined);
    throw err;
  }
  try {
    await timers.start();
  } catch (err) {
    // A store that cannot be read now is retried on the next refresh; serving goes on.
    log('schedules and polls could not start', { error: (err as Error).message });
  }
  let closing: Promise<void> | undefined;
  return {
    url,
    runner,
    timers,
    close: () =>
      (closing ??= (async () => {
        timers.close();
        live.close();
        await server.close();
        await runner.stop();
        await options.state.close();
      })()),
  };
}
