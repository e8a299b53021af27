/** Probes and metrics: `/healthz` (the process answers), `/readyz` (state reachable), `/metrics` (Prometheus text). */
import { sendText } from '../../http/respond.js';
import type { ApiRoute } from './context.js';

export const opsRoutes: ApiRoute[] = [
  { method: 'GET', path: '/healthz', access: 'public', handler: async (c) => c.send(200, { ok: true }) },
  {
    method: 'GET',
    path: '/readyz',
    access: 'public',
    async handler(c) {
      const ok = await c.deps.state.ping();
      c.send(ok ? 200 : 503, { ok, state: ok ? 'up' : 'down' });
    },
  },
  {
    method: 'GET',
    path: '/metrics',
    access: 'public',
    async handler(c) {
      const r = c.deps.metrics.registry;
      sendText(c.res, 200, await r.metrics(), r.contentType);
    },
  },
];
