/**
 * The log: `GET /v1/logs` (a page of log entries after a seq) and `GET /v1/stream` (server-sent
 * events: executions, steps and log entries as they happen; the web UI and `alloy logs -f`).
 */
import { HttpError, sendJson } from '../http.js';
import { headerText, type DevContext, type DevRoute } from './context.js';

export const logRoutes: DevRoute[] = [
  { method: 'GET', path: '/v1/logs', name: 'logs', ingress: false, handler: logsRoute },
  { method: 'GET', path: '/v1/stream', name: 'stream', ingress: false, handler: streamRoute },
];

async function streamRoute(ctx: DevContext): Promise<void> {
  const afterText = ctx.query.get('after') ?? headerText(ctx.req.headers['last-event-id']);
  const after = afterText === undefined || afterText === null || afterText === '' ? undefined : Number(afterText);
  if (after !== undefined && (!Number.isInteger(after) || after < 0)) throw new HttpError(400, 'E_BAD_QUERY', 'after (or Last-Event-ID) must be a log seq');
  ctx.deps.stream.subscribe(ctx.req, ctx.res, after);
}

async function logsRoute(ctx: DevContext): Promise<void> {
  const q = ctx.query;
  const afterText = q.get('after');
  const after = afterText === null ? undefined : Number(afterText);
  const limit = Math.min(Math.max(1, Number(q.get('limit') ?? 200) || 200), 1000);
  if (after !== undefined && !Number.isInteger(after)) throw new HttpError(400, 'E_BAD_QUERY', 'after must be an integer');
  const entries = ctx.deps.log.readLog(after, limit);
  sendJson(ctx.res, 200, { entries, last: entries.length ? entries[entries.length - 1].seq : (after ?? 0) });
}
