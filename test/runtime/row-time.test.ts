/** One timestamp per row, the start: emit --wait, executions (list and <id>) and logs all show when the execution started. */
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { tempDir } from '../server/helpers.js';
import { requireBuild, runAlloy, startDev, writeTree } from './helpers.js';

describe('execution rows', () => {
  it('show the start time everywhere, not the end', async () => {
    requireBuild();
    const tmp = tempDir('alloy-row-time-');
    const root = path.join(tmp.dir, 'p');
    writeTree(root, {
      'alloy.config.yaml': 'apiVersion: alloy/v1\nkind: Project\nname: rows\n',
      'integrations/demo/integration.yaml': 'apiVersion: alloy/v1\nkind: Integration\nname: demo\napp: shopify\n',
      'integrations/demo/workflows/slow.yaml': 'apiVersion: alloy/v1\nkind: Workflow\nname: slow\ntrigger: { event: acme.slow }\nsteps:\n  - id: wait\n    delay: 2100ms\n',
    });
    const dev = await startDev(root);
    try {
      const r = await runAlloy(root, ['emit', 'acme.slow', '--wait']);
      expect(r.exitCode, r.stderr).toBe(0);
      const id = /(ex_\w+)/.exec(r.stdout)![1];
      const rec = JSON.parse((await runAlloy(root, ['executions', id, '--json'])).stdout).record;
      const start = rec.startedAt.slice(11, 19);
      expect(rec.endedAt.slice(11, 19)).not.toBe(start); // 2.1 s apart: the two times differ
      const row = new RegExp(`^${start}  ✓ succeeded  demo/slow .*${id}`, 'm');
      expect(r.stdout).toMatch(row);
      expect((await runAlloy(root, ['executions'])).stdout).toMatch(row);
      expect((await runAlloy(root, ['executions', id])).stdout).toMatch(row);
      expect((await runAlloy(root, ['logs'])).stdout).toMatch(row);
    } finally {
      dev.proc.kill('SIGTERM');
      await dev.proc;
      tmp.cleanup();
    }
  }, 60_000);
});
