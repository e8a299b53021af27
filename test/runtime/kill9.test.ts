/**
 * Reliability under kill -9 (issue 5): a separate process sends 1,000 events; the dev
 * server (the built binary) is killed with SIGKILL mid-run and started again. Every
 * acknowledged (202) event must end with a succeeded execution, and the destination may
 * see a request twice only for steps in flight at the crash, with the same idempotency key.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import path from 'node:path';
import { execa } from 'execa';
import { request } from 'undici';
import { tempDir } from '../server/helpers.js';
import { requireBuild, startDev, startSink, writeTree } from './helpers.js';

const TOTAL = 1000;
const SENDER_CONCURRENCY = 16;
const DEV_CONCURRENCY = 8;

function project(sinkUrl: string): Record<string, string> {
  return {
    'alloy.config.yaml': 'apiVersion: alloy/v1\nkind: Project\nname: kill9\n',
    'integrations/demo/integration.yaml': 'apiVersion: alloy/v1\nkind: Integration\nname: demo\napp: shopify\n',
    'integrations/demo/workflows/forward.yaml': `apiVersion: alloy/v1
kind: Workflow
name: forward
trigger:
  event: kill.item
  schema: { type: object, required: [n], properties: { n: { type: integer } } }
steps:
  - id: map
    uses: transform
    with: { item: "{{ event.n }}", sku: "{{ event.sku }}", qty: "{{ event.qty }}" }
  - id: post
    uses: http
    with:
      method: POST
      url: "${sinkUrl}/sink"
      body: "{{ steps.map.output }}"
    retry: { attempts: 5, initialDelay: 50ms, maxDelay: 200ms }
`,
  };
}

async function getJson(url: string) {
  const res = await request(url);
  return (await res.body.json()) as any;
}

describe('alloy dev under kill -9', () => {
  let tmp: ReturnType<typeof tempDir>;
  let sink: Awaited<ReturnType<typeof startSink>>;
  beforeAll(async () => {
    requireBuild();
    tmp = tempDir('alloy-kill9-');
    sink = await startSink(2);
    writeTree(tmp.dir, project(sink.url));
  });
  afterAll(async () => {
    await sink?.close();
    tmp?.cleanup();
  });

  it('executes every acknowledged event exactly once, except steps in flight at the crash', async () => {
    const first = await startDev(tmp.dir, ['--concurrency', String(DEV_CONCURRENCY)]);
    const acked = new Map<number, string>();
    const parse = (text: string) => {
      for (const line of text.split('\n')) {
        const m = /^ACK (\d+) (\S+)$/.exec(line);
        if (m) acked.set(Number(m[1]), m[2]);
      }
    };
    // Sender 1: a separate process; the server is killed once ~40% are acknowledged.
    const sender1 = execa(process.execPath, [path.join(__dirname, 'sender.mjs'), first.url, '0', String(TOTAL), String(SENDER_CONCURRENCY)], { reject: false });
    let buffer = '';
    const killAt = Math.floor(TOTAL * 0.4);
    await new Promise<void>((resolve) => {
      sender1.stdout!.on('data', (d: Buffer) => {
        buffer += d.toString();
        const acks = (buffer.match(/^ACK /gm) ?? []).length;
        if (acks >= killAt) resolve();
      });
      sender1.on('exit', () => resolve());
    });
    first.proc.kill('SIGKILL');
    const r1 = await sender1;
    parse(r1.stdout as string);
    const ended = await first.proc;
    // The crash really was a SIGKILL (not a clean exit that flushed everything first).
    expect(ended.signal).toBe('SIGKILL');
    expect(first.proc.signalCode).toBe('SIGKILL');
    expect(first.proc.exitCode).toBeNull();
    const ackedBeforeCrash = acked.size;
    expect(ackedBeforeCrash).toBeGreaterThanOrEqual(killAt);
    expect(ackedBeforeCrash).toBeLessThan(TOTAL);
    const sinkAtCrash = sink.requests.length;

    // Restart on the same log; the rest of the events come from a second sender.
    const second = await startDev(tmp.dir, ['--concurrency', String(DEV_CONCURRENCY)]);
    const notAcked = Array.from({ length: TOTAL }, (_, n) => n).filter((n) => !acked.has(n));
    const from = Math.min(...notAcked);
    const r2 = await execa(process.execPath, [path.join(__dirname, 'sender.mjs'), second.url, String(from), String(TOTAL), String(SENDER_CONCURRENCY)], { reject: false });
    parse(r2.stdout as string);
    expect(r2.stdout).not.toMatch(/^(NACK|ERR) /m);

    // Wait for the queue to drain.
    const deadline = Date.now() + 60_000;
    for (;;) {
      const h = await getJson(`${second.url}/healthz`);
      if (h.queue.queued === 0 && h.queue.running === 0) break;
      if (Date.now() > deadline) throw new Error(`queue did not drain: ${JSON.stringify(h.queue)}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    expect((await getJson(`${second.url}/v1/executions?status=failed`)).executions).toEqual([]);
    // Events committed but not answered before the kill were sent again (new executions): read each acked one.
    const succeeded = new Set<string>();
    const ids = [...acked.values()];
    await Promise.all(
      Array.from({ length: 8 }, async (_, w) => {
        for (let i = w; i < ids.length; i += 8) {
          const ex = (await getJson(`${second.url}/v1/executions/${ids[i]}`)).execution;
          if (ex.status === 'succeeded') succeeded.add(ex.id);
        }
      }),
    );

    // 1. Every acknowledged event has a succeeded execution.
    for (const id of acked.values()) expect(succeeded.has(id), `execution ${id} succeeded`).toBe(true);
    expect(acked.size).toBeGreaterThanOrEqual(TOTAL - SENDER_CONCURRENCY);

    // 2. The destination saw each acknowledged execution's POST, keyed `<executionId>:post`.
    const byKey = new Map<string, number>();
    for (const req of sink.requests) {
      const key = String(req.headers['idempotency-key']);
      byKey.set(key, (byKey.get(key) ?? 0) + 1);
    }
    for (const id of acked.values()) expect(byKey.has(`${id}:post`), `sink saw ${id}:post`).toBe(true);

    // 3. Duplicates only for steps in flight at the crash: at most the pool's concurrency,
    //    each carrying the same idempotency key (counted per key), none after the restart's own work.
    const duplicates = [...byKey].filter(([, n]) => n > 1);
    expect(duplicates.length).toBeLessThanOrEqual(DEV_CONCURRENCY);
    for (const [key, n] of duplicates) {
      expect(key).toMatch(/^ex_[0-9a-z]+:post$/);
      expect(n).toBe(2);
    }
    expect(sink.requests.length).toBe(byKey.size + duplicates.length);
    // Sanity: the crash happened mid-run (work remained to be done after it).
    expect(sink.requests.length).toBeGreaterThan(sinkAtCrash);

    second.proc.kill('SIGTERM');
    const end = await second.proc;
    expect(end.exitCode).toBe(0);
    expect(second.output()).toContain('the event log is closed');
  }, 120_000);
});
