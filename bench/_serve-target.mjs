// A target of bench/serve-bench.mjs, run as a child process (its CPU is read from /proc/<pid>/stat):
//   raw-ingest     node:http that parses the JSON body and answers 202 with a small JSON body
//   raw-durable    node:http that parses the JSON body, stores it with its Idempotency-Key in
//                  SQLite (a row per table, alloy's group commit: one transaction and one WAL
//                  fdatasync per batch) and answers 202 once durable: the least a durable
//                  ingest does, for comparison (issue 12's baseline does the same with pg)
//   raw-forward    node:http that answers 202, maps 3 fields and POSTs them to DEST with undici
//   serve-ingest   alloy serve (dist/) with its runner stopped: run/event and Shopify webhooks
//                  are authenticated or verified, routed, persisted durably and answered 202
//   serve-exec     alloy serve running a workflow that maps 3 fields and POSTs them to DEST
// BENCH_ABLATE_STORE=1 (serve-ingest): executions are not stored (an ablation, for comparison).
// BENCH_INSTALLATIONS=N (serve modes) adds N-1 installations of other users over 99 other shops
// beside the measured user `u1` (one installation, its shop bench.myshopify.com).
// Answers IPC {type:'reset'} (event-loop delay histogram) and {type:'stats'}.
import http from 'node:http';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import os from 'node:os';
import path from 'node:path';
import { mkdtempSync, rmSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { request } from 'undici';

if (!process.send) {
  console.log('bench/_serve-target.mjs is started by bench/serve-bench.mjs');
  process.exit(0);
}
const [mode, dest] = process.argv.slice(2);
export const SHOPIFY_SECRET = 'bench_shopify_secret';
const installations = Number(process.env.BENCH_INSTALLATIONS ?? 1);
let closeTarget = async () => {};

function readBody(req) {
  return new Promise((resolve) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks)));
  });
}

async function listenRaw(handler) {
  const server = http.createServer(handler);
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  closeTarget = () => new Promise((r) => { server.closeAllConnections(); server.close(r); });
  return { url: `http://127.0.0.1:${server.address().port}` };
}

const rawIngest = () =>
  listenRaw(async (req, res) => {
    JSON.parse((await readBody(req)).toString('utf8'));
    const text = JSON.stringify({ executionIds: ['ex_1'], duplicate: false });
    res.writeHead(202, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
    res.end(text);
  });

async function rawDurable() {
  const dist = process.env.ALLOY_BENCH_DIST ? pathToFileURL(path.resolve(process.env.ALLOY_BENCH_DIST)).href + '/' : new URL('../dist/', import.meta.url).href;
  const { default: Database } = await import('better-sqlite3');
  const { createGroupCommit } = await import(`${dist}serve/state/sqlite-group-commit.js`);
  const dir = mkdtempSync(path.join(os.tmpdir(), 'alloy-bench-raw-durable-'));
  const file = path.join(dir, 'raw.db');
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.exec('CREATE TABLE executions (id TEXT PRIMARY KEY, doc TEXT NOT NULL); CREATE TABLE dedupe (key TEXT PRIMARY KEY, execution_ids TEXT NOT NULL) WITHOUT ROWID;');
  const group = createGroupCommit(db, `${file}-wal`);
  const insertExecution = db.prepare('INSERT INTO executions (id, doc) VALUES (?, ?)');
  const insertKey = db.prepare('INSERT INTO dedupe (key, execution_ids) VALUES (?, ?) ON CONFLICT (key) DO NOTHING');
  let n = 0;
  const served = await listenRaw(async (req, res) => {
    const body = JSON.parse((await readBody(req)).toString('utf8'));
    const id = `ex_${process.pid}_${n++}`;
    const key = req.headers['idempotency-key'];
    await group.write(() => {
      if (typeof key === 'string') insertKey.run(key, JSON.stringify([id]));
      insertExecution.run(id, JSON.stringify({ id, userId: body.userId, event: body.event, data: body.data }));
    });
    const text = JSON.stringify({ executionIds: [id], duplicate: false });
    res.writeHead(202, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
    res.end(text);
  });
  const closeServer = closeTarget;
  closeTarget = async () => {
    await closeServer();
    await group.close();
    db.close();
    rmSync(dir, { recursive: true, force: true });
  };
  return served;
}

const rawForward = () =>
  listenRaw(async (req, res) => {
    const { data } = JSON.parse((await readBody(req)).toString('utf8'));
    res.writeHead(202, { 'content-type': 'application/json' });
    res.end('{"ok":true}');
    const r = await request(`${dest}/sink`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ item: data.n, sku: data.sku, qty: data.qty }) });
    await r.body.text();
  });

async function serveTarget(exec) {
  const dist = process.env.ALLOY_BENCH_DIST ? pathToFileURL(path.resolve(process.env.ALLOY_BENCH_DIST)).href + '/' : new URL('../dist/', import.meta.url).href;
  const { LocalStore, releaseIntegration, publishVersion } = await import(`${dist}store/lib.js`);
  const { openSqliteState } = await import(`${dist}serve/state/sqlite-state.js`);
  const { makeKeyring, parseMasterKey } = await import(`${dist}serve/crypto.js`);
  const { storeDefinitionSource } = await import(`${dist}serve/definitions.js`);
  const { startServeServer } = await import(`${dist}serve/server.js`);
  const { createApiKey } = await import(`${dist}serve/admin.js`);
  const { sealConfig } = await import(`${dist}serve/config-values.js`);
  const { sealCredential } = await import(`${dist}serve/connections.js`);
  const dir = mkdtempSync(path.join(os.tmpdir(), 'alloy-serve-bench-'));
  const store = new LocalStore(path.join(dir, 'store'));
  await store.init();
  const schema = { type: 'object', required: ['n', 'sku'], properties: { n: { type: 'integer' }, sku: { type: 'string' }, qty: { type: 'integer' } } };
  const wf = (name, trigger, steps) => ({ name, def: { apiVersion: 'alloy/v1', kind: 'Workflow', name, trigger, steps } });
  const workflows = exec
    ? [
        wf('forward', { event: 'bench.item', schema }, [
          { id: 'map', uses: 'transform', with: { item: '{{ event.n }}', sku: '{{ event.sku }}', qty: '{{ event.qty }}' } },
          { id: 'post', uses: 'http', with: { method: 'POST', url: `${dest}/sink`, body: '{{ steps.map.output }}' } },
        ]),
      ]
    : [
        wf('ingest', { event: 'bench.item', schema }, [{ id: 'map', uses: 'transform', with: { item: '{{ event.n }}' } }]),
        wf('order', { app: 'shopify', event: 'orders/create' }, [{ id: 'map', uses: 'transform', with: { id: '{{ event.id }}' } }]),
      ];
  await releaseIntegration(store, { name: 'bench', def: { apiVersion: 'alloy/v1', kind: 'Integration', name: 'bench', app: 'shopify' }, workflows }, { author: 'bench', now: () => new Date() });
  await publishVersion(store, { integration: 'bench', selector: 1 }, { who: 'bench' });
  const keyring = makeKeyring([parseMasterKey(Buffer.alloc(32, 5).toString('base64'), 'bench')]);
  const state = openSqliteState(path.join(dir, 'serve.db'));
  // BENCH_ABLATE_STORE=1 (serve-bench --ablate): run/event's executions and key are not stored
  // at all, an ablation that shows what the rest of the ingest path costs.
  if (process.env.BENCH_ABLATE_STORE === '1') state.executions.ingest = async (input) => ({ duplicate: false, executionIds: input.executions.map((e) => e.id) });
  const server = await startServeServer({
    state,
    keyring,
    source: storeDefinitionSource(store),
    env: { SHOPIFY_API_SECRET: SHOPIFY_SECRET },
    egress: { allow: ['127.0.0.1'] },
    concurrency: 64,
    // One user's executions all run at once in the exec bench (the raw forwarder has no bound
    // either): the installation's bound and its shop's (the user's Shopify credential names a
    // shop, whose default bound of 4 parked all but 4 executions behind it).
    perInstallation: 64,
    perShop: 64,
  });
  if (!exec) await server.runner.stop(0);
  const { key } = await createApiKey(state, 'ingest', 'bench', Date.now());
  const at = new Date().toISOString();
  const addInstallation = async (user, shop, id) => {
    await state.users.create({ id: user, createdAt: at });
    const cred = `cred_${id}`;
    await state.credentials.put({ id: cred, userId: user, app: 'shopify', kind: 'token', account: shop, secret: sealCredential(keyring, cred, { fields: { accessToken: 'shpat_bench' } }), createdAt: at, updatedAt: at });
    await state.installations.put({ id, userId: user, integration: 'bench', version: 1, status: 'active', credentials: { shopify: cred }, config: sealConfig(keyring, id, {}), createdAt: at, updatedAt: at });
  };
  await addInstallation('u1', 'bench.myshopify.com', 'inst_0000');
  // The others, written concurrently (their fsyncs are shared by the state's group sync).
  const others = [];
  for (let k = 1; k < installations; k++) others.push(addInstallation(`other-${k}`, `shop-${k % 99}.myshopify.com`, `inst_${String(k).padStart(4, '0')}`));
  await Promise.all(others);
  closeTarget = async () => {
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  };
  return { url: server.url, key };
}

const loopDelay = monitorEventLoopDelay({ resolution: 10 });
loopDelay.enable();
const raws = { 'raw-ingest': rawIngest, 'raw-durable': rawDurable, 'raw-forward': rawForward };
const ready = raws[mode] ? await raws[mode]() : await serveTarget(mode === 'serve-exec');
process.send({ type: 'ready', ...ready });
process.on('message', async (m) => {
  if (m.type === 'reset') {
    loopDelay.reset();
    process.send({ type: 'reset' });
  }
  if (m.type === 'stats') process.send({ type: 'stats', maxLoopDelayMs: loopDelay.max / 1e6 });
  if (m.type === 'stop') {
    await closeTarget();
    process.exit(0);
  }
});
