import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { execa } from 'execa';
import { existsSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { BODY_FILE_MIN_BYTES, openEventLog, type EventLog } from '../../src/server/event-log.js';
import { pathToFileURL } from 'node:url';
import Database from 'better-sqlite3';
import { REPO_ROOT, tempDir } from './helpers.js';
import { readThirdPartyFixture } from '../helpers/fixtures.js';

function delivery(id: string, dedupeKey?: string) {
  return {
    id,
    source: 'event',
    name: 'acme.order.requested',
    receivedAt: 1_700_000_000_000,
    dedupeKey,
    headers: { 'content-type': 'application/json' },
    body: Buffer.from('{"a":1}'),
    verification: 'none',
  };
}
/**
 * Frames written to the log's WAL so far (https://www.sqlite.org/fileformat.html#the_write_ahead_log:
 * a 32-byte header, then frames of 24 bytes + one page). A transaction writes each page it
 * changed once, so many small transactions write many more frames than one big one. The file
 * only grows (after a checkpoint SQLite rewrites it from the start), so this is a high-water mark.
 */
function walFrames(dbFile: string): number {
  const wal = `${dbFile}-wal`;
  if (!existsSync(wal)) return 0;
  const size = statSync(wal).size;
  if (size < 32) return 0;
  const pageSize = readFileSync(wal).readUInt32BE(8);
  return Math.floor((size - 32) / (24 + pageSize));
}
const exec = (id: string) => ({ id, workflow: 'demo/wf', record: { id, status: 'queued', steps: {} } });

describe('event log', () => {
  let tmp: ReturnType<typeof tempDir>;
  let file: string;
  let log: EventLog | undefined;
  beforeEach(() => {
    tmp = tempDir();
    file = path.join(tmp.dir, '.alloy', 'dev.sqlite');
  });
  afterEach(() => {
    log?.close();
    tmp.cleanup();
  });

  it('saves progress as changed step rows, merged back in order when read, and replaced by the final record', async () => {
    log = openEventLog({ file });
    await log.appendDelivery(delivery('dl_p'), [exec('ex_p')]);
    const step = (p: string, status = 'succeeded') => ({ path: p, id: p, kind: 'action', status, attempts: 1, startedAt: 't' });
    const record: any = { id: 'ex_p', status: 'running', startedAt: 't', steps: {} };
    // 3,000 steps saved one progress write each: each write carries only its step.
    for (let i = 0; i < 3000; i++) {
      record.steps[`s${i}`] = step(`s${i}`);
      await log.saveProgress(record, [record.steps[`s${i}`]]);
    }
    // The execution's own column holds the record without steps: a checkpoint does not rewrite them.
    log.close();
    const db = new Database(file, { readonly: true });
    const raw = db.prepare('SELECT record FROM executions WHERE id = ?').get('ex_p') as { record: string };
    expect(JSON.parse(raw.record)).toEqual({ id: 'ex_p', status: 'running', startedAt: 't', steps: {} });
    expect((db.prepare('SELECT COUNT(*) AS n FROM execution_steps').get() as { n: number }).n).toBe(3000);
    db.close();
    // Reopened (as after a crash): the record reads whole, steps in the order first saved.
    log = openEventLog({ file });
    const back = log.getExecution('ex_p')!.record as any;
    expect(Object.keys(back.steps)).toEqual(Object.keys(record.steps));
    expect(back.steps.s2999).toEqual(step('s2999'));
    expect((log.listExecutions()[0].record as any).steps.s0).toEqual(step('s0'));
    // A step saved again is updated in place; the final record replaces the rows.
    back.steps.s0 = step('s0', 'failed');
    await log.saveProgress(back, [back.steps.s0]);
    expect((log.getExecution('ex_p')!.record as any).steps.s0.status).toBe('failed');
    await log.saveRecord({ ...back, status: 'succeeded' });
    expect(Object.keys((log.getExecution('ex_p')!.record as any).steps)).toHaveLength(3000);
    log.close();
    const db2 = new Database(file, { readonly: true });
    expect((db2.prepare('SELECT COUNT(*) AS n FROM execution_steps').get() as { n: number }).n).toBe(0);
    db2.close();
    log = undefined;
  });

  it('merges progress saved in one turn into one write, and skips it when the final record follows', async () => {
    log = openEventLog({ file });
    await log.appendDelivery(delivery('dl_m'), [exec('ex_m')]);
    const record: any = { id: 'ex_m', status: 'running', steps: { a: { path: 'a', status: 'succeeded' } } };
    const first = log.saveProgress(record, [record.steps.a]);
    record.steps.b = { path: 'b', status: 'succeeded' };
    const second = log.saveProgress(record, [record.steps.b]);
    expect(second).toBe(first);
    await first;
    expect(Object.keys((log.getExecution('ex_m')!.record as any).steps)).toEqual(['a', 'b']);
    // Progress then the final record in the same turn: the progress write is dropped.
    record.steps.c = { path: 'c', status: 'succeeded' };
    const progress = log.saveProgress(record, [record.steps.c]);
    const final = log.saveRecord({ ...record, status: 'succeeded' });
    await Promise.all([progress, final]);
    expect(log.getExecution('ex_m')!.status).toBe('succeeded');
    expect(Object.keys((log.getExecution('ex_m')!.record as any).steps)).toEqual(['a', 'b', 'c']);
    log.close();
    log = undefined;
    const db = new Database(file, { readonly: true, fileMustExist: true });
    expect((db.prepare('SELECT COUNT(*) AS n FROM execution_steps').get() as { n: number }).n).toBe(0);
    db.close();
  });

  it('stores a large final record deflated and reads it back whole; small ones stay JSON text; progress rewrites it as text', async () => {
    log = openEventLog({ file });
    await log.appendDelivery(delivery('dl_big'), [exec('ex_big'), exec('ex_small')]);
    const steps: Record<string, unknown> = {};
    for (let i = 0; i < 2_000; i++) {
      steps[`lines[${i}].map`] = { path: `lines[${i}].map`, id: 'map', kind: 'action', uses: 'transform', status: 'succeeded', attempts: 1, inputs: { sku: `SKU-${i}` }, output: { sku: `SKU-${i}` } };
    }
    const big = { id: 'ex_big', workflow: 'demo/wf', status: 'succeeded', steps };
    await log.saveRecord(big);
    await log.saveRecord({ id: 'ex_small', workflow: 'demo/wf', status: 'succeeded', steps: {} });
    expect(log.getExecution('ex_big')!.record).toEqual(big);
    expect(log.listExecutions().find((e) => e.id === 'ex_big')!.record).toEqual(big);
    log.close();
    log = undefined;
    const db = new Database(file, { readonly: true });
    const rows = db.prepare('SELECT id, record, record_encoding FROM executions ORDER BY id').all() as { id: string; record: string | Buffer; record_encoding: string | null }[];
    const [bigRow, smallRow] = rows;
    expect(bigRow.record_encoding).toBe('deflate-raw');
    expect(Buffer.isBuffer(bigRow.record)).toBe(true);
    // A tenth of the JSON or less: the step records repeat the same keys.
    expect(bigRow.record.length).toBeLessThan(JSON.stringify(big).length / 10);
    expect(smallRow.record_encoding).toBeNull();
    expect(typeof smallRow.record).toBe('string');
    db.close();
    // Read-only, as `alloy executions` and `alloy test --record` open it.
    const reader = openEventLog({ file, readonly: true });
    expect(reader.getExecution('ex_big')!.record).toEqual(big);
    reader.close();
  });

  it('serializes a record with many steps to the same JSON as JSON.stringify', async () => {
    const { stringifyRecord } = await import('../../src/server/event-log.js');
    const steps: Record<string, unknown> = {};
    for (let i = 0; i < 2_345; i++) steps[`e[${i}].map`] = { path: `e[${i}].map`, output: { q: i, s: 'x"\u2028' }, skip: undefined };
    const record = { id: 'ex', workflow: 'w', event: { big: true }, status: 'succeeded', steps, endedAt: 'z', gone: undefined };
    expect(await stringifyRecord(record, undefined)).toBe(JSON.stringify(record));
    const { event: _e, ...rest } = record;
    expect(await stringifyRecord(record, 'body')).toBe(JSON.stringify(rest));
  });

  it('deflates a large record piece by piece to the bytes of its JSON, and keeps a small one as text', async () => {
    const { serializeRecord } = await import('../../src/server/event-log.js');
    const { inflateRawSync } = await import('node:zlib');
    const steps: Record<string, unknown> = {};
    for (let i = 0; i < 3_001; i++) steps[`e[${i}].map`] = { path: `e[${i}].map`, output: { q: i, s: 'é"\u2028' } };
    const record = { steps, id: 'ex', event: { big: true }, status: 'succeeded' };
    const stored = await serializeRecord(record, 'body');
    expect(Buffer.isBuffer(stored)).toBe(true);
    const { event: _e, ...rest } = record;
    expect(inflateRawSync(stored as Buffer).toString('utf8')).toBe(JSON.stringify(rest));
    expect(await serializeRecord({ id: 'ex', steps: {} }, undefined)).toBe('{"id":"ex","steps":{}}');
  });

  it('stores deliveries with their executions and finds unfinished ones after reopening', async () => {
    log = openEventLog({ file });
    const r = await log.appendDelivery(delivery('dl_1'), [exec('ex_1'), exec('ex_2')]);
    expect(r).toEqual({ duplicate: false, deliveryId: 'dl_1', executionIds: ['ex_1', 'ex_2'] });
    await log.saveRecord({ id: 'ex_1', status: 'succeeded', steps: {} }, { kind: 'execution', executionId: 'ex_1', message: 'ok', status: 'succeeded' });
    log.close();
    log = openEventLog({ file });
    expect(log.pendingExecutionIds()).toEqual(['ex_2']);
    expect(log.getExecution('ex_1')?.status).toBe('succeeded');
    expect(log.getExecution('ex_1')?.finishedAt).toBeTypeOf('number');
    expect(log.getDelivery('dl_1')?.body.toString()).toBe('{"a":1}');
    expect(log.readLog(undefined).map((e) => e.executionId)).toEqual(['ex_1']);
  });

  it('creates new files with 16 KB pages and keeps the page size of an existing 4 KB file', async () => {
    log = openEventLog({ file });
    await log.appendDelivery(delivery('dl_new'), [exec('ex_new')]);
    log.close();
    const fresh = new Database(file, { readonly: true });
    expect(fresh.pragma('page_size', { simple: true })).toBe(16384);
    fresh.close();
    // A file made before the change (4 KB pages) opens, takes writes and reads them back as before.
    const old = path.join(tmp.dir, 'old.sqlite');
    const made = new Database(old);
    made.pragma('page_size = 4096');
    made.pragma('journal_mode = WAL');
    made.close();
    log = openEventLog({ file: old });
    await log.appendDelivery(delivery('dl_old'), [exec('ex_old')]);
    log.close();
    log = openEventLog({ file: old });
    expect(log.getDelivery('dl_old')?.body.toString()).toBe('{"a":1}');
    expect(log.pendingExecutionIds()).toEqual(['ex_old']);
    log.close();
    log = undefined;
    const reopened = new Database(old, { readonly: true });
    expect(reopened.pragma('page_size', { simple: true })).toBe(4096);
    reopened.close();
  });

  it('keeps a large body in the body file (once, not through the WAL) and small ones in the row, and reads both back exactly', async () => {
    const order = readThirdPartyFixture('shopify/orders-create.json');
    expect(order.length).toBeGreaterThanOrEqual(BODY_FILE_MIN_BYTES);
    log = openEventLog({ file });
    await log.appendDelivery({ ...delivery('dl_big'), body: order }, [{ ...exec('ex_big'), eventRef: 'body' as const }]);
    await log.appendDelivery(delivery('dl_small'), [exec('ex_small')]);
    await log.appendDelivery({ ...delivery('dl_big2'), body: order }, [exec('ex_big2')]);
    expect(log.getDelivery('dl_big')!.body.equals(order)).toBe(true);
    expect(log.getExecution('ex_big')!.record.event).toEqual(JSON.parse(order.toString('utf8')));
    log.close();
    const raw = new Database(file, { readonly: true });
    const rows = raw.prepare('SELECT id, length(body) AS stored, body_encoding AS encoding FROM deliveries ORDER BY seq').all();
    raw.close();
    const bodies = `${file}-bodies`;
    // A 32-byte header names the file; rows name it too, with where their body starts.
    const header = readFileSync(bodies).subarray(0, 32).toString('latin1');
    expect(header).toMatch(/^alloy-bodies-1:[0-9a-f]{16}\n$/);
    const id = header.slice(15, 31);
    expect(rows).toEqual([
      { id: 'dl_big', stored: 0, encoding: `file:${id}:32:${order.length}` },
      { id: 'dl_small', stored: 7, encoding: null },
      { id: 'dl_big2', stored: 0, encoding: `file:${id}:${32 + order.length}:${order.length}` },
    ]);
    expect(readFileSync(bodies).subarray(32).equals(Buffer.concat([order, order]))).toBe(true);
    if (process.platform !== 'win32') expect(statSync(bodies).mode & 0o777).toBe(0o600);
    // Read-only (the CLI when no runtime runs) and after reopening for writing, appends continue at the end.
    log = openEventLog({ file, readonly: true });
    expect(log.getDelivery('dl_big2')!.body.equals(order)).toBe(true);
    log.close();
    log = openEventLog({ file });
    await log.appendDelivery({ ...delivery('dl_big3'), body: order }, [exec('ex_big3')]);
    expect(statSync(bodies).size).toBe(32 + 3 * order.length);
    for (const id of ['dl_big', 'dl_big2', 'dl_big3']) expect(log.getDelivery(id)!.body.equals(order)).toBe(true);
    expect(log.getDelivery('dl_small')!.body.toString()).toBe('{"a":1}');
  });

  it('writes a body to the body file before its row, and commits the row only after that', async () => {
    const order = readThirdPartyFixture('shopify/orders-create.json');
    log = openEventLog({ file });
    const bodies = `${file}-bodies`;
    const appended = log.appendDelivery({ ...delivery('dl_1'), body: order }, [exec('ex_1')]);
    // End of the turn: the body is written (then synced); the row is not there yet.
    await new Promise((r) => setImmediate(r));
    expect(existsSync(bodies) && statSync(bodies).size).toBe(32 + order.length);
    expect(log.getDelivery('dl_1')).toBeUndefined();
    await appended;
    expect(log.getDelivery('dl_1')!.body.equals(order)).toBe(true);
    // Closing with a body not yet written: the append fails, nothing refers to it.
    const late = log.appendDelivery({ ...delivery('dl_2'), body: order }, [exec('ex_2')]);
    log.close();
    await expect(late).rejects.toMatchObject({ code: 'E_EVENT_LOG_CLOSED' });
    log = openEventLog({ file });
    expect(log.getDelivery('dl_2')).toBeUndefined();
    expect(log.pendingExecutionIds()).toEqual(['ex_1']);
  });

  it('a missing body file is a clear error, not a crash; --fresh sets the body file aside with the log', async () => {
    const order = readThirdPartyFixture('shopify/orders-create.json');
    log = openEventLog({ file });
    await log.appendDelivery({ ...delivery('dl_1'), body: order }, [exec('ex_1')]);
    log.close();
    const { rmSync, readdirSync } = await import('node:fs');
    rmSync(`${file}-bodies`);
    log = openEventLog({ file, readonly: true });
    expect(() => log!.getDelivery('dl_1')).toThrow(expect.objectContaining({ code: 'E_EVENT_LOG_DAMAGED' }));
    log.close();
    log = openEventLog({ file });
    await log.appendDelivery({ ...delivery('dl_2'), body: order }, [exec('ex_2')]);
    // A new body file (a new id): dl_1's body is not taken from it.
    expect(log.getDelivery('dl_2')!.body.equals(order)).toBe(true);
    expect(() => log!.getDelivery('dl_1')).toThrow(expect.objectContaining({ code: 'E_EVENT_LOG_DAMAGED' }));
    log.close();
    log = openEventLog({ file, fresh: true });
    expect(log.countDeliveries()).toBe(0);
    expect(existsSync(`${file}-bodies`)).toBe(false);
    await log.appendDelivery({ ...delivery('dl_3'), body: order }, [exec('ex_3')]);
    expect(log.getDelivery('dl_3')!.body.equals(order)).toBe(true);
    // The old one was set aside with the database (deleted in the background, maybe not yet).
    expect(readdirSync(path.dirname(file)).filter((n) => n.endsWith('-bodies') && !n.includes('.discarded-'))).toEqual(['dev.sqlite-bodies']);
  });

  it('acknowledged large deliveries survive kill -9 of the writing process, bodies exact', async () => {
    const order = readThirdPartyFixture('shopify/orders-create.json');
    const dist = path.join(REPO_ROOT, 'dist', 'server', 'event-log.js');
    const child = execa(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        `import { openEventLog } from ${JSON.stringify(pathToFileURL(dist).href)};
         import { readFileSync } from 'node:fs';
         const body = readFileSync(${JSON.stringify(path.join(REPO_ROOT, 'fixtures', 'third-party', 'shopify', 'orders-create.json'))});
         const log = openEventLog({ file: ${JSON.stringify(file)} });
         let n = 0;
         // Eight at a time, forever: each id is printed once its append resolved (acknowledged).
         for (;;) {
           const batch = Array.from({ length: 8 }, () => { const id = 'dl_' + n++; return log.appendDelivery({ id, source: 'shopify', name: 'orders/create', receivedAt: 1, dedupeKey: 'k' + id, headers: {}, body, verification: 'none' }, [{ id: 'ex' + id, workflow: 'demo/wf', record: { id: 'ex' + id, status: 'queued', steps: {} }, eventRef: 'body' }]).then(() => console.log('acked ' + id)); });
           await Promise.all(batch);
         }`,
      ],
      { cwd: REPO_ROOT, reject: false, buffer: false },
    );
    const acked: string[] = [];
    await new Promise<void>((resolve, reject) => {
      child.stdout!.on('data', (d: Buffer) => {
        for (const m of d.toString().matchAll(/acked (\S+)/g)) acked.push(m[1]);
        if (acked.length >= 200) resolve();
      });
      child.on('exit', () => reject(new Error('child exited early')));
    });
    child.kill('SIGKILL');
    await child;
    log = openEventLog({ file });
    for (const id of acked) expect(log.getDelivery(id)?.body.equals(order), id).toBe(true);
    expect(log.getExecution(`ex${acked[0]}`)!.record.event).toEqual(JSON.parse(order.toString('utf8')));
  });

  it('with compressBodies, gives back the exact bytes of a large body it stores deflated, and small ones as they came', async () => {
    const order = readThirdPartyFixture('shopify/orders-create.json');
    log = openEventLog({ file, compressBodies: true });
    await log.appendDelivery({ ...delivery('dl_big'), body: order }, [exec('ex_big')]);
    await log.appendDelivery(delivery('dl_small'), [exec('ex_small')]);
    log.close(); // it holds the file's exclusive lock while open
    const raw = new Database(file, { readonly: true });
    const rows = raw.prepare('SELECT id, length(body) AS stored, body_encoding AS encoding FROM deliveries ORDER BY id').all() as { id: string; stored: number; encoding: string | null }[];
    raw.close();
    expect(rows).toEqual([
      { id: 'dl_big', stored: expect.any(Number), encoding: 'deflate-raw' },
      { id: 'dl_small', stored: 7, encoding: null },
    ]);
    expect(rows[0].stored).toBeLessThan(order.length / 2);
    log = openEventLog({ file, readonly: true });
    expect(log.getDelivery('dl_big')!.body.equals(order)).toBe(true);
    expect(log.getDelivery('dl_small')!.body.toString()).toBe('{"a":1}');
  });

  it('refuses a duplicate dedupe key and returns the first delivery and its executions', async () => {
    log = openEventLog({ file });
    await log.appendDelivery(delivery('dl_1', 'shopify:abc'), [exec('ex_1')]);
    const again = await log.appendDelivery(delivery('dl_2', 'shopify:abc'), [exec('ex_2')]);
    expect(again).toEqual({ duplicate: true, deliveryId: 'dl_1', executionIds: ['ex_1'] });
    expect(log.countDeliveries()).toBe(1);
    expect(log.getExecution('ex_2')).toBeUndefined();
  });

  it('group-commits concurrent writes, and one failing write fails only its caller', async () => {
    // Baseline in the same run: the same writes one after another, each its own transaction.
    const baselineFile = path.join(tmp.dir, 'baseline.sqlite');
    const baseline = openEventLog({ file: baselineFile, synchronous: 'normal' });
    const baselineStart = walFrames(baselineFile);
    for (let i = 0; i < 200; i++) await baseline.appendDelivery(delivery(`dl_${i}`), [exec(`ex_${i}`)]);
    const oneByOne = walFrames(baselineFile) - baselineStart;
    baseline.close();

    log = openEventLog({ file });
    const start = walFrames(file);
    const writes = Array.from({ length: 200 }, (_, i) => log!.appendDelivery(delivery(`dl_${i}`), [exec(`ex_${i}`)]));
    const bad = log.saveRecord({ id: 'ex_missing', status: 'running' });
    const results = await Promise.allSettled([...writes, bad]);
    expect(results.slice(0, 200).every((r) => r.status === 'fulfilled')).toBe(true);
    expect(results[200].status).toBe('rejected');
    expect((results[200] as PromiseRejectedResult).reason.code).toBe('E_EXECUTION_NOT_FOUND');
    expect(log.countDeliveries()).toBe(200);
    expect(log.pendingExecutionIds()).toHaveLength(200);
    // Grouped: the 200 writes (and the failing one) went into one or a few transactions, so
    // far fewer WAL frames than 200 separate transactions wrote.
    const grouped = walFrames(file) - start;
    expect(oneByOne).toBeGreaterThanOrEqual(200);
    expect(grouped).toBeGreaterThan(0);
    expect(grouped * 5).toBeLessThan(oneByOne);
  });

  it('lists executions by status and workflow, newest first', async () => {
    log = openEventLog({ file });
    await log.appendDelivery(delivery('dl_1'), [exec('ex_1'), { ...exec('ex_2'), workflow: 'demo/other' }]);
    await log.saveRecord({ id: 'ex_2', status: 'failed' });
    expect(log.listExecutions().map((e) => e.id)).toEqual(['ex_2', 'ex_1']);
    expect(log.listExecutions({ status: 'failed' }).map((e) => e.id)).toEqual(['ex_2']);
    expect(log.listExecutions({ workflow: 'wf' }).map((e) => e.id)).toEqual(['ex_1']);
    expect(log.listExecutions({ workflow: 'demo/other' }).map((e) => e.id)).toEqual(['ex_2']);
    expect(log.listExecutions({ limit: 1 })).toHaveLength(1);
  });

  it('refuses a second writer in the same process with a clear error', () => {
    log = openEventLog({ file });
    let err: any;
    try {
      openEventLog({ file });
    } catch (e) {
      err = e;
    }
    expect(err?.code).toBe('E_EVENT_LOG_LOCKED');
    expect(err.message).toContain(`pid ${process.pid}`);
    expect(err.hint).toMatch(/stop the other/);
  });

  it('refuses while another process holds the file, and opens once that process is killed -9', async () => {
    log = openEventLog({ file });
    log.close();
    log = undefined;
    // A separate process that takes the same exclusive lock the runtime takes, then waits.
    const holder = execa(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        `import Database from 'better-sqlite3';
         const db = new Database(${JSON.stringify(file)});
         db.pragma('locking_mode = EXCLUSIVE'); db.pragma('journal_mode = WAL');
         db.exec('BEGIN EXCLUSIVE; COMMIT;');
         db.prepare("INSERT INTO log(time, kind, message) VALUES (1, 'x', 'from child')").run();
         console.log('locked'); setInterval(() => {}, 1000);`,
      ],
      { cwd: REPO_ROOT, reject: false },
    );
    await new Promise<void>((resolve, reject) => {
      holder.stdout!.on('data', (d: Buffer) => d.toString().includes('locked') && resolve());
      holder.on('exit', () => reject(new Error('holder exited early')));
    });
    expect(() => openEventLog({ file })).toThrow(/in use by another process/);
    holder.kill('SIGKILL');
    await holder;
    log = openEventLog({ file });
    // The child's committed write survived its kill -9 (WAL recovery on open).
    expect(log.readLog(undefined).map((e) => e.message)).toContain('from child');
  });

  it('a damaged log: the error names the way out, and --fresh sets it aside (kept) and starts a new one', async () => {
    const { mkdirSync, writeFileSync, readdirSync } = await import('node:fs');
    mkdirSync(path.dirname(file), { recursive: true });
    writeFileSync(file, 'garbage garbage garbage, not a database');
    let err: { code?: string; hint?: string } = {};
    try {
      openEventLog({ file });
    } catch (e) {
      err = e as typeof err;
    }
    expect(err.code).toBe('E_EVENT_LOG_OPEN');
    expect(err.hint).toContain('--fresh');
    log = openEventLog({ file, fresh: true });
    await log.appendDelivery(delivery('dl_1'), [exec('ex_1')]);
    expect(log.countDeliveries()).toBe(1);
    const kept = readdirSync(path.dirname(file)).filter((n) => n.startsWith(`${path.basename(file)}.damaged-`));
    expect(kept).toHaveLength(1);
    expect(readFileSync(path.join(path.dirname(file), kept[0]), 'utf8')).toBe('garbage garbage garbage, not a database');
  });

  it('clear() forgets history (alloy dev --fresh)', async () => {
    log = openEventLog({ file });
    await log.appendDelivery(delivery('dl_1'), [exec('ex_1')]);
    await log.clear();
    expect(log.countDeliveries()).toBe(0);
    expect(log.pendingExecutionIds()).toEqual([]);
  });
});
