// Runtime HTTP benchmarks (issue 13): alloy and its baselines driven by the same external
// load generator, wrk (its own process), alternated within each run; medians of RUNS runs.
//   (a) signed Shopify webhook ingest (28 KB orders/create: verify, persist, 202) vs a raw
//       node:http server that parses the same body, maps 3 fields and answers 202;
//   (b) completed executions (map 3 fields, POST to a local destination) vs a raw node:http
//       forwarder doing the same without persistence, in two regimes: paced (wrk's delay()
//       keeps the offered rate under alloy's capacity) and saturated (50 connections flat out:
//       alloy pushes back with 503 + Retry-After past its queue limit, see docs/runtime.md).
// Per target: req/s (ingest) or completed executions/s, the server process's CPU per request
// or per completed execution (utime + stime from /proc/<pid>/stat), wrk's p50/p99 latency,
// the server's longest event-loop delay (monitorEventLoopDelay, reported by the target) and
// the ratios against the baseline of the same run. Each target first serves the same number of
// warm-up requests (--warm, default 5,000), so both are measured in their steady state, not
// while V8 still compiles their code (a slower target gets fewer requests in a warm-up of fixed
// length). In the saturated regime, alloy's CPU per completed execution includes what it spent
// refusing requests with 503 (the note gives its CPU per request too, refusals counted).
//
// The machine is shared (2 cores): wrk, the targets and whatever else runs compete, so req/s
// and latency move with the load; CPU per request is the steadier column to compare.
//
// Usage: npm run build && node bench/runtime-bench.mjs [--quick] [--only a|b] [--runs N] [--duration S] [--warm N]
// Needs wrk: `apt-get update && apt-get install -y wrk` (Debian/Ubuntu), `brew install wrk` (macOS).
import { createHmac } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { median, printTable } from './lib.mjs';
import { cpuSeconds, forkTarget, requireWrk, runWrk as runWrkWith, wrkScript as writeWrkScript, startDestination, waitForCount } from './_wrk.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const argValue = (name) => {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
};
const quick = process.argv.includes('--quick');
const only = argValue('--only');
const RUNS = Number(argValue('--runs') ?? (quick ? 1 : 3));
const DURATION_S = Number(argValue('--duration') ?? (quick ? 3 : 5));
// Warm-up: this many requests to each target before it is measured (the same count for alloy and
// its baseline), so the measured window shows each one's steady state. A warm-up of a fixed time
// (1 s before) gave the slower target, alloy, fewer requests to optimize its code on: V8 was
// still compiling alloy's paths during the measured seconds (issue 13, docs/runtime.md).
const WARM_REQUESTS = Number(argValue('--warm') ?? (quick ? 2000 : 5000));
const CONNECTIONS = 50;
const SECRET = 'bench_shopify_secret';
requireWrk('runtime-bench');

const fixtureCandidates = [
  path.resolve(here, '..', 'fixtures', 'third-party', 'shopify', 'orders-create.json'),
  path.resolve(here, '..', 'examples', 'shopify-sync', 'integrations', 'shopify-sync', 'fixtures', 'orders-create.json'),
];
const orderText = readFileSync(fixtureCandidates.find((f) => existsSync(f)), 'utf8').trim();
const tmp = mkdtempSync(path.join(os.tmpdir(), 'alloy-wrk-'));
process.on('exit', () => rmSync(tmp, { recursive: true, force: true }));

function startTarget(mode, dest = '', extra = {}) {
  // e.g. BENCH_TARGET_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof" to profile the targets.
  const execArgv = process.env.BENCH_TARGET_ARGS ? process.env.BENCH_TARGET_ARGS.split(' ') : [];
  return forkTarget(path.join(here, '_runtime-target.mjs'), [mode, dest, 'full'], { env: extra, execArgv });
}

// ------------------------------------------------------------------ wrk

/** wrk with this bench's duration and connections (bench/_wrk.mjs). */
const runWrk = (url, script, { durationS = DURATION_S, connections = CONNECTIONS } = {}) => runWrkWith(url, script, { durationS, connections });

/** A wrk script in this run's temporary folder (bench/_wrk.mjs). */
const wrkScript = (name, requestLua, options) => writeWrkScript(tmp, name, requestLua, options);

/**
 * A script and how to make its warm-up twins: the same requests, where `warmLua(i)` may mark
 * the i-th warm-up run's apart (e.g. webhook ids of its own, so no request is a duplicate).
 */
function scriptPair(name, requestLua, options, warmLua = () => requestLua) {
  return { script: wrkScript(name, requestLua, options), warm: (i) => wrkScript(`${name}-warm-${i}`, warmLua(i), options) };
}

/**
 * Warms a target up with WARM_REQUESTS requests: 1 s wrk runs until that many were answered
 * (wrk has no request count). Resolves with the count of 202 answers.
 */
async function warmUp(url, scripts) {
  let answered = 0;
  let accepted = 0;
  for (let i = 0; answered < WARM_REQUESTS; i++) {
    const r = await runWrk(url, scripts.warm(i), { durationS: 1 });
    answered += r.requests;
    accepted += r.statuses[202] ?? 0;
  }
  return accepted;
}

// Ingest requests: distinct bodies and webhook ids (no request is a duplicate), each signed.
// The body is `{"bench_n":<n>,` + the fixture after its first brace; signatures precomputed.
const SIGNED = quick ? 20_000 : 60_000;
function ingestScript() {
  const rest = orderText.slice(1);
  const sigs = [];
  for (let n = 0; n < SIGNED; n++) {
    sigs.push(createHmac('sha256', SECRET).update(`{"bench_n":${n},${rest}`).digest('base64'));
  }
  writeFileSync(path.join(tmp, 'rest.json'), `,${rest}`);
  writeFileSync(path.join(tmp, 'sigs.txt'), sigs.join('\n'));
  const lua = `
local f = io.open("${path.join(tmp, 'rest.json')}", "rb"); local rest = f:read("*a"); f:close()
local sigs = {}
for line in io.lines("${path.join(tmp, 'sigs.txt')}") do sigs[#sigs + 1] = line end
local n = 0
local run = tostring(os.time())
request = function()
  local i = n % #sigs
  n = n + 1
  local body = '{"bench_n":' .. i .. rest
  return wrk.format("POST", "/v1/webhooks/shopify", {
    ["Content-Type"] = "application/json",
    ["X-Shopify-Topic"] = "orders/create",
    ["X-Shopify-Hmac-Sha256"] = sigs[i + 1],
    ["X-Shopify-Shop-Domain"] = "bench.myshopify.com",
    ["X-Shopify-Api-Version"] = "2025-10",
    ["X-Shopify-Webhook-Id"] = run .. "-" .. n,
    ["X-Shopify-Event-Id"] = run .. "-e-" .. n,
    -- Now (the runtime refuses deliveries older than 24 h as replays).
    ["X-Shopify-Triggered-At"] = "${new Date().toISOString()}",
  }, body)
end
`;
  // Warm-up deliveries get webhook ids of their own ("w<i>-" prefix): none is a duplicate of a measured one.
  return scriptPair('ingest', lua, {}, (i) => lua.replace('local run = tostring(os.time())', `local run = "w${i}-" .. tostring(os.time())`));
}

function execScript(name, delayMs) {
  return scriptPair(
    name,
    `
local n = 0
local base = math.floor(os.clock() * 1000000) * 1000
request = function()
  n = n + 1
  local body = '{"event":"bench.item","data":{"n":' .. (base + n) .. ',"sku":"sku-' .. n .. '","qty":' .. (n % 5 + 1) .. '}}'
  return wrk.format("POST", "/v1/run/event", { ["Content-Type"] = "application/json" }, body)
end
`,
    { delayMs },
  );
}

// ------------------------------------------------------------------ (a) ingest

async function ingestRun(mode, scripts) {
  const target = await startTarget(mode);
  try {
    await warmUp(target.url, scripts);
    await target.reset();
    const cpu0 = cpuSeconds(target.pid);
    const r = await runWrk(target.url, scripts.script);
    const cpu = cpuSeconds(target.pid) - cpu0;
    const stats = await target.stats();
    const ok = r.statuses[202] ?? 0;
    if (ok === 0 || r.non2xx > 0) throw new Error(`${mode}: ${r.non2xx} non-2xx answers: ${JSON.stringify(r.statuses)}`);
    return { rate: r.requests / DURATION_S, cpuUs: (cpu / r.requests) * 1e6, p50: r.p50, p99: r.p99, loopMs: stats.maxLoopDelayMs, note: '' };
  } finally {
    await target.stop();
  }
}

// ------------------------------------------------------------------ (b) executions

/** Resolves once the destination has counted no arrival for `quietMs` and alloy's queue (if any) is empty. */
async function drained(target, dest, quietMs = 300) {
  let last = -1;
  for (;;) {
    const { queue } = await target.stats();
    if (dest.count === last && (!queue || queue.queued + queue.running === 0)) return;
    last = dest.count;
    await new Promise((r) => setTimeout(r, quietMs));
  }
}

async function execRun(mode, dest, scripts, env = {}) {
  const target = await startTarget(mode, dest.url, env);
  try {
    dest.reset();
    const warmAccepted = await warmUp(target.url, scripts);
    // Every warm-up execution completes before the measurement starts.
    await waitForCount(dest, warmAccepted, 120_000);
    await drained(target, dest);
    dest.reset();
    await target.reset();
    const cpu0 = cpuSeconds(target.pid);
    const t0 = performance.now();
    const r = await runWrk(target.url, scripts.script);
    const accepted = r.statuses[202] ?? 0;
    // Completed = every accepted event's POST arrived at the destination (the queue drained).
    await waitForCount(dest, accepted, 300_000);
    const cpu = cpuSeconds(target.pid) - cpu0;
    const wallS = (Math.max(dest.last, t0) - t0) / 1000;
    const stats = await target.stats();
    const refused = r.statuses[503] ?? 0;
    const other = r.requests - accepted - refused;
    if (other > 0 || r.socketErrors > 0) throw new Error(`${mode}: unexpected answers ${JSON.stringify(r.statuses)}, ${r.socketErrors} socket errors`);
    return {
      rate: accepted / wallS,
      cpuUs: (cpu / accepted) * 1e6,
      p50: r.p50,
      p99: r.p99,
      loopMs: stats.maxLoopDelayMs,
      note: refused ? `${((refused / r.requests) * 100).toFixed(0)} % answered 503, ${((cpu / r.requests) * 1e6).toFixed(0)} µs CPU per request` : '',
    };
  } finally {
    await target.stop();
  }
}

// ------------------------------------------------------------------ report

function summarize(runs) {
  return {
    rate: median(runs.map((r) => r.rate)),
    cpuUs: median(runs.map((r) => r.cpuUs)),
    p50: median(runs.map((r) => r.p50)),
    p99: median(runs.map((r) => r.p99)),
    loopMs: median(runs.map((r) => r.loopMs)),
    note: runs.map((r) => r.note).filter(Boolean).join('; '),
  };
}

function table(title, unit, alloy, raw, aim) {
  const row = (label, x) => [
    label,
    x.rate.toFixed(0),
    `${x.cpuUs.toFixed(0)} µs`,
    `${x.p50.toFixed(2)} ms`,
    `${x.p99.toFixed(2)} ms`,
    `${x.loopMs.toFixed(1)} ms`,
    `${(x.rate / raw.rate).toFixed(2)}x`,
    `${(x.cpuUs / raw.cpuUs).toFixed(2)}x`,
    x.note,
  ];
  printTable(title, [
    ['target', unit, 'CPU/unit', 'p50', 'p99', 'max loop delay', 'rate ratio', 'CPU ratio', ''],
    row('alloy', alloy),
    row('raw baseline', raw),
  ]);
  console.log(`  CPU ratio ${(alloy.cpuUs / raw.cpuUs).toFixed(2)}x (aim ≤ ${aim}x)`);
}

console.log(
  `wrk -t1 -c${CONNECTIONS} -d${DURATION_S}s after ${WARM_REQUESTS.toLocaleString('en')} warm-up requests each, ${RUNS} run(s), targets alternated within each run; medians. ` +
    'The 2 cores are shared (wrk, targets, other work): compare the CPU/unit columns.',
);
if (only !== 'b') {
  const script = ingestScript();
  const a = { alloy: [], raw: [] };
  for (let i = 0; i < RUNS; i++) {
    const order = i % 2 ? ['raw-ingest', 'alloy-ingest'] : ['alloy-ingest', 'raw-ingest'];
    for (const mode of order) (mode === 'raw-ingest' ? a.raw : a.alloy).push(await ingestRun(mode, script));
  }
  table(
    '(a) signed Shopify webhook ingest, 28 KB orders/create: alloy (verify, persist with fsync, 202) vs raw node:http (parse, map 3 fields, 202)',
    'req/s',
    summarize(a.alloy),
    summarize(a.raw),
    2.5,
  );
}
if (only !== 'a') {
  const dest = await startDestination();
  // Paced: each connection waits between requests, offering well under alloy's capacity.
  // Saturated: alloy runs with --max-queued 32 (default 1,024) so a 5 s run on a loaded machine reaches it
  // and the 503 regime shows; its CPU per completed execution includes the refused requests.
  const regimes = [
    ['paced', execScript('exec-paced', quick ? 20 : 25), 'paced (50 connections, 25 ms between requests: ~1,500 events/s offered at most)', {}],
    ['saturated', execScript('exec-flat', 0), 'saturated (50 connections flat out; alloy --max-queued 32)', { BENCH_MAX_QUEUED: '32' }],
  ];
  for (const [, script, label, env] of regimes) {
    const b = { alloy: [], raw: [] };
    for (let i = 0; i < RUNS; i++) {
      const order = i % 2 ? ['raw-forward', 'alloy-exec'] : ['alloy-exec', 'raw-forward'];
      for (const mode of order) (mode === 'raw-forward' ? b.raw : b.alloy).push(await execRun(mode, dest, script, mode === 'alloy-exec' ? env : {}));
    }
    table(`(b) completed executions (map 3 fields + POST), ${label}: alloy (engine + event log) vs raw forwarder (parse, map, POST)`, 'exec/s', summarize(b.alloy), summarize(b.raw), 3);
  }
  await dest.close();
}
