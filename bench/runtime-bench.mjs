// Runtime benchmarks (issue 5), each against a baseline measured in the same run with the
// same load tool (bench/_runtime-load.mjs), targets in child processes (bench/_runtime-target.mjs):
//   (a) durable ingest of signed Shopify webhooks (verify, persist, 202) vs a raw node:http
//       server that only parses the JSON and answers 202;
//   (b) completed executions/s of a workflow mapping 3 fields and POSTing to a local
//       destination vs a raw node:http forwarder doing the same without persistence.
// Prints req/s (or executions/s), p50/p99 latency, the target's peak RSS, and the ratio;
// median of RUNS runs. Usage: npm run build && node bench/runtime-bench.mjs [--quick] [--only a|b]
// [--runs N] [--skip-normal] [--prof-dir DIR]; BENCH_VERBOSE=1 prints each run; ALLOY_BENCH_DIST=<dir>
// runs the alloy targets from another build (before/after comparisons).
import { fork } from 'node:child_process';
import { createHmac, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { runLoad, percentile } from './_runtime-load.mjs';
import { median, printTable, ratio } from './lib.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const quick = process.argv.includes('--quick');
// `--only a` or `--only b` runs one part; `--runs N` overrides the number of runs;
// `--prof-dir DIR` starts the targets with --cpu-prof (profiles written to DIR).
const argValue = (name) => {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
};
const only = argValue('--only');
const profDir = argValue('--prof-dir');
const skipNormal = process.argv.includes('--skip-normal');
const RUNS = Number(argValue('--runs') ?? (quick ? 1 : 3));
const INGEST_TOTAL = quick ? 2000 : 6000;
const EXEC_TOTAL = quick ? 1000 : 3000;
const CONCURRENCY = 32;
const SECRET = 'bench_shopify_secret';
// The bundled third-party fixture (fixtures/third-party/README.md), where the package reads it.
const { FIXTURES_DIR } = await import('../dist/testing/index.js');
const fixture = path.join(FIXTURES_DIR, 'shopify', 'orders-create.json');
const orderBody = readFileSync(fixture);

function startTarget(mode, dest, sync = 'full') {
  const child = fork(path.join(here, '_runtime-target.mjs'), [mode, dest ?? '', sync], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    execArgv: profDir ? ['--cpu-prof', '--cpu-prof-dir', profDir] : [],
  });
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.on('message', (m) => {
      if (m.type === 'ready') {
        resolve({
          url: m.url,
          stats: () => new Promise((r) => { child.once('message', (s) => r(s)); child.send({ type: 'stats' }); }),
          stop: () => new Promise((r) => { child.once('exit', r); child.send({ type: 'stop' }); }),
        });
      }
    });
  });
}

function shopifyRequest() {
  return {
    path: '/v1/webhooks/shopify',
    headers: {
      'content-type': 'application/json',
      'x-shopify-topic': 'orders/create',
      'x-shopify-hmac-sha256': createHmac('sha256', SECRET).update(orderBody).digest('base64'),
      'x-shopify-shop-domain': 'bench.myshopify.com',
      'x-shopify-api-version': '2025-10',
      'x-shopify-webhook-id': randomUUID(),
      'x-shopify-event-id': randomUUID(),
      'x-shopify-triggered-at': new Date().toISOString(),
    },
    body: orderBody,
  };
}

async function ingestRun(mode, sync) {
  const target = await startTarget(mode, '', sync);
  // Warm-up, then the measured run.
  await runLoad({ url: target.url, total: 300, concurrency: CONCURRENCY, makeRequest: shopifyRequest });
  const before = await target.stats();
  const r = await runLoad({ url: target.url, total: INGEST_TOTAL, concurrency: CONCURRENCY, makeRequest: shopifyRequest });
  const { maxRssKb, cpuMs, elu } = await target.stats();
  await target.stop();
  const ok = (r.statuses[202] ?? 0);
  // Share of the measured run the target's event loop was busy (1 = saturated).
  const busy = (elu.active - before.elu.active) / (elu.active - before.elu.active + elu.idle - before.elu.idle);
  if (process.env.BENCH_VERBOSE) console.error(`${mode}/${sync}: ${((INGEST_TOTAL / r.wallMs) * 1000).toFixed(0)} req/s, event loop busy ${(busy * 100).toFixed(0)} %`);
  if (ok !== INGEST_TOTAL) throw new Error(`${mode}: expected ${INGEST_TOTAL} × 202, got ${JSON.stringify(r.statuses)}`);
  return { rate: (INGEST_TOTAL / r.wallMs) * 1000, p50: percentile(r.latencies, 50), p99: percentile(r.latencies, 99), rssMb: maxRssKb / 1024, cpuUs: ((cpuMs - before.cpuMs) / INGEST_TOTAL) * 1000 };
}

/** The destination both (b) targets POST to: counts arrivals and the time of each, by event number. */
async function startDestination() {
  const arrivals = new Map();
  let waiter;
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (d) => (body += d));
    req.on('end', () => {
      const { item } = JSON.parse(body);
      if (!arrivals.has(item)) arrivals.set(item, performance.now());
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{"ok":true}');
      if (waiter && arrivals.size >= waiter.n) waiter.resolve();
    });
  });
  server.keepAliveTimeout = 10_000;
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    arrivals,
    reset: () => arrivals.clear(),
    waitFor: (n, ms) =>
      new Promise((resolve, reject) => {
        if (arrivals.size >= n) return resolve();
        const t = setTimeout(() => reject(new Error(`only ${arrivals.size}/${n} arrived`)), ms);
        waiter = { n, resolve: () => (clearTimeout(t), resolve()) };
      }),
    close: () => new Promise((r) => { server.closeAllConnections(); server.close(r); }),
  };
}

async function execRun(mode, dest) {
  const target = await startTarget(mode, dest.url);
  let base = 0;
  const makeRequest = (i) => {
    const n = base + i;
    sent[n] = performance.now();
    return {
      path: '/v1/run/event',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ event: 'bench.item', data: { n, sku: `sku-${n}`, qty: (n % 5) + 1 } }),
    };
  };
  const sent = [];
  // Warm-up.
  dest.reset();
  await runLoad({ url: target.url, total: 200, concurrency: CONCURRENCY, makeRequest });
  await dest.waitFor(200, 30_000);
  dest.reset();
  base = 1_000_000;
  const before = await target.stats();
  const t0 = performance.now();
  const r = await runLoad({ url: target.url, total: EXEC_TOTAL, concurrency: CONCURRENCY, makeRequest });
  await dest.waitFor(EXEC_TOTAL, 120_000);
  const wall = Math.max(...dest.arrivals.values()) - t0;
  const { maxRssKb, cpuMs } = await target.stats();
  await target.stop();
  if ((r.statuses[202] ?? 0) !== EXEC_TOTAL) throw new Error(`${mode}: expected ${EXEC_TOTAL} × 202, got ${JSON.stringify(r.statuses)}`);
  // Latency: from sending the event to its POST arriving at the destination.
  const lat = [...dest.arrivals].map(([n, at]) => at - sent[n]);
  return { rate: (EXEC_TOTAL / wall) * 1000, p50: percentile(lat, 50), p99: percentile(lat, 99), rssMb: maxRssKb / 1024, cpuUs: ((cpuMs - before.cpuMs) / EXEC_TOTAL) * 1000 };
}

function summarize(runs) {
  return {
    rate: median(runs.map((r) => r.rate)),
    p50: median(runs.map((r) => r.p50)),
    p99: median(runs.map((r) => r.p99)),
    rssMb: Math.max(...runs.map((r) => r.rssMb)),
    cpuUs: median(runs.map((r) => r.cpuUs)),
  };
}

// CPU per request (user + system, target process only) is steadier than throughput on a shared machine.
const row = (label, x, raw) => [label, x.rate.toFixed(0), `${x.p50.toFixed(2)} ms`, `${x.p99.toFixed(2)} ms`, `${x.rssMb.toFixed(0)} MB`, `${x.cpuUs.toFixed(0)} µs`, ratio(x.rate, raw.rate)];
const rows = (label, unit, alloy, raw) => [
  ['target', unit, 'p50', 'p99', 'peak RSS', 'CPU/req', 'ratio'],
  row(`alloy ${label}`, alloy, raw),
  row('raw node:http', raw, raw),
];

let ingestA, ingestRaw;
if (only !== 'b') {
  // (a) also measures alloy with synchronous 'normal' (commits survive kill -9 but are not
  // fsynced): the difference is the price of surviving a power loss.
  const a = { alloy: [], normal: [], raw: [] };
  for (let i = 0; i < RUNS; i++) {
    // Rotate the order so no target always runs on a warmer (or busier) machine.
    const order = [['alloy', 'alloy-ingest', 'full'], ['normal', 'alloy-ingest', 'normal'], ['raw', 'raw-ingest', 'full']];
    for (let k = 0; k < order.length; k++) {
      const [key, mode, sync] = order[(k + i) % order.length];
      if (skipNormal && key === 'normal') continue;
      a[key].push(await ingestRun(mode, sync));
    }
  }
  ingestA = summarize(a.alloy);
  const ingestNormal = a.normal.length ? summarize(a.normal) : undefined;
  ingestRaw = summarize(a.raw);
  const ingestRows = rows('(verify+persist, fsync)', 'req/s', ingestA, ingestRaw);
  if (ingestNormal) ingestRows.splice(2, 0, row('alloy (synchronous normal)', ingestNormal, ingestRaw));
  printTable(`(a) signed Shopify webhook ingest (28 KB orders/create), ${INGEST_TOTAL} requests × ${RUNS} runs, ${CONCURRENCY} in flight (median)`, ingestRows);
}

let execA, execRaw;
if (only !== 'a') {
  const dest = await startDestination();
  const b = { alloy: [], raw: [] };
  for (let i = 0; i < RUNS; i++) {
    const order = i % 2 ? ['raw-forward', 'alloy-exec'] : ['alloy-exec', 'raw-forward'];
    for (const m of order) (m === 'raw-forward' ? b.raw : b.alloy).push(await execRun(m, dest));
  }
  await dest.close();
  execA = summarize(b.alloy);
  execRaw = summarize(b.raw);
  printTable(`(b) completed executions (map 3 fields + POST), ${EXEC_TOTAL} events × ${RUNS} runs, ${CONCURRENCY} in flight, alloy --concurrency 64 (median; latency = event sent → POST received)`, rows('(engine+log)', 'exec/s', execA, execRaw));
}
const parts = [];
if (ingestA) parts.push(`ingest ${ratio(ingestA.rate, ingestRaw.rate)} (aim ≥ 0.5x)`);
if (execA) parts.push(`executions ${ratio(execA.rate, execRaw.rate)} (aim ≥ 0.5x)`);
console.log(`\nratios: ${parts.join(', ')}`);
