import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { FIXTURES_DIR } from '../../src/testing/fake-shopify.js';
import { SHARED_FIXTURES } from '../helpers/cli.js';

describe('bundled third-party fixtures', () => {
  it('are byte-identical to the shared originals', async () => {
    const rel = path.join('shopify', 'rest-orders-create-examples.json');
    const bundled = await readFile(path.join(FIXTURES_DIR, rel));
    const shared = await readFile(path.join(SHARED_FIXTURES, rel));
    expect(bundled.equals(shared)).toBe(true);
  });
});
