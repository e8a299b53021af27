/**
 * Shopify webhook signatures (shopify.dev/docs/apps/build/webhooks/subscribe/https):
 * `X-Shopify-Hmac-Sha256` is the base64 HMAC-SHA256 of the raw request body, keyed with the
 * app's client secret (SHOPIFY_API_SECRET). Verify over the exact bytes received, before any
 * JSON parsing, and compare in constant time.
 */
import { createHmac, randomUUID, timingSafeEqual } from 'node:crypto';
import { MissingSecretError } from '../../errors.js';
import type { WebhookCheck, WebhookDelivery } from '../types.js';

/** Headers Shopify sends with every delivery; a request without one is not from Shopify. */
export const SHOPIFY_REQUIRED_WEBHOOK_HEADERS = [
  'X-Shopify-Topic',
  'X-Shopify-Hmac-Sha256',
  'X-Shopify-Shop-Domain',
  'X-Shopify-Webhook-Id',
  'X-Shopify-API-Version',
] as const;

export function signShopifyWebhook(rawBody: Buffer | string, secret: string): string {
  return createHmac('sha256', secret).update(rawBody).digest('base64');
}

/** Constant-time string comparison that does not leak the length through an early return. */
export function safeEqual(a: string, b: string): boolean {
  const ab = Buffer.from(a, 'utf8');
  const bb = Buffer.from(b, 'utf8');
  if (ab.length !== bb.length) {
    timingSafeEqual(ab, ab);
    return false;
  }
  return timingSafeEqual(ab, bb);
}

function header(delivery: WebhookDelivery, name: string): string | undefined {
  const v = delivery.headers[name.toLowerCase()];
  return v === undefined || v === '' ? undefined : v;
}

/**
 * Checks a delivery: every required header present (else 400 naming it), then the HMAC
 * (else 401). On success returns the topic and the delivery id (X-Shopify-Webhook-Id) used
 * to de-duplicate retries.
 */
export function verifyShopifyWebhook(delivery: WebhookDelivery, apiSecret: string): WebhookCheck {
  if (!apiSecret) {
    throw new MissingSecretError(
      'cannot verify Shopify webhooks without the app secret',
      "Set SHOPIFY_API_SECRET (the app's API secret key) in the environment or .env.",
    );
  }
  for (const name of SHOPIFY_REQUIRED_WEBHOOK_HEADERS) {
    if (header(delivery, name) === undefined) return { ok: false, status: 400, reason: `missing ${name}` };
  }
  const expected = signShopifyWebhook(delivery.rawBody, apiSecret);
  const received = header(delivery, 'X-Shopify-Hmac-Sha256')!.trim();
  if (!safeEqual(expected, received)) return { ok: false, status: 401, reason: 'signature mismatch' };
  return {
    ok: true,
    topic: header(delivery, 'X-Shopify-Topic'),
    deliveryId: header(delivery, 'X-Shopify-Webhook-Id'),
  };
}

export interface ShopifyWebhookHeaderOptions {
  topic: string;
  /** Shop domain, e.g. acme.myshopify.com. */
  shop: string;
  apiVersion: string;
  body: Buffer | string;
  secret: string;
  webhookId?: string;
  eventId?: string;
  /** ISO 8601 time of the event; default now. */
  triggeredAt?: string;
}

/** Every header Shopify sends with a delivery, signed: what `alloy emit shopify:<topic>` posts. */
export function shopifyWebhookHeaders(options: ShopifyWebhookHeaderOptions): Record<string, string> {
  return {
    'Content-Type': 'application/json',
    'X-Shopify-Topic': options.topic,
    'X-Shopify-Hmac-Sha256': signShopifyWebhook(options.body, options.secret),
    'X-Shopify-Shop-Domain': options.shop,
    'X-Shopify-API-Version': options.apiVersion,
    'X-Shopify-Webhook-Id': options.webhookId ?? randomUUID(),
    'X-Shopify-Event-Id': options.eventId ?? randomUUID(),
    'X-Shopify-Triggered-At': options.triggeredAt ?? new Date().toISOString(),
  };
}
