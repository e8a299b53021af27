/** The store's programmatic API (docs/store.md). */
export * from './lib.js';
export { RemoteStore, type RemoteStoreOptions } from './remote/client.js';
export {
  createStoreServer,
  createStoreRequestHandler,
  storeRoutes,
  STORE_API_PREFIX,
  DEFAULT_LIMITS,
  type StoreServer,
  type StoreServerOptions,
  type StoreRoute,
  type StoreRequestHandler,
} from './remote/server.js';
export { parseTokenList, makeTokens, roleOf, type Role, type TokenEntry } from './remote/auth.js';
