/** Executions: cancel one in flight, rerun from a step (earlier results reused, no second order), rerun on another version; webhook de-duplication. */
import { afterAll, describe, expect, it } from 'vitest';
import { shopifyWebhookHeaders } from '../../src/connectors/shopify/webhooks.js';
import { startFakeShopify } from '../../src/testing/fake-shopify.js';
import { call, cleanup, exampleSource, releaseAndPublish, startTestServe, waitFor } from './helpers.js';

afterAll(cleanup);

describe('executions', () => {
  it('cancels, reruns from a step and on another version, and de-duplicates app deliveries', async () => {
    const fakeOpts = { callDelayMs: 0 };
    const fake = await startFakeShopify(fakeOpts);
    const serve = await startTestServe({ settings: { shopify: { baseUrl: fake.url } }, env: { SHOPIFY_API_SECRET: 'app-secret' } });
    try {
      await releaseAndPublish(serve.store, exampleSource());
      const admin = serve.admin;
      await call(serve.url, 'POST', '/v1/users', { token: admin, body: { id: 'u1' } });
      const cred = await call(serve.url, 'POST', '/v1/users/u1/credentials', { token: admin, body: { app: 'shopify', kind: 'token', account: fake.shop, fields: { accessToken: fake.accessToken } } });
      await call(serve.url, 'POST', '/v1/installations', { token: admin, body: { userId: 'u1', integration: 'shopify-sync', credentials: { shopify: cred.body.id } } });
      const data = (id: string) => ({ orderId: id, email: `${id}@example.com`, currency: 'EUR', lineItems: [{ title: 'x', quantity: 1, price: 1 }] });
      const status = async (id: string) => (await call(serve.url, 'GET', `/v1/executions/${id}`, { token: admin })).body;

      // Cancel one while its Shopify call is in flight.
      fakeOpts.callDelayMs = 1500;
      const slow = (await call(serve.url, 'POST', '/v1/run/event', { token: admin, body: { event: 'acme.order.requested', userId: 'u1', data: data('slow') } })).body.executionIds[0];
      await waitFor(async () => (await status(slow)).status === 'running', 'running');
      const cancelled = await call(serve.url, 'POST', `/v1/executions/${slow}/cancel`, { token: admin });
      expect(cancelled.body.status).toBe('cancelled');
      expect((await call(serve.url, 'POST', `/v1/executions/${slow}/cancel`, { token: admin })).status).toBe(409);
      fakeOpts.callDelayMs = 0;
      await new Promise((r) => setTimeout(r, 1700));
      expect((await status(slow)).status).toBe('cancelled');

      // A normal run, then a rerun from the `result` step: the order step's result is reused.
      const ok = (await call(serve.url, 'POST', '/v1/run/event', { token: admin, body: { event: 'acme.order.requested', userId: 'u1', data: data('ok') } })).body.executionIds[0];
      await waitFor(async () => (await status(ok)).status === 'succeeded', 'ok');
      // `since` bounds the list by creation time, oldest or newest first; a bad time is a 400.
      const okCreated = (await status(ok)).createdAt as string;
      for (const order of ['asc', 'desc']) {
        const page = await call(serve.url, 'GET', `/v1/executions?order=${order}&since=${encodeURIComponent(okCreated)}`, { token: admin });
        const ids = page.body.items.map((e: { id: string }) => e.id);
        expect([order, ids.includes(ok), ids.includes(slow)]).toEqual([order, true, false]);
      }
      expect((await call(serve.url, 'GET', '/v1/executions?since=2999-01-01T00:00:00Z', { token: admin })).body.items).toEqual([]);
      expect((await call(serve.url, 'GET', '/v1/executions?since=banana', { token: admin })).status).toBe(400);
      // A misspelt status was an empty page, as if nothing had failed: 400 naming the values.
      const typo = await call(serve.url, 'GET', '/v1/executions?status=succeded', { token: admin });
      expect([typo.status, typo.body.error.code]).toEqual([400, 'E_BAD_REQUEST']);
      expect(typo.body.error.message).toContain('cancelled');
      const orders = fake.orders.length;
      const rerun = await call(serve.url, 'POST', `/v1/executions/${ok}/rerun`, { token: admin, body: { fromStep: 'result' } });
      expect(rerun.status).toBe(202);
      const again = await waitFor(async () => {
        const e = await status(rerun.body.executionIds[0]);
        return e.status === 'succeeded' ? e : undefined;
      }, 'the rerun');
      expect(again).toMatchObject({ rerunOf: ok, version: 1 });
      expect(fake.orders.length).toBe(orders);
      expect((await call(serve.url, 'POST', `/v1/executions/${ok}/rerun`, { token: admin, body: { fromStep: 'nope' } })).status).toBe(422);

      // Rerun on v2.
      await releaseAndPublish(serve.store, exampleSource((_d, w) => ((w.get('create-order')!.steps[1] as { with: Record<string, unknown> }).with.v = 2)), false);
      const onV2 = await call(serve.url, 'POST', `/v1/executions/${ok}/rerun`, { token: admin, body: { fromStep: 'result', version: 2 } });
      const v2 = await waitFor(async () => {
        const e = await status(onV2.body.executionIds[0]);
        return e.status === 'succeeded' ? e : undefined;
      }, 'the v2 rerun');
      expect(v2.version).toBe(2);
      expect(v2.steps.find((s: { id: string }) => s.id === 'result').output.v).toBe(2);
      expect((await call(serve.url, 'POST', `/v1/executions/${ok}/rerun`, { token: admin, body: { version: 9 } })).status).toBe(404);

      // The same Shopify delivery twice: one execution.
      const body = JSON.stringify({ id: 1, name: '#1', email: 'a@example.com', total_price: '1.00', currency: 'EUR', line_items: [] });
      const headers = shopifyWebhookHeaders({ topic: 'orders/create', shop: fake.shop, apiVersion: '2025-10', body, secret: 'app-secret', webhookId: 'delivery-1' });
      const first = (await (await fetch(`${serve.url}/v1/webhooks/shopify`, { method: 'POST', body, headers })).json()) as { executionIds: string[]; duplicate: boolean };
      const second = (await (await fetch(`${serve.url}/v1/webhooks/shopify`, { method: 'POST', body, headers })).json()) as { executionIds: string[]; duplicate: boolean };
      expect(first.duplicate).toBe(false);
      expect(second).toMatchObject({ duplicate: true, executionIds: first.executionIds });
      // The delivery id is not signed: the captured delivery resent with a fresh id is still a duplicate.
      const resent = shopifyWebhookHeaders({ topic: 'orders/create', shop: fake.shop, apiVersion: '2025-10', body, secret: 'app-secret', webhookId: 'attacker-fresh-id' });
      const replayed = (await (await fetch(`${serve.url}/v1/webhooks/shopify`, { method: 'POST', body, headers: resent })).json()) as { executionIds: string[]; duplicate: boolean };
      expect(replayed).toMatchObject({ duplicate: true, executionIds: first.executionIds });
      // Another event (another body) under the first delivery id still runs.
      const body2 = body.replace('"id":1', '"id":2');
      const other = shopifyWebhookHeaders({ topic: 'orders/create', shop: fake.shop, apiVersion: '2025-10', body: body2, secret: 'app-secret', webhookId: 'delivery-1' });
      const third = (await (await fetch(`${serve.url}/v1/webhooks/shopify`, { method: 'POST', body: body2, headers: other })).json()) as { executionIds: string[]; duplicate: boolean };
      expect(third.duplicate).toBe(false);
      expect(third.executionIds).toHaveLength(1);
      expect(third.executionIds).not.toEqual(first.executionIds);
      // A verified delivery for a shop nobody installed: answered 200, nothing stored.
      const stranger = shopifyWebhookHeaders({ topic: 'orders/create', shop: 'nobody.myshopify.com', apiVersion: '2025-10', body, secret: 'app-secret' });
      const r = await fetch(`${serve.url}/v1/webhooks/shopify`, { method: 'POST', body, headers: stranger });
      expect([r.status, await r.json()]).toEqual([200, { executionIds: [], routed: 0 }]);
    } finally {
      await serve.close();
      await fake.close();
    }
  });

  it('refuses outbound calls to loopback by default (egress policy), so a workflow cannot reach the server\'s own machine', async () => {
    const fake = await startFakeShopify();
    const serve = await startTestServe({ settings: { shopify: { baseUrl: fake.url } }, egress: {} });
    try {
      await releaseAndPublish(serve.store, exampleSource());
      await call(serve.url, 'POST', '/v1/users', { token: serve.admin, body: { id: 'u1' } });
      const cred = await call(serve.url, 'POST', '/v1/users/u1/credentials', { token: serve.admin, body: { app: 'shopify', kind: 'token', account: fake.shop, fields: { accessToken: fake.accessToken } } });
      await call(serve.url, 'POST', '/v1/installations', { token: serve.admin, body: { userId: 'u1', integration: 'shopify-sync', credentials: { shopify: cred.body.id } } });
      const ev = await call(serve.url, 'POST', '/v1/run/event', { token: serve.admin, body: { event: 'acme.order.requested', userId: 'u1', data: { orderId: 'e', email: 'e@example.com', currency: 'EUR', lineItems: [{ title: 'x', quantity: 1, price: 1 }] } } });
      const failed = await waitFor(async () => {
        const e = (await call(serve.url, 'GET', `/v1/executions/${ev.body.executionIds[0]}`, { token: serve.admin })).body;
        return e.status === 'failed' ? e : undefined;
      }, 'the refused execution');
      expect(failed.error.code).toBe('E_EGRESS_DENIED');
      expect(fake.requests).toHaveLength(0);
    } finally {
      await serve.close();
      await fake.close();
    }
  });
});
