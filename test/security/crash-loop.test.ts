/**
 * Issue 9 item 2: no crash loops. An execution in flight when the process died 3 times is
 * failed with E_CRASH_LOOP (the resume count is durable, in the event log) and not resumed
 * again; the runtime starts and serves. The built binary is killed with SIGKILL by the very
 * request the execution makes (a real crash in flight, no test hook), three times.
 */
import http from 'node:http';
import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { execa, type ResultPromise } from 'execa';
import { tempDir } from '../server/helpers.js';
import { BIN, requireBuild, runAlloy, startDev, writeTree } from '../runtime/helpers.js';

describe('crash loops', () => {
  let tmp: ReturnType<typeof tempDir>;
  let killer: http.Server;
  let killerUrl = '';
  let current: ResultPromise | undefined;
  let hits = 0;

  beforeAll(async () => {
    requireBuild();
    tmp = tempDir('alloy-crash-loop-');
    // Every request kills the alloy dev that made it, before answering. The pid comes from the
    // event log's pid file (written when the log opens, before any resume), so a resumed run
    // that calls out while the process is still starting is killed too, with no race.
    killer = http.createServer((req, res) => {
      hits++;
      try {
        const { pid } = JSON.parse(readFileSync(path.join(tmp.dir, '.alloy', 'dev.sqlite.pid'), 'utf8')) as { pid: number };
        process.kill(pid, 'SIGKILL');
      } catch {
        current?.kill('SIGKILL');
      }
      req.resume();
      res.destroy();
    });
    await new Promise<void>((r) => killer.listen(0, '127.0.0.1', r));
    killerUrl = `http://127.0.0.1:${(killer.address() as AddressInfo).port}`;
    writeTree(tmp.dir, {
      'alloy.config.yaml': 'apiVersion: alloy/v1\nkind: Project\nname: crashloop\n',
      'integrations/demo/integration.yaml': 'apiVersion: alloy/v1\nkind: Integration\nname: demo\napp: shopify\n',
      'integrations/demo/workflows/boom.yaml': `apiVersion: alloy/v1
kind: Workflow
name: boom
trigger:
  event: crash.me
steps:
  - id: prepare
    uses: transform
    with: { n: "{{ event.n }}" }
  - id: fatal
    uses: http
    with: { method: POST, url: "${killerUrl}/die", body: "{{ steps.prepare.output }}" }
`,
      'integrations/demo/workflows/fine.yaml': `apiVersion: alloy/v1
kind: Workflow
name: fine
trigger:
  event: all.good
steps:
  - id: echo
    uses: transform
    with: { ok: true }
`,
    });
  });
  afterAll(async () => {
    current?.kill('SIGKILL');
    await new Promise<void>((r) => killer.close(() => r()));
    tmp?.cleanup();
  });

  async function killedBy(proc: ResultPromise): Promise<void> {
    const ended = await proc;
    expect(ended.signal).toBe('SIGKILL');
  }

  it('fails an execution that took the process down 3 times with E_CRASH_LOOP, and serves', async () => {
    // Start 1: the event's execution crashes the process.
    let dev = await startDev(tmp.dir);
    current = dev.proc;
    const res = await request(`${dev.url}/v1/run/event`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ event: 'crash.me', data: { n: 1 } }),
    });
    expect(res.statusCode).toBe(202);
    const id = ((await res.body.json()) as { executions: { id: string }[] }).executions[0].id;
    await killedBy(dev.proc);
    expect(hits).toBe(1);

    // Starts 2 and 3: it is resumed, and crashes the process again (possibly before its banner).
    for (const expected of [2, 3]) {
      const proc = execa(process.execPath, [BIN, 'dev', '-p', '0'], { cwd: tmp.dir, env: { NO_COLOR: '1' }, reject: false });
      current = proc;
      await killedBy(proc);
      expect(hits).toBe(expected);
    }

    // Start 4: not resumed again; failed with E_CRASH_LOOP; the runtime serves.
    dev = await startDev(tmp.dir);
    current = dev.proc;
    const deadline = Date.now() + 10_000;
    let execution: { status: string; error?: { code: string; message: string } } | undefined;
    for (;;) {
      const r = await request(`${dev.url}/v1/executions/${id}`);
      execution = ((await r.body.json()) as { execution: typeof execution }).execution;
      if (execution?.status === 'failed' || Date.now() > deadline) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(execution?.status).toBe('failed');
    expect(execution?.error?.code).toBe('E_CRASH_LOOP');
    expect(execution?.error?.message).toMatch(/stopped 3 times/);
    expect(hits).toBe(3);
    const health = await request(`${dev.url}/healthz`);
    expect(health.statusCode).toBe(200);
    await health.body.dump();
    // Other events still run.
    const ok = await request(`${dev.url}/v1/run/event`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ event: 'all.good', data: {} }),
    });
    expect(ok.statusCode).toBe(202);
    await ok.body.dump();

    // `alloy executions <id>` says why.
    const shown = await runAlloy(tmp.dir, ['executions', id]);
    expect(shown.stdout).toMatch(/failed .*the runtime stopped 3 times while this execution was running/);
    const json = await runAlloy(tmp.dir, ['executions', id, '--json']);
    expect(JSON.stringify(JSON.parse(json.stdout))).toMatch(/"code":"E_CRASH_LOOP"/);

    dev.proc.kill('SIGTERM');
    await dev.proc;
    expect(hits).toBe(3);
  }, 90_000);
});
