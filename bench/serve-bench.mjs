// `alloy serve` HTTP benchmarks (issue 11): alloy serve (dist/) and its baselines, each in its own
// child process (bench/_serve-target.mjs), driven by one external load generator, wrk; targets
// alternated within each run, medians of RUNS runs.
//   (a) POST /v1/run/event durable ingest (API key, trigger schema, routing, executions and the
//       Idempotency-Key persisted and fsynced, 202; runner stopped) vs a raw node:http server that
//       parses the JSON and answers 202 (the aim's baseline), and beside them a raw server that
//       also stores the request and its key in SQLite durably (alloy's group commit), to show
//       what the durable write alone costs;
//   (b) completed executions (run/event, then a workflow mapping 3 fields and POSTing them to a
//       local destination; every step checkpointed) vs the raw forwarder of runtime-bench.mjs
//       (parse, 202, map, POST with undici, nothing stored), wrk flat out for the duration, then
//       until the destination received every accepted event;
//   (c) routing cost with scale: per-request CPU of run/event and of a signed
//       POST /v1/webhooks/shopify for the measured user/shop (one installation) with 1,000
//       installations over 100 shops in the state vs with that one installation only.
// Per target: req/s or completed executions/s, the server process's CPU per request (utime +
// stime from /proc/<pid>/stat), wrk's own CPU per request (bash's `times`), wrk's p50/p99, the
// server's longest event-loop delay, ratios. The 2 cores are shared (wrk, targets, other work):
// CPU per request is the steadier column; a single-threaded target at half the raw server's
// rate has about twice its CPU per request to spend (a CPU ratio of 2x).
//
// Usage: npm run build && node bench/serve-bench.mjs [--quick] [--only a|b|c] [--runs N] [--duration S] [--random-keys] [--ablate]
// --ablate adds to (a) alloy serve with run/event's write removed (executions and key not stored).
// Profile a target: SERVE_BENCH_PROF=<dir> adds --cpu-prof to the serve targets.
import { createHmac } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { median, printTable } from './lib.mjs';
import { cpuSeconds, forkTarget, requireWrk, runWrk, wrkScript, startDestination, waitForCount } from './_wrk.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const argValue = (name) => {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
};
const quick = process.argv.includes('--quick');
const only = argValue('--only');
const RUNS = Number(argValue('--runs') ?? (quick ? 1 : 3));
const DURATION_S = Number(argValue('--duration') ?? (quick ? 3 : 5));
const RANDOM_KEYS = process.argv.includes('--random-keys');
const ABLATE = process.argv.includes('--ablate');
const CONNECTIONS = 50;
const SCALE = 1000;
const SHOPIFY_SECRET = 'bench_shopify_secret';

requireWrk('serve-bench');
const tmp = mkdtempSync(path.join(os.tmpdir(), 'alloy-serve-wrk-'));
process.on('exit', () => rmSync(tmp, { recursive: true, force: true }));

async function startTarget(mode, { dest = '', env = {} } = {}) {
  const prof = process.env.SERVE_BENCH_PROF && mode.startsWith('serve') ? ['--cpu-prof', '--cpu-prof-dir', process.env.SERVE_BENCH_PROF] : [];
  const target = await forkTarget(path.join(here, '_serve-target.mjs'), [mode, dest], { env, execArgv: prof });
  return { ...target, key: target.ready.key ?? 'none' };
}

// ------------------------------------------------------------------ wrk scripts

// Distinct events and Idempotency-Keys (no request is a duplicate); the key comes from BENCH_KEY.
// Keys are `<run>-<n>` (nearly in order, so each group commit appends to the same few leaves of
// the dedupe b-tree), or with --random-keys 32 random hex digits, as clients sending UUIDs do
// (each key lands on a leaf of its own: more WAL pages per request).
const eventScript = (name, delayMs) =>
  wrkScript(
    tmp,
    name,
    `
local n = 0
math.randomseed(os.time())
local run = tostring(os.time()) .. "-" .. tostring(math.random(1000000000))
local auth = "Bearer " .. (os.getenv("BENCH_KEY") or "none")
local hex = "0123456789abcdef"
local function key()
  if not ${RANDOM_KEYS} then return run .. "-" .. n end
  local t = {}
  for i = 1, 32 do local r = math.random(16) t[i] = hex:sub(r, r) end
  return table.concat(t)
end
request = function()
  n = n + 1
  local body = '{"event":"bench.item","userId":"u1","data":{"n":' .. n .. ',"sku":"SKU-' .. n .. '","qty":' .. (n % 5 + 1) .. '}}'
  return wrk.format("POST", "/v1/run/event", { ["Content-Type"] = "application/json", ["Authorization"] = auth, ["Idempotency-Key"] = key() }, body)
end
`,
    { delayMs },
  );

// One small signed order (routing, not HMAC over 28 KB, is what (c) measures); distinct delivery ids.
const ORDER = '{"id":820982911946154500,"email":"jon@example.com","total_price":"199.65","line_items":[{"sku":"SKU-1","quantity":1}]}';
const webhookScript = () =>
  wrkScript(
    tmp,
    'webhook',
    `
local n = 0
local run = tostring(os.time()) .. "-" .. tostring(math.random(1000000000))
local body = '${ORDER}'
request = function()
  n = n + 1
  return wrk.format("POST", "/v1/webhooks/shopify", {
    ["Content-Type"] = "application/json",
    ["X-Shopify-Topic"] = "orders/create",
    ["X-Shopify-Hmac-Sha256"] = "${createHmac('sha256', SHOPIFY_SECRET).update(ORDER).digest('base64')}",
    ["X-Shopify-Shop-Domain"] = "bench.myshopify.com",
    ["X-Shopify-Api-Version"] = "2025-10",
    ["X-Shopify-Webhook-Id"] = run .. "-" .. n,
  }, body)
end
`,
  );

// ------------------------------------------------------------------ measurements

/** One wrk measurement of an ingest route on a running target: every answer must be 202. */
async function measureIngest(target, script) {
  const env = { BENCH_KEY: target.key };
  await runWrk(target.url, script, { durationS: 1, connections: CONNECTIONS, env }); // warm-up
  await target.reset();
  const cpu0 = cpuSeconds(target.pid);
  const r = await runWrk(target.url, script, { durationS: DURATION_S, connections: CONNECTIONS, env });
  const cpu = cpuSeconds(target.pid) - cpu0;
  const stats = await target.stats();
  const ok = r.statuses[202] ?? 0;
  if (ok !== r.requests || r.socketErrors) throw new Error(`expected only 202 answers, got ${JSON.stringify(r.statuses)} of ${r.requests}, ${r.socketErrors} socket errors`);
  return { rate: r.requests / DURATION_S, cpuUs: (cpu / r.requests) * 1e6, wrkUs: (r.wrkCpuS / r.requests) * 1e6, p50: r.p50, p99: r.p99, loopMs: stats.maxLoopDelayMs };
}

async function measureExec(mode, dest, script) {
  const target = await startTarget(mode, { dest: dest.url });
  try {
    const env = { BENCH_KEY: target.key };
    dest.reset();
    const warm = await runWrk(target.url, script, { durationS: 1, connections: CONNECTIONS, env });
    await waitForCount(dest, warm.statuses[202] ?? 0, 120_000);
    dest.reset();
    await target.reset();
    const cpu0 = cpuSeconds(target.pid);
    const t0 = performance.now();
    const r = await runWrk(target.url, script, { durationS: DURATION_S, connections: CONNECTIONS, env });
    const accepted = r.statuses[202] ?? 0;
    if (accepted !== r.requests || r.socketErrors) throw new Error(`${mode}: unexpected answers ${JSON.stringify(r.statuses)}, ${r.socketErrors} socket errors`);
    // Completed = every accepted event's POST arrived at the destination (the queue drained).
    await waitForCount(dest, accepted, 300_000);
    const cpu = cpuSeconds(target.pid) - cpu0;
    const wallS = (Math.max(dest.last, t0) - t0) / 1000;
    const stats = await target.stats();
    return { rate: accepted / wallS, cpuUs: (cpu / accepted) * 1e6, wrkUs: (r.wrkCpuS / r.requests) * 1e6, p50: r.p50, p99: r.p99, loopMs: stats.maxLoopDelayMs };
  } finally {
    await target.stop();
  }
}

// ------------------------------------------------------------------ report

const summarize = (runs) => Object.fromEntries(['rate', 'cpuUs', 'wrkUs', 'p50', 'p99', 'loopMs'].map((k) => [k, median(runs.map((r) => r[k]))]));

function table(title, unit, rows, base) {
  const line = (label, x) => [label, x.rate.toFixed(0), `${x.cpuUs.toFixed(0)} µs`, `${x.wrkUs.toFixed(0)} µs`, `${x.p50.toFixed(2)} ms`, `${x.p99.toFixed(2)} ms`, `${x.loopMs.toFixed(1)} ms`, `${(x.rate / base.rate).toFixed(2)}x`, `${(x.cpuUs / base.cpuUs).toFixed(2)}x`];
  printTable(title, [['target', unit, 'CPU/unit', 'wrk CPU/req', 'p50', 'p99', 'max loop delay', 'rate ratio', 'CPU ratio'], ...rows.map(([label, x]) => line(label, x))]);
}

console.log(`wrk -t1 -c${CONNECTIONS} -d${DURATION_S}s, ${RUNS} run(s), targets alternated within each run; medians. The 2 cores are shared: compare CPU/unit.`);

if (only === undefined || only === 'a' || only === 'c') {
  const events = eventScript('event');
  const webhook = webhookScript();
  const m = { raw: [], durable: [], ablated: [], event1: [], eventN: [], hook1: [], hookN: [] };
  for (let i = 0; i < RUNS; i++) {
    const order = i % 2 ? ['serveN', 'serve1', 'ablated', 'durable', 'raw'] : ['raw', 'durable', 'ablated', 'serve1', 'serveN'];
    for (const which of order) {
      if (which === 'ablated') {
        if (!ABLATE || only === 'c') continue;
        const t = await startTarget('serve-ingest', { env: { BENCH_INSTALLATIONS: '1', BENCH_ABLATE_STORE: '1' } });
        try {
          m.ablated.push(await measureIngest(t, events));
        } finally {
          await t.stop();
        }
        continue;
      }
      if (which === 'raw' || which === 'durable') {
        if (only === 'c') continue;
        const t = await startTarget(which === 'raw' ? 'raw-ingest' : 'raw-durable');
        try {
          m[which].push(await measureIngest(t, events));
        } finally {
          await t.stop();
        }
        continue;
      }
      const n = which === 'serve1' ? 1 : SCALE;
      if (only === 'a' && n !== 1) continue;
      const t = await startTarget('serve-ingest', { env: { BENCH_INSTALLATIONS: String(n) } });
      try {
        (n === 1 ? m.event1 : m.eventN).push(await measureIngest(t, events));
        if (only !== 'a') (n === 1 ? m.hook1 : m.hookN).push(await measureIngest(t, webhook));
      } finally {
        await t.stop();
      }
    }
  }
  if (only !== 'c') {
    const raw = summarize(m.raw);
    const durable = summarize(m.durable);
    const serve = summarize(m.event1);
    const rows = [['alloy serve', serve], ...(ABLATE ? [['alloy serve, nothing stored (ablation)', summarize(m.ablated)]] : []), ['raw node:http + SQLite', durable], ['raw node:http', raw]];
    table('(a) POST /v1/run/event durable ingest: alloy serve (API key, schema, route, persist + fsync, 202) vs raw node:http (parse, 202)', 'req/s', rows, raw);
    console.log(`  rate ratio ${(serve.rate / raw.rate).toFixed(2)}x (aim ≥ 0.5x); against the raw server that also stores the request durably (same group commit and fdatasync): ${(serve.rate / durable.rate).toFixed(2)}x rate, ${(durable.cpuUs / serve.cpuUs).toFixed(2)}x CPU`);
  }
  if (only !== 'a') {
    const e1 = summarize(m.event1);
    const eN = summarize(m.eventN);
    const h1 = summarize(m.hook1);
    const hN = summarize(m.hookN);
    table(`(c) routing with scale, POST /v1/run/event for a user with 1 installation: ${SCALE} installations over 100 shops vs 1 installation`, 'req/s', [[`${SCALE} installations`, eN], ['1 installation', e1]], e1);
    table(`(c) routing with scale, signed POST /v1/webhooks/shopify for a shop with 1 installation: ${SCALE} installations over 100 shops vs 1 installation`, 'req/s', [[`${SCALE} installations`, hN], ['1 installation', h1]], h1);
    console.log(`  CPU/request ratios: run/event ${(eN.cpuUs / e1.cpuUs).toFixed(2)}x, webhooks ${(hN.cpuUs / h1.cpuUs).toFixed(2)}x (aim ≤ 1.10x)`);
  }
}

if (only === undefined || only === 'b') {
  const dest = await startDestination();
  const script = eventScript('exec');
  const m = { serve: [], raw: [] };
  for (let i = 0; i < RUNS; i++) {
    const order = i % 2 ? ['raw-forward', 'serve-exec'] : ['serve-exec', 'raw-forward'];
    for (const mode of order) (mode === 'raw-forward' ? m.raw : m.serve).push(await measureExec(mode, dest, script));
  }
  await dest.close();
  const raw = summarize(m.raw);
  const serve = summarize(m.serve);
  table('(b) completed executions (run/event → map 3 fields + POST, checkpointed): alloy serve vs raw forwarder (parse, 202, map, POST with undici)', 'exec/s', [['alloy serve', serve], ['raw forwarder', raw]], raw);
  console.log(`  rate ratio ${(serve.rate / raw.rate).toFixed(2)}x (aim ≥ 0.5x)`);
}
