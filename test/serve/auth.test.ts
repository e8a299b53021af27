/**
 * Every route of the Embedded API against every kind of caller: no token, a wrong token, an
 * expired user token, an API key of the wrong role, and another user's token. Also: the
 * OpenAPI document lists exactly the routes the server mounts.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SERVE_ROUTES } from '../../src/serve/server.js';
import { signUserToken } from '../../src/serve/auth.js';
import { makeKeyring } from '../../src/serve/crypto.js';
import { startFakeShopify, type FakeShopify } from '../../src/testing/fake-shopify.js';
import { call, cleanup, exampleSource, MASTER, OPENAPI, releaseAndPublish, startTestServe, waitFor, type TestServe } from './helpers.js';

describe('alloy serve: authentication and authorization on every route', () => {
  let serve: TestServe;
  let fake: FakeShopify;
  let ids: Record<string, string>;
  let keys: Record<'admin' | 'ingest' | 'read', string>;
  let tokenA: string;
  let tokenB: string;

  beforeAll(async () => {
    fake = await startFakeShopify();
    serve = await startTestServe({ settings: { shopify: { baseUrl: fake.url } }, env: { SHOPIFY_API_KEY: fake.clientId, SHOPIFY_API_SECRET: fake.clientSecret } });
    await releaseAndPublish(serve.store, exampleSource());
    keys = { admin: serve.admin, ingest: await serve.key('ingest'), read: await serve.key('read') };
    for (const id of ['user-a', 'user-b']) await call(serve.url, 'POST', '/v1/users', { token: keys.admin, body: { id } });
    tokenA = (await call(serve.url, 'POST', '/v1/users/user-a/token', { token: keys.admin })).body.token;
    tokenB = (await call(serve.url, 'POST', '/v1/users/user-b/token', { token: keys.admin })).body.token;
    // The backend vouches for the shop (a user token may not name an account: see below).
    const cred = await call(serve.url, 'POST', '/v1/users/user-a/credentials', { token: keys.admin, body: { app: 'shopify', kind: 'token', account: fake.shop, fields: { accessToken: fake.accessToken } } });
    expect(cred.status).toBe(201);
    expect(JSON.stringify(cred.body)).not.toContain(fake.accessToken);
    const inst = await call(serve.url, 'POST', '/v1/installations', { token: tokenA, body: { userId: 'user-a', integration: 'shopify-sync', credentials: { shopify: cred.body.id } } });
    const ev = await call(serve.url, 'POST', '/v1/run/event', { token: keys.ingest, body: { event: 'acme.order.requested', userId: 'user-a', data: { orderId: '1', email: 'a@example.com', lineItems: [{ title: 'x', quantity: 1, price: 1 }] } } });
    await waitFor(async () => (await call(serve.url, 'GET', `/v1/executions/${ev.body.executionIds[0]}`, { token: keys.admin })).body.status === 'succeeded', 'the execution');
    ids = { userId: 'user-a', credentialId: cred.body.id, installationId: inst.body.id, executionId: ev.body.executionIds[0], app: 'shopify', integration: 'shopify-sync' };
  });

  afterAll(async () => {
    await serve?.close();
    await fake?.close();
    cleanup();
  });

  it('the OpenAPI document lists exactly the mounted routes', () => {
    const mounted = SERVE_ROUTES.map((r) => `${r.method} ${r.path.replace(/:([A-Za-z]+)/g, '{$1}')}`).sort();
    const documented = Object.entries(OPENAPI.paths as Record<string, Record<string, unknown>>)
      .flatMap(([p, ops]) => Object.keys(ops).filter((m) => m !== 'parameters').map((m) => `${m.toUpperCase()} ${p}`))
      .sort();
    expect(documented).toEqual(mounted);
    for (const r of SERVE_ROUTES) {
      const op = OPENAPI.paths[r.path.replace(/:([A-Za-z]+)/g, '{$1}')][r.method.toLowerCase()];
      const access = r.access === 'public' ? 'public' : ['admin', ...r.access].filter((a, i, all) => all.indexOf(a) === i).sort();
      expect(op['x-alloy-access'] === 'public' ? 'public' : [...op['x-alloy-access']].sort(), `${r.method} ${r.path}`).toEqual(access);
    }
  });

  it("each route's body fields are its OpenAPI request schema's properties, and any other field is 400 naming it", async () => {
    for (const r of SERVE_ROUTES) {
      const op = OPENAPI.paths[r.path.replace(/:([A-Za-z]+)/g, '{$1}')][r.method.toLowerCase()];
      const schema = op.requestBody?.content?.['application/json']?.schema;
      const documented = schema?.properties ? Object.keys(schema.properties).sort() : undefined;
      expect(r.fields ? [...r.fields].sort() : undefined, `${r.method} ${r.path}`).toEqual(documented);
      if (documented) expect(schema.additionalProperties, `${r.method} ${r.path}`).toBe(false);
    }
    for (const r of SERVE_ROUTES.filter((x) => x.fields)) {
      const res = await call(serve.url, r.method, concrete(r.path), { token: keys.admin, body: { zzUnknown: 1, ttl: -5 } });
      expect([res.status, res.body.error?.code], `${r.method} ${r.path}`).toEqual([400, 'E_BAD_REQUEST']);
      expect(res.body.error.details.fields.map((f: { path: string }) => f.path), `${r.method} ${r.path}`).toEqual(['/zzUnknown', '/ttl']);
    }
  });

  const concrete = (p: string) => p.replace(/:([A-Za-z]+)/g, (_m, n: string) => encodeURIComponent(ids[n]));
  const protectedRoutes = () => SERVE_ROUTES.filter((r) => r.access !== 'public');

  it('refuses no token, unknown keys, forged and expired user tokens with 401 on every protected route', async () => {
    const other = makeKeyring([{ kid: MASTER.kid, key: Buffer.alloc(32, 9) }]);
    const forged = (await signUserToken(other, 'user-a', 600, Date.now())).token;
    const expired = (await signUserToken(makeKeyring([MASTER]), 'user-a', 60, Date.now() - 3600_000)).token;
    for (const r of protectedRoutes()) {
      for (const token of [undefined, 'alk_admin_not-a-real-key', 'garbage', forged, expired]) {
        const a = await call(serve.url, r.method, concrete(r.path), { token, body: r.method === 'GET' || r.method === 'DELETE' ? undefined : {} });
        expect(a.status, `${r.method} ${r.path} with ${token ?? 'no token'}`).toBe(401);
        expect(a.body.error.code).toBe('E_UNAUTHORIZED');
      }
    }
  });

  it('refuses API keys of the wrong role with 403', async () => {
    for (const r of protectedRoutes()) {
      const access = r.access as readonly string[];
      for (const role of ['ingest', 'read'] as const) {
        if (access.includes(role)) continue;
        const a = await call(serve.url, r.method, concrete(r.path), { token: keys[role], body: r.method === 'GET' || r.method === 'DELETE' ? undefined : {} });
        expect(a.status, `${r.method} ${r.path} with a ${role} key`).toBe(403);
        expect(a.body.error.code).toBe('E_FORBIDDEN');
      }
    }
  });

  it('a user token reaches only its own user: another user\'s resources are 404, backend-only routes 403', async () => {
    // The event stream stays open; its scoping to the caller is tested in web-ui-stream.test.ts.
    for (const r of protectedRoutes().filter((x) => x.path !== '/v1/stream')) {
      const access = r.access as readonly string[];
      const all: Record<string, unknown> = { userId: 'user-a', account: fake.shop, integration: 'shopify-sync', app: 'shopify', kind: 'token' };
      // Only the route's own fields (any other is a 400 of its own, before ownership is looked at).
      const body = r.method === 'GET' || r.method === 'DELETE' ? undefined : Object.fromEntries(Object.entries(all).filter(([k]) => !r.fields || r.fields.includes(k)));
      const a = await call(serve.url, r.method, concrete(r.path), { token: tokenB, body });
      if (!access.includes('user')) {
        expect(a.status, `${r.method} ${r.path} with a user token`).toBe(403);
        continue;
      }
      // Lists scoped to the caller are 200 with only the caller's items.
      if (r.path === '/v1/installations' && r.method === 'GET') {
        expect(a.body.items).toEqual([]);
        continue;
      }
      if (r.path === '/v1/executions' && r.method === 'GET') {
        expect(a.body.items).toEqual([]);
        continue;
      }
      expect(a.status, `${r.method} ${r.path} with another user's token`).toBe(404);
    }
    // And nothing of user-a changed.
    expect((await call(serve.url, 'GET', `/v1/installations/${ids.installationId}`, { token: tokenA })).body.status).toBe('active');
    expect((await call(serve.url, 'GET', '/v1/users/user-a/credentials', { token: tokenA })).body.items).toHaveLength(1);
  });

  it('a user token cannot claim a shop: webhooks are routed by account, so another shop\'s deliveries would run (and be readable) under its installations', async () => {
    const claim = await call(serve.url, 'POST', '/v1/users/user-b/credentials', { token: tokenB, body: { app: 'shopify', kind: 'token', account: fake.shop, fields: { accessToken: 'guessed' } } });
    expect(claim.status).toBe(403);
    expect(claim.body.error.code).toBe('E_FORBIDDEN');
    expect(claim.body.error.hint).toContain('/v1/oauth/shopify/start');
    expect((await call(serve.url, 'GET', '/v1/users/user-b/credentials', { token: tokenB })).body.items).toEqual([]);
    // Nor name where requests go: `shop` (a non-secret connection field) becomes the connector's
    // host, so a user could point this server at an internal address and read the answer in
    // the execution record.
    const aim = await call(serve.url, 'POST', '/v1/users/user-b/credentials', { token: tokenB, body: { app: 'shopify', kind: 'token', fields: { shop: 'http://10.0.0.5:8080/internal?', accessToken: 'x' } } });
    expect(aim.status).toBe(403);
    expect(aim.body.error.details.fields).toEqual([{ path: '/fields/shop', message: 'may be set by an admin key only' }]);
    // Names every object has are not connection fields (they passed an \`in\` check).
    const inherited = await call(serve.url, 'POST', '/v1/users/user-b/credentials', { token: keys.admin, body: { app: 'shopify', kind: 'token', fields: { toString: 'x', accessToken: 'x' } } });
    expect(inherited.status).toBe(400);
    expect(inherited.body.error.details.fields).toEqual([{ path: '/fields/toString', message: 'is not a string connection field of shopify' }]);
    // A connector without connection fields says so (the hint was "Fields of http: .").
    const none = await call(serve.url, 'POST', '/v1/users/user-b/credentials', { token: keys.admin, body: { app: 'http', kind: 'token', fields: { token: 'x' } } });
    expect([none.status, none.body.error.hint]).toEqual([400, 'http takes no connection fields: send "fields": {}.']);
    // Without an account, and from the backend, credentials are taken as before.
    const plain = await call(serve.url, 'POST', '/v1/users/user-b/credentials', { token: tokenB, body: { app: 'shopify', kind: 'token', fields: { accessToken: 'x' } } });
    expect(plain.status).toBe(201);
    expect((await call(serve.url, 'DELETE', `/v1/credentials/${plain.body.id}`, { token: tokenB })).status).toBe(200);
  });

  it('public routes need no token; the OAuth callback and webhooks authenticate themselves', async () => {
    expect((await call(serve.url, 'GET', '/healthz')).status).toBe(200);
    expect((await call(serve.url, 'GET', '/readyz')).status).toBe(200);
    const m = await fetch(`${serve.url}/metrics`);
    expect(await m.text()).toContain('alloy_http_requests_total');
    expect((await call(serve.url, 'GET', '/v1/oauth/shopify/callback?code=x&state=y&shop=a.myshopify.com&hmac=00')).status).toBe(401);
    expect((await call(serve.url, 'POST', '/v1/webhooks/shopify', { body: {} })).status).toBe(401);
    expect((await call(serve.url, 'POST', '/v1/webhooks/nope', { body: {} })).status).toBe(404);
  });
  it('a server without the app secret answers webhooks 500 E_MISSING_SECRET, naming the variable, and stores nothing', async () => {
    const bare = await startTestServe({ settings: { shopify: { baseUrl: fake.url } }, env: {} });
    try {
      const body = JSON.stringify({ id: 1 });
      const a = await call(bare.url, 'POST', '/v1/webhooks/shopify', { body: JSON.parse(body), headers: { 'x-shopify-hmac-sha256': 'AAAA', 'x-shopify-topic': 'orders/create', 'x-shopify-shop-domain': 'a.myshopify.com' } });
      expect(a.status).toBe(500);
      expect(a.body.error.code).toBe('E_MISSING_SECRET');
      expect(JSON.stringify(a.body)).toContain('SHOPIFY_API_SECRET');
      expect((await bare.state.executions.list({}, { limit: 10 })).items).toEqual([]);
    } finally {
      await bare.close();
    }
  });
  it("a deleted user's token stops working, also after a new user takes the same id", async () => {
    expect((await call(serve.url, 'POST', '/v1/users', { token: keys.admin, body: { id: 'user-gone' } })).status).toBe(201);
    const old = (await call(serve.url, 'POST', '/v1/users/user-gone/token', { token: keys.admin })).body.token;
    expect((await call(serve.url, 'GET', '/v1/users/user-gone', { token: old })).status).toBe(200);
    expect((await call(serve.url, 'DELETE', '/v1/users/user-gone', { token: keys.admin })).status).toBe(200);
    expect((await call(serve.url, 'GET', '/v1/users/user-gone', { token: old })).status).toBe(401);
    await new Promise((r) => setTimeout(r, 5)); // a later createdAt, as any real re-creation has
    expect((await call(serve.url, 'POST', '/v1/users', { token: keys.admin, body: { id: 'user-gone' } })).status).toBe(201);
    expect((await call(serve.url, 'GET', '/v1/users/user-gone', { token: old })).status).toBe(401);
    const fresh = (await call(serve.url, 'POST', '/v1/users/user-gone/token', { token: keys.admin })).body.token;
    expect((await call(serve.url, 'GET', '/v1/users/user-gone', { token: fresh })).status).toBe(200);
  });
});
