/**
 * `GET /v1/stream` for `alloy serve`: executions as server-sent events, read from the state
 * (not from this process's memory), so a web UI connected to any serve process sees the
 * executions every process creates and runs.
 *
 * While someone listens, one poller per process reads the state every `pollMs`:
 * - new and recently changed executions: the ids from a little before the newest one seen
 *   (ids are time-sortable; the look-back catches a row another process committed late with
 *   a slightly older id), oldest first, by cursor;
 * - executions seen queued or running, re-read by id until they end (bounded per poll).
 * An execution is sent when its `updatedAt` changed since it was last sent. `wake()` is the
 * in-process hint (this process's runner finished something): poll now rather than at the
 * next tick. With no subscriber nothing is read.
 *
 * Each subscriber is re-authenticated on every heartbeat: a deleted key or an expired user
 * token ends its stream (with an `error` event saying why). A user token's stream carries
 * only that user's executions.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { formatSse } from '../net/sse.js';
import { idFloor, idTime } from '../server/ids.js';
import { SSE_HEARTBEAT_MS } from '../server/event-stream.js';
import { HttpError } from '../http/error.js';
import { writeStream } from '../http/respond.js';
import type { Principal } from './auth.js';
import type { ExecutionRow, ServeState } from './state/types.js';

/** How far below the newest id seen each poll looks again (late commits from other processes). */
const LOOK_BACK_MS = 2_000;
const PAGE = 200;
/** Executions in flight re-read per poll at most (the rest wait for the next poll). */
const IN_FLIGHT_PER_POLL = 200;
/** Executions already in flight when the first page subscribes that are followed. */
const MAX_FOLLOWED = 1_000;

/** What the stream says about one execution: its row without the step trace. */
export function executionSummary(e: ExecutionRow) {
  const r = e.record;
  return {
    id: e.id,
    userId: e.userId,
    installationId: e.installationId,
    integration: e.integration,
    version: e.version,
    workflow: e.workflow,
    status: e.status,
    ...(e.rerunOf ? { rerunOf: e.rerunOf } : {}),
    createdAt: e.createdAt,
    updatedAt: e.updatedAt,
    ...(r.startedAt ? { startedAt: r.startedAt } : {}),
    ...(r.endedAt ? { endedAt: r.endedAt } : {}),
    ...(r.durationMs !== undefined ? { durationMs: r.durationMs } : {}),
    ...(r.error ? { error: { code: r.error.code, message: r.error.message, ...(r.error.step ? { step: r.error.step } : {}) } } : {}),
  };
}

export interface LiveFeedOptions {
  state: ServeState;
  /** Checks a subscriber's Authorization header again (heartbeats). */
  authenticate: (header: string | undefined) => Promise<Principal>;
  /** Default 500 ms. */
  pollMs?: number;
  heartbeatMs?: number;
  onError?: (err: unknown) => void;
}

export interface LiveFeed {
  /** Takes over the response: headers now, events until the client, its credentials or the server go. */
  subscribe(req: IncomingMessage, res: ServerResponse, principal: Principal): void;
  /** Something changed in this process: poll now. */
  wake(): void;
  readonly size: number;
  close(): void;
}

interface Subscriber {
  req: IncomingMessage;
  res: ServerResponse;
  principal: Principal;
}

const ended = (status: string) => status !== 'queued' && status !== 'running';

export function createLiveFeed(options: LiveFeedOptions): LiveFeed {
  const pollMs = options.pollMs ?? 500;
  const subscribers = new Set<Subscriber>();
  /** Last `updatedAt` sent per execution: recent ids and those still in flight. */
  const sent = new Map<string, string>();
  const inFlight = new Set<string>();
  let cursor: string | undefined;
  let timer: NodeJS.Timeout | undefined;
  let heartbeat: NodeJS.Timeout | undefined;
  let polling: Promise<void> | undefined;
  let again = false;
  let closed = false;

  // A client that stopped reading has its stream ended (it reconnects; the list API has the rest).
  const write = (s: Subscriber, text: string) => {
    if (!writeStream(s.res, text)) drop(s);
  };

  const publish = (row: ExecutionRow) => {
    if (sent.get(row.id) === row.updatedAt) return;
    sent.set(row.id, row.updatedAt);
    if (ended(row.status)) inFlight.delete(row.id);
    else inFlight.add(row.id);
    let text: string | undefined;
    for (const s of subscribers) {
      if (s.principal.kind === 'user' && s.principal.userId !== row.userId) continue;
      text ??= formatSse({ event: 'execution', data: JSON.stringify(executionSummary(row)) });
      write(s, text);
    }
  };

  async function pollOnce(): Promise<void> {
    const executions = options.state.executions;
    const priming = cursor === undefined;
    if (priming) {
      // Start at the newest execution: a new subscriber reads the past from the list API.
      cursor = (await executions.list({}, { limit: 1, order: 'desc' })).items[0]?.id ?? '';
      // Those already in flight are followed to their end too (the newest, if there is a backlog).
      for (const id of (await executions.unfinished()).slice(-MAX_FOLLOWED)) inFlight.add(id);
    }
    const t = idTime(cursor!);
    const floor = t === undefined ? cursor! : idFloor('ex', t - LOOK_BACK_MS);
    let after: string | undefined = floor || undefined;
    for (;;) {
      const page = await executions.list({}, { limit: PAGE, ...(after ? { after } : {}) });
      for (const row of page.items) {
        // The first read only learns what is there; later ones send what changed.
        if (priming) sent.set(row.id, row.updatedAt);
        else publish(row);
        if (row.id > cursor!) cursor = row.id;
      }
      if (!page.next) break;
      after = page.next;
    }
    // Rows below the look-back are only re-read while in flight.
    let n = 0;
    for (const id of [...inFlight]) {
      if (id >= floor) continue;
      if (n++ >= IN_FLIGHT_PER_POLL) break;
      const row = await executions.get(id);
      if (!row) inFlight.delete(id);
      else publish(row);
    }
    for (const id of sent.keys()) if (id < floor && !inFlight.has(id)) sent.delete(id);
  }

  const poll = (): void => {
    if (closed || subscribers.size === 0) return;
    if (polling) {
      again = true;
      return;
    }
    polling = pollOnce()
      .catch((err) => options.onError?.(err))
      .finally(() => {
        polling = undefined;
        if (again) {
          again = false;
          poll();
        }
      });
  };

  const stop = () => {
    if (timer) clearInterval(timer);
    if (heartbeat) clearInterval(heartbeat);
    timer = heartbeat = undefined;
    cursor = undefined;
    sent.clear();
    inFlight.clear();
  };

  const drop = (s: Subscriber) => {
    if (!subscribers.delete(s)) return;
    if (!s.res.writableEnded) s.res.end();
    if (subscribers.size === 0) stop();
  };

  const beat = async () => {
    for (const s of [...subscribers]) {
      try {
        const p = await options.authenticate(s.req.headers.authorization);
        // The same caller, still accepted (a key cannot turn into another user's token).
        if (p.kind !== s.principal.kind || (p.kind === 'user' && s.principal.kind === 'user' && p.userId !== s.principal.userId)) throw new HttpError(401, 'E_UNAUTHORIZED', 'the credentials changed');
        write(s, ': ping\n\n');
      } catch (err) {
        const e = err instanceof HttpError ? err : new HttpError(401, 'E_UNAUTHORIZED', 'unknown or expired token');
        write(s, formatSse({ event: 'error', data: JSON.stringify(e.toBody().error) }));
        drop(s);
      }
    }
  };

  return {
    subscribe(req, res, principal) {
      res.writeHead(200, {
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-store',
        'x-accel-buffering': 'no',
        connection: 'keep-alive',
      });
      res.write('retry: 1000\n: alloy serve events\n\n');
      const s: Subscriber = { req, res, principal };
      subscribers.add(s);
      const gone = () => drop(s);
      req.on('close', gone);
      res.on('close', gone);
      if (!timer) {
        timer = setInterval(poll, pollMs);
        timer.unref();
        heartbeat = setInterval(() => void beat(), options.heartbeatMs ?? SSE_HEARTBEAT_MS);
        heartbeat.unref();
        poll();
      }
    },
    wake: poll,
    get size() {
      return subscribers.size;
    },
    close() {
      closed = true;
      for (const s of [...subscribers]) drop(s);
      stop();
    },
  };
}
