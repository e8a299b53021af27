// `alloy serve` ingest benchmark (issue 11): POST /v1/run/event with an API key (authenticate,
// read and check the body against the trigger schema, find the user's installations, persist
// the executions in one transaction, 202) against a raw node:http server that only parses the
// JSON and answers 202, with the same load tool (bench/_runtime-load.mjs), each target in its
// own child process. The runner is stopped in the serve target, so this measures ingest, not
// execution. Prints req/s, p50/p99 and the ratio; median of RUNS runs.
// Usage: npm run build && node bench/serve-bench.mjs [--quick] [--runs N]
import { fork } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { runLoad, percentile } from './_runtime-load.mjs';
import { median, printTable, ratio } from './lib.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const quick = process.argv.includes('--quick');
const runsArg = process.argv.indexOf('--runs');
const RUNS = runsArg > 0 ? Number(process.argv[runsArg + 1]) : quick ? 1 : 3;
const TOTAL = quick ? 1500 : 5000;
const CONCURRENCY = 32;

// ------------------------------------------------------------ targets (child processes)
if (process.argv[2] === '--target') {
  const mode = process.argv[3];
  let url;
  let close = async () => {};
  if (mode === 'raw') {
    const server = http.createServer((req, res) => {
      const chunks = [];
      req.on('data', (c) => chunks.push(c));
      req.on('end', () => {
        JSON.parse(Buffer.concat(chunks).toString('utf8'));
        const text = JSON.stringify({ executionIds: ['ex_1'], duplicate: false });
        res.writeHead(202, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
        res.end(text);
      });
    });
    await new Promise((r) => server.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${server.address().port}`;
    close = () => new Promise((r) => server.close(r));
  } else {
    const dist = new URL('../dist/', import.meta.url).href;
    const { LocalStore, releaseIntegration, publishVersion } = await import(`${dist}store/lib.js`);
    const { openSqliteState } = await import(`${dist}serve/state/sqlite-state.js`);
    const { makeKeyring, parseMasterKey } = await import(`${dist}serve/crypto.js`);
    const { storeDefinitionSource } = await import(`${dist}serve/definitions.js`);
    const { startServeServer } = await import(`${dist}serve/server.js`);
    const { createApiKey } = await import(`${dist}serve/admin.js`);
    const dir = mkdtempSync(path.join(os.tmpdir(), 'alloy-serve-bench-'));
    const store = new LocalStore(path.join(dir, 'store'));
    await store.init();
    const wf = { apiVersion: 'alloy/v1', kind: 'Workflow', name: 'ingest', trigger: { event: 'bench.item', schema: { type: 'object', required: ['n', 'sku'], properties: { n: { type: 'integer' }, sku: { type: 'string' }, qty: { type: 'integer' } } } }, steps: [{ id: 'map', uses: 'transform', with: { item: '{{ event.n }}' } }] };
    await releaseIntegration(store, { name: 'bench', def: { apiVersion: 'alloy/v1', kind: 'Integration', name: 'bench', app: 'shopify' }, workflows: [{ name: 'ingest', def: wf }] }, { author: 'bench', now: () => new Date() });
    await publishVersion(store, { integration: 'bench', selector: 1 }, { who: 'bench' });
    const state = openSqliteState(path.join(dir, 'serve.db'));
    const server = await startServeServer({ state, keyring: makeKeyring([parseMasterKey(Buffer.alloc(32, 5).toString('base64'), 'bench')]), source: storeDefinitionSource(store) });
    await server.runner.stop(0);
    const { key } = await createApiKey(state, 'ingest', 'bench', Date.now());
    await state.users.create({ id: 'u1', createdAt: new Date().toISOString() });
    const { sealConfig } = await import(`${dist}serve/config-values.js`);
    const keyring = makeKeyring([parseMasterKey(Buffer.alloc(32, 5).toString('base64'), 'bench')]);
    await state.installations.put({ id: 'inst_1', userId: 'u1', integration: 'bench', version: 1, status: 'active', credentials: {}, config: sealConfig(keyring, 'inst_1', {}), createdAt: '', updatedAt: '' });
    url = server.url;
    process.env.BENCH_KEY = key;
    close = async () => {
      await server.close();
      rmSync(dir, { recursive: true, force: true });
    };
  }
  process.send({ type: 'ready', url, key: process.env.BENCH_KEY });
  process.on('message', async (m) => {
    if (m.type === 'stats') process.send({ cpuMs: process.cpuUsage().user / 1000 + process.cpuUsage().system / 1000 });
    if (m.type === 'stop') {
      await close();
      process.exit(0);
    }
  });
} else {
  // ------------------------------------------------------------ the driver
  const start = (mode) =>
    new Promise((resolve, reject) => {
      const child = fork(fileURLToPath(import.meta.url), ['--target', mode], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], execArgv: process.env.SERVE_BENCH_PROF ? ['--cpu-prof', '--cpu-prof-dir', process.env.SERVE_BENCH_PROF] : [] });
      child.once('error', reject);
      child.once('message', (m) =>
        resolve({
          ...m,
          stats: () => new Promise((r) => { child.once('message', r); child.send({ type: 'stats' }); }),
          stop: () => new Promise((r) => { child.once('exit', r); child.send({ type: 'stop' }); }),
        }),
      );
    });
  const run = async (mode) => {
    const t = await start(mode);
    const makeRequest = (i) => ({ path: '/v1/run/event', headers: { 'content-type': 'application/json', authorization: `Bearer ${t.key ?? 'x'}`, 'idempotency-key': `k-${mode}-${i}-${Math.random()}` }, body: JSON.stringify({ event: 'bench.item', userId: 'u1', data: { n: i, sku: `SKU-${i}`, qty: 1 } }) });
    await runLoad({ url: t.url, total: 300, concurrency: CONCURRENCY, makeRequest });
    const before = await t.stats();
    const r = await runLoad({ url: t.url, total: TOTAL, concurrency: CONCURRENCY, makeRequest });
    const after = await t.stats();
    await t.stop();
    if ((r.statuses[202] ?? 0) !== TOTAL) throw new Error(`${mode}: expected ${TOTAL} × 202, got ${JSON.stringify(r.statuses)}`);
    return { rate: (TOTAL / r.wallMs) * 1000, p50: percentile(r.latencies, 50), p99: percentile(r.latencies, 99), cpuUs: ((after.cpuMs - before.cpuMs) / TOTAL) * 1000 };
  };
  const raw = [];
  const serve = [];
  for (let i = 0; i < RUNS; i++) {
    raw.push(await run('raw'));
    serve.push(await run('serve'));
  }
  const pick = (rs, k) => median(rs.map((r) => r[k]));
  printTable(`alloy serve: POST /v1/run/event durable ingest (${TOTAL} requests, ${CONCURRENCY} in flight, median of ${RUNS})`, [
    ['target', 'req/s', 'p50', 'p99', 'CPU/req'],
    ['raw node:http (parse + 202)', pick(raw, 'rate').toFixed(0), `${pick(raw, 'p50').toFixed(1)} ms`, `${pick(raw, 'p99').toFixed(1)} ms`, `${pick(raw, 'cpuUs').toFixed(0)} µs`],
    ['alloy serve (auth, schema, persist, 202)', pick(serve, 'rate').toFixed(0), `${pick(serve, 'p50').toFixed(1)} ms`, `${pick(serve, 'p99').toFixed(1)} ms`, `${pick(serve, 'cpuUs').toFixed(0)} µs`],
  ]);
  console.log(`  ratio (serve / raw): ${ratio(pick(serve, 'rate'), pick(raw, 'rate'))}  (target ≥ 0.5x)`);
}
