/**
 * `alloy serve`: the production runtime (the Embedded API under /v1, published versions run
 * for each user's installations) and, when ALLOY_SERVE_TOKENS is set, the store API under
 * /v1/store as before. `alloy serve keys create|rotate|list` manage API keys and the master
 * key of the data folder. Secrets come from the environment or files, never flags. Binds
 * 127.0.0.1 unless --host.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { CliContext } from '../context.js';
import { DEFAULT_PORTS } from '../defaults.js';
import { AlloyError, UsageError } from '../../errors.js';
import { listenError } from '../../http/listen.js';
import type { AppSettings } from '../../core/model.js';
import { DEFAULT_STORE_PATH, LocalStore, isStoreUrl, openStore, type Store } from '../../store/lib.js';
import { findConfig } from '../../core/find-config.js';
import { parseTokenList } from '../../store/remote/auth.js';
import { checkDatabaseUrl, redactUrl } from '../../serve/state/database-url.js';

const DEFAULT_DATA = '.alloy/serve';

interface Located {
  root: string;
  config: Record<string, unknown>;
}

async function locate(ctx: CliContext): Promise<Located | undefined> {
  const found = await findConfig(ctx.cwd);
  if (!found) return undefined;
  return { root: found.root, config: (found.config && typeof found.config === 'object' ? found.config : {}) as Record<string, unknown> };
}

function dataDir(ctx: CliContext, opts: Record<string, any>, loc: Located | undefined): string | undefined {
  if (opts.data) return path.resolve(ctx.cwd, opts.data);
  if (loc) return path.join(loc.root, DEFAULT_DATA);
  return undefined;
}

/**
 * Where the state lives: PostgreSQL when --database (ALLOY_SERVE_DATABASE) or the config's
 * serve.database names one, else SQLite in the data folder (which also holds the default
 * master key file).
 */
function serveLocation(ctx: CliContext, opts: Record<string, any>, loc: Located | undefined) {
  const conf = (loc?.config.serve ?? {}) as { database?: string; schema?: string };
  const database: string | undefined = opts.database ?? conf.database;
  const dir = dataDir(ctx, opts, loc);
  if (!database && !dir) throw new UsageError('no data folder', { hint: 'Pass --data <dir> (where alloy serve keeps its database), --database postgres://…, or run inside an alloy project.' });
  // The default .alloy/serve is checked for links from the project down (docs/security.md).
  const dataBase = !opts.data && loc ? loc.root : undefined;
  if (!database) return { dataDir: dir, dataBase, schema: opts.schema, describe: `data ${dir}` };
  const schema: string | undefined = opts.schema ?? conf.schema;
  return { dataDir: dir, dataBase, database: checkDatabaseUrl(database), schema, describe: `database ${redactUrl(database)}${schema ? ` schema ${schema}` : ''}` };
}

async function storeTokens(ctx: CliContext) {
  let text = ctx.env.ALLOY_SERVE_TOKENS;
  let source = 'ALLOY_SERVE_TOKENS';
  if (!text && ctx.env.ALLOY_SERVE_TOKENS_FILE) {
    source = 'ALLOY_SERVE_TOKENS_FILE';
    try {
      text = (await readFile(path.resolve(ctx.cwd, ctx.env.ALLOY_SERVE_TOKENS_FILE), 'utf8')).split(/\r?\n/).join(',');
    } catch (err) {
      throw new UsageError(`cannot read ALLOY_SERVE_TOKENS_FILE: ${(err as Error).message}`, { hint: 'Point it at a readable file with one role:token per line.' });
    }
  }
  return text ? parseTokenList(text, source) : undefined;
}

async function keysCommand(ctx: CliContext, args: string[], opts: Record<string, any>): Promise<number> {
  const loc = await locate(ctx);
  const where = serveLocation(ctx, opts, loc);
  const verb = args[1];
  const { openServe, createApiKey, rotateMasterKey } = await import('../../serve/admin.js');
  if (verb === 'create') {
    // One --role flag serves both: a process's ALLOY_SERVE_ROLE=worker names a serve role, not a key's.
    const roleFromEnvironment = (opts.fromEnvironment as Set<string> | undefined)?.has('role');
    if (roleFromEnvironment && ['api', 'worker', 'all'].includes(opts.role)) opts.role = undefined;
    if (!opts.role) throw new UsageError('name the key\'s role', { hint: 'alloy serve keys create --role admin|ingest|read' });
    const { state } = await openServe(where, ctx.env);
    try {
      const { key, record } = await createApiKey(state, opts.role, opts.name, ctx.now().getTime());
      if (ctx.json) ctx.printJson({ ok: true, id: record.id, role: record.role, key });
      else {
        ctx.out(key);
        ctx.note(`created ${record.role} key ${record.id}; it is shown once, only its hash is stored`);
      }
    } finally {
      await state.close();
    }
    return 0;
  }
  if (verb === 'list') {
    const { state } = await openServe(where, ctx.env);
    try {
      const keys = (await state.apiKeys.list()).map((k) => ({ id: k.id, role: k.role, ...(k.name ? { name: k.name } : {}), createdAt: k.createdAt }));
      if (ctx.json) ctx.printJson({ ok: true, keys });
      else for (const k of keys) ctx.out(`${k.id}  ${k.role.padEnd(6)}  ${k.createdAt}${k.name ? `  ${k.name}` : ''}`);
    } finally {
      await state.close();
    }
    return 0;
  }
  if (verb === 'delete') {
    // A leaked key must be revocable; the running server sees the delete on its next request.
    const id: string | undefined = args[2]?.trim();
    if (!id || args.length > 3) throw new UsageError('name one key to delete', { hint: 'alloy serve keys delete <key id> (ids from `alloy serve keys list`)' });
    // Never echoed: a key pasted here (with spaces around it, or inside other text) is a secret
    // that would land in the terminal or CI log.
    if (id.includes('alk_')) throw new UsageError('give the key\'s id, not the key itself', { hint: 'alloy serve keys list shows the ids (key_…); the key is not stored, only its hash.' });
    const { state } = await openServe(where, ctx.env);
    try {
      if (!(await state.apiKeys.delete(id))) throw new AlloyError('E_NOT_FOUND', `no API key ${JSON.stringify(id)}`, { hint: 'List the keys with `alloy serve keys list`; give the id (key_…), not the key itself.' });
      if (ctx.json) ctx.printJson({ ok: true, deleted: id });
      else ctx.out(`deleted key ${id}; requests with it are refused (401) from now on`);
    } finally {
      await state.close();
    }
    return 0;
  }
  if (verb === 'rotate') {
    const r = await rotateMasterKey(where, ctx.env);
    if (ctx.json) ctx.printJson({ ok: true, ...r });
    else ctx.out(`master key ${r.kid}: re-wrapped ${r.credentials} credential(s) and ${r.installations} installation config(s)`);
    return 0;
  }
  throw new UsageError(`unknown keys action "${verb ?? ''}"`, { hint: 'alloy serve keys create --role admin|ingest|read, alloy serve keys list, alloy serve keys delete <id>, or alloy serve keys rotate' });
}

/** `alloy serve migrate`: applies the PostgreSQL schema's missing migrations, then exits. */
async function migrateCommand(ctx: CliContext, opts: Record<string, any>): Promise<number> {
  const loc = await locate(ctx);
  const where = serveLocation(ctx, opts, loc);
  if (!where.database) throw new UsageError('alloy serve migrate is for PostgreSQL', { hint: 'Pass --database postgres://… (or set serve.database); SQLite state needs no migrating.' });
  const { migrateDatabase } = await import('../../serve/state/pg-state.js');
  const report = await migrateDatabase({ url: where.database, schema: where.schema });
  const applied = report.applied.map((m) => ({ id: m.id, name: m.name }));
  if (ctx.json) ctx.printJson({ ok: true, schema: report.schema, applied, current: report.current });
  else if (applied.length) ctx.out(`schema ${report.schema}: applied ${applied.map((m) => `${m.id} (${m.name})`).join(', ')}; now at ${report.current}`);
  else ctx.out(`schema ${report.schema}: up to date at migration ${report.current}`);
  return 0;
}

/** `serve.oauth.redirectOrigins` of the config: a list, or one comma-separated string. */
function configRedirectOrigins(loc: Located | undefined): string | string[] | undefined {
  const v = ((loc?.config.serve as { oauth?: { redirectOrigins?: unknown } } | undefined)?.oauth)?.redirectOrigins;
  if (v === undefined) return undefined;
  // Written in the config but naming nothing is a mistake, not "no list" (parseRedirectOrigins refuses [] too).
  if (typeof v === 'string' && v.trim() === '') throw new UsageError('serve.oauth.redirectOrigins names no origin', { hint: 'List origins, like redirectOrigins: [https://app.example.com], or leave the setting out.' });
  if (typeof v === 'string' || (Array.isArray(v) && v.every((x) => typeof x === 'string'))) return v as string | string[];
  throw new UsageError('serve.oauth.redirectOrigins must be a list of origins', { hint: 'Write it as redirectOrigins: [https://app.example.com] in alloy.config.' });
}

function positiveInt(value: unknown, flag: string): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new UsageError(`${flag} ${value} is not a positive whole number`, { hint: `Give ${flag} a number like 16.` });
  return n;
}

export default async function serveCommand(ctx: CliContext, args: string[], opts: Record<string, any>): Promise<number> {
  if (args[0] === 'keys') return keysCommand(ctx, args, opts);
  if (args[0] === 'migrate' && args.length === 1) return migrateCommand(ctx, opts);
  if (args.length) throw new UsageError(`unknown serve action "${args[0]}"`, { hint: 'alloy serve [--data dir] [--database postgres://…] [--store dir|url], alloy serve migrate, or alloy serve keys create|list|rotate' });
  const port = opts.port === undefined ? DEFAULT_PORTS.serve : Number(opts.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new UsageError(`--port ${opts.port} is not a port number`, { hint: 'Use 0..65535 (0 picks a free port).' });
  const loc = await locate(ctx);
  const tokens = await storeTokens(ctx);
  const where = serveLocation(ctx, opts, loc);
  const { parsePublicUrl, parseRedirectOrigins } = await import('../../serve/oauth.js');
  const publicUrl = parsePublicUrl(opts.publicUrl, (opts.fromEnvironment as Set<string> | undefined)?.has('publicUrl') ? 'ALLOY_SERVE_PUBLIC_URL' : '--public-url');
  // Flag (or ALLOY_SERVE_OAUTH_REDIRECT_ORIGINS) over the config; checked before the store or the state is opened.
  // An empty flag or variable (a deployment template's placeholder) is unset: the config's list applies.
  const fromFlag = opts.oauthRedirectOrigins !== undefined
    ? parseRedirectOrigins(String(opts.oauthRedirectOrigins), (opts.fromEnvironment as Set<string> | undefined)?.has('oauthRedirectOrigins') ? 'ALLOY_SERVE_OAUTH_REDIRECT_ORIGINS' : '--oauth-redirect-origins')
    : undefined;
  const oauthRedirectOrigins = fromFlag ?? parseRedirectOrigins(configRedirectOrigins(loc), 'serve.oauth.redirectOrigins');
  const storeFlag: string | undefined = opts.store;
  let store: Store | undefined;
  let storeDir: string | undefined;
  if (storeFlag && isStoreUrl(storeFlag)) store = await openStore({ root: ctx.cwd, store: storeFlag, env: ctx.env });
  else if (storeFlag || !where.database) {
    // With --database and no --store, the store lives in the database too (below): one store for every process.
    if (storeFlag) storeDir = path.resolve(ctx.cwd, storeFlag);
    else if (loc) storeDir = path.resolve(loc.root, ((loc.config.store as { path?: string } | undefined)?.path) ?? DEFAULT_STORE_PATH);
    else throw new UsageError('no store to serve', { hint: 'Pass --store <dir|url>, --database postgres://… (the store in the database), or run inside an alloy project (its store.path).' });
    const local = new LocalStore(storeDir, { now: () => ctx.now() });
    await local.init();
    store = local;
  }
  const role = opts.role ?? 'all';
  if (role !== 'api' && role !== 'worker' && role !== 'all') throw new UsageError(`--role ${role} is not a serve role`, { hint: 'Use api, worker or all (admin/ingest/read are for `alloy serve keys create`).' });
  if (role !== 'all' && !where.database) throw new UsageError(`--role ${role} needs --database`, { hint: 'SQLite is owned by one process: run --role all, or give every process --database postgres://….' });
  const concurrency = positiveInt(opts.concurrency, '--concurrency');
  const recoverAfterSeconds = positiveInt(opts.recoverAfter, '--recover-after');
  const maxConnections = positiveInt(opts.maxConnections, '--max-connections');
  const { lockServeData, openServe } = await import('../../serve/admin.js');
  const { storeDefinitionSource } = await import('../../serve/definitions.js');
  const { startServeServer } = await import('../../serve/server.js');
  const log = (message: string, fields?: Record<string, unknown>) => ctx.note(`${new Date().toISOString()} ${message}${fields ? ` ${JSON.stringify(fields)}` : ''}`);
  const unlock = await lockServeData(where);
  let opened;
  try {
    opened = await openServe({ ...where, log }, ctx.env);
  } catch (err) {
    unlock();
    throw err;
  }
  const { state, keyring } = opened;
  if (!store) {
    const { PgStore } = await import('../../store/pg-store.js');
    store = new PgStore((state as import('../../serve/state/pg-state.js').PgServeState).pool, where.describe, { now: () => ctx.now() });
  }
  let storeHandler;
  if (tokens && store.kind !== 'remote') {
    const { createStoreRequestHandler } = await import('../../store/remote/server.js');
    storeHandler = createStoreRequestHandler({ store: store as import('../../store/remote/server.js').ServedStore, tokens });
  }
  // A failed start closes the state (startServeServer); the store is ours to close.
  const server = await startServeServer({
    state,
    keyring,
    source: storeDefinitionSource(store),
    settings: (loc?.config.apps ?? {}) as Record<string, AppSettings>,
    egress: { loopback: false, allow: ((loc?.config.egress as { allow?: string[] } | undefined)?.allow) },
    env: ctx.env,
    host: opts.host ?? '127.0.0.1',
    port,
    publicUrl,
    oauthRedirectOrigins,
    storeHandler,
    role,
    concurrency,
    recoverAfterSeconds,
    maxConnections,
    log,
  }).catch(async (err) => {
    await store!.close().catch(() => undefined);
    unlock();
    throw listenError(err, opts.host ?? '127.0.0.1', port) ?? err;
  });
  if (ctx.json) ctx.printJson({ ok: true, url: server.url, role, data: where.dataDir ?? null, state: where.database ? 'postgres' : 'sqlite', store: storeDir ?? store.location, api: `${server.url}/v1`, storeApi: storeHandler ? `${server.url}/v1/store` : null });
  else {
    ctx.out(`alloy serve${role === 'all' ? '' : ` (${role})`} listening on ${server.url} (${where.describe}, store ${storeDir ?? store.location})`);
    if (!storeHandler) ctx.note('note: the store API (/v1/store) is off; set ALLOY_SERVE_TOKENS to serve it');
  }
  if (opts.host && opts.host !== '127.0.0.1' && opts.host !== 'localhost' && opts.host !== '::1') {
    ctx.note('note: listening beyond this machine; put TLS in front of it (a reverse proxy) so keys and tokens are not sent in clear text');
  }
  await new Promise<void>((resolve) => {
    const stop = () => resolve();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  await server.close();
  await store.close();
  unlock();
  return 0;
}
