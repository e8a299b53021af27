/**
 * The seed, end to end, run twice: in-process (seed.test.ts) and against the built binary
 * (seed-binary.test.ts), through the same steps:
 * a user connects a shop through OAuth against the fake Shopify, installs shopify-sync at the
 * published version, a custom event creates the order in that user's shop, orders/create
 * streams to the customer's URL signed, v2 is released and the user upgraded while a v1
 * execution is in flight (it finishes on v1), and a second user never sees the first's data.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeShopify, type FakeShopify } from '../../src/testing/fake-shopify.js';
import { shopifyWebhookHeaders } from '../../src/connectors/shopify/webhooks.js';
import { verifyStandardWebhook } from '../../src/engine/standard-webhooks.js';
import type { LocalStore } from '../../src/store/lib.js';
import { approveOAuth, call, cleanup, CONNECTED_PAGE, exampleSource, releaseAndPublish, waitFor } from './helpers.js';

/** A running serve, however it was started. */
export interface SeedServe {
  url: string;
  admin: string;
  store: LocalStore;
  key(role: 'ingest' | 'read'): Promise<string>;
  close(): Promise<void>;
}

/** `oauthRedirectOrigins`: the customer's origin, where the OAuth callback sends the browser (serve.oauth.redirectOrigins). */
export type StartSeedServe = (opts: { settings: Record<string, { baseUrl: string }>; env: Record<string, string>; oauthRedirectOrigins: string[] }) => Promise<SeedServe>;

const STREAM_SECRET = `whsec_${Buffer.alloc(24, 3).toString('base64')}`;
const order = (id: string, email: string) => ({ orderId: id, email, phone: '+15550001111', currency: 'EUR', lineItems: [{ title: 'Widget', quantity: 2, price: 9.5 }] });

export function seedFlow(name: string, start: StartSeedServe, timeoutMs = 60_000): void {
describe(`alloy serve: the seed flow (${name})`, () => {
  let fake: FakeShopify;
  let serve: SeedServe;
  let receiver: http.Server;
  const streamed: { headers: http.IncomingHttpHeaders; body: string }[] = [];
  const fakeOptions: { callDelayMs?: number } = {};

  beforeAll(async () => {
    fake = await startFakeShopify(fakeOptions);
    receiver = http.createServer((req, res) => {
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', () => {
        streamed.push({ headers: req.headers, body });
        res.writeHead(204).end();
      });
    });
    await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
    serve = await start({
      settings: { shopify: { baseUrl: fake.url } },
      oauthRedirectOrigins: [new URL(CONNECTED_PAGE).origin],
      env: {
        SHOPIFY_API_KEY: fake.clientId,
        SHOPIFY_API_SECRET: fake.clientSecret,
        ACME_STREAM_URL: `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/acme/orders`,
        ACME_STREAM_SECRET: STREAM_SECRET,
      },
    });
    await releaseAndPublish(serve.store, exampleSource());
  }, timeoutMs);

  afterAll(async () => {
    await serve?.close();
    await fake?.close();
    receiver?.close();
    cleanup();
  });

  /** `intruder`: another user's token, which tries to complete this user's connection first. */
  async function connectShop(userId: string, shop: string, intruder?: string): Promise<{ token: string; credentialId: string }> {
    const t = await call(serve.url, 'POST', `/v1/users/${userId}/token`, { token: serve.admin });
    expect(t.status).toBe(201);
    // The user's browser: start, the fake's authorize page, serve's callback (which sends it
    // to the customer's page with a connect token); that page completes with the user's token.
    const connectToken = await approveOAuth(serve.url, t.body.token, userId, shop);
    expect(connectToken).toMatch(/^alct_/);
    if (intruder) {
      const refused = await call(serve.url, 'POST', '/v1/oauth/shopify/complete', { token: intruder, body: { connectToken } });
      expect([refused.status, refused.body.error.code]).toEqual([403, 'E_FORBIDDEN']);
    }
    const done = await call(serve.url, 'POST', '/v1/oauth/shopify/complete', { token: t.body.token, body: { connectToken } });
    expect(done.status).toBe(201);
    const cb = done.body as { credential: { id: string; account: string; kind: string } };
    expect(cb.credential).toMatchObject({ account: shop, kind: 'oauth2' });
    expect(JSON.stringify(cb)).not.toMatch(/shpat_/);
    return { token: t.body.token, credentialId: cb.credential.id };
  }

  it('runs the published version for each user, in their own shop, and upgrades without touching executions in flight', async () => {
    const ingest = await serve.key('ingest');
    for (const id of ['acme-1', 'acme-2']) expect((await call(serve.url, 'POST', '/v1/users', { token: serve.admin, body: { id } })).status).toBe(201);
    const one = await connectShop('acme-1', 'shop-one.myshopify.com');
    // acme-1 cannot complete acme-2's connection; acme-2 still can.
    const two = await connectShop('acme-2', 'shop-two.myshopify.com', one.token);

    const inst1 = await call(serve.url, 'POST', '/v1/installations', { token: one.token, body: { userId: 'acme-1', integration: 'shopify-sync', credentials: { shopify: one.credentialId } } });
    expect(inst1.status).toBe(201);
    expect(inst1.body).toMatchObject({ version: 1, status: 'active' });
    const inst2 = await call(serve.url, 'POST', '/v1/installations', { token: two.token, body: { userId: 'acme-2', integration: 'shopify-sync', credentials: { shopify: two.credentialId } } });
    expect(inst2.status).toBe(201);
    // Another user's credential cannot be borrowed.
    const borrow = await call(serve.url, 'POST', '/v1/installations', { token: two.token, body: { userId: 'acme-2', integration: 'shopify-sync', credentials: { shopify: one.credentialId } } });
    expect(borrow.status).toBe(422);

    // acme.order.requested creates the order in acme-1's shop only.
    const ev = await call(serve.url, 'POST', '/v1/run/event', { token: ingest, body: { event: 'acme.order.requested', userId: 'acme-1', data: order('A-1', 'ann@example.com') }, headers: { 'idempotency-key': 'A-1' } });
    expect(ev.status).toBe(202);
    expect(ev.body.executionIds).toHaveLength(1);
    const again = await call(serve.url, 'POST', '/v1/run/event', { token: ingest, body: { event: 'acme.order.requested', userId: 'acme-1', data: order('A-1', 'ann@example.com') }, headers: { 'idempotency-key': 'A-1' } });
    expect(again.body).toEqual({ executionIds: ev.body.executionIds, duplicate: true });
    const done = await waitFor(async () => {
      const e = await call(serve.url, 'GET', `/v1/executions/${ev.body.executionIds[0]}`, { token: one.token });
      return e.body.status === 'succeeded' ? e.body : e.body.status === 'failed' ? Promise.reject(new Error(JSON.stringify(e.body))) : undefined;
    }, 'the order execution');
    expect(done).toMatchObject({ version: 1, integration: 'shopify-sync', workflow: 'shopify-sync/create-order' });
    expect(fake.ordersFor('shop-one.myshopify.com').map((o) => o.email)).toEqual(['ann@example.com']);
    expect(fake.ordersFor('shop-two.myshopify.com')).toEqual([]);

    // A payload that fails the trigger schema: 422 naming each field, nothing stored.
    const before = (await call(serve.url, 'GET', '/v1/executions', { token: serve.admin })).body.items.length;
    const bad = await call(serve.url, 'POST', '/v1/run/event', { token: ingest, body: { event: 'acme.order.requested', userId: 'acme-1', data: { email: 'nope', lineItems: [] } } });
    expect(bad.status).toBe(422);
    expect(bad.body.error.code).toBe('E_EVENT_INVALID');
    expect(bad.body.error.details.fields.map((f: { path: string }) => f.path).sort()).toEqual(['/email', '/lineItems', '/orderId']);
    expect((await call(serve.url, 'GET', '/v1/executions', { token: serve.admin })).body.items.length).toBe(before);

    // orders/create for shop-one streams to Acme, signed (Standard Webhooks).
    const payload = JSON.stringify({ id: 820982911946154500, name: '#1001', email: 'ann@example.com', phone: null, total_price: '19.00', currency: 'EUR', line_items: [{ sku: 'W', title: 'Widget', quantity: 2 }] });
    const hook = await fetch(`${serve.url}/v1/webhooks/shopify`, { method: 'POST', body: payload, headers: shopifyWebhookHeaders({ topic: 'orders/create', shop: 'shop-one.myshopify.com', apiVersion: '2025-10', body: payload, secret: fake.clientSecret }) });
    expect(hook.status).toBe(202);
    const hookBody = (await hook.json()) as { executionIds: string[] };
    expect(hookBody.executionIds).toHaveLength(1);
    await waitFor(() => streamed.length === 1, 'the stream delivery');
    const verified = verifyStandardWebhook(STREAM_SECRET, streamed[0].headers, streamed[0].body, { nowSeconds: Math.floor(Date.now() / 1000) });
    expect(verified.ok).toBe(true);
    expect(JSON.parse(streamed[0].body)).toMatchObject({ type: 'execution.completed', data: { userId: 'acme-1', version: 'v1', steps: { summary: { output: { email: 'ann@example.com', total: 19 } } } } });
    const streamedEx = await call(serve.url, 'GET', `/v1/executions/${hookBody.executionIds[0]}`, { token: one.token });
    expect(streamedEx.body.userId).toBe('acme-1');
    // A bad signature is refused and stores nothing.
    const forged = await fetch(`${serve.url}/v1/webhooks/shopify`, { method: 'POST', body: payload, headers: shopifyWebhookHeaders({ topic: 'orders/create', shop: 'shop-one.myshopify.com', apiVersion: '2025-10', body: payload, secret: 'wrong' }) });
    expect(forged.status).toBe(401);

    // v2 released and published; acme-1 upgraded while a v1 execution is in flight.
    fakeOptions.callDelayMs = 400;
    const inflight = await call(serve.url, 'POST', '/v1/run/event', { token: ingest, body: { event: 'acme.order.requested', userId: 'acme-1', data: order('A-2', 'bob@example.com') } });
    await waitFor(async () => (await call(serve.url, 'GET', `/v1/executions/${inflight.body.executionIds[0]}`, { token: serve.admin })).body.status === 'running', 'v1 running');
    const v2 = await releaseAndPublish(serve.store, exampleSource((_d, w) => {
      const create = w.get('create-order')!;
      (create.steps[1] as { with: Record<string, unknown> }).with.release = 'v2';
    }));
    expect(v2).toBe(2);
    const up = await call(serve.url, 'POST', '/v1/integrations/shopify-sync/upgrade', { token: serve.admin, body: { userId: 'acme-1' } });
    expect(up.body).toMatchObject({ version: 2, upgraded: [inst1.body.id], failed: [] });
    fakeOptions.callDelayMs = 0;
    const finished = await waitFor(async () => {
      const e = await call(serve.url, 'GET', `/v1/executions/${inflight.body.executionIds[0]}`, { token: serve.admin });
      return e.body.status === 'succeeded' ? e.body : undefined;
    }, 'the in-flight v1 execution');
    expect(finished.version).toBe(1);
    expect(finished.steps.find((s: { id: string }) => s.id === 'result').output).not.toHaveProperty('release');
    const after = await call(serve.url, 'POST', '/v1/run/event', { token: ingest, body: { event: 'acme.order.requested', userId: 'acme-1', data: order('A-3', 'cy@example.com') } });
    const onV2 = await waitFor(async () => {
      const e = await call(serve.url, 'GET', `/v1/executions/${after.body.executionIds[0]}`, { token: serve.admin });
      return e.body.status === 'succeeded' ? e.body : undefined;
    }, 'the v2 execution');
    expect(onV2.version).toBe(2);
    expect(onV2.steps.find((s: { id: string }) => s.id === 'result').output.release).toBe('v2');
    // acme-2 was not upgraded.
    expect((await call(serve.url, 'GET', `/v1/installations/${inst2.body.id}`, { token: two.token })).body.version).toBe(1);

    // The second user never sees the first one's data.
    const ev2 = await call(serve.url, 'POST', '/v1/run/event', { token: ingest, body: { event: 'acme.order.requested', userId: 'acme-2', data: order('B-1', 'dee@example.com') } });
    await waitFor(async () => (await call(serve.url, 'GET', `/v1/executions/${ev2.body.executionIds[0]}`, { token: two.token })).body.status === 'succeeded', 'acme-2 order');
    expect(fake.ordersFor('shop-two.myshopify.com').map((o) => o.email)).toEqual(['dee@example.com']);
    expect(fake.ordersFor('shop-one.myshopify.com').map((o) => o.email)).toEqual(['ann@example.com', 'bob@example.com', 'cy@example.com']);
    const list2 = await call(serve.url, 'GET', '/v1/executions', { token: two.token });
    expect(list2.body.items.map((e: { userId: string }) => e.userId)).toEqual(['acme-2']);
    expect((await call(serve.url, 'GET', `/v1/executions/${ev.body.executionIds[0]}`, { token: two.token })).status).toBe(404);
    expect((await call(serve.url, 'GET', `/v1/installations/${inst1.body.id}`, { token: two.token })).status).toBe(404);
    expect((await call(serve.url, 'GET', '/v1/users/acme-1/credentials', { token: two.token })).status).toBe(404);
    expect((await call(serve.url, 'GET', '/v1/executions?userId=acme-1', { token: two.token })).status).toBe(404);

    // The signature covers the body, not the topic header: a genuine order delivery relabelled
    // app/uninstalled is refused and deactivates nothing.
    const relabelled = JSON.stringify({ id: 2, email: 'dee@example.com', line_items: [] });
    const spoof = await fetch(`${serve.url}/v1/webhooks/shopify`, { method: 'POST', body: relabelled, headers: shopifyWebhookHeaders({ topic: 'app/uninstalled', shop: 'shop-two.myshopify.com', apiVersion: '2025-10', body: relabelled, secret: fake.clientSecret }) });
    expect(spoof.status).toBe(400);
    expect((await call(serve.url, 'GET', `/v1/installations/${inst2.body.id}`, { token: two.token })).body.status).toBe('active');
    // Shopify's app/uninstalled for shop-two (its body is the shop) deactivates acme-2's installation.
    const un = JSON.stringify({ id: 1, domain: 'shop-two.example', myshopify_domain: 'shop-two.myshopify.com' });
    const gone = await fetch(`${serve.url}/v1/webhooks/shopify`, { method: 'POST', body: un, headers: shopifyWebhookHeaders({ topic: 'app/uninstalled', shop: 'shop-two.myshopify.com', apiVersion: '2025-10', body: un, secret: fake.clientSecret }) });
    expect(gone.status).toBe(200);
    expect((await call(serve.url, 'GET', `/v1/installations/${inst2.body.id}`, { token: two.token })).body.status).toBe('inactive');
    const none = await call(serve.url, 'POST', '/v1/run/event', { token: ingest, body: { event: 'acme.order.requested', userId: 'acme-2', data: order('B-2', 'eve@example.com') } });
    expect(none.body.executionIds).toEqual([]);
  }, timeoutMs);
});
}
