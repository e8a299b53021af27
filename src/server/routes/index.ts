/**
 * `alloy dev`'s HTTP API: the route modules in the order they are listed in docs/http-api.md,
 * mounted on the shared router (src/http/router.ts), and what every request goes through
 * before its route: refused while shutting down (503), the Host check against DNS rebinding
 * and JSON-only POSTs (API listener), the overload check (ingress routes), and one error
 * handler that answers every failure in the one JSON shape and tells the developer about
 * refused deliveries.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { isIP } from 'node:net';
import { createRouter, type Route } from '../../http/router.js';
import { HttpError, requireJsonContentType, sendJson } from '../http.js';
import { DevContext, type DevDeps, type DevRoute } from './context.js';
import { executionRoutes } from './executions.js';
import { ingressRoutes } from './ingress.js';
import { logRoutes } from './logs.js';
import { healthRoutes, uiRoutes } from './ops.js';
import { workflowRoutes } from './workflows.js';

/** Every route; the ingress (tunnel) listener serves those marked `ingress` only. */
export const DEV_ROUTES: readonly DevRoute[] = [...healthRoutes, ...ingressRoutes, ...executionRoutes, ...logRoutes, ...workflowRoutes, ...uiRoutes];

/** Seconds a sender refused for overload is asked to wait (Retry-After). */
export const OVERLOAD_RETRY_AFTER_S = 1;

export interface DevHandlerOptions {
  deps: DevDeps;
  /** The ingress-only (tunnel) listener: ingress routes only, every request untrusted. */
  ingressOnly: boolean;
  /** The host the API listener was started with (also allowed as Host). */
  host?: string;
  /** Queued executions past which ingress answers 503 + Retry-After. */
  maxQueued: number;
  closing(): boolean;
  /** Requests being handled: close() lets them answer before cutting connections. */
  inFlight: { count: number; drained?: () => void };
}

/** A 404 for a path no route has (reported as no route, whichever route it came through). */
class NoRouteError extends HttpError {}

export function createDevHandler(options: DevHandlerOptions): (req: IncomingMessage, res: ServerResponse) => void {
  const { deps, ingressOnly, inFlight } = options;
  /** Overload refusals since the last one reported (reported at most once a second). */
  const overload = { refused: 0, reportedAt: 0 };
  const noRoute = (method: string, pathname: string): NoRouteError =>
    new NoRouteError(404, 'E_NOT_FOUND', `no route ${method} ${ingressOnly ? 'here' : pathname}`, 'see docs/http-api.md for the routes');

  /**
   * Ingress refuses work the runner cannot start soon, before reading or verifying the body,
   * answering 503 here (no error object: under overload this runs for most requests).
   * Returns true when it answered.
   */
  function refusedForOverload(route: string, res: ServerResponse): boolean {
    const queued = deps.runner.size.queued;
    if (queued < options.maxQueued) return false;
    overload.refused++;
    const now = deps.clock();
    if (now - overload.reportedAt >= 1000) {
      deps.emit({
        type: 'rejected',
        route,
        status: 503,
        code: 'E_OVERLOADED',
        message: `${overload.refused} deliveries refused with 503: ${queued} executions are queued (limit ${options.maxQueued})`,
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
          message: `the runtime has ${queued} executions queued (limit ${options.maxQueued})`,
          hint: `retry after ${OVERLOAD_RETRY_AFTER_S} s; senders such as Shopify retry on their own`,
        },
      },
      { 'retry-after': String(OVERLOAD_RETRY_AFTER_S) },
    );
    return true;
  }

  const mounted = DEV_ROUTES.filter((r) => !ingressOnly || r.ingress).map(
    (r): Route<DevContext> & { name: string } => ({
      method: r.method,
      path: r.path,
      name: r.name,
      handler: async (ctx) => {
        // The router matches an empty segment as a parameter; no route has an empty one.
        for (const v of Object.values(ctx.params)) if (v === '') throw noRoute(ctx.req.method ?? 'GET', ctx.pathname);
        // The body is left unread: Node discards it once the answer is sent, keeping the connection.
        if (r.ingress && refusedForOverload(`${ctx.req.method} ${ctx.pathname}`, ctx.res)) return;
        inFlight.count++;
        try {
          await r.handler(ctx);
        } finally {
          if (--inFlight.count === 0) inFlight.drained?.();
        }
      },
    }),
  );

  const route = createRouter<DevContext>(mounted, {
    context: (base) => new DevContext(base, deps, ingressOnly || !isLoopbackAddress(base.req.socket.remoteAddress)),
    noRoute: ({ method, pathname, allowed }) => {
      const bad = malformedSegment(pathname);
      if (bad !== undefined) {
        // The router finds no route for a path it cannot decode; a route's own path with a
        // malformed parameter is the client's mistake (400), named as the route would.
        const segments = pathname.split('/').map((s) => (s === bad ? 'x' : s));
        const matching = mounted.filter((r) => sameShape(r.path, segments));
        if (matching.some((r) => r.method === method)) return new HttpError(400, 'E_BAD_PATH', `malformed percent-encoding in "${bad}"`, 'encode the path segment with encodeURIComponent');
        allowed = [...new Set(matching.map((r) => r.method))];
      }
      if (allowed.length) return new HttpError(405, 'E_METHOD_NOT_ALLOWED', `${method} is not allowed on ${pathname}`, `use ${allowed.join(' or ')}`, undefined, { allow: allowed.join(', ') });
      return noRoute(method, pathname);
    },
    onError: (err, req, res, matched) => errorHandler(err, req, res, err instanceof NoRouteError ? 'unknown' : ((matched as { name?: string } | undefined)?.name ?? 'unknown')),
    // As before the shared router: HEAD is no GET, `/healthz/` is no `/healthz`, and ids may hold anything.
    headAsGet: false,
    ignoreTrailingSlash: false,
    refuseNul: false,
  });

  /** Last in the pipeline: every failure becomes a JSON error body. */
  function errorHandler(err: unknown, req: IncomingMessage, res: ServerResponse, routeName: string): void {
    const httpErr = err instanceof HttpError ? err : new HttpError(500, 'E_INTERNAL', 'internal error', 'see the alloy dev terminal for details');
    if (!(err instanceof HttpError)) deps.emit({ type: 'error', message: `${req.method} ${req.url}: ${(err as Error)?.stack ?? String(err)}` });
    if (['event', 'shopify', 'webhook'].includes(routeName) || httpErr.status === 413 || httpErr.status === 415) {
      deps.emit({ type: 'rejected', route: `${req.method} ${req.url}`, status: httpErr.status, code: httpErr.code, message: httpErr.message });
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

  return (req, res) => {
    try {
      if (options.closing()) throw new HttpError(503, 'E_SHUTTING_DOWN', 'the runtime is shutting down', 'retry in a moment', undefined, { 'retry-after': '1', connection: 'close' });
      if (!ingressOnly) {
        // DNS rebinding: a web page whose name now resolves to 127.0.0.1 sends its own Host.
        if (!allowedHost(req.headers.host, options.host)) {
          throw new HttpError(403, 'E_HOST_NOT_ALLOWED', `Host ${JSON.stringify(String(req.headers.host).slice(0, 100))} is not this runtime`, 'address the runtime as localhost or 127.0.0.1 (or the --host it was started with)');
        }
        // A cross-site form can POST text/plain or form data without a preflight; JSON it cannot.
        if (req.method === 'POST') requireJsonContentType(req);
      }
    } catch (err) {
      errorHandler(err, req, res, 'unknown');
      return;
    }
    void route(req, res);
  };
}

/** Whether a path's segments fit a route's path (`:name` stands for any non-empty segment). */
function sameShape(routePath: string, segments: string[]): boolean {
  const parts = routePath.split('/');
  return parts.length === segments.length && parts.every((p, i) => (p.startsWith(':') ? segments[i] !== '' : p === segments[i]));
}

/** The first path segment whose percent-encoding is malformed (`%ZZ`). */
function malformedSegment(pathname: string): string | undefined {
  if (!pathname.includes('%')) return undefined;
  for (const segment of pathname.split('/')) {
    try {
      decodeURIComponent(segment);
    } catch {
      return segment;
    }
  }
  return undefined;
}

export function isLoopbackAddress(address: string | undefined): boolean {
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

