import { readFile } from 'node:fs/promises';
import { request } from 'undici';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  LocalStore,
  RemoteStore,
  createStoreServer,
  encodeObject,
  fsckStore,
  loadRelease,
  makeTokens,
  publishVersion,
  releaseIntegration,
  rollbackPublished,
  planRelease,
  applyRelease,
  RaceLostError,
  VersionExistsError,
  PublishConflictError,
  type StoreServer,
} from '../../src/store/index.js';
import { cleanupTempDirs, fixedClock, integration, tempDir, workflow } from './helpers.js';

const READ = 'read-token-0123456789abcdef';
const WRITE = 'write-token-0123456789abcdef';
const opts = { author: 'ci', now: fixedClock() };

let server: StoreServer;
let url: string;
let backing: LocalStore;
const clients: RemoteStore[] = [];
const remote = (token = WRITE) => {
  const c = new RemoteStore({ url, token });
  clients.push(c);
  return c;
};

beforeEach(async () => {
  backing = new LocalStore(await tempDir());
  server = createStoreServer({ store: backing, tokens: makeTokens([{ role: 'read', token: READ }, { role: 'write', token: WRITE }]), limits: { maxJsonBytes: 4096, maxUploadBytes: 256 * 1024 } });
  url = await server.listen();
});
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()));
  await server.close();
  await cleanupTempDirs();
});

async function http(method: string, path: string, token: string | undefined, body?: unknown) {
  const res = await request(`${url}/v1/store${path}`, {
    method: method as 'GET',
    headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.body.text();
  return { status: res.statusCode, body: text ? JSON.parse(text) : undefined, headers: res.headers };
}

describe('remote store over HTTP', () => {
  it('binds 127.0.0.1 by default', () => {
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
  });

  it('release twice through the client: one version; objects land verified in the server store', async () => {
    const store = remote();
    const src = integration('shop', [workflow('a'), workflow('b')]);
    const r1 = await releaseIntegration(store, src, opts);
    expect(r1).toMatchObject({ status: 'released', version: 1, objectsWritten: 4 });
    expect(await releaseIntegration(store, src, opts)).toMatchObject({ status: 'up-to-date', version: 1, id: r1.id });
    // an edit pushes only the one missing workflow object plus the release
    const r2 = await releaseIntegration(store, integration('shop', [workflow('a', [{ id: 'x', uses: 'transform' }]), workflow('b')]), opts);
    expect(r2).toMatchObject({ version: 2, objectsWritten: 2 });
    expect((await fsckStore(backing)).errors).toBe(0);
    expect((await loadRelease(store, 'shop', { version: 1, id: r1.id })).workflows.size).toBe(2);
    expect((await fsckStore(store)).errors).toBe(0);
  });

  it('publish, rollback and the log work through the client', async () => {
    const store = remote();
    for (const n of ['a', 'b']) await releaseIntegration(store, integration('shop', [workflow(n)]), opts);
    await publishVersion(store, { integration: 'shop', selector: 1 }, { who: 'x' });
    await publishVersion(store, { integration: 'shop', selector: 2 }, { who: 'y' });
    expect((await rollbackPublished(store, 'shop', { who: 'z' })).ref.version).toBe(1);
    expect((await store.readPublishLog('shop')).map((e) => e.action)).toEqual(['publish', 'publish', 'rollback']);
    expect(await backing.readPublished('shop')).toMatchObject({ version: 1 });
  });

  it('401 without or with an unknown token, 403 for a read token writing', async () => {
    const none = await http('GET', '/integrations', undefined);
    expect(none.status).toBe(401);
    expect(none.headers['www-authenticate']).toMatch(/^Bearer/);
    expect(none.body.error.code).toBe('E_UNAUTHORIZED');
    expect((await http('GET', '/integrations', 'nope-nope-nope-nope')).status).toBe(401);
    expect((await http('GET', '/integrations', READ)).status).toBe(200);
    const o = encodeObject({ type: 'workflow', def: workflow('a') });
    const forbidden = await http('POST', '/objects', READ, { objects: [{ id: o.id, data: o.bytes.toString() }] });
    expect(forbidden.status).toBe(403);
    expect(forbidden.body.error.code).toBe('E_FORBIDDEN');
    expect(await backing.missingObjects([o.id])).toEqual([o.id]);
    // the client turns them into errors with a hint naming ALLOY_TOKEN
    await expect(remote('wrong-token-wrong-token').listIntegrations()).rejects.toMatchObject({ code: 'E_REMOTE_UNAUTHORIZED', hint: expect.stringContaining('ALLOY_TOKEN') });
    await expect(releaseIntegration(remote(READ), integration('shop', [workflow('a')]), opts)).rejects.toMatchObject({ code: 'E_REMOTE_FORBIDDEN' });
  });

  it('422 when an upload lies about its id; nothing is stored', async () => {
    const good = encodeObject({ type: 'workflow', def: workflow('a') });
    const liar = encodeObject({ type: 'workflow', def: workflow('b') });
    const res = await http('POST', '/objects', WRITE, { objects: [{ id: good.id, data: good.bytes.toString() }, { id: liar.id, data: good.bytes.toString().replace('acme.a', 'acme.evil') }] });
    expect(res.status).toBe(422);
    expect(res.body.error).toMatchObject({ code: 'E_STORE_HASH_MISMATCH', details: { mismatched: [liar.id] } });
    expect(await backing.missingObjects([good.id, liar.id])).toEqual([good.id, liar.id]);
    const invalid = encodeObject({ type: 'nope' } as never);
    expect((await http('POST', '/objects', WRITE, { objects: [{ id: invalid.id, data: invalid.bytes.toString() }] })).status).toBe(422);
  });

  it('negotiation answers which objects are missing', async () => {
    const a = encodeObject({ type: 'workflow', def: workflow('a') });
    const b = encodeObject({ type: 'workflow', def: workflow('b') });
    await backing.putObjects([a]);
    expect((await http('POST', '/objects/missing', READ, { ids: [a.id, b.id] })).body).toEqual({ missing: [b.id] });
    expect((await http('POST', '/objects/missing', READ, { ids: ['xyz'] })).status).toBe(400);
  });

  it('409 on creating an existing version; 422 on a version whose objects are missing', async () => {
    const r1 = await releaseIntegration(remote(), integration('shop', [workflow('a')]), opts);
    const res = await http('PUT', '/integrations/shop/versions/1', WRITE, { id: r1.id });
    expect(res.status).toBe(409);
    expect(res.body.error.code).toBe('E_STORE_VERSION_EXISTS');
    expect((await backing.readVersion('shop', 1)).id).toBe(r1.id);
    const missing = await http('PUT', '/integrations/shop/versions/2', WRITE, { id: 'a'.repeat(64) });
    expect(missing.status).toBe(422);
    expect((await http('GET', '/integrations/shop/versions', READ)).body.versions).toEqual([{ version: 1, id: r1.id }]);
  });

  it('409 on a stale compare-and-swap of published', async () => {
    const store = remote();
    const r1 = await releaseIntegration(store, integration('shop', [workflow('a')]), opts);
    const r2 = await releaseIntegration(store, integration('shop', [workflow('b')]), opts);
    const ok = await http('PUT', '/integrations/shop/published', WRITE, { expected: null, to: { version: 1, id: r1.id }, who: 'a' });
    expect(ok.status).toBe(200);
    const stale = await http('PUT', '/integrations/shop/published', WRITE, { expected: null, to: { version: 2, id: r2.id }, who: 'b' });
    expect(stale.status).toBe(409);
    expect(stale.body.error.code).toBe('E_STORE_PUBLISH_CONFLICT');
    await expect(store.movePublished('shop', { expected: null, to: { version: 2, id: r2.id }, action: 'publish', who: 'c' })).rejects.toBeInstanceOf(PublishConflictError);
    expect(await backing.readPublished('shop')).toEqual({ version: 1, id: r1.id });
  });

  it('413 on bodies over the limit, JSON errors on unknown routes and bad JSON', async () => {
    // Routes with small JSON bodies read at most maxJsonBytes (/objects/missing is sized by maxIds: remote-limits.test.ts).
    const big = await http('PUT', '/integrations/shop/published', WRITE, { expected: null, to: { version: 1, id: 'a'.repeat(64) }, pad: 'x'.repeat(10_000) });
    expect(big.status).toBe(413);
    expect(big.body.error.code).toBe('E_BODY_TOO_LARGE');
    expect((await http('GET', '/nope', READ)).body.error.code).toBe('E_NO_ROUTE');
    expect((await http('POST', '/objects/missing', READ, '{not json')).status).toBe(400);
    expect((await http('DELETE', '/integrations', WRITE)).status).toBe(405);
    expect((await http('GET', '/integrations/..%2Fetc/versions', READ)).status).toBe(400);
    expect((await http('GET', '/integrations/%E0%A4%A/versions', READ)).status).toBe(400);
    expect((await http('GET', `/objects/${'a'.repeat(64)}`, READ)).body.error.code).toBe('E_STORE_NOT_FOUND');
  });

  it('a corrupt object on the server is reported, not served', async () => {
    const r1 = await releaseIntegration(remote(), integration('shop', [workflow('a')]), opts);
    const file = backing.objectPath(r1.id);
    const { writeFile } = await import('node:fs/promises');
    await writeFile(file, (await readFile(file, 'utf8')).replace('"ci"', '"mallory"'));
    const res = await http('GET', `/objects/${r1.id}`, READ);
    expect(res.status).toBe(500);
    expect(res.body.error.code).toBe('E_STORE_CORRUPT');
    expect(JSON.stringify(res.body)).not.toContain(backing.dir);
    const report = await fsckStore(remote(READ));
    expect(report.problems.some((p) => p.code === 'E_STORE_CORRUPT')).toBe(true);
  });

  it('losing a race says so; a re-run releases the next version', async () => {
    const a = remote();
    const b = remote();
    const planA = await planRelease(a, integration('shop', [workflow('a')]));
    const planB = await planRelease(b, integration('shop', [workflow('b')]));
    // No shared lock over HTTP: make B's version land between A's plan and A's createVersion.
    await applyRelease(b, planB, opts);
    const orig = a.latestVersion.bind(a);
    let first = true;
    a.latestVersion = async (i) => (first ? ((first = false), null) : orig(i)); // A still believes there is no v1
    const err = await applyRelease(a, planA, opts).catch((e) => e);
    expect(err).toBeInstanceOf(RaceLostError);
    expect(err.message).toMatch(/another release created shop v1/);
    expect(err.hint).toMatch(/Re-run/);
    a.latestVersion = orig;
    expect(await releaseIntegration(a, integration('shop', [workflow('a')]), opts)).toMatchObject({ status: 'released', version: 2 });
    const v1 = await a.readVersion('shop', 1);
    await expect(a.createVersion('shop', v1)).rejects.toBeInstanceOf(VersionExistsError);
  });
});
