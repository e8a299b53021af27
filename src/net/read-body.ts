/** Moved to src/http/body.ts (the shared HTTP kit); kept so existing imports still resolve. */
export { BodyTooLargeError, readRequestBody } from '../http/body.js';
