/**
 * The runtime HTTP server shared by `alloy dev` (and later `alloy serve`): the event API,
 * webhook ingress (Shopify, custom), the executions API, and the worker pool that runs
 * executions through the engine. An object with `listen()` and an idempotent `close()`
 * (cf. vite's dev server); the request pipeline is one visible list, error handler last.
 *
 * Ingress contract: a delivery is verified before anything is stored as work, committed
 * to the event log before the answer (202), and executed afterwards by the pool. See
 * docs/http-api.md for every route and status.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { EventEmitter, setMaxListeners } from 'node:events';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { ExecutionRecord, StepRecord } from '../engine/types.js';
import { createHmac } from 'node:crypto';
import { safeEqual, verifyShopifyWebhook } from '../connectors/shopify/webhooks.js';
import { verifyStandardWebhook } from '../engine/standard-webhooks.js';
import { compileTemplate, renderTemplate } from '../core/expressions.js';
import type { WebhookTrigger } from '../core/model.js';
import { isTerminal, type EventLog, type EventRef, type ExecutionRow, type NewExecution } from './event-log.js';
import { checkTriggerData, type RoutedWorkflow, type RuntimeDefinitions } from './definitions.js';
import { createStepTracker, newExecutionRecord, type WorkflowExecutor } from './executor.js';
import {
  HttpError,
  parseJsonBody,
  readBody,
  redactHeaders,
  requireJsonContentType,
  sendError,
  sendJson,
} from './http.js';
import { newId } from './ids.js';
import { WorkerPool } from './worker-pool.js';

export const DEFAULT_BODY_LIMIT = 1024 * 1024;
const USER_ID = /^[A-Za-z0-9][A-Za-z0-9._@-]{0,127}$/;
/** Resumes after which an unfinished execution is failed with E_CRASH_LOOP instead (it was in flight at each of that many process deaths). */
export const CRASH_LOOP_LIMIT = 3;
export const DEFAULT_CONCURRENCY = 16;
export const DEFAULT_SHUTDOWN_GRACE_MS = 5000;
/** Longest `?wait=` on GET /v1/executions/:id. */
export const MAX_WAIT_MS = 60_000;

/** What the runtime reports, for terminal output (dev) or logs (serve). */
export type RuntimeEvent =
  | { type: 'execution'; record: ExecutionRecord; durationMs: number }
  | { type: 'step'; executionId: string; workflow: string; step: StepRecord }
  | { type: 'accepted'; source: string; name: string; deliveryId: string; executionIds: string[]; duplicate: boolean }
  | { type: 'rejected'; route: string; status: number; code: string; message: string }
  | { type: 'error'; message: string; executionId?: string };

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
  bodyLimit?: number;
  /** Milliseconds close() lets running executions finish before aborting them (they resume on the next start). */
  shutdownGraceMs?: number;
  clock?: () => number;
  /** Secrets and settings by name (SHOPIFY_API_SECRET, custom webhook secrets), from env and .env. */
  secrets?: Record<string, string | undefined>;
  /** When set, every accepted delivery is also written there as a fixture file (`--record`). */
  recordDir?: string;
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

interface RequestContext {
  req: IncomingMessage;
  res: ServerResponse;
  url: URL;
  params: string[];
}

interface Route {
  method: 'GET' | 'POST';
  pattern: RegExp;
  /** Served on the ingress-only (tunnel) listener too. */
  ingress: boolean;
  name: string;
  handle(ctx: RequestContext): Promise<void>;
}

interface IngestInput {
  source: string;
  name: string;
  req: IncomingMessage;
  body: Buffer;
  event: unknown;
  userId?: string;
  dedupeKey?: string;
  verification: string;
  routes: RoutedWorkflow[];
  /** Where the event sits in the body, so the log stores it once (see event-log.ts). */
  eventRef: EventRef;
}

export function createRuntimeServer(options: RuntimeServerOptions): RuntimeServer {
  const log = options.log;
  const clock = options.clock ?? Date.now;
  const bodyLimit = options.bodyLimit ?? DEFAULT_BODY_LIMIT;
  const secrets = options.secrets ?? {};
  const emit = (e: RuntimeEvent) => {
    try {
      options.onEvent?.(e);
    } catch {
      /* a broken printer must not break the runtime */
    }
  };
  let definitions = options.definitions;
  const abort = new AbortController();
  // One listener per running execution (engine-executor.ts ties each to this signal).
  setMaxListeners(0, abort.signal);
  const finished = new EventEmitter();
  finished.setMaxListeners(0);
  let closing: Promise<void> | undefined;
  /** Requests being handled: close() lets them answer before cutting connections. */
  const inFlight: { count: number; drained?: () => void } = { count: 0 };
  /** `?wait=` long-polls: close() ends them at once so they answer while the log is open. */
  const waiters = new Set<() => void>();
  let apiServer: Server | undefined;
  let ingressServer: Server | undefined;
  let apiUrl: string | undefined;
  let ingressUrl: string | undefined;

  const pool = new WorkerPool({
    concurrency: options.concurrency ?? DEFAULT_CONCURRENCY,
    run: runExecution,
    onError: (id, err) => emit({ type: 'error', executionId: id, message: (err as Error).message }),
  });

  // ------------------------------------------------------------------ executions

  /**
   * Records of executions just committed by ingest, handed to the pool so their first run
   * needs no read (row, record JSON and the delivery body to put the event back). They are
   * the very objects stored (status queued); anything else (resume, replay, a full cache)
   * is read from the log. Bounded, so a backlog does not hold parsed events in memory.
   */
  const committed = new Map<string, { workflow: string; record: ExecutionRecord }>();
  /** Ids handed to the pool by resumePending: left unfinished when the last process stopped. */
  const resuming = new Set<string>();
  const COMMITTED_MAX = 1024;

  async function runExecution(id: string): Promise<void> {
    const handed = committed.get(id);
    if (handed) committed.delete(id);
    const row = handed ?? log.getExecution(id);
    if (!row || (!handed && isTerminal((row as ExecutionRow).status))) return;
    const started = clock();
    let last = row.record as unknown as ExecutionRecord;
    const newlyFinished = createStepTracker(last);
    const routed = definitions.workflows.get(row.workflow);
    let final: ExecutionRecord;
    // Counted durably before it runs again: an execution that took the process down every
    // time it ran must not take it down forever (it is failed instead of resumed).
    const resumes = resuming.delete(id) ? await log.countResume(id) : 0;
    // The record as it stands, failed without running (again) for `error`'s reason.
    const failedNow = (error: ExecutionRecord['error']): ExecutionRecord => ({ ...last, status: 'failed', endedAt: new Date(clock()).toISOString(), error });
    if (resumes >= CRASH_LOOP_LIMIT) {
      final = failedNow({
        code: 'E_CRASH_LOOP',
        message: `the runtime stopped ${resumes} times while this execution was running (crashed or killed); it is not resumed again`,
        hint: 'Look at the steps it ran last (alloy executions <id>) for what brings the process down, fix the workflow, then `alloy replay <id>`.',
      });
    } else if (!routed) {
      final = failedNow({ code: 'E_WORKFLOW_NOT_FOUND', message: `workflow ${row.workflow} is no longer defined in the working tree` });
    } else {
      const checkpoint = async (record: ExecutionRecord) => {
        // After the grace period the runtime stops for good: refuse, so the engine stops here
        // and the execution resumes from the last stored checkpoint on the next start.
        if (abort.signal.aborted) throw new Error('the runtime is stopping');
        const fresh = newlyFinished(record);
        // Only a finished step with an effect outside the process must be durable before the
        // engine goes on: re-running a pure step (transform, if, branch) after a crash gives
        // the same result, so its checkpoint rides along with the next durable one.
        // A non-idempotent call about to happen (shopify/createOrder) must be on disk first:
        // after a crash, that record is what keeps resume from creating the order twice.
        const callInFlight = Object.values(record.steps).some((s) => s.status === 'running' && s.callInFlight);
        if (callInFlight || fresh.some(hasSideEffects)) await log.saveRecord(record as unknown as Parameters<EventLog['saveRecord']>[0]);
        for (const step of fresh) emit({ type: 'step', executionId: id, workflow: row.workflow, step });
        last = record;
      };
      try {
        final = await options.executor(routed.workflow, last, { checkpoint, signal: abort.signal });
      } catch (err) {
        if (abort.signal.aborted) return;
        final = failedNow({ code: 'E_INTERNAL', message: (err as Error).message });
      }
      if (abort.signal.aborted) return;
    }
    await log.saveRecord(final as unknown as Parameters<EventLog['saveRecord']>[0], {
      kind: 'execution',
      executionId: id,
      workflow: row.workflow,
      status: final.status,
      message: final.error?.message ?? final.reason ?? final.status,
      data: { durationMs: final.durationMs ?? clock() - started },
    });
    emit({ type: 'execution', record: final, durationMs: final.durationMs ?? clock() - started });
    finished.emit(id);
  }

  // ------------------------------------------------------------------ ingest

  async function ingest(ctx: RequestContext, input: IngestInput): Promise<void> {
    const now = clock();
    const deliveryId = newId('dl', now);
    const executions: NewExecution[] = input.routes.map((r) => {
      const id = newId('ex', now);
      return {
        id,
        workflow: r.key,
        userId: input.userId,
        record: newExecutionRecord({ id, workflow: r.key, version: definitions.version, event: input.event, userId: input.userId, now }) as never,
        eventRef: input.eventRef,
      };
    });
    const headers = redactHeaders(input.req.headers);
    const result = await log.appendDelivery(
      {
        id: deliveryId,
        source: input.source,
        name: input.name,
        receivedAt: now,
        dedupeKey: input.dedupeKey,
        userId: input.userId,
        headers,
        body: input.body,
        verification: input.verification,
      },
      executions,
    );
    emit({
      type: 'accepted',
      source: input.source,
      name: input.name,
      deliveryId: result.deliveryId,
      executionIds: result.executionIds,
      duplicate: result.duplicate,
    });
    if (result.duplicate) {
      sendJson(ctx.res, 200, {
        ok: true,
        duplicate: true,
        deliveryId: result.deliveryId,
        executions: result.executionIds.map((id) => ({ id })),
      });
      return;
    }
    // One execution per delivery (the usual case) is handed over as is; several share one
    // parsed event, so each reads its own copy from the log instead.
    if (executions.length === 1 && committed.size < COMMITTED_MAX) {
      const e = executions[0];
      committed.set(e.id, { workflow: e.workflow, record: e.record as unknown as ExecutionRecord });
    }
    for (const id of result.executionIds) pool.push(id);
    sendJson(ctx.res, 202, {
      ok: true,
      deliveryId,
      executions: executions.map((e) => ({ id: e.id, workflow: e.workflow })),
      ...(executions.length === 0 ? { note: `no workflow is triggered by ${input.source === 'event' ? 'event' : input.source} ${input.name}` } : {}),
    });
    if (options.recordDir) void recordFixture(options.recordDir, input, headers, deliveryId, ctx.url.pathname);
  }

  async function recordFixture(dir: string, input: IngestInput, headers: Record<string, string>, id: string, urlPath: string) {
    try {
      await mkdir(dir, { recursive: true });
      const safe = `${input.source}-${input.name}`.replace(/[^A-Za-z0-9._-]+/g, '_');
      const fixture = { alloyFixture: 1, source: input.source, name: input.name, method: 'POST', path: urlPath, headers, body: input.body.toString('utf8') };
      await writeFile(path.join(dir, `${id}-${safe}.json`), `${JSON.stringify(fixture, null, 2)}\n`);
    } catch (err) {
      emit({ type: 'error', message: `could not record fixture: ${(err as Error).message}` });
    }
  }

  // ------------------------------------------------------------------ route handlers

  async function runEventRoute(ctx: RequestContext): Promise<void> {
    requireJsonContentType(ctx.req);
    const body = await readBody(ctx.req, bodyLimit);
    const payload = parseJsonBody(body);
    const problems: { path: string; message: string }[] = [];
    if (payload === null || typeof payload !== 'object' || Array.isArray(payload)) {
      problems.push({ path: '', message: 'must be an object {event, userId?, data}' });
    } else {
      const p = payload as Record<string, unknown>;
      if (typeof p.event !== 'string' || p.event === '') problems.push({ path: '/event', message: 'must be a non-empty string' });
      // The same rule as users/<id>.env file names (connectors/credentials.ts): no path tricks.
      if (p.userId !== undefined && (typeof p.userId !== 'string' || !USER_ID.test(p.userId) || p.userId.includes('..'))) {
        problems.push({ path: '/userId', message: 'must be 1-128 letters, digits, ".", "_", "-" or "@", starting with a letter or digit' });
      }
      for (const key of Object.keys(p)) {
        if (!['event', 'userId', 'data'].includes(key)) problems.push({ path: `/${key}`, message: 'is not allowed' });
      }
    }
    if (problems.length) {
      throw new HttpError(422, 'E_BAD_EVENT', 'the request is not an event', 'send {"event": "<name>", "userId"?: "<id>", "data": {...}}', {
        errors: problems,
      });
    }
    const { event, userId, data = {} } = payload as { event: string; userId?: string; data?: unknown };
    const routes = definitions.byEvent.get(event) ?? [];
    const violations = checkTriggerData(routes, data);
    if (violations.length) {
      throw new HttpError(
        422,
        'E_EVENT_SCHEMA',
        `data does not match the trigger schema of ${[...new Set(violations.map((v) => v.workflow))].join(', ')}`,
        'fix the fields listed in details.errors (paths are JSON pointers into data)',
        { errors: violations.map((v) => ({ ...v, path: `/data${v.path}` })) },
      );
    }
    await ingest(ctx, { source: 'event', name: event, req: ctx.req, body, event: data, userId, verification: 'none', routes, eventRef: 'body.data' });
  }

  async function shopifyRoute(ctx: RequestContext): Promise<void> {
    requireJsonContentType(ctx.req);
    const body = await readBody(ctx.req, bodyLimit);
    const secret = secrets.SHOPIFY_API_SECRET;
    if (!secret) {
      throw new HttpError(
        500,
        'E_MISSING_SECRET',
        'cannot verify Shopify webhooks without the app secret',
        "set SHOPIFY_API_SECRET (the app's API secret key) in the environment or .env and restart",
      );
    }
    const headers = lowerHeaders(ctx.req);
    const check = verifyShopifyWebhook({ rawBody: body, headers }, secret);
    if (!check.ok) {
      const status = check.status ?? 401;
      throw new HttpError(
        status,
        status === 400 ? 'E_MISSING_HEADER' : 'E_BAD_SIGNATURE',
        status === 400 ? `${check.reason ?? 'missing header'}: not a Shopify delivery` : `X-Shopify-Hmac-Sha256 does not match the body (${check.reason})`,
        status === 400
          ? 'Shopify sends X-Shopify-Topic, X-Shopify-Hmac-Sha256, X-Shopify-Shop-Domain, X-Shopify-Webhook-Id and X-Shopify-API-Version'
          : 'sign the exact bytes sent with SHOPIFY_API_SECRET (alloy emit shopify:<topic> does)',
      );
    }
    const event = parseJsonBody(body);
    const topic = check.topic!;
    await ingest(ctx, {
      source: 'shopify',
      name: topic,
      req: ctx.req,
      body,
      event,
      // Shopify's delivery id: the same webhook retried by Shopify carries the same id.
      dedupeKey: `shopify:${check.deliveryId}`,
      verification: 'shopify-hmac',
      routes: definitions.byAppEvent.get(`shopify:${topic}`) ?? [],
      eventRef: 'body',
    });
  }

  async function customWebhookRoute(ctx: RequestContext): Promise<void> {
    const name = pathParam(ctx.params[0]);
    const routes = definitions.byWebhook.get(name);
    if (!routes || routes.length === 0) {
      const known = [...definitions.byWebhook.keys()];
      throw new HttpError(404, 'E_UNKNOWN_WEBHOOK', `no workflow has the webhook trigger "${name}"`, known.length ? `known webhooks: ${known.join(', ')}` : 'add a workflow with `trigger: { webhook: <name> }`');
    }
    requireJsonContentType(ctx.req);
    const body = await readBody(ctx.req, bodyLimit);
    const headers = lowerHeaders(ctx.req);
    let verification = 'none';
    let dedupeKey: string | undefined;
    for (const r of routes) {
      const verify = (r.workflow.def.trigger as WebhookTrigger).verify;
      if (!verify) continue;
      const secret = await resolveSecret(verify.secret, r.key);
      const result = verifyCustom(verify, secret, headers, body, clock);
      if (!result.ok) {
        throw new HttpError(result.status, result.status === 400 ? 'E_MISSING_HEADER' : 'E_BAD_SIGNATURE', `${result.reason} (workflow ${r.key})`, result.hint);
      }
      verification = verify.scheme;
      if (verify.scheme === 'standard-webhooks') dedupeKey = `webhook:${name}:${headers['webhook-id']}`;
    }
    const event = parseJsonBody(body);
    const violations = checkTriggerData(routes, event);
    if (violations.length) {
      throw new HttpError(422, 'E_EVENT_SCHEMA', `the body does not match the trigger schema of ${[...new Set(violations.map((v) => v.workflow))].join(', ')}`, 'fix the fields listed in details.errors', {
        errors: violations,
      });
    }
    await ingest(ctx, { source: `webhook:${name}`, name, req: ctx.req, body, event, dedupeKey, verification, routes, eventRef: 'body' });
  }

  async function resolveSecret(template: string, workflow: string): Promise<string> {
    let value: unknown;
    try {
      value = await renderTemplate(compileTemplate(template), { secrets, env: secrets });
    } catch (err) {
      throw new HttpError(500, 'E_WEBHOOK_SECRET', `cannot resolve the webhook secret of ${workflow}: ${(err as Error).message}`);
    }
    if (typeof value !== 'string' || value === '') {
      throw new HttpError(500, 'E_MISSING_SECRET', `the webhook secret of ${workflow} is not set`, `set the variable named in its trigger.verify.secret (${template}) in the environment or .env`);
    }
    return value;
  }

  async function healthRoute(ctx: RequestContext): Promise<void> {
    sendJson(ctx.res, 200, {
      ok: true,
      pid: process.pid,
      version: definitions.version,
      workflows: definitions.workflows.size,
      queue: pool.size,
    });
  }

  async function listExecutionsRoute(ctx: RequestContext): Promise<void> {
    const q = ctx.url.searchParams;
    const limitText = q.get('limit');
    const limit = limitText === null ? 50 : Number(limitText);
    if (!Number.isInteger(limit) || limit < 1 || limit > 1000) {
      throw new HttpError(400, 'E_BAD_QUERY', 'limit must be an integer from 1 to 1000');
    }
    const status = q.get('status') ?? undefined;
    if (status && !['queued', 'running', 'succeeded', 'failed', 'filtered'].includes(status)) {
      throw new HttpError(400, 'E_BAD_QUERY', `unknown status "${status}"`, 'use queued, running, succeeded, failed or filtered');
    }
    const rows = log.listExecutions({ status, workflow: q.get('workflow') ?? undefined, limit });
    sendJson(ctx.res, 200, { executions: rows.map(summarizeExecution) });
  }

  async function getExecutionRoute(ctx: RequestContext): Promise<void> {
    const id = pathParam(ctx.params[0]);
    let row = log.getExecution(id);
    if (!row) throw new HttpError(404, 'E_EXECUTION_NOT_FOUND', `no execution ${id}`, 'list executions with `alloy executions`');
    const waitText = ctx.url.searchParams.get('wait');
    if (waitText !== null && !isTerminal(row.status)) {
      const waitMs = Math.min(Math.max(0, Number(waitText) || 0), MAX_WAIT_MS);
      await waitForFinish(id, waitMs);
      row = log.getExecution(id)!;
    }
    sendJson(ctx.res, 200, { execution: { ...summarizeExecution(row), record: row.record } });
  }

  function waitForFinish(id: string, ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        finished.off(id, done);
        waiters.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      waiters.add(done);
      finished.on(id, done);
      // It may have finished between the read and the subscription.
      const row = log.getExecution(id);
      if (!row || isTerminal(row.status)) done();
    });
  }

  async function replayRoute(ctx: RequestContext): Promise<void> {
    const id = pathParam(ctx.params[0]);
    const row = log.getExecution(id);
    if (!row) throw new HttpError(404, 'E_EXECUTION_NOT_FOUND', `no execution ${id}`, 'list executions with `alloy executions`');
    const routed = definitions.workflows.get(row.workflow);
    if (!routed) {
      throw new HttpError(409, 'E_WORKFLOW_NOT_FOUND', `workflow ${row.workflow} is no longer defined`, 'restore the workflow file, then replay');
    }
    const now = clock();
    const newIdValue = newId('ex', now);
    const original = row.record as unknown as ExecutionRecord;
    const record = newExecutionRecord({ id: newIdValue, workflow: routed.key, version: definitions.version, event: original.event, userId: row.userId, now });
    const delivery = log.getDelivery(row.deliveryId);
    const eventRef: EventRef | undefined = delivery ? (delivery.source === 'event' ? 'body.data' : 'body') : undefined;
    await log.appendExecutions(row.deliveryId, [{ id: newIdValue, workflow: routed.key, userId: row.userId, replayOf: id, record: record as never, eventRef }]);
    pool.push(newIdValue);
    sendJson(ctx.res, 202, { ok: true, deliveryId: row.deliveryId, executions: [{ id: newIdValue, workflow: routed.key, replayOf: id }] });
  }

  async function logsRoute(ctx: RequestContext): Promise<void> {
    const q = ctx.url.searchParams;
    const afterText = q.get('after');
    const after = afterText === null ? undefined : Number(afterText);
    const limit = Math.min(Math.max(1, Number(q.get('limit') ?? 200) || 200), 1000);
    if (after !== undefined && !Number.isInteger(after)) throw new HttpError(400, 'E_BAD_QUERY', 'after must be an integer');
    const entries = log.readLog(after, limit);
    sendJson(ctx.res, 200, { entries, last: entries.length ? entries[entries.length - 1].seq : (after ?? 0) });
  }

  // ------------------------------------------------------------------ pipeline

  /** Every route, in the order they are matched. */
  const routes: Route[] = [
    { method: 'GET', pattern: /^\/healthz$/, ingress: false, name: 'health', handle: healthRoute },
    { method: 'POST', pattern: /^\/v1\/run\/event$/, ingress: true, name: 'event', handle: runEventRoute },
    { method: 'POST', pattern: /^\/v1\/webhooks\/shopify$/, ingress: true, name: 'shopify', handle: shopifyRoute },
    { method: 'POST', pattern: /^\/v1\/webhooks\/custom\/([^/]+)$/, ingress: true, name: 'webhook', handle: customWebhookRoute },
    { method: 'GET', pattern: /^\/v1\/executions$/, ingress: false, name: 'executions', handle: listExecutionsRoute },
    { method: 'GET', pattern: /^\/v1\/executions\/([^/]+)$/, ingress: false, name: 'execution', handle: getExecutionRoute },
    { method: 'POST', pattern: /^\/v1\/executions\/([^/]+)\/replay$/, ingress: false, name: 'replay', handle: replayRoute },
    { method: 'GET', pattern: /^\/v1\/logs$/, ingress: false, name: 'logs', handle: logsRoute },
  ];

  function createHandler(ingressOnly: boolean) {
    const visible = ingressOnly ? routes.filter((r) => r.ingress) : routes;
    return (req: IncomingMessage, res: ServerResponse) => {
      let routeName = 'unknown';
      const handle = async () => {
        const url = new URL(req.url ?? '/', 'http://localhost');
        if (closing) throw new HttpError(503, 'E_SHUTTING_DOWN', 'the runtime is shutting down', 'retry in a moment', undefined, { 'retry-after': '1', connection: 'close' });
        let allowed: string[] = [];
        for (const route of visible) {
          const m = route.pattern.exec(url.pathname);
          if (!m) continue;
          if (route.method !== req.method) {
            allowed.push(route.method);
            continue;
          }
          routeName = route.name;
          inFlight.count++;
          try {
            await route.handle({ req, res, url, params: m.slice(1) });
          } finally {
            if (--inFlight.count === 0) inFlight.drained?.();
          }
          return;
        }
        if (allowed.length) {
          allowed = [...new Set(allowed)];
          throw new HttpError(405, 'E_METHOD_NOT_ALLOWED', `${req.method} is not allowed on ${url.pathname}`, `use ${allowed.join(' or ')}`, undefined, { allow: allowed.join(', ') });
        }
        throw new HttpError(404, 'E_NOT_FOUND', `no route ${req.method} ${url.pathname}`, 'see docs/http-api.md for the routes');
      };
      handle().catch((err) => errorHandler(err, req, res, routeName));
    };
  }

  /** Last in the pipeline: every failure becomes a JSON error body. */
  function errorHandler(err: unknown, req: IncomingMessage, res: ServerResponse, routeName: string): void {
    const httpErr =
      err instanceof HttpError ? err : new HttpError(500, 'E_INTERNAL', 'internal error', 'see the alloy dev terminal for details');
    if (!(err instanceof HttpError)) emit({ type: 'error', message: `${req.method} ${req.url}: ${(err as Error)?.stack ?? String(err)}` });
    if (['event', 'shopify', 'webhook'].includes(routeName) || httpErr.status === 413 || httpErr.status === 415) {
      emit({ type: 'rejected', route: `${req.method} ${req.url}`, status: httpErr.status, code: httpErr.code, message: httpErr.message });
    }
    if (res.headersSent) {
      res.destroy();
      return;
    }
    // A body we refused to read (413) must not be parsed as the next request: close the connection.
    const extra: Record<string, string> = httpErr.status === 413 ? { connection: 'close' } : {};
    sendJson(res, httpErr.status, httpErr.toBody(), { ...(httpErr.headers ?? {}), ...extra });
    if (httpErr.status === 413) req.resume();
  }

  async function listenOn(server: Server, host: string, port: number): Promise<string> {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    const addr = server.address() as AddressInfo;
    const h = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
    return `http://${h}:${addr.port}`;
  }

  function configure(server: Server): Server {
    // Shopify waits 5 s for an answer; slow clients must not hold sockets forever.
    server.requestTimeout = 30_000;
    server.headersTimeout = 10_000;
    server.keepAliveTimeout = 5_000;
    return server;
  }

  const runtime: RuntimeServer = {
    async listen() {
      if (apiUrl) return apiUrl;
      apiServer = configure(createServer(createHandler(false)));
      apiUrl = await listenOn(apiServer, options.host ?? '127.0.0.1', options.port ?? 0);
      if (options.resumeOnListen !== false) runtime.resumePending();
      return apiUrl;
    },
    async listenIngress(host = '127.0.0.1', port = 0) {
      if (ingressUrl) return ingressUrl;
      ingressServer = configure(createServer(createHandler(true)));
      ingressUrl = await listenOn(ingressServer, host, port);
      return ingressUrl;
    },
    resumePending() {
      // What the last process left unfinished, oldest first.
      const ids = log.pendingExecutionIds();
      for (const id of ids) {
        resuming.add(id);
        pool.push(id);
      }
      return ids.length;
    },
    get url() {
      return apiUrl;
    },
    get ingressUrl() {
      return ingressUrl;
    },
    setDefinitions(defs) {
      definitions = defs;
    },
    get definitions() {
      return definitions;
    },
    log,
    queueSize: () => pool.size,
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
      if (!result.duplicate) for (const e of result.executionIds) pool.push(e);
      return { duplicate: result.duplicate, executionIds: result.executionIds };
    },
    close() {
      if (closing) return closing;
      closing = (async () => {
        const servers = [apiServer, ingressServer].filter((s): s is Server => Boolean(s));
        const closed = servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve())));
        for (const s of servers) s.closeIdleConnections();
        for (const done of [...waiters]) done();
        pool.stop();
        const grace = options.shutdownGraceMs ?? DEFAULT_SHUTDOWN_GRACE_MS;
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([pool.idle(), new Promise<void>((r) => (timer = setTimeout(r, grace)))]);
        clearTimeout(timer);
        // Whatever still runs is aborted; its last checkpoint is in the log and it resumes on the next start.
        abort.abort();
        await Promise.race([pool.idle(), new Promise<void>((r) => (timer = setTimeout(r, 2000)))]);
        clearTimeout(timer);
        // A request whose delivery is being committed gets its answer before its connection
        // is cut: otherwise the sender sees a reset for something stored, and sends it again.
        if (inFlight.count > 0) {
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

/** A path segment, percent-decoded; malformed encoding (`%ZZ`) is the client's mistake: 400. */
function pathParam(raw: string): string {
  try {
    return decodeURIComponent(raw);
  } catch {
    throw new HttpError(400, 'E_BAD_PATH', `malformed percent-encoding in "${raw}"`, 'encode the path segment with encodeURIComponent');
  }
}

/** Steps whose completion must be stored before the next one starts: calls to the outside world, and waits. */
export function hasSideEffects(step: StepRecord): boolean {
  if (step.kind === 'delay') return true;
  return step.kind === 'action' && step.uses !== 'transform';
}

function lowerHeaders(req: IncomingMessage): Record<string, string | undefined> {
  const out: Record<string, string | undefined> = {};
  for (const [k, v] of Object.entries(req.headers)) out[k.toLowerCase()] = Array.isArray(v) ? v[0] : v;
  return out;
}

export interface ExecutionSummary {
  id: string;
  workflow: string;
  status: string;
  userId?: string;
  deliveryId: string;
  replayOf?: string;
  createdAt: string;
  updatedAt: string;
  finishedAt?: string;
  durationMs?: number;
  reason?: string;
  error?: { code: string; message: string; step?: string };
}

export function summarizeExecution(row: ExecutionRow): ExecutionSummary {
  const r = row.record as unknown as ExecutionRecord;
  return {
    id: row.id,
    workflow: row.workflow,
    status: row.status,
    ...(row.userId ? { userId: row.userId } : {}),
    deliveryId: row.deliveryId,
    ...(row.replayOf ? { replayOf: row.replayOf } : {}),
    createdAt: new Date(row.createdAt).toISOString(),
    updatedAt: new Date(row.updatedAt).toISOString(),
    ...(row.finishedAt ? { finishedAt: new Date(row.finishedAt).toISOString() } : {}),
    ...(r.durationMs !== undefined ? { durationMs: r.durationMs } : {}),
    ...(r.reason ? { reason: r.reason } : {}),
    ...(r.error ? { error: { code: r.error.code, message: r.error.message, ...(r.error.step ? { step: r.error.step } : {}) } } : {}),
  };
}

interface CustomCheck {
  ok: boolean;
  status: number;
  reason?: string;
  hint?: string;
}

/** Verifies a custom webhook per its trigger's `verify` (hmac-sha256 over the raw body, or Standard Webhooks). */
function verifyCustom(
  verify: NonNullable<WebhookTrigger['verify']>,
  secret: string,
  headers: Record<string, string | undefined>,
  body: Buffer,
  clock: () => number,
): CustomCheck {
  if (verify.scheme === 'standard-webhooks') {
    for (const h of ['webhook-id', 'webhook-timestamp', 'webhook-signature']) {
      if (!headers[h]) return { ok: false, status: 400, reason: `missing ${h} header`, hint: 'Standard Webhooks senders send webhook-id, webhook-timestamp and webhook-signature' };
    }
    const r = verifyStandardWebhook(secret, headers, body.toString('utf8'), { nowSeconds: Math.floor(clock() / 1000) });
    return r.ok ? { ok: true, status: 200 } : { ok: false, status: 401, reason: r.reason, hint: 'sign with the secret named in trigger.verify.secret' };
  }
  const headerName = (verify.header ?? 'x-signature').toLowerCase();
  const given = headers[headerName];
  if (!given) return { ok: false, status: 400, reason: `missing ${verify.header ?? 'X-Signature'} header` };
  const encoding = verify.encoding ?? 'hex';
  const expected = createHmac('sha256', secret).update(body).digest(encoding);
  // Accept an optional `sha256=` prefix (GitHub-style senders).
  const value = given.startsWith('sha256=') ? given.slice(7) : given;
  return safeEqual(value.trim(), expected)
    ? { ok: true, status: 200 }
    : { ok: false, status: 401, reason: `${verify.header ?? 'X-Signature'} does not match the body`, hint: 'sign the exact bytes sent with the secret named in trigger.verify.secret' };
}

