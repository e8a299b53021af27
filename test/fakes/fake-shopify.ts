// The fake Shopify lives in src/testing (shipped for users' tests and the example run).
// Tests read the third-party fixtures through test/helpers/fixtures.ts.
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export * from '../../src/testing/fake-shopify.js';
export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
