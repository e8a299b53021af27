/**
 * What every route module of `alloy dev`'s HTTP API gets: the runtime's parts (the event log,
 * the execution runner, the live stream, the definitions) and a context per request. Routes
 * are plain data (method, path, name, whether the ingress listener serves them, handler),
 * mounted by ./index.ts through the shared router (src/http/router.ts), as serve's
 * src/serve/api/ are.
 */
import type { IncomingMessage } from 'node:http';
import { RouteContext, type Method, type RequestContext } from '../../http/router.js';
import type { EventLog } from '../event-log.js';
import type { RuntimeDefinitions } from '../definitions.js';
import type { EventStream } from '../event-stream.js';
import type { ExecutionRunner } from '../execution-runner.js';
import type { RuntimeEvent } from '../runtime-events.js';
import type { UiAssets } from '../ui-assets.js';
import { HttpError, parseJsonBody, readBody } from '../http.js';

export interface DevDeps {
  log: EventLog;
  runner: ExecutionRunner;
  /** Live updates for the web UI and `alloy logs -f` (GET /v1/stream). */
  stream: EventStream;
  /** The definitions now (hot reload swaps them). */
  definitions(): RuntimeDefinitions;
  emit(event: RuntimeEvent): void;
  /** Sends an execution's summary to live subscribers. */
  publishExecution(id: string): void;
  clock: () => number;
  bodyLimit: number;
  maxJsonDepth: number;
  /** Secrets and settings by name (SHOPIFY_API_SECRET, custom webhook secrets). */
  secrets: Record<string, string | undefined>;
  ingressSecret?: string;
  shopifyMaxAgeMs: number;
  /** `--record`: every accepted delivery is also written there as a fixture file. */
  recordDir?: string;
  /** The web UI's files (read on first request). */
  ui(): UiAssets;
}

export interface DevRoute {
  method: Method;
  path: string;
  /** Reported with errors: `event`, `shopify` and `webhook` rejections are told to the developer. */
  name: string;
  /** Served on the ingress-only (tunnel) listener too. */
  ingress: boolean;
  handler(c: DevContext): Promise<void>;
}

/** One per request. */
export class DevContext extends RouteContext {
  constructor(
    base: RequestContext,
    readonly deps: DevDeps,
    /** Arrived on the ingress (tunnel) listener or from another machine: ingress must be signed, errors say little. */
    readonly untrusted: boolean,
  ) {
    super(base);
  }
  /** The request's path, without the query. */
  get pathname(): string {
    return pathnameOf(this.req);
  }
  /** The exact bytes of the body (413 over the limit). */
  body(): Promise<Buffer> {
    return readBody(this.req, this.deps.bodyLimit);
  }
  /** JSON bytes parsed (400 E_BAD_JSON, E_JSON_TOO_DEEP); an empty body is not JSON. */
  json(body: Buffer): unknown {
    return parseJsonBody(body, this.deps.maxJsonDepth);
  }
}

export function pathnameOf(req: IncomingMessage): string {
  const url = req.url ?? '/';
  const q = url.indexOf('?');
  return q < 0 ? url : url.slice(0, q);
}

/** `?since=` / `?until=`: ms since the epoch or an ISO 8601 time. */
export function timeParam(text: string | null, name: string): number | undefined {
  if (text === null || text === '') return undefined;
  const n = /^\d+$/.test(text) ? Number(text) : Date.parse(text);
  if (!Number.isFinite(n)) throw new HttpError(400, 'E_BAD_QUERY', `${name} must be a time (ISO 8601 or ms since the epoch)`, `e.g. ${name}=2026-01-31T12:00:00Z`);
  return n;
}

export function headerText(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

export function lowerHeaders(req: IncomingMessage): Record<string, string | undefined> {
  const out: Record<string, string | undefined> = {};
  for (const [k, v] of Object.entries(req.headers)) out[k.toLowerCase()] = Array.isArray(v) ? v[0] : v;
  return out;
}
