/** Where the package's shipped assets live (schemas/, examples/), next to dist/. */
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const PACKAGE_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const EXAMPLES_DIR = path.join(PACKAGE_ROOT, 'examples');
