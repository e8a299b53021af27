/** Executions: list, get (steps, attempts, version, stream delivery), rerun, cancel. */
import { HttpError } from '../../http/error.js';
import { idFloor, newId } from '../../server/ids.js';
import { newExecutionRecord } from '../../server/executor.js';
import { StoreNotFoundError } from '../../store/lib.js';
import type { ExecutionRow } from '../state/types.js';
import { executionSummary } from '../live-feed.js';
import { notFound, str, type ApiContext, type ApiRoute } from './context.js';

/** The whole execution: the stream's summary with the full error, the event and the step trace. */
export function executionView(e: ExecutionRow) {
  const r = e.record;
  return {
    ...executionSummary(e),
    ...(r.error ? { error: r.error } : {}),
    event: r.event,
    // The step trace: what ran, with what (inputs and output, secrets redacted by the engine), when and how long.
    steps: Object.values(r.steps ?? {}).map((s) => ({
      path: s.path,
      id: s.id,
      ...(s.name ? { name: s.name } : {}),
      kind: s.kind,
      ...(s.uses ? { uses: s.uses } : {}),
      status: s.status,
      attempts: s.attempts,
      ...(s.handled ? { handled: true } : {}),
      ...(s.startedAt ? { startedAt: s.startedAt } : {}),
      ...(s.endedAt ? { endedAt: s.endedAt } : {}),
      ...(s.durationMs !== undefined ? { durationMs: s.durationMs } : {}),
      ...(s.error ? { error: s.error } : {}),
      ...(s.inputs !== undefined ? { inputs: s.inputs } : {}),
      ...(s.output !== undefined ? { output: s.output } : {}),
    })),
    ...(r.stream ? { stream: r.stream } : {}),
  };
}

/** ExecutionRow['status'] (the OpenAPI Execution schema's enum). */
const EXECUTION_STATUSES: readonly string[] = ['queued', 'running', 'succeeded', 'failed', 'filtered', 'cancelled'];

async function loadOwned(c: ApiContext): Promise<ExecutionRow> {
  const e = await c.deps.state.executions.get(c.params.executionId);
  if (!e) throw notFound('execution');
  c.own(e.userId, 'execution');
  return e;
}

export const executionRoutes: ApiRoute[] = [
  {
    method: 'GET',
    path: '/v1/executions',
    access: ['read', 'user'],
    async handler(c) {
      const q = c.query;
      if (c.principal.kind === 'user' && q.get('userId') && q.get('userId') !== c.principal.userId) throw notFound('user');
      const userId = c.principal.kind === 'user' ? c.principal.userId : (q.get('userId') ?? undefined);
      const order = q.get('order') ?? 'asc';
      if (order !== 'asc' && order !== 'desc') throw new HttpError(400, 'E_BAD_REQUEST', '`order` must be asc or desc');
      // `since`: execution ids are time-sortable (server/ids.ts), so a time bound is an id bound
      // on the primary key: no scan, and the same on every state backend.
      const since = q.get('since');
      const sinceMs = since === null ? undefined : Date.parse(since);
      if (sinceMs !== undefined && !Number.isFinite(sinceMs)) throw new HttpError(400, 'E_BAD_REQUEST', '`since` must be an ISO 8601 time', 'For example since=2026-12-01T00:00:00Z.');
      const floor = sinceMs === undefined ? undefined : idFloor('ex', sinceMs);
      const status = q.get('status') ?? undefined;
      if (status !== undefined && !EXECUTION_STATUSES.includes(status)) throw new HttpError(400, 'E_BAD_REQUEST', `\`status\` must be one of ${EXECUTION_STATUSES.join(', ')}`);
      const page = c.page();
      const after = floor !== undefined && order === 'asc' && (page.after === undefined || page.after < floor) ? floor : page.after;
      const p = await c.deps.state.executions.list({ userId, installationId: q.get('installationId') ?? undefined, workflow: q.get('workflow') ?? undefined, status }, { ...page, after, order });
      let items = p.items;
      let next = p.next;
      if (floor !== undefined && order === 'desc') {
        // Newest first: the page ends where executions older than `since` begin.
        const kept = items.filter((e) => e.id > floor);
        if (kept.length < items.length) next = undefined;
        items = kept;
      }
      c.send(200, { items: items.map(executionView), next: next ?? null });
    },
  },
  {
    method: 'GET',
    path: '/v1/executions/:executionId',
    access: ['read', 'user'],
    async handler(c) {
      c.send(200, executionView(await loadOwned(c)));
    },
  },
  {
    method: 'POST',
    path: '/v1/executions/:executionId/cancel',
    access: ['user'],
    async handler(c) {
      const e = await loadOwned(c);
      if (!(await c.deps.state.executions.cancel(e.id, c.iso()))) throw new HttpError(409, 'E_ALREADY_ENDED', `execution ${e.id} has already ended (${e.status})`);
      c.deps.runner.abort(e.id);
      c.send(200, executionView((await c.deps.state.executions.get(e.id))!));
    },
  },
  {
    // A new execution with the same event: from the start, or from `fromStep` (the steps
    // before it keep their recorded results), on the same version unless `version` says.
    method: 'POST',
    path: '/v1/executions/:executionId/rerun',
    fields: ['fromStep', 'version'],
    access: ['admin'],
    async handler(c) {
      const e = await loadOwned(c);
      const body = await c.body();
      const fromStep = str(body, 'fromStep');
      const version = body.version === undefined ? e.version : body.version;
      if (typeof version !== 'number' || !Number.isSafeInteger(version) || version < 1) throw new HttpError(400, 'E_BAD_REQUEST', '`version` must be a positive integer', undefined, { fields: [{ path: '/version', message: 'is not a version' }] });
      let defs;
      try {
        defs = await c.deps.source.get(e.integration, version);
      } catch (err) {
        if (err instanceof StoreNotFoundError) throw new HttpError(404, 'E_NOT_FOUND', `${e.integration} v${version} is not in the store`);
        throw err;
      }
      if (!defs.defs.workflows.has(e.workflow)) throw new HttpError(422, 'E_NOT_IN_VERSION', `${e.workflow} is not in ${e.integration} v${version}`);
      const id = newId('ex', c.deps.now());
      const record = newExecutionRecord({ id, workflow: e.workflow, version: `v${version}`, event: e.record.event, userId: e.userId, now: c.deps.now() });
      if (fromStep) {
        const steps = Object.entries(e.record.steps ?? {});
        const at = steps.findIndex(([path]) => path === fromStep);
        if (at < 0) throw new HttpError(422, 'E_NO_STEP', `execution ${e.id} has no step "${fromStep}"`, `Steps: ${steps.map(([p]) => p).join(', ') || '(none)'}.`, { fields: [{ path: '/fromStep', message: 'is not a step of this execution' }] });
        for (const [path, s] of steps.slice(0, at)) if (s.status === 'succeeded' || s.status === 'skipped') record.steps[path] = s;
      }
      const row: ExecutionRow = { id, installationId: e.installationId, userId: e.userId, integration: e.integration, version, workflow: e.workflow, status: 'queued', record, rerunOf: e.id, createdAt: record.createdAt, updatedAt: record.createdAt };
      await c.deps.runner.ingest({ executions: [row] }, { rerun: true });
      c.send(202, { executionIds: [id], duplicate: false });
    },
  },
];
