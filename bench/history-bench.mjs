// History never slows the present (issue 13, item 6): each line at three history sizes, with
// its ratio to the smallest, and where the old code path can still be run, that path beside it
// in the same run (the "before" column).
//   versions --limit 20     at 10 / 1,000 / 5,000 releases (listVersionInfo, in process)
//   executions by bare name at 0 / 100,000 / 500,000 executions (index vs the old LIKE scan)
//   dev --fresh             at 0 / 100,000 / 500,000 executions (new file vs DELETE row by row)
// Usage: npm run build && node bench/history-bench.mjs [--quick]
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';
import { median, printTable } from './lib.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const dist = path.join(here, '..', 'dist');
const require = createRequire(import.meta.url);
const Database = require('better-sqlite3');
const { LocalStore, releaseIntegration, listVersionInfo } = await import(path.join(dist, 'store', 'index.js'));
const { openEventLog } = await import(path.join(dist, 'server', 'event-log.js'));
const quick = process.argv.includes('--quick');
const RUNS = quick ? 3 : 7;
const tmp = mkdtempSync(path.join(os.tmpdir(), 'alloy-history-bench-'));
process.on('exit', () => rmSync(tmp, { recursive: true, force: true }));

async function timeMedian(runs, fn) {
  const xs = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    await fn();
    xs.push(performance.now() - t0);
  }
  return median(xs);
}
const ms = (x) => `${x.toFixed(2)} ms`;
const rel = (x, base) => `${(x / base).toFixed(2)}x`;

// ------------------------------------------------------------------ versions --limit 20
// One real release, then refs v2..vN naming the same release object (the refs are what a long
// history adds; `versions --limit 20` must read 20 of them, not N).
const VERSION_SIZES = [10, 1000, 5000];
const versionRows = [];
for (const size of VERSION_SIZES) {
  const store = new LocalStore(path.join(tmp, `store-${size}`));
  const wf = { apiVersion: 'alloy/v1', kind: 'Workflow', name: 'w', trigger: { event: 'acme.w' }, steps: [{ id: 'map', uses: 'transform', with: { a: 1 } }] };
  await releaseIntegration(store, { name: 'bench', def: { apiVersion: 'alloy/v1', kind: 'Integration', name: 'bench', app: 'shopify' }, workflows: [{ name: 'w', def: wf }] }, { author: 'bench', now: () => new Date('2026-01-01T00:00:00Z') });
  const first = await store.readVersion('bench', 1);
  for (let v = 2; v <= size; v++) writeFileSync(store.versionPath('bench', v), `${first.id}\n`);
  writeFileSync(store.latestHintPath('bench'), `${size}\n`); // as releases leave it
  await listVersionInfo(store, 'bench', { limit: 20 }); // warm-up
  const limited = await timeMedian(RUNS * 2, async () => {
    const list = await listVersionInfo(store, 'bench', { limit: 20 });
    if (list.length !== Math.min(20, size)) throw new Error('bad count');
  });
  const all = await timeMedian(quick ? 1 : 3, async () => {
    const list = await listVersionInfo(store, 'bench');
    if (list.length !== size) throw new Error('bad count');
  });
  versionRows.push({ size, limited, all });
}
printTable(`versions --limit 20 by history length (median of ${RUNS}; "all" = every version listed, which grows by design)`, [
  ['releases', '--limit 20', 'vs 10', 'all versions (reference)'],
  ...versionRows.map((r) => [r.size, ms(r.limited), rel(r.limited, versionRows[0].limited), ms(r.all)]),
]);

// ------------------------------------------------------------------ executions
const EXEC_SIZES = quick ? [0, 20_000, 100_000] : [0, 100_000, 500_000];
const execRows = [];
for (const size of EXEC_SIZES) {
  const file = path.join(tmp, `log-${size}`, 'dev.sqlite');
  mkdirSync(path.dirname(file), { recursive: true });
  openEventLog({ file }).close(); // schema
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  const insertD = db.prepare(`INSERT INTO deliveries(id, source, name, received_at, headers, body, verification) VALUES (?, 'event', 'e', 0, '{}', ?, 'none')`);
  const insertE = db.prepare(`INSERT INTO executions(id, delivery_id, workflow, status, created_at, updated_at, record) VALUES (?, ?, ?, 'succeeded', 0, 0, ?)`);
  const record = JSON.stringify({ status: 'succeeded', steps: { map: { status: 'succeeded', output: { a: 1 } } } });
  db.transaction(() => {
    for (let i = 0; i < size; i++) {
      insertD.run(`dl_${i}`, Buffer.from('{"a":1}'));
      // 20 workflows; the one asked for is rare (1 in 1,000) so the old scan has to read far.
      insertE.run(`ex_${i}`, `dl_${i}`, i % 1000 === 0 ? 'shop/rare' : `shop/w${i % 20}`, record);
    }
  })();
  db.close();
  const log = openEventLog({ file, readonly: true });
  log.listExecutions({ workflow: 'rare', limit: 50 }); // warm-up
  const indexed = await timeMedian(RUNS * 3, () => log.listExecutions({ workflow: 'rare', limit: 50 }));
  const ldb = log.db;
  const like = ldb.prepare(`SELECT * FROM executions WHERE workflow LIKE '%/' || ? ORDER BY seq DESC LIMIT 50`);
  const scan = await timeMedian(RUNS, () => like.all('rare'));
  log.close();
  // dev --fresh: a new file (now) vs deleting every row (before), each on a copy of this log.
  const copyOf = async (name) => {
    const copy = path.join(tmp, name);
    const src = new Database(file);
    await src.backup(copy);
    src.close();
    return copy;
  };
  const freshTimes = [];
  const deleteTimes = [];
  for (let i = 0; i < (quick ? 1 : 3); i++) {
    let copy = await copyOf(`fresh-${size}.sqlite`);
    let t0 = performance.now();
    openEventLog({ file: copy, fresh: true }).close();
    freshTimes.push(performance.now() - t0);
    rmSync(copy, { force: true });
    copy = await copyOf(`delete-${size}.sqlite`);
    const l = openEventLog({ file: copy });
    t0 = performance.now();
    await l.clear();
    deleteTimes.push(performance.now() - t0);
    l.close();
    rmSync(copy, { force: true });
  }
  const fresh = median(freshTimes);
  const deleteRows = median(deleteTimes);
  execRows.push({ size, indexed, scan, fresh, deleteRows });
}
printTable(`executions --workflow <bare name> and dev --fresh by log size (median of ${RUNS}; the "before" columns run the old way in this same run)`, [
  ['executions', 'filter (index)', 'before: LIKE scan', 'dev --fresh (new file)', 'before: DELETE every row'],
  ...execRows.map((r) => [r.size, ms(r.indexed), ms(r.scan), ms(r.fresh), ms(r.deleteRows)]),
]);
