/** Test utilities for integrations built with alloy: a faithful local fake of Shopify. */
export { startFakeShopify, FIXTURES_DIR } from './fake-shopify.js';
export type * from './fake-shopify.js';
