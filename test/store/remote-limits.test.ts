/**
 * The remote store's size rules: negotiation of many ids (client batches, server reads the
 * route with a limit sized by maxIds), the version chain enforced over HTTP, and a cap on
 * the response bodies the client reads.
 */
import { createHash } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { request } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import {
  LocalStore,
  RemoteStore,
  createStoreServer,
  encodeObject,
  fsckStore,
  makeTokens,
  releaseIntegration,
  type StoreServer,
} from '../../src/store/index.js';
import { DEFAULT_LIMITS } from '../../src/store/remote/server.js';
import { DEFAULT_MAX_RESPONSE_BYTES } from '../../src/store/remote/client.js';
import { cleanupTempDirs, fixedClock, integration, tempDir, workflow } from './helpers.js';

const WRITE = 'write-token-0123456789abcdef';
const servers: { close(): Promise<void> }[] = [];
const clients: RemoteStore[] = [];

async function storeServer(limits: Partial<typeof DEFAULT_LIMITS> = {}): Promise<{ backing: LocalStore; url: string; server: StoreServer }> {
  const backing = new LocalStore(await tempDir());
  await backing.init();
  const server = createStoreServer({ store: backing, tokens: makeTokens([{ role: 'write', token: WRITE }]), limits });
  servers.push(server);
  return { backing, url: await server.listen(), server };
}
const client = (url: string, extra: Partial<ConstructorParameters<typeof RemoteStore>[0]> = {}) => {
  const c = new RemoteStore({ url, token: WRITE, ...extra });
  clients.push(c);
  return c;
};
const fakeIds = (n: number, salt = '') => Array.from({ length: n }, (_, i) => createHash('sha256').update(`${salt}${i}`).digest('hex'));

afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()));
  await Promise.all(servers.splice(0).map((s) => s.close()));
  await cleanupTempDirs();
});

describe('negotiating many ids', () => {
  it('missingObjects with 2,500 ids works against a server with default limits, and finds the ones it has', async () => {
    const { backing, url } = await storeServer();
    const present = [encodeObject({ type: 'workflow', def: workflow('a') }), encodeObject({ type: 'workflow', def: workflow('b') })];
    await backing.putObjects(present);
    const ids = [...fakeIds(2500), ...present.map((o) => o.id)];
    const missing = await client(url).missingObjects(ids);
    expect(missing).toHaveLength(2500);
    expect(new Set(missing)).toEqual(new Set(ids.slice(0, 2500)));
  });

  it('the client batches: a server allowing 1,000 ids per request still answers for 2,500', async () => {
    const { url } = await storeServer({ maxIds: 1000 });
    expect(await client(url).missingObjects(fakeIds(2500))).toHaveLength(2500);
  });

  it('the server takes one request of 5,000 ids (docs: up to maxIds) and refuses maxIds + 1 with 413', async () => {
    const { url } = await storeServer({ maxIds: 5000 });
    const post = async (ids: string[]) => {
      const res = await request(`${url}/v1/store/objects/missing`, {
        method: 'POST',
        headers: { authorization: `Bearer ${WRITE}`, 'content-type': 'application/json' },
        body: JSON.stringify({ ids }),
      });
      return { status: res.statusCode, body: (await res.body.json()) as any };
    };
    const ok = await post(fakeIds(5000));
    expect(ok.status).toBe(200);
    expect(ok.body.missing).toHaveLength(5000);
    const over = await post(fakeIds(5001));
    expect(over.status).toBe(413);
    expect(over.body.error.code).toBe('E_BODY_TOO_LARGE');
  });

  it('a release of 1,000 workflows through the client lands whole in the server store', async () => {
    const { backing, url } = await storeServer();
    const src = integration('big', Array.from({ length: 1000 }, (_, i) => workflow(`w${i}`)));
    const r = await releaseIntegration(client(url), src, { author: 'ci', now: fixedClock() });
    expect(r).toMatchObject({ status: 'released', version: 1, objectsWritten: 1002 });
    expect((await fsckStore(backing)).errors).toBe(0);
  }, 60_000);
});

describe('version chain over HTTP', () => {
  it('PUT versions/<n> with a gap or a parent that is not v<n-1> is 422 E_STORE_BAD_RELEASE; fsck stays clean', async () => {
    const { backing, url } = await storeServer();
    const remote = client(url);
    const src = integration('shop', [workflow('a')]);
    const r1 = await releaseIntegration(remote, src, { author: 'a', now: fixedClock() });
    const intObj = encodeObject({ type: 'integration', def: src.def });
    const release = (version: number, parent: string | null) =>
      encodeObject({ type: 'release', integration: 'shop', version, parent, integrationObject: intObj.id, workflows: {}, message: '', author: 'x', time: '2026-01-01T00:00:00.000Z' } as any);
    const gap = release(7, null);
    const badParent = release(2, null);
    await remote.putObjects([gap, badParent]);
    await expect(remote.createVersion('shop', { version: 7, id: gap.id })).rejects.toMatchObject({ code: 'E_STORE_BAD_RELEASE', status: 422 });
    await expect(remote.createVersion('shop', { version: 2, id: badParent.id })).rejects.toMatchObject({ code: 'E_STORE_BAD_RELEASE', status: 422 });
    expect((await remote.latestVersion('shop'))?.version).toBe(r1.version);
    expect((await fsckStore(backing)).errors).toBe(0);
  });
});

describe('response bodies the client reads are capped', () => {
  async function hugeServer(body: Buffer, declareLength: boolean): Promise<string> {
    const server = http.createServer((req, res) => {
      res.writeHead(200, { 'content-type': 'application/json', ...(declareLength ? { 'content-length': body.length } : {}) });
      // Written in pieces so an undeclared length arrives chunked.
      for (let i = 0; i < body.length; i += 4096) res.write(body.subarray(i, i + 4096));
      res.end();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    servers.push({ close: () => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); }) });
    return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  }
  const big = Buffer.from(JSON.stringify({ integrations: Array.from({ length: 4000 }, (_, i) => `int-${i}`) }));

  it.each([
    ['declared with content-length', true],
    ['streamed without a length', false],
  ])('a body over maxResponseBytes is refused (%s)', async (_name, declared) => {
    const url = await hugeServer(big, declared as boolean);
    const err = await client(url, { maxResponseBytes: 8 * 1024 }).listIntegrations().catch((e) => e);
    expect(err).toMatchObject({ code: 'E_REMOTE_RESPONSE_TOO_LARGE' });
    expect(err.message).toContain(`${8 * 1024} bytes`);
    // The same answer under the cap is read whole.
    const ok = await client(url, { maxResponseBytes: big.length }).listIntegrations();
    expect(ok).toHaveLength(4000);
  });

  it('the default cap fits anything the server stores (twice its upload limit)', () => {
    expect(DEFAULT_MAX_RESPONSE_BYTES).toBeGreaterThanOrEqual(2 * DEFAULT_LIMITS.maxUploadBytes);
  });
});

describe('messages of malformed bodies', () => {
  it('a publish without `to`, or a non-object in `objects`, names that field (it said "the body must be a JSON object" of a JSON object)', async () => {
    const { url } = await storeServer();
    const put = await fetch(`${url}/v1/store/integrations/shop/published`, { method: 'PUT', headers: { authorization: `Bearer ${WRITE}`, 'content-type': 'application/json' }, body: JSON.stringify({ version: 1 }) });
    expect(put.status).toBe(400);
    expect(((await put.json()) as { error: { message: string } }).error.message).toBe('`to` ({ version, id }) must be a JSON object');
    const post = await fetch(`${url}/v1/store/objects`, { method: 'POST', headers: { authorization: `Bearer ${WRITE}`, 'content-type': 'application/json' }, body: JSON.stringify({ objects: [1] }) });
    expect(post.status).toBe(400);
    expect(((await post.json()) as { error: { message: string } }).error.message).toBe('each item of `objects` must be a JSON object');
  });
});
