/**
 * The web UI in `alloy serve` (docs/web-ui.md): the live event stream (an Embedded API
 * route, behind a key or user token like the rest of /v1) and the UI's static files at `/`
 * (public: the page holds no data; it asks for a key and reads everything through /v1 with
 * `Authorization: Bearer`). The files are the same bundle `alloy dev` serves, read on first
 * request, marked as served by serve.
 */
import type { Route } from '../../http/router.js';
import { createUiAssets, type UiAssets } from '../../server/ui-assets.js';
import type { ApiRoute } from './context.js';

export const streamRoutes: ApiRoute[] = [
  {
    // Executions as server-sent events (live-feed.ts); a user token's stream carries only that user's.
    method: 'GET',
    path: '/v1/stream',
    access: ['read', 'user'],
    async handler(c) {
      c.deps.live.subscribe(c.req, c.res, c.principal);
    },
  },
];

/** `/`, `/index.html` and `/assets/<hashed name>`, outside the API's auth. */
export function uiRoutes(): Route[] {
  let assets: UiAssets | undefined;
  const handler: Route['handler'] = async (ctx) => {
    assets ??= createUiAssets(undefined, 'serve');
    await assets.serve(ctx.res, new URL(ctx.req.url ?? '/', 'http://x').pathname);
  };
  return [
    { method: 'GET', path: '/', handler },
    { method: 'GET', path: '/index.html', handler },
    { method: 'GET', path: '/assets/:name', handler },
  ];
}
