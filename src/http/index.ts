/** The shared HTTP kit: one router, one body reader, one error type and shape, one listen helper. */
export * from './error.js';
export * from './body.js';
export * from './respond.js';
export * from './router.js';
export * from './listen.js';
