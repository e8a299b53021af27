/**
 * The README's main job: `npm run example` runs the bundled example end to end (fake
 * Shopify, alloy dev, emit, stream, replay, release, publish) and exits 0. Runs the same
 * script against the built binary.
 */
import path from 'node:path';
import { execa } from 'execa';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from './helpers/cli.js';

describe('npm run example', () => {
  it('runs examples/shopify-sync end to end', async () => {
    const r = await execa('node', [path.join(REPO_ROOT, 'scripts', 'example.mjs')], { cwd: REPO_ROOT, reject: false, timeout: 120_000, env: { NO_COLOR: '1' } });
    expect(r.stdout, r.stdout + r.stderr).toContain('The example ran end to end.');
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toContain('✔ the order was created in Shopify (1 order)');
    expect(r.stdout).toContain('✔ Acme received the execution data with a valid Standard Webhooks signature (1)');
    expect(r.stdout).not.toContain('✖');
    // It says what to do next, with a command that works from the clone.
    expect(r.stdout).toContain('node bin/alloy.js init ../my-integrations');
  }, 150_000);
});
