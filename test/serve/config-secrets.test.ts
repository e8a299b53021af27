/**
 * Per-installation config (declared, validated on install/update/upgrade, `{{ config.x }}` in
 * workflows, secret values masked and redacted), `alloy validate` checking config references,
 * and secrets at rest: a scan of the database files finds no token, refresh token or secret
 * config value in clear, and rotating the master key while serving keeps everything readable.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { WorkflowDef } from '../../src/core/model.js';
import { rotateMasterKey } from '../../src/serve/admin.js';
import { loadKeyring, makeKeyring } from '../../src/serve/crypto.js';
import { startFakeShopify } from '../../src/testing/fake-shopify.js';
import { LocalStore, type IntegrationSource } from '../../src/store/lib.js';
import { cli, integration, writeProject } from '../store/helpers.js';
import { approveOAuth, call, cleanup, connectShop, CONNECTED_PAGE, MASTER, releaseAndPublish, startTestServe, tempDir, waitFor } from './helpers.js';

const TOKEN_SECRET = 'sek-ret-config-value-4242';

function cfgIntegration(extraConfig: Record<string, unknown> = {}): IntegrationSource {
  const wf: WorkflowDef = {
    apiVersion: 'alloy/v1',
    kind: 'Workflow',
    name: 'ping',
    trigger: { event: 'acme.ping' },
    steps: [
      { id: 'order', uses: 'shopify/createOrder', with: { email: '{{ event.email }}', currency: 'EUR', lineItems: [{ title: '{{ config.tag }}', quantity: 1, price: 1 }] } },
      { id: 'show', uses: 'transform', with: { tag: '{{ config.tag }}', token: '{{ config.apiToken }}' } },
    ],
  };
  return integration('cfg', [wf], { config: { tag: { type: 'string', default: 'acme' }, apiToken: { type: 'string', secret: true, required: true }, ...extraConfig } as never });
}

/** Every byte of the data folder (database, WAL, shared memory). */
function dataBytes(dir: string): string {
  return readdirSync(dir)
    .filter((f) => f.startsWith('serve.db'))
    .map((f) => readFileSync(path.join(dir, f)).toString('latin1'))
    .join('\n');
}

afterAll(cleanup);

describe('config variables and secrets at rest', () => {
  it('alloy validate checks config references against the declared variables', async () => {
    const root = tempDir('alloy-cfg-project-');
    const src = cfgIntegration();
    (src.workflows[0].def.steps[1] as { with: Record<string, unknown> }).with.typo = '{{ config.tagg }}';
    await writeProject(root, [src]);
    const r = await cli(root, ['validate']);
    expect(r.code).toBe(2);
    expect(r.stdout + r.stderr).toContain('E_CONFIG_UNKNOWN');
    expect(r.stdout + r.stderr).toContain('did you mean "tag"?');
    (src.workflows[0].def.steps[1] as { with: Record<string, unknown> }).with.typo = '{{ config.tag }}';
    await writeProject(root, [src]);
    expect((await cli(root, ['validate'])).code).toBe(0);
  });

  it('validates config on install, update and upgrade; masks and redacts secret values; stores nothing in clear; rotates keys while serving', async () => {
    const fake = await startFakeShopify({ tokenTtlSeconds: 3600 });
    const dataDir = tempDir('alloy-serve-keys-');
    const keyring = loadKeyring({}, path.join(dataDir, 'master.keys'));
    const store = new LocalStore(tempDir('alloy-serve-store-'));
    await store.init();
    const serve = await startTestServe({ store, keyring, settings: { shopify: { baseUrl: fake.url } }, env: { SHOPIFY_API_KEY: fake.clientId, SHOPIFY_API_SECRET: fake.clientSecret }, oauthRedirectOrigins: [new URL(CONNECTED_PAGE).origin] });
    try {
      await releaseAndPublish(store, cfgIntegration());
      await call(serve.url, 'POST', '/v1/users', { token: serve.admin, body: { id: 'u1' } });
      // Connect through OAuth (the fake issues expiring tokens with refresh tokens).
      const cb = await connectShop(serve.url, serve.admin, 'u1', fake.shop);
      expect(cb.status).toBe(201);
      const credentialId = cb.body.credential.id;

      const missing = await call(serve.url, 'POST', '/v1/installations', { token: serve.admin, body: { userId: 'u1', integration: 'cfg', credentials: { shopify: credentialId } } });
      expect(missing.status).toBe(422);
      expect(missing.body.error.details.fields).toEqual([{ path: '/apiToken', message: 'is required' }]);
      const unknown = await call(serve.url, 'POST', '/v1/installations', { token: serve.admin, body: { userId: 'u1', integration: 'cfg', credentials: { shopify: credentialId }, config: { apiToken: 'x', colour: 'red' } } });
      expect(unknown.body.error.details.fields[0].path).toBe('/colour');
      // A `__proto__` key in the JSON is a name like any other: refused, not a way past `required` (it became the values' prototype).
      const proto = await call(serve.url, 'POST', '/v1/installations', { token: serve.admin, body: { userId: 'u1', integration: 'cfg', credentials: { shopify: credentialId }, config: JSON.parse('{"__proto__": {"apiToken": "x"}}') } });
      expect(proto.status).toBe(422);
      expect(proto.body.error.details.fields.map((f: { path: string }) => f.path).sort()).toEqual(['/__proto__', '/apiToken']);
      const inst = await call(serve.url, 'POST', '/v1/installations', { token: serve.admin, body: { userId: 'u1', integration: 'cfg', credentials: { shopify: credentialId }, config: { apiToken: TOKEN_SECRET } } });
      expect(inst.status).toBe(201);
      expect(inst.body.config).toEqual({ tag: 'acme', apiToken: '********' });
      const badPatch = await call(serve.url, 'PATCH', `/v1/installations/${inst.body.id}`, { token: serve.admin, body: { config: { tag: 5 } } });
      expect(badPatch.status).toBe(422);
      expect(badPatch.body.error.details.fields[0].path).toBe('/tag');
      const protoPatch = await call(serve.url, 'PATCH', `/v1/installations/${inst.body.id}`, { token: serve.admin, body: { config: JSON.parse('{"__proto__": {"tag": 5}}') } });
      expect(protoPatch.status).toBe(422);
      expect(protoPatch.body.error.details.fields[0].path).toBe('/__proto__');
      const patched = await call(serve.url, 'PATCH', `/v1/installations/${inst.body.id}`, { token: serve.admin, body: { config: { tag: 'vip' } } });
      expect(patched.body.config).toEqual({ tag: 'vip', apiToken: '********' });

      const ev = await call(serve.url, 'POST', '/v1/run/event', { token: serve.admin, body: { event: 'acme.ping', userId: 'u1', data: { email: 'a@example.com' } } });
      const done = await waitFor(async () => {
        const e = await call(serve.url, 'GET', `/v1/executions/${ev.body.executionIds[0]}`, { token: serve.admin });
        return ['succeeded', 'failed'].includes(e.body.status) ? e.body : undefined;
      }, 'the execution');
      expect(done.status, JSON.stringify(done)).toBe('succeeded');
      const show = done.steps.find((s: { id: string }) => s.id === 'show').output;
      expect(show.tag).toBe('vip');
      expect(JSON.stringify(done)).not.toContain(TOKEN_SECRET);
      expect(fake.ordersFor(fake.shop)[0].lineItems[0].title).toBe('vip');

      // Upgrade to a version whose config the installation does not satisfy: refused, stays on v1.
      await releaseAndPublish(store, cfgIntegration({ region: { type: 'string', required: true } }));
      const up = await call(serve.url, 'POST', `/v1/installations/${inst.body.id}/upgrade`, { token: serve.admin, body: {} });
      expect(up.status).toBe(422);
      expect(up.body.error.details.fields).toEqual([{ path: '/region', message: 'is required' }]);
      expect((await call(serve.url, 'GET', `/v1/installations/${inst.body.id}`, { token: serve.admin })).body.version).toBe(1);

      // A connection approved but not completed yet: its token set waits in oauth_states, sealed.
      const connectToken = await approveOAuth(serve.url, serve.admin, 'u1', fake.shop);
      const pendingRows = (await import('better-sqlite3')).default(path.join(serve.dataDir, 'serve.db'), { readonly: true });
      const docs = (pendingRows.prepare('SELECT nonce, doc FROM oauth_states').all() as { nonce: string; doc: string }[]);
      pendingRows.close();
      expect(docs.some((d) => d.nonce.startsWith('connect:') && JSON.parse(d.doc).pending?.secret?.kid)).toBe(true);

      // Nothing secret in clear in the database files.
      const bytes = dataBytes(serve.dataDir);
      const issued = fake.requests.filter((r) => r.path === '/admin/oauth/access_token').map((r) => r.status);
      expect(issued).toEqual([200, 200]);
      expect(bytes.includes(connectToken)).toBe(false);
      const tokenAnswer = fake.requests.find((r) => r.operation === 'orderCreate')!.headers['x-shopify-access-token'];
      expect(tokenAnswer).toMatch(/^shpat_/);
      for (const secret of [tokenAnswer, TOKEN_SECRET, fake.clientSecret]) expect(bytes.includes(secret), secret).toBe(false);
      expect(bytes).not.toMatch(/shprt_[0-9a-f]{32}/);
      expect(bytes).not.toMatch(/shpat_[0-9a-f]{32}/);

      // Rotate the master key while serving: every data key re-wrapped, everything still opens.
      const before = (await serve.state.credentials.get(credentialId))!.secret.kid;
      const rotated = await rotateMasterKey({ dataDir: serve.dataDir }, { ALLOY_MASTER_KEY_FILE: path.join(dataDir, 'master.keys') });
      expect(rotated).toMatchObject({ credentials: 1, installations: 1 });
      expect(rotated.kid).not.toBe(before);
      expect((await serve.state.credentials.get(credentialId))!.secret.kid).toBe(rotated.kid);
      const ev2 = await call(serve.url, 'POST', '/v1/run/event', { token: serve.admin, body: { event: 'acme.ping', userId: 'u1', data: { email: 'b@example.com' } } });
      await waitFor(async () => (await call(serve.url, 'GET', `/v1/executions/${ev2.body.executionIds[0]}`, { token: serve.admin })).body.status === 'succeeded', 'a run after rotation');
      expect((await call(serve.url, 'GET', `/v1/installations/${inst.body.id}`, { token: serve.admin })).body.config.tag).toBe('vip');
    } finally {
      await serve.close();
      await fake.close();
    }
  });

  it('refreshes an expiring token once under a per-credential lock, however many executions need it', async () => {
    const fake = await startFakeShopify({ tokenTtlSeconds: 3600 });
    const serve = await startTestServe({ settings: { shopify: { baseUrl: fake.url } }, env: { SHOPIFY_API_KEY: fake.clientId, SHOPIFY_API_SECRET: fake.clientSecret }, oauthRedirectOrigins: [new URL(CONNECTED_PAGE).origin] });
    try {
      await call(serve.url, 'POST', '/v1/users', { token: serve.admin, body: { id: 'u1' } });
      const cb = await connectShop(serve.url, serve.admin, 'u1', fake.shop);
      // The token is about to expire (inside the one-minute refresh margin).
      const stored = (await serve.state.credentials.get(cb.body.credential.id))!;
      await serve.state.credentials.put({ ...stored, expiresAt: new Date(Date.now() + 10_000).toISOString() });
      const { createConnections } = await import('../../src/serve/connections.js');
      const { shopifyManifest } = await import('../../src/connectors/builtin-manifests.js');
      const { createHttpClient } = await import('../../src/connectors/http-client.js');
      const conns = createConnections({ state: serve.state, keyring: makeKeyring([MASTER]), env: { SHOPIFY_API_KEY: fake.clientId, SHOPIFY_API_SECRET: fake.clientSecret }, settings: { shopify: { baseUrl: fake.url } }, http: createHttpClient(), now: Date.now });
      // Ten executions ask at once: the refresh token rotates, so a second refresh with the old one would fail.
      const all = await Promise.all(Array.from({ length: 10 }, () => conns.resolve(shopifyManifest, cb.body.credential.id, 'u1')));
      expect(fake.refreshes).toBe(1);
      expect(new Set(all.map((v) => v.accessToken)).size).toBe(1);
    } finally {
      await serve.close();
      await fake.close();
    }
  });
});
