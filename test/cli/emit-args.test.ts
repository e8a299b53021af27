/**
 * `alloy emit shopify:<topic>`: a shop, topic or API version that cannot be an HTTP header
 * value is a usage error naming it (exit 2), not "cannot reach the alloy runtime" (exit 1).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runInProcess } from '../helpers/cli.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'alloy-emit-args-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('alloy emit shopify:<topic> header values', () => {
  it('refuses a shop, topic or API version with control or non-ASCII characters before sending', async () => {
    writeFileSync(path.join(dir, 'order.json'), '{"id":1}');
    const env = { SHOPIFY_API_SECRET: 'shh-secret' };
    // Port 9 (discard) on loopback: nothing listens, so reaching it would be E_DEV_UNREACHABLE.
    const base = ['--to', 'http://127.0.0.1:9', '-d', '@order.json', '--json'];
    const runs: [string[], string][] = [
      [['emit', 'shopify:orders/create', '--shop', 'evil\r\nX-Injected: 1', ...base], '--shop'],
      [['emit', 'shopify:orders/create', '--shop', 'acme-tést.myshopify.com', ...base], '--shop'],
      [['emit', 'shopify:orders/create\nx', ...base], 'topic'],
      [['emit', 'shopify:orders/create', '--api-version', '2025-01\u0000', ...base], '--api-version'],
    ];
    for (const [args, names] of runs) {
      const r = await runInProcess(args, { cwd: dir, env });
      const error = JSON.parse(r.stdout).error;
      expect([r.code, error.code], r.stdout).toEqual([2, 'E_USAGE']);
      expect(error.message, r.stdout).toContain(names);
    }
  });
});
