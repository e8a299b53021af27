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
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { listen } from '../http/listen.js';
import { EventEmitter, setMaxListeners } from 'node:events';
import { lstat, readdir, readFile } from 'node:fs/promises';
import { ensurePrivateDirAsync, writeFileSafe } from '../core/safe-fs.js';
import path from 'node:path';
import { streamNote, type StreamNote } from './stream-note.js';
import type { ExecutionRecord, StepRecord } from '../engine/types.js';
import { createHash, createHmac } from 'node:crypto';
import { isIP } from 'node:net';
import { JSON_MAX_DEPTH } from '../core/json-depth.js';
import { safeEqual, verifyShopifyWebhook } from '../connectors/shopify/webhooks.js';
import { verifyStandardWebhook } from '../engine/standard-webhooks.js';
import { compileTemplate, renderTemplate } from '../core/expressions.js';
import type { WebhookTrigger } from '../core/model.js';
import { isTerminal, type EventLog, type EventRef, type ExecutionRow, type NewExecution, type StoredRecord } from './event-log.js';
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
import { hasSideEffects, isCallInFlight } from '../engine/durability.js';

export { hasSideEffects };
import { WorkerPool } from './worker-pool.js';
import { createEventStream } from './event-stream.js';
import { createUiAssets, type UiAssets } from './ui-assets.js';

export const DEFAULT_BODY_LIMIT = 1024 * 1024;
const USER_ID = /^[A-Za-z0-9][A-Za-z0-9._@-]{0,127}$/;
/** Resumes after which an unfinished execution is failed with E_CRASH_LOOP instead (it was in flight at each of that many process deaths). */
export const CRASH_LOOP_LIMIT = 3;
export const DEFAULT_CONCURRENCY = 16;
/**
 * Executions waiting for a worker beyond which ingest answers 503 with Retry-After (issue 13):
 * up to here every queued execution keeps its parsed event in memory (COMMITTED_MAX), so the
 * CPU per execution stays what it is when idle; past it, senders are asked to come back.
 */
export const DEFAULT_MAX_QUEUED = 1024;
/** Seconds a sender refused for overload is asked to wait (Retry-After). */
export const OVERLOAD_RETRY_AFTER_S = 1;
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
  /** Queued executions past which ingress answers 503 + Retry-After (default DEFAULT_MAX_QUEUED). */
  maxQueued?: number;
  bodyLimit?: number;
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

interface RequestContext {
  req: IncomingMessage;
  res: ServerResponse;
  url: URL;
  params: string[];
  /** Arrived on the ingress (tunnel) listener or from another machine: ingress must be signed, errors say little. */
  untrusted: boolean;
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
  /** Headers to store instead of the request's (a fixture sent from the web UI). */
  headers?: Record<string, string>;
}

export function createRuntimeServer(options: RuntimeServerOptions): RuntimeServer {
  const log = options.log;
  const clock = options.clock ?? Date.now;
  const bodyLimit = options.bodyLimit ?? DEFAULT_BODY_LIMIT;
  const secrets = options.secrets ?? {};
  /** Live updates for the web UI and `alloy logs -f` (GET /v1/stream). */
  const stream = createEventStream(log);
  let uiAssets: UiAssets | undefined;
  const maxDepth = options.maxJsonDepth ?? JSON_MAX_DEPTH;
  const shopifyMaxAgeMs = options.shopifyMaxAgeMs ?? DEFAULT_SHOPIFY_MAX_AGE_MS;
  const parseJson = (body: Buffer) => parseJsonBody(body, maxDepth);
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
  const maxQueued = options.maxQueued ?? DEFAULT_MAX_QUEUED;
  /** Ids handed to the pool by resumePending: left unfinished when the last process stopped. */
  const resuming = new Set<string>();
  const COMMITTED_MAX = 1024;
  /** Overload refusals since the last one reported (reported at most once a second). */
  const overload = { refused: 0, reportedAt: 0 };

  /**
   * Ingress refuses work the pool cannot start soon, before reading or verifying the body,
   * answering 503 here (no error object: under overload this runs for most requests).
   * Returns true when it answered.
   */
  function refusedForOverload(route: string, res: ServerResponse): boolean {
    const queued = pool.size.queued;
    if (queued < maxQueued) return false;
    overload.refused++;
    const now = clock();
    if (now - overload.reportedAt >= 1000) {
      emit({
        type: 'rejected',
        route,
        status: 503,
        code: 'E_OVERLOADED',
        message: `${overload.refused} deliveries refused with 503: ${queued} executions are queued (limit ${maxQueued})`,
      });
      overload.refused = 0;
      overload.reportedAt = now;
    }
    sendJson(
      res,
      503,
      {
        error: {
          code: 'E_OVERLOADED',
          message: `the runtime has ${queued} executions queued (limit ${maxQueued})`,
          hint: `retry after ${OVERLOAD_RETRY_AFTER_S} s; senders such as Shopify retry on their own`,
        },
      },
      { 'retry-after': String(OVERLOAD_RETRY_AFTER_S) },
    );
    return true;
  }

  async function runExecution(id: string): Promise<void> {
    const handed = committed.get(id);
    if (handed) committed.delete(id);
    const row = handed ?? log.getExecution(id);
    if (!row || (!handed && isTerminal((row as ExecutionRow).status))) return;
    const started = clock();
    let last = row.record as unknown as ExecutionRecord;
    const newlyFinished = createStepTracker(last);
    /** Step records changed since the last progress write (see checkpoint). */
    const dirty = new Map<string, StepRecord>();
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
      const checkpoint = async (record: ExecutionRecord, changed?: readonly StepRecord[]) => {
        // After the grace period the runtime stops for good: refuse, so the engine stops here
        // and the execution resumes from the last stored checkpoint on the next start.
        if (abort.signal.aborted) throw new Error('the runtime is stopping');
        const fresh = newlyFinished(record, changed);
        // What a checkpoint must make durable before the engine goes on (docs/runtime.md,
        // "Durable writes"): only a non-idempotent call about to happen (shopify/createOrder),
        // since after a crash that record is what keeps resume from making the call twice.
        // Every other change is written with the next group commit without waiting for it: a
        // pure step (transform, if, branch) gives the same result when run again, and an
        // idempotent call repeated after a crash carries the same idempotency key. Usually the
        // final record, saved moments later, supersedes it before it is written at all.
        // Only the steps that changed are written, so a checkpoint costs what changed.
        for (const step of changed ?? Object.values(record.steps)) dirty.set(step.path, step);
        const callInFlight = changed ? changed.some(isCallInFlight) : Object.values(record.steps).some(isCallInFlight);
        // A step waiting to retry is written too: `emit --wait` shows what it waits for.
        const retrying = record.streamRetry !== undefined || (changed ?? []).some((s) => s.retryAt !== undefined);
        if (callInFlight || retrying || fresh.some(hasSideEffects)) {
          const steps = [...dirty.values()];
          dirty.clear();
          const saved = log.saveProgress(record as unknown as StoredRecord, steps);
          if (callInFlight) await saved;
          else saved.catch(() => {}); // a failed write fails the final save too
        }
        for (const step of fresh) emit({ type: 'step', executionId: id, workflow: row.workflow, step });
        last = record;
      };
      // Stopped by close(), not by a crash: that stop does not count towards E_CRASH_LOOP
      // (a long delay across a few `alloy dev` restarts is not a crash loop).
      const stoppedCleanly = () => log.countResume(id, -1).then(
        () => undefined,
        () => undefined, // the log closed first: counted as a death, the safe side
      );
      try {
        final = await options.executor(routed.workflow, last, { checkpoint, signal: abort.signal });
      } catch (err) {
        if (abort.signal.aborted) return stoppedCleanly();
        final = failedNow({ code: 'E_INTERNAL', message: (err as Error).message });
      }
      if (abort.signal.aborted) return stoppedCleanly();
    }
    await log.saveRecord(final as unknown as Parameters<EventLog['saveRecord']>[0], {
      kind: 'execution',
      executionId: id,
      workflow: row.workflow,
      status: final.status,
      message: final.error?.message ?? final.reason ?? final.status,
      data: { durationMs: final.durationMs ?? clock() - started, ...(final.startedAt ? { startedAt: final.startedAt } : {}), ...(final.stream ? { stream: streamNote(final.stream) } : {}) },
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
    const headers = input.headers ?? redactHeaders(input.req.headers);
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
      await ensurePrivateDirAsync(dir);
      const safe = `${input.source}-${input.name}`.replace(/[^A-Za-z0-9._-]+/g, '_');
      const fixture = { alloyFixture: 1, source: input.source, name: input.name, method: 'POST', path: urlPath, headers, body: input.body.toString('utf8') };
      await writeFileSafe(path.join(dir, `${id}-${safe}.json`), `${JSON.stringify(fixture, null, 2)}\n`);
    } catch (err) {
      emit({ type: 'error', message: `could not record fixture: ${(err as Error).message}` });
    }
  }

  // ------------------------------------------------------------------ route handlers

  /**
   * Ingress from a tunnel (or another machine) must be signed with the ingress secret
   * (Standard Webhooks: webhook-id, webhook-timestamp, webhook-signature). Checked before the
   * body is parsed or any name is looked up, so an unsigned request learns nothing and stores nothing.
   */
  function authenticateIngress(ctx: RequestContext, body: Buffer): void {
    if (!ctx.untrusted) return;
    const secret = options.ingressSecret;
    const refuse = (reason: string) =>
      new HttpError(401, 'E_INGRESS_SIGNATURE', `ingress through a tunnel must be signed: ${reason}`, 'sign with the ingress secret `alloy dev` prints (Standard Webhooks headers); `alloy emit --to <public url>` does it for you');
    if (!secret) throw refuse('this runtime has no ingress secret');
    const r = verifyStandardWebhook(secret, lowerHeaders(ctx.req), body.toString('utf8'), { nowSeconds: Math.floor(clock() / 1000) });
    if (!r.ok) throw refuse(r.reason ?? 'bad signature');
  }

  async function runEventRoute(ctx: RequestContext): Promise<void> {
    requireJsonContentType(ctx.req);
    const body = await readBody(ctx.req, bodyLimit);
    authenticateIngress(ctx, body);
    const payload = parseJson(body);
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
    // X-Shopify-Triggered-At is not covered by the HMAC, but a captured delivery replayed as
    // is carries its old time: refuse one older than the window (Shopify retries for 4 h at most).
    const triggeredAt = headers['x-shopify-triggered-at'];
    if (check.ok && triggeredAt !== undefined) {
      const at = Date.parse(triggeredAt);
      if (!Number.isFinite(at) || clock() - at > shopifyMaxAgeMs) {
        throw new HttpError(
          401,
          'E_STALE_DELIVERY',
          Number.isFinite(at) ? `X-Shopify-Triggered-At (${triggeredAt}) is older than ${Math.round(shopifyMaxAgeMs / 60_000)} min: refused as a replay` : 'X-Shopify-Triggered-At is not a time',
          'Shopify retries a delivery for about 4 hours; a much older one is a replay. Resend a fresh one (alloy emit shopify:<topic>)',
        );
      }
    }
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
    const event = parseJson(body);
    const topic = check.topic!;
    await ingest(ctx, {
      source: 'shopify',
      name: topic,
      req: ctx.req,
      body,
      event,
      // From outside (a tunnel, another machine), on signed content only: X-Shopify-Webhook-Id
      // and X-Shopify-Event-Id are not covered by the HMAC, so a captured delivery resent with
      // new ids must still be recognised (a retry by Shopify carries the same bytes). On
      // loopback the sender is the developer: `alloy emit --fixture` resends a recorded delivery
      // with a fresh webhook id on purpose, and that id is the key.
      dedupeKey: ctx.untrusted ? shopifyDedupeKey(headers['x-shopify-shop-domain'] ?? '', topic, body) : `shopify:${check.deliveryId}`,
      verification: 'shopify-hmac',
      routes: definitions.byAppEvent.get(`shopify:${topic}`) ?? [],
      eventRef: 'body',
    });
  }

  async function customWebhookRoute(ctx: RequestContext): Promise<void> {
    const name = pathParam(ctx.params[0]);
    let body: Buffer | undefined;
    if (ctx.untrusted) {
      // Known and unknown names answer alike until the request is proven to be the developer's.
      requireJsonContentType(ctx.req);
      body = await readBody(ctx.req, bodyLimit);
      try {
        authenticateIngress(ctx, body);
      } catch (err) {
        // A webhook with its own `verify` is authenticated by its sender's signature (a third
        // party cannot sign with the ingress secret); any failure answers as for unknown names.
        if (!(await passesOwnVerification(name, ctx, body))) throw err;
      }
    }
    const routes = definitions.byWebhook.get(name);
    if (!routes || routes.length === 0) {
      const known = [...definitions.byWebhook.keys()];
      // Names are listed to the developer on loopback only, never through a tunnel.
      const hint = ctx.untrusted ? 'check the webhook name' : known.length ? `known webhooks: ${known.join(', ')}` : 'add a workflow with `trigger: { webhook: <name> }`';
      throw new HttpError(404, 'E_UNKNOWN_WEBHOOK', ctx.untrusted ? 'no such webhook' : `no workflow has the webhook trigger "${name}"`, hint);
    }
    if (!body) {
      requireJsonContentType(ctx.req);
      body = await readBody(ctx.req, bodyLimit);
    }
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
    const event = parseJson(body);
    const violations = checkTriggerData(routes, event);
    if (violations.length) {
      throw new HttpError(422, 'E_EVENT_SCHEMA', `the body does not match the trigger schema of ${[...new Set(violations.map((v) => v.workflow))].join(', ')}`, 'fix the fields listed in details.errors', {
        errors: violations,
      });
    }
    await ingest(ctx, { source: `webhook:${name}`, name, req: ctx.req, body, event, dedupeKey, verification, routes, eventRef: 'body' });
  }

  /** True when `name` is a webhook whose every workflow has `verify` and the request passes all of them. */
  async function passesOwnVerification(name: string, ctx: RequestContext, body: Buffer): Promise<boolean> {
    const routes = definitions.byWebhook.get(name);
    if (!routes?.length) return false;
    const headers = lowerHeaders(ctx.req);
    for (const r of routes) {
      const verify = (r.workflow.def.trigger as WebhookTrigger).verify;
      if (!verify) return false;
      try {
        if (!verifyCustom(verify, await resolveSecret(verify.secret, r.key), headers, body, clock).ok) return false;
      } catch {
        return false;
      }
    }
    return true;
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
    const cursorText = q.get('cursor');
    const before = cursorText ? Number(cursorText) : undefined;
    if (before !== undefined && (!Number.isInteger(before) || before < 1)) {
      throw new HttpError(400, 'E_BAD_QUERY', 'cursor is not one this runtime gave', 'pass the nextCursor of the previous page');
    }
    const rows = log.listExecutions({
      status,
      workflow: q.get('workflow') ?? undefined,
      limit: limit + 1,
      before,
      since: timeParam(q.get('since'), 'since'),
      until: timeParam(q.get('until'), 'until'),
      idPrefix: q.get('id') ?? undefined,
    });
    // One row more than asked says whether another page exists; its cursor is the last seq shown.
    const page = rows.slice(0, limit);
    const nextCursor = rows.length > limit ? String(page[page.length - 1].seq) : undefined;
    sendJson(ctx.res, 200, { executions: page.map(summarizeExecution), ...(nextCursor ? { nextCursor } : {}) });
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
    const delivery = log.getDelivery(row.deliveryId);
    sendJson(ctx.res, 200, {
      execution: {
        ...summarizeExecution(row),
        record: row.record,
        ...(delivery
          ? {
              delivery: {
                id: delivery.id,
                source: delivery.source,
                name: delivery.name,
                receivedAt: new Date(delivery.receivedAt).toISOString(),
                verification: delivery.verification,
                headers: delivery.headers,
              },
            }
          : {}),
      },
    });
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
    // An optional JSON body {"event": ...} replays with an edited event (the web UI's "replay with edits").
    let edited: { event: unknown } | undefined;
    const body = await readBody(ctx.req, bodyLimit);
    if (body.length > 0) {
      requireJsonContentType(ctx.req);
      const payload = parseJson(body);
      if (payload === null || typeof payload !== 'object' || Array.isArray(payload) || Object.keys(payload).some((k) => k !== 'event')) {
        throw new HttpError(422, 'E_BAD_REPLAY', 'the replay body must be {"event": <the edited event>} or empty', 'send {} to replay the stored event');
      }
      if ('event' in payload) {
        edited = payload as { event: unknown };
        const violations = checkTriggerData([routed], edited.event);
        if (violations.length) {
          throw new HttpError(422, 'E_EVENT_SCHEMA', `the edited event does not match the trigger schema of ${routed.key}`, 'fix the fields listed in details.errors', {
            errors: violations,
          });
        }
      }
    }
    const now = clock();
    const newIdValue = newId('ex', now);
    const original = row.record as unknown as ExecutionRecord;
    const record = newExecutionRecord({ id: newIdValue, workflow: routed.key, version: definitions.version, event: edited ? edited.event : original.event, userId: row.userId, now });
    const delivery = log.getDelivery(row.deliveryId);
    // An edited event lives in the record itself (no eventRef): the delivery still holds the original.
    const eventRef: EventRef | undefined = edited ? undefined : delivery ? (delivery.source === 'event' ? 'body.data' : 'body') : undefined;
    await log.appendExecutions(row.deliveryId, [{ id: newIdValue, workflow: routed.key, userId: row.userId, replayOf: id, record: record as never, eventRef }]);
    pool.push(newIdValue);
    if (stream.size > 0) publishExecution(newIdValue);
    sendJson(ctx.res, 202, { ok: true, deliveryId: row.deliveryId, executions: [{ id: newIdValue, workflow: routed.key, replayOf: id }], ...(edited ? { edited: true } : {}) });
  }

  async function streamRoute(ctx: RequestContext): Promise<void> {
    const afterText = ctx.url.searchParams.get('after') ?? headerText(ctx.req.headers['last-event-id']);
    const after = afterText === undefined || afterText === null || afterText === '' ? undefined : Number(afterText);
    if (after !== undefined && (!Number.isInteger(after) || after < 0)) throw new HttpError(400, 'E_BAD_QUERY', 'after (or Last-Event-ID) must be a log seq');
    stream.subscribe(ctx.req, ctx.res, after);
  }

  async function workflowsRoute(ctx: RequestContext): Promise<void> {
    const root = definitions.project.root;
    const fixturesByIntegration = new Map<string, string[]>();
    for (const integration of definitions.project.integrations) {
      fixturesByIntegration.set(integration.name, await listFixtures(path.join(root, integration.dir, 'fixtures')));
    }
    const workflows = [...definitions.workflows.values()].map((r) => {
      const def = r.workflow.def;
      return {
        key: r.key,
        integration: r.workflow.integration,
        name: r.workflow.name,
        file: r.workflow.file,
        ...(def.description ? { description: def.description } : {}),
        trigger: triggerSummary(def.trigger as unknown as Record<string, unknown>),
        steps: def.steps.map((s) => ({ id: s.id, ...((s as { uses?: string }).uses ? { uses: (s as { uses?: string }).uses } : {}) })),
        ...(def.stream ? { streams: true } : {}),
        fixtures: fixturesByIntegration.get(r.workflow.integration) ?? [],
      };
    });
    sendJson(ctx.res, 200, { version: definitions.version, workflows });
  }

  /** Sends a fixture from integrations/<name>/fixtures/ as the trigger of one workflow (the web UI's "send"). */
  async function sendFixtureRoute(ctx: RequestContext): Promise<void> {
    requireJsonContentType(ctx.req);
    const key = `${pathParam(ctx.params[0])}/${pathParam(ctx.params[1])}`;
    const routed = definitions.workflows.get(key);
    if (!routed) throw new HttpError(404, 'E_WORKFLOW_NOT_FOUND', `no workflow ${key}`, 'list workflows with GET /v1/workflows');
    const payload = parseJson(await readBody(ctx.req, bodyLimit)) as { fixture?: unknown } | null;
    const name = payload && typeof payload === 'object' ? payload.fixture : undefined;
    if (typeof name !== 'string' || !FIXTURE_NAME.test(name)) {
      throw new HttpError(422, 'E_BAD_FIXTURE', 'the body must be {"fixture": "<file name>.json"}', 'use a name from GET /v1/workflows');
    }
    const integration = definitions.project.integrations.find((i) => i.name === routed.workflow.integration);
    const file = path.join(definitions.project.root, integration?.dir ?? '', 'fixtures', name);
    let bytes: Buffer;
    try {
      // A fixture is a plain file of the project: never follow a link out of it.
      if (!(await lstat(file)).isFile()) throw new Error('not a file');
      bytes = await readFile(file);
    } catch {
      throw new HttpError(404, 'E_FIXTURE_NOT_FOUND', `no fixture ${name} in ${integration?.dir ?? ''}/fixtures`, 'use a name from GET /v1/workflows');
    }
    const data = parseJson(bytes);
    const violations = checkTriggerData([routed], data);
    if (violations.length) {
      throw new HttpError(422, 'E_EVENT_SCHEMA', `${name} does not match the trigger schema of ${key}`, 'fix the fixture file', { errors: violations });
    }
    const trigger = routed.workflow.def.trigger as unknown as Record<string, unknown>;
    const headers = { 'content-type': 'application/json', 'x-alloy-fixture': name };
    if (typeof trigger.app === 'string' && typeof trigger.event === 'string') {
      const routes = definitions.byAppEvent.get(`${trigger.app}:${trigger.event}`) ?? [routed];
      await ingest(ctx, { source: trigger.app, name: trigger.event, req: ctx.req, body: bytes, event: data, verification: 'fixture', routes, eventRef: 'body', headers });
    } else if (typeof trigger.event === 'string') {
      const body = Buffer.from(JSON.stringify({ event: trigger.event, data }));
      const routes = definitions.byEvent.get(trigger.event) ?? [routed];
      await ingest(ctx, { source: 'event', name: trigger.event, req: ctx.req, body, event: data, verification: 'fixture', routes, eventRef: 'body.data', headers });
    } else if (typeof trigger.webhook === 'string') {
      const routes = definitions.byWebhook.get(trigger.webhook) ?? [routed];
      await ingest(ctx, { source: `webhook:${trigger.webhook}`, name: trigger.webhook, req: ctx.req, body: bytes, event: data, verification: 'fixture', routes, eventRef: 'body', headers });
    } else {
      throw new HttpError(409, 'E_NOT_SENDABLE', `${key} has a ${Object.keys(trigger)[0] ?? 'non-event'} trigger: nothing to send a fixture to`);
    }
  }

  async function uiRoute(ctx: RequestContext): Promise<void> {
    uiAssets ??= createUiAssets();
    await uiAssets.serve(ctx.res, ctx.url.pathname);
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
    { method: 'GET', pattern: /^\/v1\/stream$/, ingress: false, name: 'stream', handle: streamRoute },
    { method: 'GET', pattern: /^\/v1\/workflows$/, ingress: false, name: 'workflows', handle: workflowsRoute },
    { method: 'POST', pattern: /^\/v1\/workflows\/([^/]+)\/([^/]+)\/send$/, ingress: false, name: 'send-fixture', handle: sendFixtureRoute },
    // The web UI: the API listener only, never the ingress (tunnel) one.
    { method: 'GET', pattern: /^\/(?:index\.html|assets\/[^/]+)?$/, ingress: false, name: 'ui', handle: uiRoute },
  ];

  function createHandler(ingressOnly: boolean) {
    const visible = ingressOnly ? routes.filter((r) => r.ingress) : routes;
    return (req: IncomingMessage, res: ServerResponse) => {
      let routeName = 'unknown';
      const handle = async () => {
        const url = new URL(req.url ?? '/', 'http://localhost');
        if (closing) throw new HttpError(503, 'E_SHUTTING_DOWN', 'the runtime is shutting down', 'retry in a moment', undefined, { 'retry-after': '1', connection: 'close' });
        const untrusted = ingressOnly || !isLoopbackAddress(req.socket.remoteAddress);
        if (!ingressOnly) {
          // DNS rebinding: a web page whose name now resolves to 127.0.0.1 sends its own Host.
          if (!allowedHost(req.headers.host, options.host)) {
            throw new HttpError(403, 'E_HOST_NOT_ALLOWED', `Host ${JSON.stringify(String(req.headers.host).slice(0, 100))} is not this runtime`, 'address the runtime as localhost or 127.0.0.1 (or the --host it was started with)');
          }
          // A cross-site form can POST text/plain or form data without a preflight; JSON it cannot.
          if (req.method === 'POST') requireJsonContentType(req);
        }
        let allowed: string[] = [];
        for (const route of visible) {
          const m = route.pattern.exec(url.pathname);
          if (!m) continue;
          if (route.method !== req.method) {
            allowed.push(route.method);
            continue;
          }
          routeName = route.name;
          // The body is left unread: Node discards it once the answer is sent, keeping the connection.
          if (route.ingress && refusedForOverload(`${req.method} ${url.pathname}`, res)) return;
          inFlight.count++;
          try {
            await route.handle({ req, res, url, params: m.slice(1), untrusted });
          } finally {
            if (--inFlight.count === 0) inFlight.drained?.();
          }
          return;
        }
        if (allowed.length) {
          allowed = [...new Set(allowed)];
          throw new HttpError(405, 'E_METHOD_NOT_ALLOWED', `${req.method} is not allowed on ${url.pathname}`, `use ${allowed.join(' or ')}`, undefined, { allow: allowed.join(', ') });
        }
        throw new HttpError(404, 'E_NOT_FOUND', `no route ${req.method} ${ingressOnly ? 'here' : url.pathname}`, 'see docs/http-api.md for the routes');
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

  /** The kit's listen helper; the runtime keeps its own close order (see close()). */
  async function listenWith(handler: (req: IncomingMessage, res: ServerResponse) => void, host: string, port: number): Promise<{ server: Server; url: string }> {
    // Shopify waits 5 s for an answer; slow clients must not hold sockets forever.
    const { server, url } = await listen(handler, { host, port, requestTimeoutMs: 30_000, headersTimeoutMs: 10_000, keepAliveTimeoutMs: 5_000 });
    return { server, url };
  }

  const runtime: RuntimeServer = {
    async listen() {
      if (apiUrl) return apiUrl;
      const api = await listenWith(createHandler(false), options.host ?? '127.0.0.1', options.port ?? 0);
      apiServer = api.server;
      apiUrl = api.url;
      if (options.resumeOnListen !== false) runtime.resumePending();
      return apiUrl;
    },
    async listenIngress(host = '127.0.0.1', port = 0) {
      if (ingressUrl) return ingressUrl;
      const ingress = await listenWith(createHandler(true), host, port);
      ingressServer = ingress.server;
      ingressUrl = ingress.url;
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
      stream.publish('definitions', { version: defs.version, workflows: defs.workflows.size });
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
        stream.close();
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

/** Default window for X-Shopify-Triggered-At: well above Shopify's retry span (about 4 hours). */
export const DEFAULT_SHOPIFY_MAX_AGE_MS = 24 * 60 * 60 * 1000;

/** De-duplication key of a Shopify delivery: what the HMAC covers (the body), for its shop and topic. */
export function shopifyDedupeKey(shop: string, topic: string, body: Buffer): string {
  return `shopify:${shop}:${topic}:${createHash('sha256').update(body).digest('hex')}`;
}

function isLoopbackAddress(address: string | undefined): boolean {
  if (!address) return false;
  const a = address.startsWith('::ffff:') ? address.slice(7) : address;
  return a === '::1' || (isIP(a) === 4 && a.startsWith('127.'));
}

const LOOPBACK_NAMES = new Set(['localhost', '127.0.0.1', '::1']);

/** Whether a Host header names this runtime: a loopback name, an IP address or the configured host, any port. */
export function allowedHost(hostHeader: string | undefined, configured: string | undefined): boolean {
  // HTTP/1.0 clients may send none; browsers always do.
  if (hostHeader === undefined) return true;
  let name = hostHeader.trim().toLowerCase();
  const v6 = /^\[([^\]]+)\](?::\d+)?$/.exec(name);
  if (v6) name = v6[1];
  else name = name.replace(/:\d+$/, '');
  // An IP literal cannot be rebound (rebinding needs a name the attacker's DNS answers for).
  if (LOOPBACK_NAMES.has(name) || name.endsWith('.localhost') || isIP(name) !== 0) return true;
  return Boolean(configured && name === configured.toLowerCase());
}

/** A path segment, percent-decoded; malformed encoding (`%ZZ`) is the client's mistake: 400. */
function pathParam(raw: string): string {
  try {
    return decodeURIComponent(raw);
  } catch {
    throw new HttpError(400, 'E_BAD_PATH', `malformed percent-encoding in "${raw}"`, 'encode the path segment with encodeURIComponent');
  }
}

/** `?since=` / `?until=`: ms since the epoch or an ISO 8601 time. */
function timeParam(text: string | null, name: string): number | undefined {
  if (text === null || text === '') return undefined;
  const n = /^\d+$/.test(text) ? Number(text) : Date.parse(text);
  if (!Number.isFinite(n)) throw new HttpError(400, 'E_BAD_QUERY', `${name} must be a time (ISO 8601 or ms since the epoch)`, `e.g. ${name}=2026-01-31T12:00:00Z`);
  return n;
}

function headerText(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

/** Fixture file names: plain `.json` files directly in the fixtures folder. */
const FIXTURE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,200}\.json$/;

async function listFixtures(dir: string): Promise<string[]> {
  try {
    const entries = await readdir(dir, { withFileTypes: true });
    return entries.filter((e) => e.isFile() && FIXTURE_NAME.test(e.name)).map((e) => e.name).sort();
  } catch {
    return [];
  }
}

/** What the web UI shows of a trigger (schemas included; never secrets: verify names only the variable). */
function triggerSummary(trigger: Record<string, unknown>): Record<string, unknown> {
  if (typeof trigger.app === 'string') return { kind: 'app', app: trigger.app, event: trigger.event };
  if (typeof trigger.event === 'string') return { kind: 'event', event: trigger.event, ...(trigger.schema ? { schema: trigger.schema } : {}) };
  if (typeof trigger.webhook === 'string') return { kind: 'webhook', webhook: trigger.webhook, ...(trigger.verify ? { verify: (trigger.verify as { scheme?: string }).scheme } : {}) };
  return { kind: Object.keys(trigger)[0] ?? 'unknown', ...trigger };
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
  /** When it started running (the time every execution line shows). */
  startedAt?: string;
  updatedAt: string;
  finishedAt?: string;
  durationMs?: number;
  reason?: string;
  error?: { code: string; message: string; step?: string };
  /** The stream delivery's outcome, with the reason when it failed. */
  stream?: StreamNote;
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
    ...(r.startedAt ? { startedAt: r.startedAt } : {}),
    updatedAt: new Date(row.updatedAt).toISOString(),
    ...(row.finishedAt ? { finishedAt: new Date(row.finishedAt).toISOString() } : {}),
    ...(r.durationMs !== undefined ? { durationMs: r.durationMs } : {}),
    ...(r.reason ? { reason: r.reason } : {}),
    ...(r.error ? { error: { code: r.error.code, message: r.error.message, ...(r.error.step ? { step: r.error.step } : {}) } } : {}),
    ...(r.stream ? { stream: streamNote(r.stream)! } : {}),
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

