/**
 * The executions API: `GET /v1/executions` (a page of summaries, filtered), `GET
 * /v1/executions/:id` (one record with its delivery; `?wait=` long-polls until it finishes) and
 * `POST /v1/executions/:id/replay` (runs the stored event again, or an edited one).
 */
import { isTerminal, type EventRef } from '../event-log.js';
import { checkTriggerData } from '../definitions.js';
import { newExecutionRecord } from '../executor.js';
import type { ExecutionRecord } from '../../engine/types.js';
import { HttpError, requireJsonContentType, sendJson } from '../http.js';
import { newId } from '../ids.js';
import { summarizeExecution } from '../runtime-events.js';
import { timeParam, type DevContext, type DevRoute } from './context.js';

/** Longest `?wait=` on GET /v1/executions/:id. */
export const MAX_WAIT_MS = 60_000;

export const executionRoutes: DevRoute[] = [
  { method: 'GET', path: '/v1/executions', name: 'executions', ingress: false, handler: listExecutionsRoute },
  { method: 'GET', path: '/v1/executions/:id', name: 'execution', ingress: false, handler: getExecutionRoute },
  { method: 'POST', path: '/v1/executions/:id/replay', name: 'replay', ingress: false, handler: replayRoute },
];

async function listExecutionsRoute(ctx: DevContext): Promise<void> {
  const q = ctx.query;
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
  const rows = ctx.deps.log.listExecutions({
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

async function getExecutionRoute(ctx: DevContext): Promise<void> {
  const id = ctx.params.id;
  let row = ctx.deps.log.getExecution(id);
  if (!row) throw new HttpError(404, 'E_EXECUTION_NOT_FOUND', `no execution ${id}`, 'list executions with `alloy executions`');
  const waitText = ctx.query.get('wait');
  if (waitText !== null && !isTerminal(row.status)) {
    const waitMs = Math.min(Math.max(0, Number(waitText) || 0), MAX_WAIT_MS);
    await ctx.deps.runner.waitForFinish(id, waitMs);
    row = ctx.deps.log.getExecution(id)!;
  }
  const delivery = ctx.deps.log.getDelivery(row.deliveryId, { body: false });
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

async function replayRoute(ctx: DevContext): Promise<void> {
  const id = ctx.params.id;
  const row = ctx.deps.log.getExecution(id);
  if (!row) throw new HttpError(404, 'E_EXECUTION_NOT_FOUND', `no execution ${id}`, 'list executions with `alloy executions`');
  const routed = ctx.deps.definitions().workflows.get(row.workflow);
  if (!routed) {
    throw new HttpError(409, 'E_WORKFLOW_NOT_FOUND', `workflow ${row.workflow} is no longer defined`, 'restore the workflow file, then replay');
  }
  // An optional JSON body {"event": ...} replays with an edited event (the web UI's "replay with edits").
  let edited: { event: unknown } | undefined;
  const body = await ctx.body();
  if (body.length > 0) {
    requireJsonContentType(ctx.req);
    const payload = ctx.json(body);
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
  const now = ctx.deps.clock();
  const newIdValue = newId('ex', now);
  const original = row.record as unknown as ExecutionRecord;
  const record = newExecutionRecord({ id: newIdValue, workflow: routed.key, version: ctx.deps.definitions().version, event: edited ? edited.event : original.event, userId: row.userId, now });
  const delivery = ctx.deps.log.getDelivery(row.deliveryId, { body: false });
  // An edited event lives in the record itself (no eventRef): the delivery still holds the original.
  const eventRef: EventRef | undefined = edited ? undefined : delivery ? (delivery.source === 'event' ? 'body.data' : 'body') : undefined;
  await ctx.deps.log.appendExecutions(row.deliveryId, [{ id: newIdValue, workflow: routed.key, userId: row.userId, replayOf: id, record: record as never, eventRef }]);
  ctx.deps.runner.push(newIdValue);
  if (ctx.deps.stream.size > 0) ctx.deps.publishExecution(newIdValue);
  sendJson(ctx.res, 202, { ok: true, deliveryId: row.deliveryId, executions: [{ id: newIdValue, workflow: routed.key, replayOf: id }], ...(edited ? { edited: true } : {}) });
}
