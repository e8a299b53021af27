/** The built-in `shopify` connector: manifest data plus GraphQL actions and webhook verification. */
import { shopifyManifest } from '../builtin-manifests.js';
import type { ConnectorRuntime } from '../types.js';
import { addTags, createOrder, getOrder } from './actions.js';
import { verifyShopifyWebhook } from './webhooks.js';

export function createShopifyConnector(): ConnectorRuntime {
  return {
    manifest: shopifyManifest,
    actions: { createOrder, addTags, getOrder },
    verifyWebhook: (delivery, connection) => verifyShopifyWebhook(delivery, connection.apiSecret ?? ''),
  };
}

export { addTags, createOrder, getOrder, orderGid, toOrderCreateVariables } from './actions.js';
export { shopifyGraphql, shopifyGraphqlEndpoint, throttleWaitMs, MAX_THROTTLE_WAITS } from './graphql.js';
export {
  SHOPIFY_REQUIRED_WEBHOOK_HEADERS,
  safeEqual,
  shopifyWebhookHeaders,
  signShopifyWebhook,
  verifyShopifyWebhook,
  type ShopifyWebhookHeaderOptions,
} from './webhooks.js';
