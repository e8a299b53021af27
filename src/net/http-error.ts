/** Moved to src/http/error.ts (the shared HTTP kit); kept so existing imports still resolve. */
export { HttpError } from '../http/error.js';
