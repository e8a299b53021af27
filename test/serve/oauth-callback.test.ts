/**
 * The OAuth flow against an attacker: a replayed callback (state already taken), a tampered
 * query (hmac), a state started for another shop, re-signed with the app secret; a user who
 * starts a flow for someone else's shop and has its admin approve it (the callback stores
 * nothing: only the user who started may complete, from the page the browser lands on); a
 * connect token that is one-time and expires; redirectAfter off the allowed origins.
 */
import { createHmac } from 'node:crypto';
import { existsSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { UsageError } from '../../src/errors.js';
import { parsePublicUrl, parseRedirectOrigins } from '../../src/serve/oauth.js';
import { MAX_LIVE_FLOWS } from '../../src/serve/api/credentials.js';
import { startFakeShopify } from '../../src/testing/fake-shopify.js';
import { runAlloy } from './binary.js';
import { approveOAuth, call, cleanup, CONNECTED_PAGE, startTestServe, tempDir } from './helpers.js';

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
  const serve = await startTestServe({ settings: { shopify: { baseUrl: fake.url } }, env: { SHOPIFY_API_KEY: fake.clientId, SHOPIFY_API_SECRET: fake.clientSecret }, oauthRedirectOrigins: [new URL(CONNECTED_PAGE).origin] });
  try {
    expect((await call(serve.url, 'POST', '/v1/users', { token: serve.admin, body: { id: 'u1' } })).status).toBe(201);
    const begin = async (account: string) => {
      const start = await call(serve.url, 'POST', '/v1/oauth/shopify/start', { token: serve.admin, body: { userId: 'u1', account, redirectAfter: CONNECTED_PAGE } });
      expect(start.status).toBe(201);
      const auth = await fetch(start.body.authorizeUrl, { redirect: 'manual' });
      return new URL(auth.headers.get('location')!);
    };
    // An app name that is a property of every object is no OAuth flow (it was a 501 naming __PROTO___API_KEY).
    for (const name of ['__proto__', 'constructor', 'toString']) {
      const r = await call(serve.url, 'POST', `/v1/oauth/${name}/start`, { token: serve.admin, body: { userId: 'u1', account: fake.shop, redirectAfter: CONNECTED_PAGE } });
      expect([name, r.status]).toEqual([name, 404]);
    }
    // A bad shop at start names the body field it came from (it named a `?shop=` query parameter).
    const badStart = await call(serve.url, 'POST', '/v1/oauth/shopify/start', { token: serve.admin, body: { userId: 'u1', account: 'evil.example', redirectAfter: CONNECTED_PAGE } });
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
    // Not connected yet: the browser goes to the customer's page with a connect token.
    expect(first.status).toBe(302);
    expect(first.headers.get('referrer-policy')).toBe('no-referrer');
    const landed = new URL(first.headers.get('location')!);
    expect(landed.origin + landed.pathname).toBe(CONNECTED_PAGE);
    const connectToken = landed.searchParams.get('connectToken')!;
    expect(connectToken).toMatch(/^alct_[A-Za-z0-9_-]{43}$/);
    expect(JSON.stringify(await first.json())).not.toMatch(/shpat_|alct_/);
    expect((await call(serve.url, 'GET', '/v1/users/u1/credentials', { token: serve.admin })).body.items).toHaveLength(0);
    const replay = await fetch(callback, { redirect: 'manual' });
    expect([replay.status, await errorCode(replay)]).toEqual([400, 'E_OAUTH_STATE']);

    // A state started for shop A, completed for shop B (a validly signed callback for B).
    const other = await begin(fake.shop);
    other.searchParams.set('shop', 'someone-else.myshopify.com');
    const forB = new URL(other);
    forB.search = signQuery(other.searchParams, fake.clientSecret).toString();
    const b = await fetch(forB, { redirect: 'manual' });
    expect([b.status, await errorCode(b)]).toEqual([400, 'E_OAUTH_STATE']);
    // The page completes it (the backend, naming its signed-in user).
    const done = await call(serve.url, 'POST', '/v1/oauth/shopify/complete', { token: serve.admin, body: { connectToken, userId: 'u1' } });
    expect(done.status).toBe(201);
    expect(done.body.credential).toMatchObject({ userId: 'u1', account: fake.shop, kind: 'oauth2' });
    // Only the one credential was stored.
    const creds = await call(serve.url, 'GET', '/v1/users/u1/credentials', { token: serve.admin });
    expect(creds.body.items).toHaveLength(1);
  } finally {
    await serve.close();
    await fake.close();
  }
});

describe('connecting a shop takes the user who started the flow', () => {
  const ALLOWED = new URL(CONNECTED_PAGE).origin;
  const complete = (url: string, token: string, body: Record<string, unknown>) => call(url, 'POST', '/v1/oauth/shopify/complete', { token, body });
  const userToken = async (url: string, admin: string, userId: string) => {
    expect((await call(url, 'POST', '/v1/users', { token: admin, body: { id: userId } })).status).toBe(201);
    return (await call(url, 'POST', `/v1/users/${userId}/token`, { token: admin })).body.token as string;
  };

  it("an attacker's flow approved by the victim shop's admin stores nothing for the attacker", async () => {
    const fake = await startFakeShopify();
    const serve = await startTestServe({ settings: { shopify: { baseUrl: fake.url } }, env: { SHOPIFY_API_KEY: fake.clientId, SHOPIFY_API_SECRET: fake.clientSecret }, oauthRedirectOrigins: [ALLOWED] });
    try {
      const mallory = await userToken(serve.url, serve.admin, 'mallory');
      const victim = await userToken(serve.url, serve.admin, 'victim');
      // Mallory cannot have the connect token sent to her own site.
      const own = await call(serve.url, 'POST', '/v1/oauth/shopify/start', { token: mallory, body: { userId: 'mallory', account: fake.shop, redirectAfter: 'https://mallory.example/steal' } });
      expect([own.status, own.body.error.details.fields]).toEqual([400, [{ path: '/redirectAfter', message: 'is not on an allowed origin' }]]);
      // She starts a flow for the victim's shop and has its admin open authorizeUrl: the
      // callback (once stored the token under mallory at once) sends the victim's browser to
      // the customer's page, where the victim is signed in.
      const connectToken = await approveOAuth(serve.url, mallory, 'mallory', fake.shop);
      expect((await serve.state.credentials.listByUser('mallory'))).toEqual([]);
      const refused = await complete(serve.url, victim, { connectToken });
      expect([refused.status, refused.body.error.code]).toEqual([403, 'E_FORBIDDEN']);
      // A backend naming its signed-in user is refused the same way; without a user it must name one.
      expect((await complete(serve.url, serve.admin, { connectToken, userId: 'victim' })).status).toBe(403);
      expect((await complete(serve.url, serve.admin, { connectToken })).body.error.details.fields).toEqual([{ path: '/userId', message: 'is required' }]);
      // A user token naming someone else is that user's 404, as everywhere.
      expect((await complete(serve.url, victim, { connectToken, userId: 'mallory' })).status).toBe(404);
      expect(await serve.state.credentials.listByUser('mallory')).toEqual([]);
      expect(await serve.state.credentials.listByUser('victim')).toEqual([]);
      expect(await serve.state.credentials.findByAccount('shopify', fake.shop)).toEqual([]);

      // The other way round: the victim's own flow, its connect token in mallory's hands.
      const own2 = await approveOAuth(serve.url, victim, 'victim', fake.shop);
      expect((await complete(serve.url, mallory, { connectToken: own2 })).status).toBe(403);
      // Refused without being used up: the victim completes it, once.
      const done = await complete(serve.url, victim, { connectToken: own2 });
      expect(done.status).toBe(201);
      expect(done.body.credential).toMatchObject({ userId: 'victim', account: fake.shop, kind: 'oauth2' });
      const again = await complete(serve.url, victim, { connectToken: own2 });
      expect([again.status, again.body.error.code]).toEqual([400, 'E_OAUTH_STATE']);
      // A token of one app is nothing to another's route, and a made-up token is nothing.
      const third = await approveOAuth(serve.url, victim, 'victim', fake.shop);
      expect((await call(serve.url, 'POST', '/v1/oauth/other/complete', { token: victim, body: { connectToken: third } })).status).toBe(400);
      expect((await complete(serve.url, victim, { connectToken: 'alct_made-up' })).status).toBe(400);
      // Reconnecting the same shop replaces the credential in place.
      const re = await complete(serve.url, victim, { connectToken: third });
      expect([re.status, re.body.credential.id]).toEqual([201, done.body.credential.id]);
      expect(await serve.state.credentials.listByUser('mallory')).toEqual([]);

      // A user deleted and made again under the same id meanwhile is another user: the old flow is gone.
      const before = await approveOAuth(serve.url, mallory, 'mallory', fake.shop);
      expect((await call(serve.url, 'DELETE', '/v1/users/mallory', { token: serve.admin })).status).toBe(200);
      await new Promise((r) => setTimeout(r, 5)); // a later createdAt
      const reborn = await userToken(serve.url, serve.admin, 'mallory');
      const stale = await complete(serve.url, reborn, { connectToken: before });
      expect([stale.status, stale.body.error.code]).toEqual([400, 'E_OAUTH_STATE']);
      expect(await serve.state.credentials.listByUser('mallory')).toEqual([]);
    } finally {
      await serve.close();
      await fake.close();
    }
  });

  /** A server whose clock runs `clock.skew` ms ahead, against a fake Shopify. */
  const startWithClock = async () => {
    const fake = await startFakeShopify();
    const clock = { skew: 0 };
    const serve = await startTestServe({ settings: { shopify: { baseUrl: fake.url } }, env: { SHOPIFY_API_KEY: fake.clientId, SHOPIFY_API_SECRET: fake.clientSecret }, now: () => Date.now() + clock.skew, oauthRedirectOrigins: [ALLOWED] });
    return { fake, serve, clock, close: async () => (await serve.close(), await fake.close()) };
  };

  it('a connect token expires after 10 minutes; expired states are swept by the next start', async () => {
    const { fake, serve, clock, close } = await startWithClock();
    try {
      await call(serve.url, 'POST', '/v1/users', { token: serve.admin, body: { id: 'u1' } });
      const stale = await approveOAuth(serve.url, serve.admin, 'u1', fake.shop);
      const fresh = await approveOAuth(serve.url, serve.admin, 'u1', fake.shop);
      clock.skew = 9 * 60_000;
      expect((await complete(serve.url, serve.admin, { connectToken: fresh, userId: 'u1' })).status).toBe(201);
      clock.skew = 10 * 60_000 + 1000;
      const late = await complete(serve.url, serve.admin, { connectToken: stale, userId: 'u1' });
      expect([late.status, late.body.error.code]).toEqual([400, 'E_OAUTH_STATE']);
      // The expired row (a sealed token set) is deleted when the next flow starts.
      const rows = async () => (await import('better-sqlite3')).default(`${serve.dataDir}/serve.db`, { readonly: true });
      let db = await rows();
      expect((db.prepare("SELECT count(*) AS n FROM oauth_states WHERE nonce LIKE 'connect:%'").get() as { n: number }).n).toBe(1);
      db.close();
      await call(serve.url, 'POST', '/v1/oauth/shopify/start', { token: serve.admin, body: { userId: 'u1', account: fake.shop, redirectAfter: CONNECTED_PAGE } });
      db = await rows();
      expect((db.prepare("SELECT count(*) AS n FROM oauth_states WHERE nonce LIKE 'connect:%'").get() as { n: number }).n).toBe(0);
      db.close();
    } finally {
      await close();
    }
  });

  it('a user may have 20 flows open: the 21st start is 429 until one expires, and other users are not held up', async () => {
    const { fake, serve, clock, close } = await startWithClock();
    try {
      const looping = await userToken(serve.url, serve.admin, 'looping');
      const other = await userToken(serve.url, serve.admin, 'other');
      const start = (token: string, userId: string) => call(serve.url, 'POST', '/v1/oauth/shopify/start', { token, body: { userId, account: fake.shop, redirectAfter: CONNECTED_PAGE } });
      for (let n = 0; n < MAX_LIVE_FLOWS; n++) expect((await start(looping, 'looping')).status).toBe(201);
      const refused = await start(looping, 'looping');
      expect([refused.status, refused.body.error.code]).toEqual([429, 'E_TOO_MANY_FLOWS']);
      expect(refused.body.error.hint).toContain('10 minutes');
      expect((await start(other, 'other')).status).toBe(201);
      // Expired flows no longer count (and the start sweeps them).
      clock.skew = 10 * 60_000 + 1000;
      expect((await start(looping, 'looping')).status).toBe(201);
    } finally {
      await close();
    }
  });

  it('redirectAfter is required, https (or http on localhost), on an allowed origin', async () => {
    const fake = await startFakeShopify();
    const env = { SHOPIFY_API_KEY: fake.clientId, SHOPIFY_API_SECRET: fake.clientSecret };
    const listed = await startTestServe({ settings: { shopify: { baseUrl: fake.url } }, env, oauthRedirectOrigins: `${ALLOWED}, http://localhost:3000` });
    const open = await startTestServe({ settings: { shopify: { baseUrl: fake.url } }, env });
    try {
      const start = (s: typeof open, token: string, redirectAfter?: string) => call(s.url, 'POST', '/v1/oauth/shopify/start', { token, body: { userId: 'u1', account: fake.shop, ...(redirectAfter === undefined ? {} : { redirectAfter }) } });
      for (const s of [listed, open]) await call(s.url, 'POST', '/v1/users', { token: s.admin, body: { id: 'u1' } });
      const listedUser = (await call(listed.url, 'POST', '/v1/users/u1/token', { token: listed.admin })).body.token;
      const openUser = (await call(open.url, 'POST', '/v1/users/u1/token', { token: open.admin })).body.token;
      const why = async (a: Promise<{ status: number; body: any }>) => {
        const r = await a;
        return r.status === 201 ? 201 : [r.status, r.body.error.details?.fields?.[0]?.message];
      };
      // With the operator's list: only its origins, for keys and user tokens alike.
      expect(await why(start(listed, listed.admin))).toEqual([400, 'is required']);
      expect(await why(start(listed, listed.admin, 'https://elsewhere.example/cb'))).toEqual([400, 'is not on an allowed origin']);
      expect(await why(start(listed, listedUser, `${ALLOWED}.evil.example/cb`))).toEqual([400, 'is not on an allowed origin']);
      expect(await why(start(listed, listedUser, 'http://127.0.0.1:3000/cb'))).toEqual([400, 'is not on an allowed origin']);
      expect(await why(start(listed, listedUser, `${ALLOWED}/connected?x=1`))).toBe(201);
      expect(await why(start(listed, listedUser, 'http://localhost:3000/cb'))).toBe(201);
      // Anywhere: not https, not absolute, user info, another scheme.
      for (const s of [listed, open]) {
        expect(await why(start(s, s.admin, 'http://app.example.com/cb'))).toEqual([400, 'must be https (or http on localhost)']);
        expect(await why(start(s, s.admin, 'javascript:alert(1)'))).toEqual([400, 'must be https (or http on localhost)']);
        expect(await why(start(s, s.admin, '/relative'))).toEqual([400, 'is not an absolute URL']);
        expect(await why(start(s, s.admin, 'https://u:p@app.example.com/cb'))).toEqual([400, 'must not carry user info']);
      }
      // Paths a browser or a router may read as another host.
      for (const p of ['//evil.example/x', '/a%2F%2Fevil.example', '/a%5cb']) {
        expect(await why(start(listed, listedUser, `${ALLOWED}${p}`)), p).toEqual([400, 'has a path that may be read as another host']);
      }
      // Without a list: only a localhost page, for a user token and an API key alike (a backend
      // passing a client's returnTo on would otherwise send a victim's connect token anywhere).
      expect(await why(start(open, open.admin, 'https://anything.example/cb'))).toEqual([400, 'is not on an allowed origin']);
      expect(await why(start(open, openUser, 'https://mallory.example/cb'))).toEqual([400, 'is not on an allowed origin']);
      expect(await why(start(open, open.admin, 'http://localhost:5173/cb'))).toBe(201);
      expect(await why(start(open, openUser, 'http://[::1]:5173/cb'))).toBe(201);
      expect(await why(start(open, openUser, 'http://127.0.0.1:5173/cb'))).toBe(201);
    } finally {
      await listed.close();
      await open.close();
      await fake.close();
    }
  });

  it('the operator lists origins, checked when serve starts', () => {
    expect(parseRedirectOrigins(undefined, 'x')).toBeUndefined();
    // An empty variable is unset (the config's list applies); a value naming nothing is an error, not "no list".
    expect(parseRedirectOrigins('  ', 'x')).toBeUndefined();
    expect(() => parseRedirectOrigins(',', 'x')).toThrow(/names no origin/);
    expect(() => parseRedirectOrigins([], 'x')).toThrow(/names no origin/);
    expect(parseRedirectOrigins(' https://a.example , http://localhost:3000/ ', 'x')).toEqual(['https://a.example', 'http://localhost:3000']);
    expect(parseRedirectOrigins(['https://A.example:443'], 'x')).toEqual(['https://a.example']);
    for (const bad of ['http://a.example', 'https://a.example/path', 'a.example', 'https://u@a.example', 'https://a.example?x', 'ftp://a.example']) {
      expect(() => parseRedirectOrigins(bad, 'serve.oauth.redirectOrigins'), bad).toThrow(UsageError);
    }
  });

  it('--public-url is checked and normalised: the OAuth redirect_uri never has a double slash, a query or another scheme', async () => {
    expect(parsePublicUrl(undefined, 'x')).toBeUndefined();
    // Empty (ALLOY_SERVE_PUBLIC_URL= in a template) is unset, as for the redirect origins: serve starts.
    expect(parsePublicUrl(' ', 'ALLOY_SERVE_PUBLIC_URL')).toBeUndefined();
    expect(parsePublicUrl('https://alloy.example.com/', 'x')).toBe('https://alloy.example.com');
    expect(parsePublicUrl(' https://Alloy.example.com/alloy// ', 'x')).toBe('https://alloy.example.com/alloy');
    for (const bad of ['javascript:alert(1)', 'http://[::1', 'alloy.example.com', 'https://alloy.example.com/?x=1', 'https://alloy.example.com/#f', 'https://u:p@alloy.example.com', 'ftp://alloy.example.com']) {
      expect(() => parsePublicUrl(bad, '--public-url'), bad).toThrow(UsageError);
    }
    const fake = await startFakeShopify();
    const serve = await startTestServe({ settings: { shopify: { baseUrl: fake.url } }, env: { SHOPIFY_API_KEY: fake.clientId, SHOPIFY_API_SECRET: fake.clientSecret }, oauthRedirectOrigins: [new URL(CONNECTED_PAGE).origin], publicUrl: 'https://alloy.example.com/' });
    try {
      await call(serve.url, 'POST', '/v1/users', { token: serve.admin, body: { id: 'u1' } });
      const start = await call(serve.url, 'POST', '/v1/oauth/shopify/start', { token: serve.admin, body: { userId: 'u1', account: fake.shop, redirectAfter: CONNECTED_PAGE } });
      expect(start.status).toBe(201);
      expect(new URL(start.body.authorizeUrl).searchParams.get('redirect_uri')).toBe('https://alloy.example.com/v1/oauth/shopify/callback');
    } finally {
      await serve.close();
      await fake.close();
    }
    const project = tempDir('alloy-serve-public-url-');
    const out = await runAlloy(['serve', '--port', '0', '--data', path.join(project, 'data'), '--store', path.join(project, 'store'), '--public-url', 'javascript:alert(1)'], project, { ALLOY_MASTER_KEY: Buffer.alloc(32, 1).toString('base64') });
    expect([out.code, out.stderr.includes('--public-url'), out.stderr.includes('    at ')], out.stderr).toEqual([2, true, false]);
    expect(existsSync(path.join(project, 'data'))).toBe(false);
  });

  it('alloy serve refuses a bad origin from the variable, the flag or the config with exit 2, before creating anything', async () => {
    const project = tempDir('alloy-serve-origins-');
    writeFileSync(path.join(project, 'alloy.config.yaml'), 'apiVersion: alloy/v1\nkind: Project\nname: origins\nserve:\n  oauth:\n    redirectOrigins: ["https://app.example.com/connected"]\n');
    const env = { ALLOY_MASTER_KEY: Buffer.alloc(32, 1).toString('base64') };
    const runs = [
      { args: [], env, names: 'serve.oauth.redirectOrigins' },
      // An empty variable (a template's placeholder) is unset: the config's list is read, and refused here.
      { args: [], env: { ...env, ALLOY_SERVE_OAUTH_REDIRECT_ORIGINS: '' }, names: 'serve.oauth.redirectOrigins' },
      { args: [], env: { ...env, ALLOY_SERVE_OAUTH_REDIRECT_ORIGINS: 'http://app.example.com' }, names: 'ALLOY_SERVE_OAUTH_REDIRECT_ORIGINS' },
      { args: ['--oauth-redirect-origins', 'ftp://app.example.com'], env, names: '--oauth-redirect-origins' },
    ];
    for (const r of runs) {
      const out = await runAlloy(['serve', '--port', '0', ...r.args], project, r.env);
      expect([out.code, out.stderr.includes(r.names), out.stderr.includes('    at ')], out.stderr).toEqual([2, true, false]);
    }
    expect(existsSync(path.join(project, '.alloy'))).toBe(false);
  });
});
