/**
 * What every route module of the Embedded API gets: the server's dependencies, the caller
 * (authenticated before the handler runs, per the route's `access`), and small helpers for
 * bodies, answers and pagination. Routes are plain data (method, path, access, handler),
 * mounted by ../server.ts through the shared router (src/http/router.ts).
 */
import type { HttpClient } from '../../connectors/types.js';
import type { ConnectorRegistry } from '../../connectors/types.js';
import { HttpError } from '../../http/error.js';
import { readJsonBody } from '../../http/body.js';
import { sendJson } from '../../http/respond.js';
import { RouteContext, type Method, type RequestContext } from '../../http/router.js';
import { assertOwner, type Access, type Principal } from '../auth.js';
import type { Connections } from '../connections.js';
import type { Keyring } from '../crypto.js';
import type { DefinitionSource } from '../definitions.js';
import type { LiveFeed } from '../live-feed.js';
import type { ServeMetrics } from '../metrics.js';
import type { Runner } from '../runner.js';
import type { PageRequest, ServeState } from '../state/types.js';

export interface ServeDeps {
  state: ServeState;
  keyring: Keyring;
  source: DefinitionSource;
  runner: Runner;
  connections: Connections;
  connectors: ConnectorRegistry;
  http: HttpClient;
  metrics: ServeMetrics;
  /** GET /v1/stream's subscribers and the poller that feeds them. */
  live: LiveFeed;
  env: Record<string, string | undefined>;
  now: () => number;
  /** The server's public base URL (OAuth redirect URIs), e.g. https://alloy.example.com. */
  publicUrl: () => string;
  /** Allowed origins of an OAuth flow's `redirectAfter`; undefined: a localhost page only. */
  oauthRedirectOrigins?: readonly string[];
  log: (message: string, fields?: Record<string, unknown>) => void;
  /** Largest JSON body. */
  maxBodyBytes: number;
}

export interface ApiContext extends RequestContext {
  deps: ServeDeps;
  /** Set before the handler runs, except on `public` routes. */
  principal: Principal;
  body(): Promise<Record<string, unknown>>;
  /** The route's body fields (ApiRoute.fields), set before its handler runs. */
  bodyFields?: readonly string[];
  send(status: number, body: unknown, headers?: Record<string, string>): void;
  page(): PageRequest;
  /** 404 for a user token that is not this user's. */
  own(userId: string, what?: string): void;
  iso(): string;
}

export interface ApiRoute {
  method: Method;
  path: string;
  /** Who may call it; `public` routes authenticate themselves (OAuth callback, app webhooks, probes). */
  access: readonly Access[] | 'public';
  /**
   * The JSON body's fields (its OpenAPI request schema's properties; a test keeps the two
   * equal): any other is 400 naming it, as Stripe answers an unknown parameter, so a typo
   * (`ttl` for `ttlSeconds`) is said instead of silently ignored.
   */
  fields?: readonly string[];
  handler: (c: ApiContext) => Promise<void>;
}

/** One per request. */
class Context extends RouteContext implements ApiContext {
  principal = undefined as unknown as Principal;
  bodyFields: readonly string[] | undefined = undefined;
  constructor(
    base: RequestContext,
    readonly deps: ServeDeps,
  ) {
    super(base);
  }
  async body(): Promise<Record<string, unknown>> {
    const v = await readJsonBody(this.req, this.deps.maxBodyBytes);
    if (v === undefined) return {};
    if (!v || typeof v !== 'object' || Array.isArray(v)) throw new HttpError(400, 'E_BAD_REQUEST', 'the body must be a JSON object');
    const known = this.bodyFields;
    if (known && hasUnknown(v as Record<string, unknown>, known)) {
      const unknown = Object.keys(v).filter((k) => !known.includes(k));
      throw new HttpError(400, 'E_BAD_REQUEST', `unknown field${unknown.length > 1 ? 's' : ''} ${unknown.slice(0, 5).map((k) => `\`${k.slice(0, 64)}\``).join(', ')}`, `This route takes ${known.map((k) => `\`${k}\``).join(', ')}.`, {
        fields: unknown.slice(0, 20).map((k) => ({ path: `/${k.slice(0, 64)}`, message: 'is not a field of this route' })),
      });
    }
    return v as Record<string, unknown>;
  }
  send(status: number, body: unknown, headers?: Record<string, string>): void {
    sendJson(this.res, status, body, headers);
  }
  page(): PageRequest {
    const limit = this.query.get('limit');
    const n = limit === null ? undefined : Number(limit);
    if (n !== undefined && (!Number.isInteger(n) || n < 1 || n > 200)) throw new HttpError(400, 'E_BAD_REQUEST', '`limit` must be an integer from 1 to 200');
    return { ...(n ? { limit: n } : {}), ...(this.query.get('cursor') ? { after: this.query.get('cursor')! } : {}) };
  }
  own(userId: string, what?: string): void {
    assertOwner(this.principal, userId, what);
  }
  iso(): string {
    return new Date(this.deps.now()).toISOString();
  }
}

/** Whether `v` has a key outside `known`, without an array of its keys per request. */
function hasUnknown(v: Record<string, unknown>, known: readonly string[]): boolean {
  for (const k in v) if (Object.hasOwn(v, k) && !known.includes(k)) return true;
  return false;
}

export function makeContext(base: RequestContext, deps: ServeDeps): ApiContext {
  return new Context(base, deps);
}

/** A string field, or 400 naming it. */
export function str(body: Record<string, unknown>, name: string, opts: { required?: boolean; pattern?: RegExp; max?: number } = {}): string | undefined {
  const v = body[name];
  if (v === undefined || v === null) {
    if (opts.required) throw new HttpError(400, 'E_BAD_REQUEST', `\`${name}\` is required`, undefined, { fields: [{ path: `/${name}`, message: 'is required' }] });
    return undefined;
  }
  // NUL is refused everywhere: PostgreSQL text cannot hold it.
  if (typeof v !== 'string' || (opts.pattern && !opts.pattern.test(v)) || v.length > (opts.max ?? 256) || v.includes('\u0000')) {
    throw new HttpError(400, 'E_BAD_REQUEST', `\`${name}\` is not valid`, opts.pattern ? `It must match ${opts.pattern}.` : undefined, { fields: [{ path: `/${name}`, message: 'is not valid' }] });
  }
  return v;
}

export function obj(body: Record<string, unknown>, name: string): Record<string, unknown> | undefined {
  const v = body[name];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'object' || Array.isArray(v)) throw new HttpError(400, 'E_BAD_REQUEST', `\`${name}\` must be an object`, undefined, { fields: [{ path: `/${name}`, message: 'must be an object' }] });
  return v as Record<string, unknown>;
}

export const ID_RE = /^[A-Za-z0-9][A-Za-z0-9._@+-]{0,127}$/;

export function notFound(what: string): HttpError {
  return new HttpError(404, 'E_NOT_FOUND', `no such ${what}`);
}
