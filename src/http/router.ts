/**
 * Routing for alloy's servers: find-my-way (the radix-tree router under Fastify) behind a
 * small table of route modules. A route module is a list of `{ method, path, handler }`; a
 * server mounts modules in one visible order and gets one request handler that answers 404
 * (E_NO_ROUTE) and 405 (E_METHOD_NOT_ALLOWED, with Allow) itself and turns every thrown
 * error into the one error shape (respond.ts); a server with its own wording (alloy dev) passes
 * noRoute and onError, and can ask for exact matching (RouterOptions). Handlers get the decoded path params and
 * the parsed query; they read bodies through body.ts.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import createFindMyWay from 'find-my-way';
import { HttpError } from './error.js';
import { sendError } from './respond.js';

export type Method = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

export interface RequestContext {
  req: IncomingMessage;
  res: ServerResponse;
  params: Record<string, string>;
  query: URLSearchParams;
  /** The route's path pattern, e.g. `/v1/users/:id` (metrics label; never the raw URL). */
  route: string;
}

/**
 * What the router hands a server's `context`: the query is parsed on first use (most requests
 * carry none, and no ingest route reads it: a URLSearchParams per request was pure cost).
 */
class BaseContext implements RequestContext {
  #query: URLSearchParams | undefined;
  constructor(
    readonly req: IncomingMessage,
    readonly res: ServerResponse,
    readonly params: Record<string, string>,
    readonly route: string,
    private readonly search: string,
  ) {}
  get query(): URLSearchParams {
    return (this.#query ??= new URLSearchParams(this.search));
  }
}

/**
 * The base of a server's per-request context class (dev's and serve's): the request's fields,
 * copied once. A class, because building one per request is cheaper than an object of closures.
 */
export class RouteContext implements RequestContext {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly params: Record<string, string>;
  readonly route: string;
  readonly #base: RequestContext;
  constructor(base: RequestContext) {
    this.req = base.req;
    this.res = base.res;
    this.params = base.params;
    this.route = base.route;
    this.#base = base;
  }
  /** Parsed when first read (see BaseContext). */
  get query(): URLSearchParams {
    return this.#base.query;
  }
}

export interface Route<C = RequestContext> {
  method: Method;
  path: string;
  handler: (ctx: C) => Promise<void> | void;
}

export type RequestHandler = (req: IncomingMessage, res: ServerResponse) => Promise<void>;

export interface RouterOptions<C> {
  /** Builds the handler's context from the base one (auth, state, …). */
  context: (base: RequestContext) => C;
  /** Called when no route matches, before answering 404: return true when handled (a mounted legacy handler). */
  fallback?: (req: IncomingMessage, res: ServerResponse) => Promise<boolean>;
  /** Called after every answer (metrics). */
  onResponse?: (info: { method: string; route: string; status: number; ms: number }) => void;
  /** Called with an unexpected error (not an HttpError) before it is answered as 500, so the server log says what the 500 was. */
  onInternalError?: (err: unknown, info: { method: string; route: string }) => void;
  /**
   * A server's own 404 and 405 (default: 404 E_NO_ROUTE, or 405 E_METHOD_NOT_ALLOWED naming the
   * matched pattern, with Allow). `allowed`: the methods the path has routes for.
   */
  noRoute?: (info: { method: string; pathname: string; allowed: string[] }) => HttpError;
  /**
   * Answers every thrown error instead of the kit (sendError; onInternalError is then not
   * called): a server that reports errors its own way. `route` is the matched one, if any.
   */
  onError?: (err: unknown, req: IncomingMessage, res: ServerResponse, route: Route<C> | undefined) => void;
  /** HEAD is routed as GET (default true); false: HEAD has no routes (405 where GET has one). */
  headAsGet?: boolean;
  /** `/a/` finds the route `/a` (default true). */
  ignoreTrailingSlash?: boolean;
  /** 400 for a NUL character in the path's params or the query (default true: PostgreSQL text refuses NUL). */
  refuseNul?: boolean;
}

export function createRouter<C>(routes: Route<C>[], options: RouterOptions<C>): RequestHandler {
  const router = createFindMyWay({ ignoreTrailingSlash: options.ignoreTrailingSlash ?? true, caseSensitive: true });
  const headAsGet = options.headAsGet ?? true;
  const refuseNul = options.refuseNul ?? true;
  const byPath = new Map<string, Set<string>>();
  for (const r of routes) {
    router.on(r.method, r.path, () => undefined, r);
    const set = byPath.get(r.path) ?? new Set<string>();
    set.add(r.method);
    byPath.set(r.path, set);
  }
  /** The methods a path has routes for, and the pattern they matched (named in a 405: never the raw path, which may hold a name to keep private). */
  const allowed = (pathname: string): { methods: string[]; pattern: string } => {
    const methods: string[] = [];
    let pattern = '';
    for (const m of ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'] as const) {
      const f = router.find(m, pathname);
      if (!f) continue;
      methods.push(m);
      pattern = (f.store as Route<C>).path;
    }
    return { methods, pattern };
  };
  return async (req, res) => {
    const started = performance.now();
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const pathname = q < 0 ? url : url.slice(0, q);
    const method = headAsGet && req.method === 'HEAD' ? 'GET' : (req.method ?? 'GET');
    let routeName = 'unmatched';
    let route: Route<C> | undefined;
    try {
      let found;
      try {
        found = router.find(method as Method, pathname);
      } catch {
        throw new HttpError(400, 'E_BAD_REQUEST', 'malformed percent-encoding in the path');
      }
      if (!found) {
        if (options.fallback && (await options.fallback(req, res))) return;
        const allow = allowed(pathname);
        if (options.noRoute) throw options.noRoute({ method, pathname, allowed: allow.methods });
        if (allow.methods.length) throw new HttpError(405, 'E_METHOD_NOT_ALLOWED', `${req.method} is not allowed on ${allow.pattern}`, `use ${allow.methods.join(' or ')}`, undefined, { allow: allow.methods.join(', ') });
        throw new HttpError(404, 'E_NO_ROUTE', `no route ${method} ${pathname}`, 'See docs/serve-api.md for the routes.');
      }
      route = found.store as Route<C>;
      routeName = route.path;
      const base = new BaseContext(req, res, { ...found.params } as Record<string, string>, route.path, q < 0 ? '' : url.slice(q + 1));
      // No id, cursor or filter holds NUL; PostgreSQL text refuses it, so it would surface as a 500.
      if (refuseNul && (hasNulIn(base.params) || (q >= 0 && [...base.query.values()].some(hasNul)))) throw new HttpError(400, 'E_BAD_REQUEST', 'the path or query holds a NUL character');
      await route.handler(options.context(base));
    } catch (err) {
      if (options.onError) return options.onError(err, req, res, route);
      if (!(err instanceof HttpError)) options.onInternalError?.(err, { method, route: routeName });
      sendError(req, res, err);
    } finally {
      options.onResponse?.({ method, route: routeName, status: res.statusCode, ms: performance.now() - started });
    }
  };
}

const hasNul = (s: string): boolean => s.includes('\u0000');
const hasNulIn = (params: Record<string, string>): boolean => {
  for (const k in params) if (hasNul(params[k])) return true;
  return false;
};
