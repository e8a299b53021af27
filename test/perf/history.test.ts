/**
 * Issue 13, item 6: history never slows the present. `versions --limit n` reads n refs,
 * fsck reads each object file once (and a few at a time), the executions filter by a bare
 * workflow name uses an index, and `dev --fresh` starts a new event log file.
 */
import { afterAll, describe, expect, it, vi } from 'vitest';
import { promises as fsp, statSync } from 'node:fs';
import path from 'node:path';
import { openEventLog } from '../../src/server/event-log.js';
import { LocalStore, fsckStore, listVersionInfo, releaseIntegration } from '../../src/store/index.js';
import { cleanupTempDirs, integration, tempDir, workflow } from '../store/helpers.js';

const opts = { author: 'test', now: () => new Date('2026-01-01T00:00:00Z') };

afterAll(cleanupTempDirs);

async function storeWith(versions: number) {
  const store = new LocalStore(await tempDir());
  for (let v = 1; v <= versions; v++) {
    await releaseIntegration(store, integration('shop', [workflow('a', [{ id: 'map', uses: 'transform', with: { v } }])]), opts);
  }
  return store;
}

async function waitFor(check: () => Promise<boolean>, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('history reads', () => {
  it('versions --limit reads only the refs it shows', async () => {
    const store = await storeWith(12);
    const readRef = vi.spyOn(store as unknown as { readVersionFile: (i: string, n: number) => Promise<string> }, 'readVersionFile');
    const list = await listVersionInfo(store, 'shop', { limit: 3 });
    expect(list.map((v) => v.version)).toEqual([10, 11, 12]);
    // The three refs shown, plus the latest once more to find where history ends (no listing).
    expect([...new Set(readRef.mock.calls.map((c) => c[1]))].sort((a, b) => a - b)).toEqual([10, 11, 12]);
    expect(readRef.mock.calls.length).toBeLessThanOrEqual(4);
    expect((await listVersionInfo(store, 'shop')).map((v) => v.version)).toEqual(Array.from({ length: 12 }, (_, i) => i + 1));
  });

  it('fsck reads each object file once and never re-reads an object through the refs', async () => {
    const store = await storeWith(6);
    const objectFiles = (await store.listObjectFiles()).length;
    const readFile = vi.spyOn(fsp, 'readFile');
    const readObject = vi.spyOn(store, 'readObject');
    try {
      const report = await fsckStore(store);
      expect(report.errors).toBe(0);
      expect(report.versions).toBe(6);
      const objectReads = readFile.mock.calls.filter((c) => String(c[0]).includes(`${store.dir}/objects/`));
      expect(objectReads).toHaveLength(objectFiles);
      expect(readObject).not.toHaveBeenCalled();
    } finally {
      readFile.mockRestore();
      readObject.mockRestore();
    }
  });
});

describe('event log history', () => {
  const delivery = (id: string) => ({ id, source: 'event', name: 'e', receivedAt: 1, headers: {}, body: Buffer.from('{"a":1}'), verification: 'none' });
  const exec = (id: string, workflow: string) => ({ id, workflow, record: { id, status: 'queued', steps: {} } });

  it('filters executions by a bare workflow name through an index, exactly (no LIKE wildcards)', async () => {
    const file = path.join(await tempDir(), 'dev.sqlite');
    const log = openEventLog({ file });
    try {
      const names = ['shop/orders', 'crm/orders', 'shop/order_s', 'shop/ordersx'];
      for (const [i, w] of names.entries()) await log.appendDelivery(delivery(`dl_${i}`), [exec(`ex_${i}`, w)]);
      const db = (log as unknown as { db: { prepare(sql: string): { all(...p: unknown[]): unknown[] } } }).db;
      const prepare = vi.spyOn(db, 'prepare');
      expect(log.listExecutions({ workflow: 'orders' }).map((e) => e.workflow)).toEqual(['crm/orders', 'shop/orders']);
      expect(log.listExecutions({ workflow: 'order_s' }).map((e) => e.workflow)).toEqual(['shop/order_s']);
      const sql = String(prepare.mock.calls.at(-1)![0]);
      prepare.mockRestore();
      const plan = db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all('orders') as { detail: string }[];
      expect(plan.map((p) => p.detail).join('\n')).toMatch(/USING INDEX executions_workflow_name/);
    } finally {
      log.close();
    }
  });

  it('dev --fresh starts a new file: empty, small, and refused while another log holds it', async () => {
    const file = path.join(await tempDir(), 'dev.sqlite');
    let log = openEventLog({ file });
    for (let i = 0; i < 300; i++) {
      await log.appendDelivery({ ...delivery(`dl_${i}`), body: Buffer.from(JSON.stringify({ pad: 'x'.repeat(2000), i })) }, [exec(`ex_${i}`, 'shop/orders')]);
    }
    // Held by an open log: fresh is refused, nothing removed.
    expect(() => openEventLog({ file, fresh: true })).toThrow(/in use/);
    expect(log.countDeliveries()).toBe(300);
    log.close();
    const before = statSync(file).size;
    log = openEventLog({ file, fresh: true });
    try {
      expect(log.countDeliveries()).toBe(0);
      expect(log.listExecutions()).toEqual([]);
      expect(statSync(file).size).toBeLessThan(before / 4);
      await log.appendDelivery(delivery('dl_new'), [exec('ex_new', 'shop/orders')]);
      expect(log.pendingExecutionIds()).toEqual(['ex_new']);
      // The old file was set aside and is deleted in the background.
      await waitFor(async () => (await fsp.readdir(path.dirname(file))).every((n) => !n.includes('.discarded-')));
    } finally {
      log.close();
    }
  });
});
