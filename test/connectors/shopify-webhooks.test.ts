import { describe, expect, it } from 'vitest';
import {
  createShopifyConnector,
  shopifyWebhookHeaders,
  signShopifyWebhook,
  verifyShopifyWebhook,
  SHOPIFY_REQUIRED_WEBHOOK_HEADERS,
} from '../../src/connectors/index.js';
import { MissingSecretError } from '../../src/errors.js';
import { thirdPartyJson } from '../helpers/fixtures.js';

const vector = thirdPartyJson('shopify/webhook-hmac-vector.json') as {
  secret: string;
  raw_body: string;
  expected_hmac_header: string;
  headers: Record<string, string>;
};

const lower = (h: Record<string, string>) => Object.fromEntries(Object.entries(h).map(([k, v]) => [k.toLowerCase(), v]));

describe('Shopify webhook HMAC', () => {
  it('reproduces the shopify-app-js vector', () => {
    expect(signShopifyWebhook(Buffer.from(vector.raw_body, 'utf8'), vector.secret)).toBe(vector.expected_hmac_header);
  });

  it('accepts the vector delivery and reports topic and delivery id', () => {
    const check = verifyShopifyWebhook({ rawBody: Buffer.from(vector.raw_body), headers: lower(vector.headers) }, vector.secret);
    expect(check).toEqual({ ok: true, topic: 'products/create', deliveryId: '123456789' });
  });

  it('rejects a body changed by one byte, a wrong secret and a truncated signature with 401', () => {
    const headers = lower(vector.headers);
    const changed = verifyShopifyWebhook({ rawBody: Buffer.from(vector.raw_body.replace('bar', 'baz')), headers }, vector.secret);
    expect(changed).toMatchObject({ ok: false, status: 401, reason: 'signature mismatch' });
    const wrongSecret = verifyShopifyWebhook({ rawBody: Buffer.from(vector.raw_body), headers }, 'other_secret');
    expect(wrongSecret).toMatchObject({ ok: false, status: 401 });
    const truncated = verifyShopifyWebhook(
      { rawBody: Buffer.from(vector.raw_body), headers: { ...headers, 'x-shopify-hmac-sha256': vector.expected_hmac_header.slice(0, 20) } },
      vector.secret,
    );
    expect(truncated).toMatchObject({ ok: false, status: 401 });
  });

  it('verifies over raw bytes: re-serialised JSON with the same meaning fails', () => {
    const reserialised = JSON.stringify(JSON.parse(vector.raw_body)); // {"foo":"bar"} without the space
    expect(reserialised).not.toBe(vector.raw_body);
    const check = verifyShopifyWebhook({ rawBody: Buffer.from(reserialised), headers: lower(vector.headers) }, vector.secret);
    expect(check.ok).toBe(false);
  });

  it.each(SHOPIFY_REQUIRED_WEBHOOK_HEADERS.map((h) => [h]))('a delivery without %s is a 400 naming it', (name) => {
    const headers = lower(vector.headers);
    delete headers[name.toLowerCase()];
    const check = verifyShopifyWebhook({ rawBody: Buffer.from(vector.raw_body), headers }, vector.secret);
    expect(check).toEqual({ ok: false, status: 400, reason: `missing ${name}` });
  });

  it('without the app secret it is a MissingSecretError naming SHOPIFY_API_SECRET', () => {
    const runtime = createShopifyConnector();
    let error: unknown;
    try {
      runtime.verifyWebhook!({ rawBody: Buffer.from(vector.raw_body), headers: lower(vector.headers) }, {});
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(MissingSecretError);
    expect((error as MissingSecretError).hint).toContain('SHOPIFY_API_SECRET');
  });

  it('shopifyWebhookHeaders produces every header Shopify sends, and they verify', () => {
    const body = JSON.stringify({ id: 820982911946154500, email: 'jon@example.com' });
    const headers = shopifyWebhookHeaders({
      topic: 'orders/create',
      shop: 'acme.myshopify.com',
      apiVersion: '2025-10',
      body,
      secret: 'hush',
      webhookId: 'b54557e4-bdd9-4b37-8a5f-bf7d70bcd043',
      triggeredAt: '2026-01-15T10:00:00.000Z',
    });
    for (const name of SHOPIFY_REQUIRED_WEBHOOK_HEADERS) expect(headers[name]).toBeTruthy();
    expect(headers['X-Shopify-Event-Id']).toMatch(/^[0-9a-f-]{36}$/);
    expect(headers['X-Shopify-Triggered-At']).toBe('2026-01-15T10:00:00.000Z');
    expect(headers['Content-Type']).toBe('application/json');
    const check = createShopifyConnector().verifyWebhook!({ rawBody: Buffer.from(body), headers: lower(headers) }, { apiSecret: 'hush' });
    expect(check).toEqual({ ok: true, topic: 'orders/create', deliveryId: 'b54557e4-bdd9-4b37-8a5f-bf7d70bcd043' });
  });
});
