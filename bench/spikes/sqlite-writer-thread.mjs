// Spike (issue 11 (a), decision 0010): does moving SQLite's writes to a worker thread make a
// durable ingest cheaper on the event loop? Three node:http targets, each in its own process,
// driven by wrk (1 thread, 50 connections) and alternated, medians of --runs rounds:
//   none     parses the JSON and answers 202 (serve-bench (a)'s baseline)
//   inline   also stores the request and its key in SQLite with alloy's group commit
//            (dist/serve/state/sqlite-group-commit.js) on the event loop, answering once durable
//            (serve-bench's "raw node:http + SQLite")
//   thread   the same rows and group commit on a worker thread that owns the write connection;
//            the event loop posts one message per turn with that turn's rows and answers each
//            request when the worker reports its batch durable
// Usage: npm run build && node bench/spikes/sqlite-writer-thread.mjs [--runs N] [--duration S]
import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { median, printTable } from '../lib.mjs';
import { cpuSeconds, forkTarget, requireWrk, runWrk, wrkScript } from '../_wrk.mjs';

const self = fileURLToPath(import.meta.url);
const dist = pathToFileURL(path.resolve(path.dirname(self), '../../dist')).href + '/';
const SCHEMA = 'CREATE TABLE executions (id TEXT PRIMARY KEY, doc TEXT NOT NULL); CREATE TABLE dedupe (key TEXT PRIMARY KEY, execution_ids TEXT NOT NULL) WITHOUT ROWID;';

/** A write connection with alloy's group commit; `store(rows)` resolves once they are durable. */
async function writer(file) {
  const { default: Database } = await import('better-sqlite3');
  const { createGroupCommit } = await import(`${dist}serve/state/sqlite-group-commit.js`);
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  const group = createGroupCommit(db, `${file}-wal`);
  const insertExecution = db.prepare('INSERT INTO executions (id, doc) VALUES (?, ?)');
  const insertKey = db.prepare('INSERT INTO dedupe (key, execution_ids) VALUES (?, ?) ON CONFLICT (key) DO NOTHING');
  const store = ([key, id, doc]) =>
    group.write(() => {
      if (key !== null) insertKey.run(key, JSON.stringify([id]));
      insertExecution.run(id, doc);
    });
  return { store, close: async () => { await group.close(); db.close(); } };
}

if (!isMainThread) {
  // The thread target's worker: one message per event-loop turn of the main thread.
  const { store } = await writer(workerData.file);
  parentPort.on('message', ({ seq, rows }) => {
    Promise.allSettled(rows.map(store)).then((done) => parentPort.postMessage({ seq, ok: done.map((d) => d.status === 'fulfilled') }));
  });
} else if (process.send) {
  // A target process.
  const mode = process.argv[2];
  const dir = mkdtempSync(path.join(os.tmpdir(), 'alloy-spike-writer-'));
  const file = path.join(dir, 'spike.db');
  let store = async () => {};
  let closeStore = async () => {};
  if (mode !== 'none') {
    const { default: Database } = await import('better-sqlite3');
    const db = new Database(file);
    db.pragma('journal_mode = WAL');
    db.exec(SCHEMA);
    db.close();
  }
  if (mode === 'inline') ({ store, close: closeStore } = await writer(file));
  if (mode === 'thread') {
    const worker = new Worker(self, { workerData: { file } });
    const waiting = new Map();
    let seq = 0;
    let rows = [];
    let settle = [];
    worker.on('message', (m) => {
      const s = waiting.get(m.seq);
      waiting.delete(m.seq);
      s.forEach((f, i) => f(m.ok[i]));
    });
    const post = () => {
      waiting.set(seq, settle);
      worker.postMessage({ seq: seq++, rows });
      rows = [];
      settle = [];
    };
    store = (row) =>
      new Promise((resolve, reject) => {
        if (rows.length === 0) setImmediate(post);
        rows.push(row);
        settle.push((ok) => (ok ? resolve() : reject(new Error('write failed'))));
      });
    closeStore = () => worker.terminate();
  }
  let n = 0;
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', async () => {
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      const id = `ex_${n++}`;
      const key = req.headers['idempotency-key'];
      await store([typeof key === 'string' ? key : null, id, JSON.stringify({ id, userId: body.userId, event: body.event, data: body.data })]);
      const text = JSON.stringify({ executionIds: [id], duplicate: false });
      res.writeHead(202, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
      res.end(text);
    });
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  process.send({ type: 'ready', url: `http://127.0.0.1:${server.address().port}` });
  process.on('message', async (m) => {
    if (m.type === 'reset' || m.type === 'stats') process.send({ type: m.type });
    if (m.type === 'stop') {
      server.closeAllConnections();
      server.close();
      await closeStore();
      rmSync(dir, { recursive: true, force: true });
      process.exit(0);
    }
  });
} else {
  // The driver.
  requireWrk('sqlite-writer-thread');
  const arg = (name, d) => (process.argv.includes(name) ? Number(process.argv[process.argv.indexOf(name) + 1]) : d);
  const RUNS = arg('--runs', 3);
  const DURATION_S = arg('--duration', 5);
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'alloy-spike-wrk-'));
  const script = wrkScript(
    tmp,
    'event',
    `
local n = 0
local run = tostring(os.time()) .. "-" .. tostring(math.random(1000000000))
request = function()
  n = n + 1
  local body = '{"event":"bench.item","userId":"u1","data":{"n":' .. n .. ',"sku":"SKU-' .. n .. '","qty":' .. (n % 5 + 1) .. '}}'
  return wrk.format("POST", "/v1/run/event", { ["Content-Type"] = "application/json", ["Idempotency-Key"] = run .. "-" .. n }, body)
end
`,
  );
  const m = { none: [], inline: [], thread: [] };
  for (let i = 0; i < RUNS; i++) {
    for (const mode of i % 2 ? ['thread', 'inline', 'none'] : ['none', 'inline', 'thread']) {
      const t = await forkTarget(self, [mode]);
      try {
        await runWrk(t.url, script, { durationS: 1, connections: 50 });
        const cpu0 = cpuSeconds(t.pid);
        const r = await runWrk(t.url, script, { durationS: DURATION_S, connections: 50 });
        if ((r.statuses[202] ?? 0) !== r.requests) throw new Error(`${mode}: unexpected answers ${JSON.stringify(r.statuses)}`);
        m[mode].push({ rate: r.requests / DURATION_S, cpuUs: ((cpuSeconds(t.pid) - cpu0) / r.requests) * 1e6, p99: r.p99 });
      } finally {
        await t.stop();
      }
    }
  }
  rmSync(tmp, { recursive: true, force: true });
  const med = (mode, k) => median(m[mode].map((x) => x[k]));
  const base = med('none', 'rate');
  printTable(`SQLite writes inline vs on a worker thread (wrk -t1 -c50 -d${DURATION_S}s, ${RUNS} alternated runs, medians; load ${os.loadavg()[0].toFixed(1)})`, [
    ['target', 'req/s', 'CPU/request', 'p99', 'rate vs none'],
    ...['none', 'inline', 'thread'].map((k) => [k, med(k, 'rate').toFixed(0), `${med(k, 'cpuUs').toFixed(0)} µs`, `${med(k, 'p99').toFixed(2)} ms`, `${(med(k, 'rate') / base).toFixed(2)}x`]),
  ]);
}
