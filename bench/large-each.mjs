// An `each` over 10,000 items (issue 13, items 2 and 3): the durable runtime (createRuntimeServer
// with the event log, as `alloy dev` runs it) against the engine alone with a checkpoint that
// keeps nothing (as `alloy run` runs it), alternated, best of RUNS; and while the durable one
// runs (RUNS + 1 more runs, not timed), /healthz is probed every 10 ms (latency p50/p99/max), and the
// longest event-loop delay is read from monitorEventLoopDelay, and the longest turn by the CPU
// the event loop's thread used in it (/proc/self/task/<pid>/stat, 10 ms ticks: unlike the
// delay, it leaves out time the process waited for a CPU on a loaded machine). Then the stored
// record's size per item (the column as stored, and its JSON). The probes come from a worker
// thread, as from a monitor outside the process: probing from the event loop under test would
// add the client's own turns (sending, then reading the answer) to every probe. Aims: dev <= 2x run (dev timed
// from the 202 to the durable final record); /healthz p99 < 50 ms; no turn of 50 ms or more.
// Usage: npm run build && node bench/large-each.mjs [--quick]   (ALLOY_BENCH_DIST=<dir>: another build)
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { inflateRawSync } from 'node:zlib';
import os from 'node:os';
import path from 'node:path';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { printTable } from './lib.mjs';

// ALLOY_BENCH_DIST=<dir> measures another build (e.g. the one before a change) with the same bench.
const dist = process.env.ALLOY_BENCH_DIST ? path.resolve(process.env.ALLOY_BENCH_DIST) : path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'dist');
const { openEventLog } = await import(path.join(dist, 'server', 'event-log.js'));
const { indexDefinitions } = await import(path.join(dist, 'server', 'definitions.js'));
const { createRuntimeServer } = await import(path.join(dist, 'server', 'runtime-server.js'));
const { createEngineExecutor } = await import(path.join(dist, 'server', 'engine-executor.js'));
const { compileWorkflow } = await import(path.join(dist, 'engine', 'compile.js'));
const { createExecutionRecord, executeWorkflow } = await import(path.join(dist, 'engine', 'execute.js'));
const { createConnectorRegistry } = await import(path.join(dist, 'connectors', 'registry.js'));

const RUNS = process.argv.includes('--quick') ? 2 : 3;
const N = 10_000;
const items = Array.from({ length: N }, (_, i) => ({ sku: `SKU-${i}`, qty: (i % 7) + 1, price: '9.99' }));
const def = {
  apiVersion: 'alloy/v1',
  kind: 'Workflow',
  name: 'lines',
  trigger: { event: 'bulk.lines' },
  steps: [{ id: 'lines', each: '{{ event.items }}', as: 'line', steps: [{ id: 'map', uses: 'transform', with: { sku: '{{ line.sku }}', qty: '{{ line.qty }}' } }] }],
};
const dir = mkdtempSync(path.join(os.tmpdir(), 'alloy-each-bench-'));
const project = {
  root: dir,
  config: { name: 'bench' },
  integrations: [{ name: 'demo', dir: 'x', file: 'x', def: { apiVersion: 'alloy/v1', kind: 'Integration', name: 'demo', app: 'shopify' }, workflows: [{ integration: 'demo', name: 'lines', file: 'x', def }] }],
  connectors: [],
  diagnostics: [],
};

async function timeRun() {
  const record = createExecutionRecord({ workflow: 'demo/lines', event: { items } }, Date.now());
  const t0 = performance.now();
  await executeWorkflow(compileWorkflow(def), record, {
    connectors: createConnectorRegistry({ userConnectors: [] }),
    http: async () => ({}),
    clock: { now: Date.now, sleep: async () => {} },
    random: Math.random,
    checkpoint: async () => {},
    logger: { debug() {}, info() {}, warn() {} },
    resolveConnection: async () => ({}),
  });
  return performance.now() - t0;
}

/** CPU ms of the event loop's thread (Linux; elsewhere the process's, GC threads included). */
const threadStat = `/proc/self/task/${process.pid}/stat`;
const hasThreadStat = existsSync(threadStat);
function loopThreadCpuMs() {
  if (!hasThreadStat) {
    const c = process.cpuUsage();
    return (c.user + c.system) / 1000;
  }
  const f = readFileSync(threadStat, 'utf8');
  const fields = f.slice(f.lastIndexOf(')') + 2).split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100;
}
/** The most CPU the loop's thread used between two runs of a 1 ms timer. */
function turnMeter() {
  let timer;
  let max = 0;
  let cpu = loopThreadCpuMs();
  const tick = () => {
    const c = loopThreadCpuMs();
    max = Math.max(max, c - cpu);
    cpu = c;
    timer = setTimeout(tick, 1);
  };
  timer = setTimeout(tick, 1);
  return () => (clearTimeout(timer), max);
}

const ended = new Map();
const server = createRuntimeServer({
  log: openEventLog({ file: path.join(dir, 'dev.sqlite') }),
  definitions: indexDefinitions(project),
  executor: createEngineExecutor({ project: () => project, env: {} }),
  onEvent: (e) => e.type === 'execution' && ended.get(e.record.id)?.(),
});
const base = await server.listen();
/** GET /healthz every 10 ms from another thread between 'start' and 'stop' (answers with the latencies). */
const prober = new Worker(
  `const { parentPort, workerData } = require('node:worker_threads');
  let on = false, probes = [];
  // Warm (undici loads on the first fetch), then say so.
  fetch(workerData + '/healthz').then((r) => r.text()).then(() => parentPort.postMessage('ready'));
  parentPort.on('message', async (m) => {
    if (m === 'stop') { on = false; parentPort.postMessage(probes); probes = []; return; }
    on = true;
    while (on) {
      const p0 = performance.now();
      await (await fetch(workerData + '/healthz')).text();
      if (on) probes.push(performance.now() - p0);
      await new Promise((r) => setTimeout(r, 10));
    }
  });`,
  { eval: true, workerData: base },
);
await new Promise((r) => prober.once('message', r));
const loop = monitorEventLoopDelay({ resolution: 5 });
loop.enable();

async function timeDev(probe) {
  const body = JSON.stringify({ event: 'bulk.lines', data: { items } });
  loop.reset();
  const res = await fetch(`${base}/v1/run/event`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
  // Timed from the 202 (accepting the 400 KB event is not part of `alloy run`) to the final record on disk.
  const t0 = performance.now();
  const id = (await res.json()).executions[0].id;
    const done = new Promise((r) => ended.set(id, () => r(performance.now() - t0)));
  const stopMeter = turnMeter();
  if (probe) prober.postMessage('start');
  const ms = await done;
  const probes = probe ? await new Promise((r) => (prober.once('message', r), prober.postMessage('stop'))) : [];
  return { ms, probes, loopMaxMs: loop.max / 1e6, turnCpuMs: stopMeter() };
}

// One warm-up run of each side, so the first timed run of neither pays for V8 compiling its code.
await timeRun();
await timeDev(false);
const run = [];
const dev = [];
for (let i = 0; i < RUNS; i++) {
  run.push(await timeRun());
  dev.push(await timeDev(false)); // timed without probes: they would load only this side
}
const watched = [];
for (let i = 0; i < RUNS + 1; i++) watched.push(await timeDev(true));
await prober.terminate();
await server.close();
// The stored records (each run stored one), read with SQLite directly: the column as stored and its JSON.
const Database = createRequire(import.meta.url)('better-sqlite3');
const db = new Database(path.join(dir, 'dev.sqlite'), { readonly: true });
const rows = db.prepare(`SELECT record, record_encoding FROM executions WHERE status = 'succeeded'`).all();
db.close();
const stored = Math.max(...rows.map((r) => r.record.length));
const json = Math.max(...rows.map((r) => (r.record_encoding === 'deflate-raw' ? inflateRawSync(r.record).length : Buffer.byteLength(r.record))));
rmSync(dir, { recursive: true, force: true });
const probes = watched.flatMap((d) => d.probes).sort((a, b) => a - b);
const pct = (p) => probes[Math.min(probes.length - 1, Math.floor((probes.length * p) / 100))];
const bestRun = Math.min(...run);
const bestDev = Math.min(...dev.map((d) => d.ms));
printTable(`each over ${N.toLocaleString('en')} items (transform per item), best of ${RUNS}, alternated`, [
  ['', 'time', 'vs alloy run'],
  ['engine alone (alloy run)', `${bestRun.toFixed(0)} ms`, '1.00x'],
  ['durable runtime (alloy dev)', `${bestDev.toFixed(0)} ms`, `${(bestDev / bestRun).toFixed(2)}x (aim <= 2x)`],
]);
console.log(`  runs: alloy run ${run.map((x) => x.toFixed(0)).join(' / ')} ms; dev ${dev.map((d) => d.ms.toFixed(0)).join(' / ')} ms`);
console.log(
  `  /healthz during the dev runs: ${probes.length} probes, p50 ${pct(50).toFixed(1)} ms, p99 ${pct(99).toFixed(1)} ms (aim < 50 ms), max ${probes.at(-1).toFixed(1)} ms; ` +
    `longest event-loop delay per run ${[...dev, ...watched].map((d) => d.loopMaxMs.toFixed(0)).join(' / ')} ms (includes time descheduled on a loaded machine)`,
);
console.log(
  `  longest turn by the loop thread's CPU per run ${[...dev, ...watched].map((d) => d.turnCpuMs.toFixed(0)).join(' / ')} ms (aim < 50; 10 ms ticks)`,
);
console.log(
  `  stored record: ${(stored / 1024).toFixed(0)} KB, ${(stored / N).toFixed(0)} B/item as stored; its JSON ${(json / 1024).toFixed(0)} KB, ${(json / N).toFixed(0)} B/item`,
);
