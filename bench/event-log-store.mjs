// Storage alone (issue 13): the event log storing signed Shopify deliveries (the 28 KB
// orders/create fixture, one execution each) the way ingest does, GROUP at a time (the
// deliveries of one event-loop turn share a group commit), with fdatasync on. Prints the
// process's CPU per stored delivery (user + system, the thread pool's syncs included) and the
// wall time, median of RUNS runs. No HTTP, no JSON parsing: what a delivery costs the log.
//
// Usage: npm run build && node bench/event-log-store.mjs [--runs N] [--count N] [--group N] [--small]
//   --small stores a 20-byte custom event instead of the order.
//   ALLOY_BENCH_DIST=<dir> measures another build (e.g. the one before a change), as runtime-bench does.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { randomUUID } from 'node:crypto';
import { median } from './lib.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const arg = (name, fallback) => {
  const i = process.argv.indexOf(name);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
};
const RUNS = arg('--runs', 3);
const COUNT = arg('--count', 10_000);
const GROUP = arg('--group', 20);
const small = process.argv.includes('--small');
const dist = process.env.ALLOY_BENCH_DIST ? pathToFileURL(path.resolve(process.env.ALLOY_BENCH_DIST)).href : pathToFileURL(path.join(here, '..', 'dist')).href;
const { openEventLog } = await import(`${dist}/server/event-log.js`);

const order = readFileSync(path.join(here, '..', 'fixtures', 'third-party', 'shopify', 'orders-create.json'));
const body = small ? Buffer.from('{"n":1,"sku":"A-1"}') : order;
const event = JSON.parse(body.toString('utf8'));
const headers = {
  'content-type': 'application/json',
  'x-shopify-topic': 'orders/create',
  'x-shopify-hmac-sha256': 'x'.repeat(44),
  'x-shopify-shop-domain': 'bench.myshopify.com',
  'x-shopify-api-version': '2025-01',
  'x-shopify-webhook-id': randomUUID(),
};

async function runOnce() {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'alloy-store-bench-'));
  const log = openEventLog({ file: path.join(dir, 'dev.sqlite') });
  let n = 0;
  const one = () => {
    const i = n++;
    const now = Date.now();
    const id = `ex_${now.toString(36)}${String(i).padStart(12, '0')}`;
    const record = { id, workflow: 'bench/order-created', version: 'v1', status: 'queued', event, createdAt: now, updatedAt: now, steps: {} };
    return log.appendDelivery(
      { id: `dl_${now.toString(36)}${String(i).padStart(12, '0')}`, source: 'shopify', name: 'orders/create', receivedAt: now, dedupeKey: `shopify:${randomUUID()}`, headers, body, verification: 'shopify-hmac' },
      [{ id, workflow: 'bench/order-created', record, eventRef: 'body' }],
    );
  };
  const store = async (count) => {
    for (let i = 0; i < count; i += GROUP) await Promise.all(Array.from({ length: GROUP }, one));
  };
  await store(1000); // warm-up
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await store(COUNT);
  const cpu = process.cpuUsage(cpu0);
  const wall = performance.now() - t0;
  log.close();
  rmSync(dir, { recursive: true, force: true });
  return { cpuUs: (cpu.user + cpu.system) / COUNT, sysUs: cpu.system / COUNT, wallUs: (wall * 1000) / COUNT };
}

const runs = [];
for (let r = 0; r < RUNS; r++) runs.push(await runOnce());
const m = (k) => median(runs.map((x) => x[k])).toFixed(1);
console.log(
  `event log, ${small ? `${body.length} B event` : `${body.length} B Shopify order`} per delivery, groups of ${GROUP}, ${COUNT} deliveries, median of ${RUNS}: ` +
    `CPU ${m('cpuUs')} µs/delivery (system ${m('sysUs')}), wall ${m('wallUs')} µs/delivery` +
    (process.env.ALLOY_BENCH_DIST ? ` [${process.env.ALLOY_BENCH_DIST}]` : ''),
);
