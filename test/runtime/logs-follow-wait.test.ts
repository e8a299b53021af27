/** `alloy logs -f` started before `alloy dev` waits for it (and says so) instead of failing. */
import { cpSync } from 'node:fs';
import path from 'node:path';
import { execa } from 'execa';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT, tempDir, waitFor } from '../server/helpers.js';
import { BIN, requireBuild, runAlloy, startDev } from './helpers.js';

describe('alloy logs -f before alloy dev', () => {
  it('waits for dev to start, then follows its executions', async () => {
    requireBuild();
    const tmp = tempDir('alloy-logs-wait-');
    const root = path.join(tmp.dir, 'p');
    cpSync(path.join(REPO_ROOT, 'examples', 'shopify-sync'), root, { recursive: true });
    const follower = execa(process.execPath, [BIN, 'logs', '-f'], { cwd: root, env: { NO_COLOR: '1' }, reject: false });
    let out = '';
    let err = '';
    follower.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    follower.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    let dev: Awaited<ReturnType<typeof startDev>> | undefined;
    try {
      await waitFor(() => err.includes('waiting for it to start'), 'the waiting note', 15_000);
      expect(follower.exitCode).toBeNull();
      dev = await startDev(root, ['--fake', 'shopify']);
      await waitFor(() => err.includes('alloy dev started: following its log'), 'the started note', 15_000);
      const sent = await runAlloy(root, ['emit', 'acme.order.requested', '-d', '@integrations/shopify-sync/fixtures/acme-order-requested.json', '--json']);
      expect(sent.exitCode, sent.stderr).toBe(0);
      const id = JSON.parse(sent.stdout).executions[0].id;
      await waitFor(() => out.includes(id), 'the execution line', 15_000);
      expect(out).toMatch(new RegExp(`succeeded\\s+shopify-sync/create-order\\s+\\S+\\s+${id}`));
    } finally {
      follower.kill('SIGINT');
      const end = await follower;
      dev?.proc.kill('SIGTERM');
      await dev?.proc;
      tmp.cleanup();
      expect(end.exitCode).toBe(0);
      expect(err).not.toContain('E_DEV_NOT_RUNNING');
    }
  }, 90_000);
});
