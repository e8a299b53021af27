/**
 * De-duplication rests on signed content: a captured Shopify delivery resent with new
 * X-Shopify-Webhook-Id / X-Shopify-Event-Id (headers the HMAC does not cover) is a duplicate;
 * a delivery whose X-Shopify-Triggered-At is older than the window (default 24 h) is refused.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { shopifyWebhookHeaders } from '../../src/connectors/shopify/webhooks.js';
import { FIXTURES_DIR, http } from '../server/helpers.js';
import { SHOPIFY_SECRET, startRuntime } from './helpers.js';

const order = readFileSync(path.join(FIXTURES_DIR, 'shopify', 'orders-create.json'));
const sign = (body: Buffer, extra: Partial<Parameters<typeof shopifyWebhookHeaders>[0]> = {}) =>
  shopifyWebhookHeaders({ topic: 'orders/create', shop: 'acme.myshopify.com', apiVersion: '2025-10', body, secret: SHOPIFY_SECRET, ...extra });

let rt: Awaited<ReturnType<typeof startRuntime>> | undefined;
afterEach(async () => rt?.cleanup());

describe('Shopify de-duplication', () => {
  it('does not run a captured delivery again when it is resent through the tunnel with new delivery and event ids', async () => {
    rt = await startRuntime();
    const first = await http('POST', `${rt.ingress}/v1/webhooks/shopify`, order, sign(order, { webhookId: 'w-1', eventId: 'e-1' }));
    expect(first.status).toBe(202);
    const replayed = await http('POST', `${rt.ingress}/v1/webhooks/shopify`, order, sign(order, { webhookId: 'w-2-forged', eventId: 'e-2-forged' }));
    expect([replayed.status, replayed.json.duplicate, replayed.json.deliveryId]).toEqual([200, true, first.json.deliveryId]);
    expect(rt.server.log.listExecutions({ limit: 10 })).toHaveLength(1);
    // Different signed content is a different delivery.
    const other = Buffer.from(order.toString().replace('450789469', '450789470'));
    expect((await http('POST', `${rt.ingress}/v1/webhooks/shopify`, other, sign(other))).status).toBe(202);
    // On loopback the developer's own resend (`alloy emit --fixture`: same body, fresh id) runs again.
    expect((await http('POST', `${rt.base}/v1/webhooks/shopify`, order, sign(order, { webhookId: 'w-3-local' }))).status).toBe(202);
    expect((await http('POST', `${rt.base}/v1/webhooks/shopify`, order, sign(order, { webhookId: 'w-3-local' }))).json.duplicate).toBe(true);
  });

  it('refuses a delivery triggered longer ago than the window, and the window is configurable', async () => {
    rt = await startRuntime();
    const old = new Date(Date.now() - 25 * 3600_000).toISOString();
    const stale = await http('POST', `${rt.base}/v1/webhooks/shopify`, order, sign(order, { triggeredAt: old }));
    expect([stale.status, stale.json.error.code]).toEqual([401, 'E_STALE_DELIVERY']);
    const retried = await http('POST', `${rt.base}/v1/webhooks/shopify`, order, sign(order, { triggeredAt: new Date(Date.now() - 4 * 3600_000).toISOString() }));
    expect(retried.status).toBe(202);
    expect(rt.server.log.countDeliveries()).toBe(1);
    await rt.cleanup();
    rt = await startRuntime({ shopifyMaxAgeMs: 60_000 });
    const tight = await http('POST', `${rt.base}/v1/webhooks/shopify`, order, sign(order, { triggeredAt: new Date(Date.now() - 120_000).toISOString() }));
    expect(tight.status).toBe(401);
  });
});
