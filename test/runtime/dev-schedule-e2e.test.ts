/**
 * The built binary: `alloy dev` shows each schedule's next fire time in its banner and fires
 * an `every: 1s` schedule on the real clock; `alloy executions` lists the runs.
 */
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { requireBuild, runAlloy, startDev, writeTree } from './helpers.js';

beforeAll(() => requireBuild());

let dir: string;
let stop: (() => Promise<void>) | undefined;
afterEach(async () => {
  await stop?.();
  stop = undefined;
  rmSync(dir, { recursive: true, force: true });
});

describe('alloy dev schedules (built binary)', () => {
  it('prints the next fire time and fires on time', async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'alloy-sched-e2e-'));
    writeTree(dir, {
      'alloy.config.yaml': 'apiVersion: alloy/v1\nkind: Project\nname: sched\n',
      'integrations/demo/integration.yaml': 'apiVersion: alloy/v1\nkind: Integration\nname: demo\napp: http\n',
      'integrations/demo/workflows/tick.yaml':
        'apiVersion: alloy/v1\nkind: Workflow\nname: tick\ntrigger:\n  schedule: { every: 1s }\nsteps:\n  - id: at\n    uses: transform\n    with: { at: "{{ event.scheduledAt }}" }\n',
      'integrations/demo/workflows/daily.yaml':
        'apiVersion: alloy/v1\nkind: Workflow\nname: daily\ntrigger:\n  schedule: { cron: "0 9 * * *", timezone: Europe/Paris }\nsteps:\n  - id: a\n    uses: transform\n    with: { a: 1 }\n',
    });
    const dev = await startDev(dir);
    stop = async () => {
      dev.proc.kill('SIGINT');
      await dev.proc;
    };
    expect(dev.output()).toMatch(/schedules\s+demo\/(tick|daily)/);
    expect(dev.output()).toMatch(/demo\/daily\s+0 9 \* \* \* \(Europe\/Paris\)\s+next \d{4}-\d{2}-\d{2} (07|08):00:00 UTC/);
    expect(dev.output()).toMatch(/demo\/tick\s+every 1s\s+next \d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} UTC/);
    const deadline = Date.now() + 15_000;
    let runs: { workflow: string; status: string }[] = [];
    while (Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 500));
      const r = await runAlloy(dir, ['executions', '--json']);
      if (r.exitCode === 0) {
        const parsed = JSON.parse(String(r.stdout)) as { executions?: { workflow: string; status: string }[] } | { workflow: string; status: string }[];
        runs = Array.isArray(parsed) ? parsed : (parsed.executions ?? []);
        if (runs.filter((e) => e.workflow === 'demo/tick' && e.status === 'succeeded').length >= 2) break;
      }
    }
    expect(runs.filter((e) => e.workflow === 'demo/tick' && e.status === 'succeeded').length).toBeGreaterThanOrEqual(2);
    expect(runs.some((e) => e.workflow === 'demo/daily')).toBe(false);
  }, 40_000);
});
