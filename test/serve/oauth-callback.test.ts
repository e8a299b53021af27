/**
 * The OAuth callback against an attacker: a replayed callback (state already taken), a
 * tampered query (hmac), a state started for another shop, re-signed with the app secret.
 */
import { createHmac } from 'node:crypto';
import { afterAll, expect, it } from 'vitest';
import { startFakeShopify } from '../../src/testing/fake-shopify.js';
import { call, cleanup, startTestServe } from './helpers.js';

afterAll(() => cleanup());

/** Shopify's callback signature: hex HMAC-SHA256 over the other parameters, sorted, as k=v joined by &. */
function signQuery(q: URLSearchParams, secret: string): URLSearchParams {
  const rest = [...q].filter(([k]) => k !== 'hmac' && k !== 'signature').sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const out = new URLSearchParams(rest);
  out.set('hmac', createHmac('sha256', secret).update(rest.map(([k, v]) => `${k}=${v}`).join('&')).digest('hex'));
  return out;
}

it('takes a state once, refuses a tampered query and a state started for another shop', async () => {
  const fake = await startFakeShopify();
  const serve = await startTestServe({ settings: { shopify: { baseUrl: fake.url } }, env: { SHOPIFY_API_KEY: fake.clientId, SHOPIFY_API_SECRET: fake.clientSecret } });
  try {
    expect((await call(serve.url, 'POST', '/v1/users', { token: serve.admin, body: { id: 'u1' } })).status).toBe(201);
    const begin = async (account: string) => {
      const start = await call(serve.url, 'POST', '/v1/oauth/shopify/start', { token: serve.admin, body: { userId: 'u1', account } });
      expect(start.status).toBe(201);
      const auth = await fetch(start.body.authorizeUrl, { redirect: 'manual' });
      return new URL(auth.headers.get('location')!);
    };
    // An app name that is a property of every object is no OAuth flow (it was a 501 naming __PROTO___API_KEY).
    for (const name of ['__proto__', 'constructor', 'toString']) {
      const r = await call(serve.url, 'POST', `/v1/oauth/${name}/start`, { token: serve.admin, body: { userId: 'u1', account: fake.shop } });
      expect([name, r.status]).toEqual([name, 404]);
    }
    // A bad shop at start names the body field it came from (it named a `?shop=` query parameter).
    const badStart = await call(serve.url, 'POST', '/v1/oauth/shopify/start', { token: serve.admin, body: { userId: 'u1', account: 'evil.example' } });
    expect(badStart.status).toBe(400);
    expect(badStart.body.error.message).toContain('`account`');
    expect(badStart.body.error.hint).not.toContain('?shop=');
    expect(badStart.body.error.details.fields).toEqual([{ path: '/account', message: 'is not a shop domain' }]);
    const callback = await begin(fake.shop);
    const errorCode = async (r: Response) => ((await r.json()) as { error: { code: string } }).error.code;

    // Tampered: another code under the original hmac.
    const tampered = new URL(callback);
    tampered.searchParams.set('code', 'attacker-code');
    const t = await fetch(tampered, { redirect: 'manual' });
    expect([t.status, await errorCode(t)]).toEqual([401, 'E_OAUTH_SIGNATURE']);

    const first = await fetch(callback, { redirect: 'manual' });
    expect(first.status).toBe(201);
    const replay = await fetch(callback, { redirect: 'manual' });
    expect([replay.status, await errorCode(replay)]).toEqual([400, 'E_OAUTH_STATE']);

    // A state started for shop A, completed for shop B (a validly signed callback for B).
    const other = await begin(fake.shop);
    other.searchParams.set('shop', 'someone-else.myshopify.com');
    const forB = new URL(other);
    forB.search = signQuery(other.searchParams, fake.clientSecret).toString();
    const b = await fetch(forB, { redirect: 'manual' });
    expect([b.status, await errorCode(b)]).toEqual([400, 'E_OAUTH_STATE']);
    // Only the one credential was stored.
    const creds = await call(serve.url, 'GET', '/v1/users/u1/credentials', { token: serve.admin });
    expect(creds.body.items).toHaveLength(1);
  } finally {
    await serve.close();
    await fake.close();
  }
});
