/** Helpers for the `alloy serve` tests: a store with the example released, a server over a temp data folder, a JSON client. */
import { createRequire } from 'node:module';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import type { IntegrationDef, WorkflowDef } from '../../src/core/model.js';
import { LocalStore, publishVersion, releaseIntegration, type IntegrationSource, type Store } from '../../src/store/lib.js';
import { createApiKey } from '../../src/serve/admin.js';
import type { ExecutionRow, ServeState } from '../../src/serve/state/types.js';
import { makeKeyring, parseMasterKey } from '../../src/serve/crypto.js';
import { storeDefinitionSource } from '../../src/serve/definitions.js';
import { startServeServer, type ServeServer, type ServeServerOptions } from '../../src/serve/server.js';
import { openSqliteState } from '../../src/serve/state/sqlite-state.js';

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const EXAMPLE = path.join(REPO_ROOT, 'examples', 'shopify-sync', 'integrations', 'shopify-sync');

const dirs: string[] = [];
export function tempDir(prefix = 'alloy-serve-'): string {
  const d = mkdtempSync(path.join(tmpdir(), prefix));
  dirs.push(d);
  return d;
}
export function cleanup(): void {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
}

/** The example integration as a release source, optionally changed. */
export function exampleSource(change?: (def: IntegrationDef, workflows: Map<string, WorkflowDef>) => void): IntegrationSource {
  const def = parse(readFileSync(path.join(EXAMPLE, 'integration.yaml'), 'utf8')) as IntegrationDef;
  const workflows = new Map<string, WorkflowDef>();
  for (const f of readdirSync(path.join(EXAMPLE, 'workflows')).sort()) {
    const w = parse(readFileSync(path.join(EXAMPLE, 'workflows', f), 'utf8')) as WorkflowDef;
    workflows.set(w.name, w);
  }
  change?.(def, workflows);
  return { name: def.name, def, workflows: [...workflows].map(([name, d]) => ({ name, def: d })) };
}

export async function releaseAndPublish(store: Store, source: IntegrationSource, publish = true): Promise<number> {
  const r = await releaseIntegration(store, source, { author: 'test', now: () => new Date(), message: 'test' });
  if (publish) await publishVersion(store, { integration: source.name, selector: r.version }, { who: 'test' });
  return r.version;
}

export const MASTER = parseMasterKey(Buffer.alloc(32, 7).toString('base64'), 'test');

export interface TestServe {
  server: ServeServer;
  url: string;
  state: ServeState;
  store: LocalStore;
  dataDir: string;
  admin: string;
  key(role: 'admin' | 'ingest' | 'read'): Promise<string>;
  close(): Promise<void>;
}

export async function startTestServe(options: Partial<ServeServerOptions> & { store?: LocalStore } = {}): Promise<TestServe> {
  const dataDir = tempDir('alloy-serve-data-');
  const store = options.store ?? new LocalStore(tempDir('alloy-serve-store-'));
  await store.init();
  const state = options.state ?? openSqliteState(path.join(dataDir, 'serve.db'));
  const keyring = options.keyring ?? makeKeyring([MASTER]);
  // The fakes listen on loopback, which serve refuses by default: allow it as an operator would (egress.allow).
  const server = await startServeServer({ state, keyring, source: storeDefinitionSource(store), egress: { allow: ['127.0.0.1'] }, ...options });
  const key = async (role: 'admin' | 'ingest' | 'read') => (await createApiKey(state, role, undefined, Date.now())).key;
  return { server, url: server.url, state, store, dataDir, admin: await key('admin'), key, close: () => server.close() };
}

// ------------------------------------------------------------ the OpenAPI document

const require = createRequire(import.meta.url);
export const OPENAPI = JSON.parse(readFileSync(path.join(REPO_ROOT, 'schemas', 'serve-api.openapi.json'), 'utf8'));
const Ajv2020 = require('ajv/dist/2020.js').default;
const addFormats = require('ajv-formats').default;
const ajv = new Ajv2020({ strict: false, allErrors: true });
addFormats(ajv);
ajv.addSchema({ $id: 'openapi', components: OPENAPI.components });
const templates = Object.keys(OPENAPI.paths).map((t) => ({ t, re: new RegExp(`^${t.replace(/\{[^}]+\}/g, '[^/]+')}$`) }));

const compiled = new Map<string, any>();

/** The OpenAPI path template a request path belongs to. */
export function templateOf(pathname: string): string | undefined {
  return templates.find((x) => x.re.test(pathname.split('?')[0]))?.t;
}

/** Throws unless the answer is described by the document (status and JSON body schema). */
export function checkAgainstOpenApi(method: string, pathname: string, a: { status: number; body: unknown }): void {
  const t = templateOf(pathname);
  if (!t) throw new Error(`${method} ${pathname} is not in schemas/serve-api.openapi.json`);
  const op = OPENAPI.paths[t][method.toLowerCase()];
  if (!op) throw new Error(`${method} ${t} is not in schemas/serve-api.openapi.json`);
  const resp = op.responses[String(a.status)];
  if (!resp) throw new Error(`${method} ${t} answered ${a.status}, which the document does not list`);
  const schema = resp.content?.['application/json']?.schema;
  if (!schema) return;
  const json = JSON.stringify(schema).replaceAll('"#/components', '"openapi#/components');
  let validate = compiled.get(json);
  if (!validate) compiled.set(json, (validate = ajv.compile(JSON.parse(json))));
  if (!validate(a.body)) throw new Error(`${method} ${t} ${a.status} does not match the document: ${ajv.errorsText(validate.errors)}\n${JSON.stringify(a.body).slice(0, 500)}`);
}

export interface Answer {
  status: number;
  body: any;
  headers: Headers;
}

export async function call(url: string, method: string, pathname: string, opts: { token?: string; body?: unknown; headers?: Record<string, string> } = {}): Promise<Answer> {
  const headers: Record<string, string> = { ...opts.headers };
  if (opts.token) headers.authorization = `Bearer ${opts.token}`;
  if (opts.body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(url + pathname, { method, headers, body: opts.body === undefined ? undefined : JSON.stringify(opts.body), redirect: 'manual' });
  const text = await res.text();
  let body: unknown = text;
  try {
    body = text ? JSON.parse(text) : undefined;
  } catch {
    /* text */
  }
  // Every answer a test sees is checked against the OpenAPI document.
  checkAgainstOpenApi(method, pathname, { status: res.status, body });
  return { status: res.status, body, headers: res.headers };
}

export async function waitFor<T>(check: () => Promise<T | undefined | false> | T | undefined | false, what = 'the condition', ms = 10_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await check();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Every execution of `workflow` in the state, page by page. */
export async function allExecutions(state: ServeState, workflow: string): Promise<ExecutionRow[]> {
  const out: ExecutionRow[] = [];
  let after: string | undefined;
  do {
    const p = await state.executions.list({ workflow }, { limit: 200, after });
    out.push(...p.items);
    after = p.next;
  } while (after);
  return out;
}

// ------------------------------------------------------------ OAuth, as a browser and the customer's page

/** The customer's page the callback sends the browser to (never fetched: the tests read the Location). */
export const CONNECTED_PAGE = 'https://app.example.com/connected';

/**
 * Starts an OAuth flow with `token` for `userId` and plays the shop admin's browser: the
 * (fake) authorize page, then serve's callback. Returns the connect token from the redirect.
 */
export async function approveOAuth(url: string, token: string, userId: string, account: string, redirectAfter = CONNECTED_PAGE): Promise<string> {
  const start = await call(url, 'POST', '/v1/oauth/shopify/start', { token, body: { userId, account, redirectAfter } });
  if (start.status !== 201) throw new Error(`oauth start: ${start.status} ${JSON.stringify(start.body)}`);
  const auth = await fetch(start.body.authorizeUrl, { redirect: 'manual' });
  const back = new URL(auth.headers.get('location')!);
  const cb = await call(url, 'GET', back.pathname + back.search);
  if (cb.status !== 302) throw new Error(`oauth callback: ${cb.status} ${JSON.stringify(cb.body)}`);
  const to = new URL(cb.headers.get('location')!);
  if (to.origin + to.pathname !== new URL(redirectAfter).origin + new URL(redirectAfter).pathname) throw new Error(`oauth callback redirected to ${to}`);
  return to.searchParams.get('connectToken')!;
}

/** The whole flow: approved in the browser, completed by the customer's page with `token` (admin keys name `userId`). */
export async function connectShop(url: string, token: string, userId: string, account: string): Promise<Answer> {
  const connectToken = await approveOAuth(url, token, userId, account);
  return call(url, 'POST', '/v1/oauth/shopify/complete', { token, body: token.startsWith('alk_') ? { connectToken, userId } : { connectToken } });
}
