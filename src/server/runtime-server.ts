/**
 * The runtime server of `alloy dev`: the event API, webhook ingress (Shopify, custom), the
 * executions API and the web UI over HTTP (route modules in routes/, on the shared router of
 * src/http), and the execution runner (execution-runner.ts) that runs what ingress stored. An
 * object with `listen()` and an idempotent `close()` (cf. vite's dev server).
 *
 * Ingress contract: a delivery is verified before anything is stored as work, committed
 * to the event log before the answer (202), and executed afterwards by the runner. See
 * docs/http-api.md for every route and status.
 */
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { listen } from '../http/listen.js';
import { JSON_MAX_DEPTH } from '../core/json-depth.js';
import type { EventLog } from './event-log.js';
import type { RuntimeDefinitions } from './definitions.js';
import { newExecutionRecord, type WorkflowExecutor } from './executor.js';
import { newId } from './ids.js';
import { createEventStream } from './event-stream.js';
import { createUiAssets, type UiAssets } from './ui-assets.js';
import { createExecutionRunner, DEFAULT_CONCURRENCY } from './execution-runner.js';
import { summarizeExecution, type RuntimeEvent } from './runtime-events.js';
import type { DevDeps } from './routes/context.js';
import { createDevHandler } from './routes/index.js';
import { DEFAULT_SHOPIFY_MAX_AGE_MS } from './routes/ingress.js';

export { hasSideEffects } from '../engine/durability.js';
export { CRASH_LOOP_LIMIT, DEFAULT_CONCURRENCY } from './execution-runner.js';
export { summarizeExecution, type ExecutionSummary, type RuntimeEvent } from './runtime-events.js';
export { allowedHost, OVERLOAD_RETRY_AFTER_S } from './routes/index.js';
export { DEFAULT_SHOPIFY_MAX_AGE_MS, shopifyDedupeKey } from './routes/ingress.js';
export { MAX_WAIT_MS } from './routes/executions.js';

export const DEFAULT_BODY_LIMIT = 1024 * 1024;
/**
 * Executions waiting for a worker beyond which ingest answers 503 with Retry-After (issue 13):
 * up to here every queued execution keeps its parsed event in memory (the runner's handed-over
 * records), so the CPU per execution stays what it is when idle; past it, senders are asked to
 * come back.
 */
export const DEFAULT_MAX_QUEUED = 1024;
export const DEFAULT_SHUTDOWN_GRACE_MS = 5000;

export interface RuntimeServerOptions {
  /** The event log; the server owns it from now on and closes it in close(). */
  log: EventLog;
  definitions: RuntimeDefinitions;
  executor: WorkflowExecutor;
  /** Default 127.0.0.1: nothing listens beyond this machine unless asked. */
  host?: string;
  /** Default 0 (an ephemeral port). */
  port?: number;
  concurrency?: number;
  /** Queued executions past which ingress answers 503 + Retry-After (default DEFAULT_MAX_QUEUED). */
  maxQueued?: number;
  bodyLimit?: number;
  /** Open sockets per listener at most; more are closed at once (default: src/http/listen.ts). */
  maxConnections?: number;
  /** Milliseconds close() lets running executions finish before aborting them (they resume on the next start). */
  shutdownGraceMs?: number;
  clock?: () => number;
  /** Secrets and settings by name (SHOPIFY_API_SECRET, custom webhook secrets), from env and .env. */
  secrets?: Record<string, string | undefined>;
  /** When set, every accepted delivery is also written there as a fixture file (`--record`). */
  recordDir?: string;
  /**
   * Standard Webhooks secret (`whsec_…`) that events and custom webhooks arriving through a
   * tunnel (the ingress listener) or from a non-loopback address must be signed with. Without
   * one, such requests are refused (401). Loopback clients on the API listener need no signature.
   */
  ingressSecret?: string;
  /** Largest JSON nesting accepted at ingest (400 E_JSON_TOO_DEEP above). Default JSON_MAX_DEPTH. */
  maxJsonDepth?: number;
  /** Oldest `X-Shopify-Triggered-At` accepted, in ms (401 E_STALE_DELIVERY above). Default 24 h. */
  shopifyMaxAgeMs?: number;
  /** Resume unfinished executions in listen() (default true). False while the definitions are known to be broken. */
  resumeOnListen?: boolean;
  onEvent?(event: RuntimeEvent): void;
}

export interface RuntimeServer {
  /** Starts the API listener and resumes unfinished executions; resolves with the base URL. */
  listen(): Promise<string>;
  /** A second listener that serves only ingress routes (events and webhooks), for tunnels. */
  listenIngress(host?: string, port?: number): Promise<string>;
  readonly url: string | undefined;
  readonly ingressUrl: string | undefined;
  /** Schedules every unfinished execution in the log (done by listen() unless resumeOnListen is false). */
  resumePending(): number;
  /** Swap in new definitions (hot reload); running executions keep theirs. */
  setDefinitions(defs: RuntimeDefinitions): void;
  readonly definitions: RuntimeDefinitions;
  readonly log: EventLog;
  queueSize(): { queued: number; running: number };
  /**
   * Accepts an event produced inside the process (a schedule tick, a polled item) for one
   * workflow: stored with its executions in one transaction and queued. `dedupeKey` is the
   * claim: a second submit with the same key (another tick handler, a restart, another
   * process on the same log) is a duplicate and runs nothing.
   */
  submit(input: SubmitInput): Promise<{ duplicate: boolean; executionIds: string[] }>;
  /** Stops listening, lets running executions finish (or checkpoints them), closes the log. Idempotent. */
  close(): Promise<void>;
}

export interface SubmitInput {
  /** `schedule` or `poll:<app>`. */
  source: string;
  /** What is shown as the event name (e.g. the topic). */
  name: string;
  /** `<integration>/<workflow>`. */
  workflow: string;
  event: unknown;
  dedupeKey: string;
  userId?: string;
}

export function createRuntimeServer(options: RuntimeServerOptions): RuntimeServer {
  const log = options.log;
  const clock = options.clock ?? Date.now;
  /** Live updates for the web UI and `alloy logs -f` (GET /v1/stream). */
  const stream = createEventStream(log);
  let uiAssets: UiAssets | undefined;
  let definitions = options.definitions;
  const emit = (e: RuntimeEvent) => {
    try {
      options.onEvent?.(e);
    } catch {
      /* a broken printer must not break the runtime */
    }
    if (stream.size > 0) publishLive(e);
  };
  /** Only called while someone listens: summaries are read from the log for them. */
  function publishLive(e: RuntimeEvent): void {
    try {
      if (e.type === 'accepted' && !e.duplicate) {
        for (const id of e.executionIds) publishExecution(id);
      } else if (e.type === 'execution') {
        publishExecution(e.record.id);
        stream.logChanged();
      } else if (e.type === 'step') {
        stream.publish('step', { executionId: e.executionId, workflow: e.workflow, step: e.step });
      }
    } catch {
      /* the log is closing: nothing more to tell */
    }
  }
  function publishExecution(id: string): void {
    if (log.isClosed) return;
    const row = log.getExecution(id);
    if (row) stream.publish('execution', summarizeExecution(row));
  }

  const runner = createExecutionRunner({
    log,
    executor: options.executor,
    definitions: () => definitions,
    concurrency: options.concurrency ?? DEFAULT_CONCURRENCY,
    clock,
    emit,
  });
  const deps: DevDeps = {
    log,
    runner,
    stream,
    definitions: () => definitions,
    emit,
    publishExecution,
    clock,
    bodyLimit: options.bodyLimit ?? DEFAULT_BODY_LIMIT,
    maxJsonDepth: options.maxJsonDepth ?? JSON_MAX_DEPTH,
    secrets: options.secrets ?? {},
    ingressSecret: options.ingressSecret,
    shopifyMaxAgeMs: options.shopifyMaxAgeMs ?? DEFAULT_SHOPIFY_MAX_AGE_MS,
    recordDir: options.recordDir,
    ui: () => (uiAssets ??= createUiAssets()),
  };

  let closing: Promise<void> | undefined;
  /** Requests being handled: close() lets them answer before cutting connections. */
  const inFlight: { count: number; drained?: () => void } = { count: 0 };
  let apiServer: Server | undefined;
  let ingressServer: Server | undefined;
  let apiUrl: string | undefined;
  let ingressUrl: string | undefined;

  const handler = (ingressOnly: boolean) =>
    createDevHandler({ deps, ingressOnly, host: options.host, maxQueued: options.maxQueued ?? DEFAULT_MAX_QUEUED, closing: () => closing !== undefined, inFlight });

  /** The kit's listen helper; the runtime keeps its own close order (see close()). */
  async function listenWith(handle: (req: IncomingMessage, res: ServerResponse) => void, host: string, port: number): Promise<{ server: Server; url: string }> {
    // Shopify waits 5 s for an answer; slow clients must not hold sockets forever.
    const { server, url } = await listen(handle, { host, port, requestTimeoutMs: 30_000, headersTimeoutMs: 10_000, keepAliveTimeoutMs: 5_000, maxConnections: options.maxConnections });
    return { server, url };
  }

  const runtime: RuntimeServer = {
    async listen() {
      if (apiUrl) return apiUrl;
      const api = await listenWith(handler(false), options.host ?? '127.0.0.1', options.port ?? 0);
      apiServer = api.server;
      apiUrl = api.url;
      if (options.resumeOnListen !== false) runtime.resumePending();
      return apiUrl;
    },
    async listenIngress(host = '127.0.0.1', port = 0) {
      if (ingressUrl) return ingressUrl;
      const ingress = await listenWith(handler(true), host, port);
      ingressServer = ingress.server;
      ingressUrl = ingress.url;
      return ingressUrl;
    },
    resumePending: () => runner.resumePending(),
    get url() {
      return apiUrl;
    },
    get ingressUrl() {
      return ingressUrl;
    },
    setDefinitions(defs) {
      definitions = defs;
      stream.publish('definitions', { version: defs.version, workflows: defs.workflows.size });
    },
    get definitions() {
      return definitions;
    },
    log,
    queueSize: () => runner.size,
    async submit(input) {
      const now = clock();
      const id = newId('ex', now);
      const result = await log.appendDelivery(
        {
          id: newId('dl', now),
          source: input.source,
          name: input.name,
          receivedAt: now,
          dedupeKey: input.dedupeKey,
          userId: input.userId,
          headers: {},
          body: Buffer.from(JSON.stringify(input.event ?? null)),
          verification: 'none',
        },
        [
          {
            id,
            workflow: input.workflow,
            userId: input.userId,
            record: newExecutionRecord({ id, workflow: input.workflow, version: definitions.version, event: input.event, userId: input.userId, now }) as never,
            eventRef: 'body',
          },
        ],
      );
      emit({ type: 'accepted', source: input.source, name: input.name, deliveryId: result.deliveryId, executionIds: result.executionIds, duplicate: result.duplicate });
      if (!result.duplicate) for (const e of result.executionIds) runner.push(e);
      return { duplicate: result.duplicate, executionIds: result.executionIds };
    },
    close() {
      if (closing) return closing;
      closing = (async () => {
        const servers = [apiServer, ingressServer].filter((s): s is Server => Boolean(s));
        const closed = servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve())));
        for (const s of servers) s.closeIdleConnections();
        runner.endWaits();
        stream.close();
        const grace = options.shutdownGraceMs ?? DEFAULT_SHUTDOWN_GRACE_MS;
        await runner.stop(grace);
        // A request whose delivery is being committed gets its answer before its connection
        // is cut: otherwise the sender sees a reset for something stored, and sends it again.
        if (inFlight.count > 0) {
          let timer: NodeJS.Timeout | undefined;
          await Promise.race([new Promise<void>((r) => (inFlight.drained = r)), new Promise<void>((r) => (timer = setTimeout(r, grace)))]);
          clearTimeout(timer);
        }
        for (const s of servers) s.closeAllConnections();
        await Promise.all(closed);
        log.close();
      })();
      return closing;
    },
  };
  return runtime;
}
