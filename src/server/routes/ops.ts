/**
 * `GET /healthz` (alive, with the definitions' version and the queue) and the web UI's files
 * (`/`, `/index.html`, `/assets/<hashed name>`: the API listener only, never the ingress one).
 */
import { sendJson } from '../http.js';
import type { DevContext, DevRoute } from './context.js';

async function healthRoute(ctx: DevContext): Promise<void> {
  const definitions = ctx.deps.definitions();
  sendJson(ctx.res, 200, {
    ok: true,
    pid: process.pid,
    version: definitions.version,
    workflows: definitions.workflows.size,
    queue: ctx.deps.runner.size,
  });
}

async function uiRoute(ctx: DevContext): Promise<void> {
  await ctx.deps.ui().serve(ctx.res, new URL(ctx.req.url ?? '/', 'http://localhost').pathname);
}

export const healthRoutes: DevRoute[] = [{ method: 'GET', path: '/healthz', name: 'health', ingress: false, handler: healthRoute }];

export const uiRoutes: DevRoute[] = [
  { method: 'GET', path: '/', name: 'ui', ingress: false, handler: uiRoute },
  { method: 'GET', path: '/index.html', name: 'ui', ingress: false, handler: uiRoute },
  { method: 'GET', path: '/assets/:name', name: 'ui', ingress: false, handler: uiRoute },
];
