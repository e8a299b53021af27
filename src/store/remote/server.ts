/**
 * The remote store over HTTP (docs/store-http-api.md), node:http only. The route table and
 * `handleStoreRequest` are exported so a bigger server (the runtime's `alloy serve`) can
 * mount them: it calls the handler first and falls through when it returns false.
 *
 * Every object upload is re-hashed here (422 on a lie); versions are created once (409);
 * `published` moves by compare-and-swap (409); refs never name a missing object (422).
 */
import http from 'node:http';
import { readBody } from '../../http/body.js';
import { BODY_TOO_LARGE, HttpError } from '../../http/error.js';
import { applyServerLimits, DEFAULT_MAX_HEADER_SIZE } from '../../http/listen.js';
import type { AddressInfo } from 'node:net';
import { AlloyError } from '../../errors.js';
import { isObjectId, sha256Hex } from '../canonical.js';
import { decodeObject, definitionProblems, type EncodedObject } from '../objects.js';
import type { PublishAction, Store, VersionRef } from '../store.js';
import { allows, bearerToken, roleOf, tokenFingerprint, type Role, type TokenEntry } from './auth.js';

export const STORE_API_PREFIX = '/v1/store';

export interface StoreApiLimits {
  /** Largest object-upload body. Default 32 MiB. */
  maxUploadBytes: number;
  /** Largest body of any other request. Default 64 KiB. */
  maxJsonBytes: number;
  /** Most ids in one negotiation request. Default 100,000. */
  maxIds: number;
}

export const DEFAULT_LIMITS: StoreApiLimits = { maxUploadBytes: 32 * 1024 * 1024, maxJsonBytes: 64 * 1024, maxIds: 100_000 };

/**
 * A store the API can serve: the Store interface plus verified raw bytes, a listing that
 * reports unreadable refs, and the record of who pushed each version. LocalStore (files) and
 * PgStore (`alloy serve --database`) are both one.
 */
export interface ServedStore extends Store {
  readObjectBytes(id: string): Promise<Buffer>;
  checkedVersions(integration: string): Promise<{ versions: VersionRef[]; bad: { version: number; error: unknown }[] }>;
  recordPush(integration: string, version: number, id: string, pushedBy: { by: string; at: string }): Promise<void>;
  readPush(integration: string, version: number, id: string): Promise<{ by: string; at: string } | undefined>;
}

export interface StoreApiOptions {
  store: ServedStore;
  tokens: TokenEntry[];
  limits?: Partial<StoreApiLimits>;
}


interface RouteContext {
  store: ServedStore;
  params: Record<string, string>;
  query: URLSearchParams;
  body: () => Promise<unknown>;
  rawBody: (limit: number) => Promise<Buffer>;
  limits: StoreApiLimits;
  /** Who sent this request: the token's role and fingerprint (never the token). */
  pusher: string;
  send: (status: number, body: unknown) => void;
  sendBytes: (status: number, bytes: Buffer) => void;
}

export interface StoreRoute {
  method: 'GET' | 'POST' | 'PUT';
  /** Path under the prefix, with :params. */
  path: string;
  role: Role;
  handler: (c: RouteContext) => Promise<void>;
}

/** Bytes of `{"ids":[…]}` holding `maxIds` ids (66 bytes each with quotes, 1 for the comma), plus slack for whitespace. */
export function missingIdsBodyLimit(maxIds: number): number {
  return 1024 + maxIds * 68;
}

const versionNumber = (s: string) => {
  if (!/^[1-9][0-9]{0,15}$/.test(s)) throw new HttpError(400, 'E_BAD_REQUEST', `"${s}" is not a version number`);
  return Number(s);
};

function asObject(v: unknown, what = 'the body'): Record<string, unknown> {
  if (!v || typeof v !== 'object' || Array.isArray(v)) throw new HttpError(400, 'E_BAD_REQUEST', `${what} must be a JSON object`);
  return v as Record<string, unknown>;
}

export const storeRoutes: StoreRoute[] = [
  {
    method: 'GET',
    path: '/integrations',
    role: 'read',
    handler: async (c) => c.send(200, { integrations: await c.store.listIntegrations() }),
  },
  {
    method: 'POST',
    path: '/objects/missing',
    role: 'read',
    handler: async (c) => {
      // This body is a list of ids, sized by maxIds, not by maxJsonBytes: read it with a
      // limit that fits maxIds of them.
      const raw = await c.rawBody(missingIdsBodyLimit(c.limits.maxIds));
      let parsed: unknown;
      try {
        parsed = JSON.parse(raw.toString('utf8') || 'null');
      } catch {
        throw new HttpError(400, 'E_BAD_REQUEST', 'the body is not valid JSON');
      }
      const body = asObject(parsed);
      const ids = body.ids;
      if (!Array.isArray(ids) || !ids.every(isObjectId)) throw new HttpError(400, 'E_BAD_REQUEST', '`ids` must be a list of object ids (64 hex digits)');
      if (ids.length > c.limits.maxIds) throw new HttpError(413, BODY_TOO_LARGE, `at most ${c.limits.maxIds} ids per request`);
      c.send(200, { missing: await c.store.missingObjects(ids as string[]) });
    },
  },
  {
    method: 'POST',
    path: '/objects',
    role: 'write',
    handler: async (c) => {
      const raw = await c.rawBody(c.limits.maxUploadBytes);
      let body: Record<string, unknown>;
      try {
        body = asObject(JSON.parse(raw.toString('utf8')));
      } catch (err) {
        if (err instanceof HttpError) throw err;
        throw new HttpError(400, 'E_BAD_REQUEST', 'the body is not valid JSON');
      }
      const list = body.objects;
      if (!Array.isArray(list)) throw new HttpError(400, 'E_BAD_REQUEST', '`objects` must be a list of { id, data }');
      const accepted: EncodedObject[] = [];
      const mismatched: string[] = [];
      const invalid: { id: string; reason: string }[] = [];
      const schema: { id: string; type: string; errors: string[] }[] = [];
      for (const item of list) {
        const o = asObject(item, 'each item of `objects`');
        if (!isObjectId(o.id) || typeof o.data !== 'string') throw new HttpError(400, 'E_BAD_REQUEST', 'each object needs `id` (64 hex digits) and `data` (its canonical JSON text)');
        const bytes = Buffer.from(o.data, 'utf8');
        // Never trust the client's id: re-hash the bytes that will be stored.
        if (sha256Hex(bytes) !== o.id) {
          mismatched.push(o.id);
          continue;
        }
        const value = decodeObject(bytes);
        if (typeof value === 'string') {
          invalid.push({ id: o.id, reason: value });
          continue;
        }
        // The schemas hold on the server too: a write token is not a licence to store anything.
        const problems = definitionProblems(value);
        if (problems.length) {
          schema.push({ id: o.id, type: value.type, errors: problems.slice(0, 50) });
          continue;
        }
        accepted.push({ id: o.id, bytes, value });
      }
      if (schema.length && !mismatched.length && !invalid.length) {
        throw new HttpError(400, 'E_STORE_SCHEMA', `${schema.length} definition object(s) do not match the schemas; nothing was stored`, 'Run `alloy validate` on the definitions, then release again.', {
          invalid: schema,
        });
      }
      if (mismatched.length || invalid.length) {
        throw new HttpError(422, mismatched.length ? 'E_STORE_HASH_MISMATCH' : 'E_STORE_BAD_OBJECT',
          mismatched.length ? `${mismatched.length} object(s) do not hash to their id; nothing was stored` : `${invalid.length} object(s) are not valid store objects; nothing was stored`,
          'Objects are uploaded as their exact canonical JSON text; the id is the sha256 of those bytes.',
          { mismatched, invalid });
      }
      const missing = new Set(await c.store.missingObjects(accepted.map((o) => o.id)));
      await c.store.putObjects(accepted.filter((o) => missing.has(o.id)));
      c.send(200, { stored: missing.size, existing: accepted.length - missing.size });
    },
  },
  {
    method: 'GET',
    path: '/objects/:id',
    role: 'read',
    handler: async (c) => {
      if (!isObjectId(c.params.id)) throw new HttpError(400, 'E_BAD_REQUEST', 'not an object id');
      if ((await c.store.missingObjects([c.params.id])).length) {
        throw new HttpError(404, 'E_STORE_NOT_FOUND', `object ${c.params.id} is not in this store`, 'Push it first (alloy release uploads every missing object).');
      }
      c.sendBytes(200, await c.store.readObjectBytes(c.params.id));
    },
  },
  {
    method: 'GET',
    path: '/integrations/:integration/versions',
    role: 'read',
    handler: async (c) => {
      if (c.query.get('problems') === '1') {
        // fsck: the readable refs, and each unreadable one reported instead of failing the list.
        // Messages name the version only, not the server's file paths.
        const { versions, bad } = await c.store.checkedVersions(c.params.integration);
        const problems = bad.map(({ version, error }) => {
          const code = error instanceof AlloyError ? error.code : 'E_STORE_IO';
          return { version, code, message: code === 'E_STORE_BAD_REF' ? 'the ref does not hold an object id' : 'the ref could not be read' };
        });
        c.send(200, { versions, problems });
        return;
      }
      const newest = Number(c.query.get('newest') ?? '');
      c.send(200, { versions: await c.store.listVersions(c.params.integration, Number.isSafeInteger(newest) && newest > 0 ? { newest } : {}) });
    },
  },
  {
    method: 'GET',
    path: '/integrations/:integration/versions/latest',
    role: 'read',
    handler: async (c) => c.send(200, { latest: await c.store.latestVersion(c.params.integration) }),
  },
  {
    method: 'GET',
    path: '/integrations/:integration/versions/:version',
    role: 'read',
    handler: async (c) => {
      const ref = await c.store.readVersion(c.params.integration, versionNumber(c.params.version));
      const pushedBy = await c.store.readPush(c.params.integration, ref.version, ref.id);
      c.send(200, { ...ref, ...(pushedBy ? { pushedBy } : {}) });
    },
  },
  {
    method: 'PUT',
    path: '/integrations/:integration/versions/:version',
    role: 'write',
    handler: async (c) => {
      const body = asObject(await c.body());
      if (!isObjectId(body.id)) throw new HttpError(400, 'E_BAD_REQUEST', '`id` must be the release object id');
      const ref = { version: versionNumber(c.params.version), id: body.id };
      await c.store.createVersion(c.params.integration, ref);
      // The release's author and time are the client's claims; this is what the server saw.
      const pushedBy = { by: c.pusher, at: new Date().toISOString() };
      await c.store.recordPush(c.params.integration, ref.version, ref.id, pushedBy);
      c.send(201, { ...ref, pushedBy });
    },
  },
  {
    method: 'GET',
    path: '/integrations/:integration/published',
    role: 'read',
    handler: async (c) => c.send(200, { published: await c.store.readPublished(c.params.integration) }),
  },
  {
    method: 'PUT',
    path: '/integrations/:integration/published',
    role: 'write',
    handler: async (c) => {
      const body = asObject(await c.body());
      const to = asObject(body.to, '`to` ({ version, id })');
      const expected = body.expected;
      if (expected !== null && !isObjectId(expected)) throw new HttpError(400, 'E_BAD_REQUEST', '`expected` must be the release id you saw published, or null');
      if (!Number.isSafeInteger(to.version) || !isObjectId(to.id)) throw new HttpError(400, 'E_BAD_REQUEST', '`to` must be { version, id }');
      const action: PublishAction = body.action === 'rollback' ? 'rollback' : 'publish';
      const who = typeof body.who === 'string' ? body.who.slice(0, 200) : 'unknown';
      const message = typeof body.message === 'string' ? body.message.slice(0, 2000) : undefined;
      const entry = await c.store.movePublished(c.params.integration, { expected: expected as string | null, to: { version: to.version as number, id: to.id as string }, action, who, message });
      c.send(200, { entry });
    },
  },
  {
    method: 'GET',
    path: '/integrations/:integration/log',
    role: 'read',
    handler: async (c) => c.send(200, { entries: await c.store.readPublishLog(c.params.integration) }),
  },
];

interface CompiledRoute extends StoreRoute {
  re: RegExp;
  names: string[];
}

function compile(routes: StoreRoute[]): CompiledRoute[] {
  return routes.map((r) => {
    const names: string[] = [];
    const re = new RegExp(
      `^${r.path.replace(/:([a-z]+)/g, (_m, n: string) => {
        names.push(n);
        return '([^/]+)';
      })}$`,
    );
    return { ...r, re, names };
  });
}

/** Store error codes -> HTTP status. */
function statusForCode(code: string): number {
  switch (code) {
    case 'E_STORE_VERSION_EXISTS':
    case 'E_STORE_PUBLISH_CONFLICT':
      return 409;
    case 'E_STORE_NOT_FOUND':
    case 'E_NOT_FOUND':
      return 404;
    case 'E_STORE_BAD_INPUT':
    case 'E_STORE_BAD_ID':
      return 400;
    case 'E_STORE_MISSING_OBJECT':
    case 'E_STORE_BAD_RELEASE':
    case 'E_STORE_BAD_REF':
      return 422;
    case 'E_STORE_LOCKED':
    case 'E_STORE_LOCK_LOST':
      return 503;
    default:
      return 500;
  }
}

export type StoreRequestHandler = (req: http.IncomingMessage, res: http.ServerResponse) => Promise<boolean>;

/**
 * Handles requests under /v1/store; returns false (and touches nothing) for any other path
 * so a bigger server can route them elsewhere.
 */
export function createStoreRequestHandler(options: StoreApiOptions): StoreRequestHandler {
  const limits: StoreApiLimits = { ...DEFAULT_LIMITS, ...options.limits };
  const routes = compile(storeRoutes);
  return async (req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    if (url.pathname !== STORE_API_PREFIX && !url.pathname.startsWith(`${STORE_API_PREFIX}/`)) return false;
    const send = (status: number, body: unknown) => {
      const text = JSON.stringify(body);
      res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store' });
      res.end(text);
    };
    const sendError = (e: HttpError) => {
      if (e.status === 401) res.setHeader('www-authenticate', 'Bearer realm="alloy-store"');
      // A request whose body we did not read: close the connection instead of draining it.
      if (!req.complete) res.setHeader('connection', 'close');
      send(e.status, { error: { code: e.code, message: e.message, ...(e.hint ? { hint: e.hint } : {}), ...(e.details ? { details: e.details } : {}) } });
    };
    try {
      const sub = url.pathname.slice(STORE_API_PREFIX.length) || '/';
      const method = req.method === 'HEAD' ? 'GET' : req.method;
      const matches = routes.filter((r) => r.re.test(sub));
      const route = matches.find((r) => r.method === method);
      if (!route) {
        if (matches.length) {
          res.setHeader('allow', [...new Set(matches.map((m) => m.method))].join(', '));
          throw new HttpError(405, 'E_METHOD_NOT_ALLOWED', `${req.method} is not allowed on ${url.pathname}`);
        }
        throw new HttpError(404, 'E_NO_ROUTE', `no store route ${url.pathname}`, 'See docs/store-http-api.md for the routes.');
      }
      // Auth before anything else is read.
      const token = bearerToken(req.headers.authorization);
      const role = token ? roleOf(options.tokens, token) : undefined;
      if (!role) throw new HttpError(401, 'E_UNAUTHORIZED', token ? 'unknown token' : 'missing bearer token', 'Send Authorization: Bearer <token> (the client reads ALLOY_TOKEN).');
      if (!allows(role, route.role)) throw new HttpError(403, 'E_FORBIDDEN', `this token has the ${role} role; ${req.method} ${route.path} needs ${route.role}`, 'Use a token with the write role.');
      const m = route.re.exec(sub)!;
      const params: Record<string, string> = {};
      try {
        route.names.forEach((n, i) => (params[n] = decodeURIComponent(m[i + 1])));
      } catch {
        throw new HttpError(400, 'E_BAD_REQUEST', 'malformed percent-encoding in the path');
      }
      const rawBody = (limit: number) => readBody(req, limit);
      await route.handler({
        store: options.store,
        params,
        query: url.searchParams,
        limits,
        pusher: `${role}:${tokenFingerprint(token!)}`,
        rawBody,
        body: async () => {
          const raw = await rawBody(limits.maxJsonBytes);
          try {
            return JSON.parse(raw.toString('utf8') || 'null');
          } catch {
            throw new HttpError(400, 'E_BAD_REQUEST', 'the body is not valid JSON');
          }
        },
        send,
        sendBytes: (status, bytes) => {
          res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': bytes.length, 'cache-control': 'no-store' });
          res.end(req.method === 'HEAD' ? undefined : bytes);
        },
      });
    } catch (err) {
      if (err instanceof HttpError) sendError(err);
      else if (err instanceof AlloyError) {
        const status = statusForCode(err.code);
        // Server-side file paths stay on the server: in the message and in any detail
        // (E_STORE_MISSING_OBJECT's `where` is a path, and a message may name it twice).
        const dir = 'dir' in options.store && typeof options.store.dir === 'string' ? options.store.dir : undefined;
        const hide = (text: string) => (dir ? text.replaceAll(dir, '<store>') : text);
        const kept = err.details ? Object.fromEntries(Object.entries(err.details).filter(([k]) => k !== 'file')) : undefined;
        const details = kept && dir ? (JSON.parse(hide(JSON.stringify(kept))) as Record<string, unknown>) : kept;
        sendError(new HttpError(status, err.code, hide(err.message), err.hint, details));
      } else {
        sendError(new HttpError(500, 'E_INTERNAL', 'internal error'));
      }
    }
    return true;
  };
}


export interface StoreServerOptions extends StoreApiOptions {
  host?: string;
  port?: number;
}

export interface StoreServer {
  readonly server: http.Server;
  /** Resolves with the base URL, e.g. http://127.0.0.1:43121. */
  listen(): Promise<string>;
  /** Idempotent. */
  close(): Promise<void>;
}

/** A standalone store server; binds 127.0.0.1 unless `host` says otherwise. */
export function createStoreServer(options: StoreServerOptions): StoreServer {
  const handle = createStoreRequestHandler(options);
  const server = http.createServer({ maxHeaderSize: DEFAULT_MAX_HEADER_SIZE }, (req, res) => {
    handle(req, res)
      .then((handled) => {
        if (!handled) {
          const text = JSON.stringify({ error: { code: 'E_NO_ROUTE', message: `no route ${req.url}`, hint: `The store API is under ${STORE_API_PREFIX}.` } });
          res.writeHead(404, { 'content-type': 'application/json; charset=utf-8' });
          res.end(text);
        }
      })
      .catch(() => {
        if (!res.headersSent) res.writeHead(500);
        res.end();
      });
  });
  applyServerLimits(server);
  let closing: Promise<void> | undefined;
  return {
    server,
    listen: () =>
      new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(options.port ?? 0, options.host ?? '127.0.0.1', () => {
          server.off('error', reject);
          const a = server.address() as AddressInfo;
          const host = a.family === 'IPv6' ? `[${a.address}]` : a.address;
          resolve(`http://${host}:${a.port}`);
        });
      }),
    close: () => {
      closing ??= new Promise<void>((resolve) => {
        if (!server.listening) return resolve();
        server.close(() => resolve());
        server.closeIdleConnections();
        setTimeout(() => server.closeAllConnections(), 2_000).unref();
      });
      return closing;
    },
  };
}
