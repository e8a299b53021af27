/**
 * The store API without the HTTP client and server (which load undici / node:http):
 * what the CLI's store commands import, to keep their start-up small. index.ts adds the remote parts.
 */
export * from './canonical.js';
export * from './errors.js';
export * from './objects.js';
export * from './normalize.js';
export * from './store.js';
export * from './local-store.js';
export * from './lock.js';
export * from './release.js';
export * from './history.js';
export * from './diff.js';
export * from './fsck.js';
export * from './secrets.js';
export * from './provenance.js';
export * from './open-store.js';
export * from './test-hooks.js';
export * from './names.js';
