/**
 * The store server trusts nothing it is sent: definition objects are checked against the
 * schemas (400 with the diagnostics); the server records which token pushed a version beside
 * the client's claimed author; fsck reports every bad ref and keeps going.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { request } from 'undici';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { LocalStore, RemoteStore, createStoreServer, encodeObject, fsckStore, makeTokens, releaseIntegration, type StoreServer } from '../../src/store/index.js';
import { tokenFingerprint } from '../../src/store/remote/auth.js';
import { cleanupTempDirs, fixedClock, integration, tempDir, workflow } from '../store/helpers.js';

const WRITE = 'write-token-0123456789abcdef';
let server: StoreServer;
let url: string;
let backing: LocalStore;
const clients: RemoteStore[] = [];

beforeEach(async () => {
  backing = new LocalStore(await tempDir());
  server = createStoreServer({ store: backing, tokens: makeTokens([{ role: 'write', token: WRITE }]) });
  url = await server.listen();
});
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()));
  await server.close();
  await cleanupTempDirs();
});

async function http(method: string, p: string, body?: unknown) {
  const res = await request(`${url}/v1/store${p}`, {
    method: method as 'GET',
    headers: { authorization: `Bearer ${WRITE}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.body.text();
  return { status: res.statusCode, body: text ? JSON.parse(text) : undefined };
}

describe('store server re-validates uploads', () => {
  it('refuses a workflow object that breaks the schema or names a file:// URL, with the diagnostics, and stores nothing', async () => {
    const bad = encodeObject({
      type: 'workflow',
      def: { ...workflow('evil', [{ id: 'get', uses: 'http', with: { url: 'file:///etc/passwd', method: 'GET' } }]), bogus: true } as never,
    });
    const res = await http('POST', '/objects', { objects: [{ id: bad.id, data: bad.bytes.toString('utf8') }] });
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe('E_STORE_SCHEMA');
    const errors: string[] = res.body.error.details.invalid[0].errors;
    expect(errors.some((e) => e.includes('file:///etc/passwd'))).toBe(true);
    expect(errors.some((e) => e.includes('bogus') || e.includes('additional'))).toBe(true);
    expect(await backing.missingObjects([bad.id])).toEqual([bad.id]);
  });

  it('records which token pushed a version beside the claimed author', async () => {
    const store = new RemoteStore({ url, token: WRITE });
    clients.push(store);
    const r = await releaseIntegration(store, integration('shop', [workflow('a')]), { author: 'someone-else@forged', now: fixedClock() });
    const got = await http('GET', '/integrations/shop/versions/1');
    expect(got.body).toMatchObject({ version: 1, id: r.id, pushedBy: { by: `write:${tokenFingerprint(WRITE)}` } });
    expect(JSON.stringify(got.body)).not.toContain(WRITE);
  });
});

describe('fsck', () => {
  it('reports every bad ref and keeps going', async () => {
    const store = new LocalStore(await tempDir());
    await releaseIntegration(store, integration('shop', [workflow('a')]), { author: 'ci', now: fixedClock() });
    await releaseIntegration(store, integration('shop', [workflow('a'), workflow('b')]), { author: 'ci', now: fixedClock() });
    await releaseIntegration(store, integration('shop', [workflow('c')]), { author: 'ci', now: fixedClock() });
    const versions = path.join(store.refsDir('shop'), 'versions');
    await writeFile(path.join(versions, '1'), 'not an id\n');
    await writeFile(path.join(versions, '3'), 'also not an id\n');
    const report = await fsckStore(store);
    const badRefs = report.problems.filter((p) => p.code === 'E_STORE_BAD_REF').map((p) => p.path);
    expect(badRefs).toHaveLength(2);
    expect(badRefs.some((p) => p?.endsWith(path.join('versions', '1')))).toBe(true);
    expect(badRefs.some((p) => p?.endsWith(path.join('versions', '3')))).toBe(true);
  });

  it('against a served store (remote) reports every bad ref and keeps going, without the server\'s paths', async () => {
    await releaseIntegration(backing, integration('shop', [workflow('a')]), { author: 'ci', now: fixedClock() });
    await releaseIntegration(backing, integration('shop', [workflow('a'), workflow('b')]), { author: 'ci', now: fixedClock() });
    await releaseIntegration(backing, integration('shop', [workflow('c')]), { author: 'ci', now: fixedClock() });
    await releaseIntegration(backing, integration('other', [workflow('d')]), { author: 'ci', now: fixedClock() });
    const versions = path.join(backing.refsDir('shop'), 'versions');
    await writeFile(path.join(versions, '1'), 'not an id\n');
    await writeFile(path.join(versions, '3'), 'also not an id\n');
    const store = new RemoteStore({ url, token: WRITE });
    clients.push(store);
    const report = await fsckStore(store);
    const badRefs = report.problems.filter((p) => p.code === 'E_STORE_BAD_REF');
    expect(badRefs.map((p) => p.path).sort()).toEqual(['refs/shop/versions/1', 'refs/shop/versions/3']);
    expect(badRefs[0]?.message).toContain('does not hold an object id');
    expect(JSON.stringify(report)).not.toContain(backing.dir);
    // The rest was still checked: the good v2 of shop and the other integration.
    expect(report.versions).toBe(2);
    expect(report.integrations).toBe(2);
    // The plain listing (older clients, `alloy versions`) still fails on the bad ref as before.
    expect((await http('GET', '/integrations/shop/versions')).status).toBeGreaterThanOrEqual(400);
  });

  it('a version naming a missing object is 422 without the server\'s store path in the message or details', async () => {
    const id = 'a'.repeat(64);
    const res = await http('PUT', '/integrations/shop/versions/1', { id });
    expect([res.status, res.body.error.code]).toEqual([422, 'E_STORE_MISSING_OBJECT']);
    expect(res.body.error.details.object).toBe(id);
    expect(JSON.stringify(res.body)).not.toContain(backing.dir);
  });

  it('flags a stored definition that breaks the schema', async () => {
    const store = new LocalStore(await tempDir());
    const bad = encodeObject({ type: 'workflow', def: { ...workflow('x', [{ id: 'g', uses: 'http', with: { url: 'file:///etc/passwd' } }]) } as never });
    await store.putObjects([bad]);
    await mkdir(path.join(store.dir, 'refs'), { recursive: true });
    const report = await fsckStore(store);
    expect(report.problems.some((p) => p.code === 'E_STORE_SCHEMA' && p.object === bad.id)).toBe(true);
  });
});
