/** Public surface of the connectors: registry, built-ins, credentials, HTTP and webhook helpers. */
export type * from './types.js';
export { builtinConnectorManifests, shopifyManifest, httpManifest, DEFAULT_SHOPIFY_API_VERSION } from './builtin-manifests.js';
export { createConnectorRegistry, type ConnectorRegistryOptions } from './registry.js';
export { createDeclarativeConnector } from './declarative.js';
export { createHttpConnector, httpRequest } from './http-connector.js';
export {
  createHttpClient,
  parseRetryAfter,
  isRetryableStatus,
  stepErrorFromResponse,
  stepErrorFromNetwork,
  sendActionRequest,
  type HttpClientOptions,
} from './http-client.js';
export {
  resolveConnection,
  resolveConnectionWithSources,
  secretValues,
  connectionEnvName,
  userEnvPath,
  isFileSafeUserId,
  type ResolveConnectionOptions,
  type ResolvedConnection,
  type ConnectionSource,
} from './credentials.js';
export {
  createShopifyConnector,
  verifyShopifyWebhook,
  signShopifyWebhook,
  shopifyWebhookHeaders,
  SHOPIFY_REQUIRED_WEBHOOK_HEADERS,
  toOrderCreateVariables,
  safeEqual,
  type ShopifyWebhookHeaderOptions,
} from './shopify/index.js';
