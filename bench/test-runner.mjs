#!/usr/bin/env node
/**
 * `alloy test` over 1,000 generated tests against the same 1,000 executions through the
 * engine's API, in one process and the same run (issue 14: the ratio must stay ≤ 2×).
 *
 * The project: the example's create-order workflow (a shopify/createOrder action and a
 * transform), with 10 test files of 100 tests, each answering createOrder and expecting
 * step outputs, a request-free run and an assertion. "alloy test" is the whole programmatic
 * path the command takes: load and validate the project (test files included, with the
 * parsed-test-file cache under .alloy/cache/ the CLI uses; the warm-up run fills it, and the
 * cold load is printed apart), then runTests. The baseline compiles the workflow once and runs executeWorkflow 1,000 times,
 * each with its own deps (clock, connectors answering createOrder the same way). Median of
 * several runs. Build first.
 *
 *   node bench/test-runner.mjs [--runs 5] [--tests 1000]
 */
import { cpSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { createRequire } from 'node:module';
import { median, printTable, fmt, ratio } from './lib.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '..');
const dist = (p) => import(pathToFileURL(path.join(root, 'dist', p)).href);
const { runTests } = await dist('test-runner/index.js');
const { loadProject } = await dist('core/project.js');
const { builtinConnectorManifests } = await dist('connectors/builtin-manifests.js');
const { createConnectorRegistry } = await dist('connectors/registry.js');
const { compileWorkflow, createExecutionRecord, executeWorkflow } = await dist('engine/index.js');

const arg = (name, def) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : def;
};
const { stringify } = createRequire(path.join(root, 'package.json'))('yaml');
const RUNS = arg('runs', 5);
const TESTS = arg('tests', 1000);
const PER_FILE = 100;

// A project with the example's workflows and TESTS generated tests of create-order.
const dir = mkdtempSync(path.join(os.tmpdir(), 'alloy-bench-tests-'));
cpSync(path.join(root, 'examples', 'shopify-sync'), dir, { recursive: true });
const testsDir = path.join(dir, 'integrations', 'shopify-sync', 'tests');
rmSync(testsDir, { recursive: true, force: true });
mkdirSync(testsDir, { recursive: true });
const eventOf = (n) => ({ orderId: `acme-${n}`, email: `c${n}@example.com`, phone: '+16135551111', currency: 'EUR', lineItems: [{ title: `Item ${n}`, sku: `SKU-${n}`, quantity: 1 + (n % 3), price: 10 + n }] });
const answerOf = (n) => ({ id: `gid://shopify/Order/${1000 + n}`, name: `#${1000 + n}` });
for (let f = 0; f * PER_FILE < TESTS; f++) {
  const tests = [];
  for (let n = f * PER_FILE; n < Math.min(TESTS, (f + 1) * PER_FILE); n++) {
    tests.push({
      name: `order ${n}`,
      event: eventOf(n),
      answers: { 'shopify/createOrder': { returns: answerOf(n) } },
      expect: {
        status: 'succeeded',
        steps: {
          order: { inputs: { sourceIdentifier: `acme-${n}` }, output: { name: `#${1000 + n}` } },
          result: { output: { acmeOrderId: `acme-${n}`, shopifyOrderName: `#${1000 + n}` } },
        },
        requests: [{ count: 0 }],
        assert: ['steps.result.output.shopifyOrderId = steps.order.output.id'],
      },
    });
  }
  // Block-style YAML, as people write test files.
  writeFileSync(path.join(testsDir, `generated-${f}.test.yaml`), stringify({ apiVersion: 'alloy/v1', kind: 'Test', workflow: 'create-order', tests }));
}

// As `alloy test` loads (src/cli/load-project.ts): parsed test files cached under .alloy/cache/.
const LOAD_OPTIONS = { builtinConnectors: builtinConnectorManifests, testFileCache: true };
const loadTimes = [];
const loadCpu = [];
// CPU time too: on a shared machine wall time mostly measures the neighbours.
const cpuMs = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};
const cpu = { alloy: [], engine: [] };
async function alloyTest() {
  const c0 = cpuMs();
  const t0 = process.hrtime.bigint();
  const project = await loadProject(dir, LOAD_OPTIONS);
  if ([...project.diagnostics, ...project.testDiagnostics].some((d) => d.severity === 'error')) throw new Error(JSON.stringify(project.diagnostics.slice(0, 3)));
  loadTimes.push(Number(process.hrtime.bigint() - t0) / 1e6);
  loadCpu.push(cpuMs() - c0);
  const summary = await runTests({ project, connectors: createConnectorRegistry() });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  cpu.alloy.push(cpuMs() - c0);
  if (summary.passed !== TESTS) throw new Error(`expected ${TESTS} passing tests, got ${JSON.stringify({ ...summary, results: summary.results.filter((r) => r.state === 'failed').slice(0, 2) })}`);
  return ms;
}

// The baseline: the same executions through the engine's API, answered the same way. Each
// execution builds what it inherently needs, as a test does: its own clock, connectors
// answering createOrder with that execution's answer, and its deps.
const project0 = await loadProject(dir, { builtinConnectors: builtinConnectorManifests });
const def = project0.integrations[0].workflows.find((w) => w.name === 'create-order').def;
const base = createConnectorRegistry();
const shopify = base.get('shopify');
const depsFor = (n) => {
  const answer = answerOf(n);
  const runtime = { ...shopify, actions: { ...shopify.actions, createOrder: async () => answer } };
  let t = Date.parse('2026-01-01T00:00:00.000Z');
  return {
    connectors: { names: () => base.names(), get: (name) => (name === 'shopify' ? runtime : base.get(name)) },
    http: async () => {
      throw new Error('no http in this bench');
    },
    clock: { now: () => t, sleep: async (ms) => void (t += ms) },
    random: () => 0.5,
    checkpoint: async () => {},
    logger: { debug() {}, info() {}, warn() {} },
    resolveConnection: async () => ({ shop: 'acme-test.myshopify.com', accessToken: 'shpat_x' }),
    secrets: {},
    env: {},
  };
};
async function engineApi() {
  const c0 = cpuMs();
  const t0 = process.hrtime.bigint();
  const compiled = compileWorkflow(def);
  for (let n = 0; n < TESTS; n++) {
    const deps = depsFor(n);
    const r = await executeWorkflow(compiled, createExecutionRecord({ id: `e${n}`, workflow: 'shopify-sync/create-order', event: eventOf(n) }, deps.clock.now()), deps);
    if (r.status !== 'succeeded' || r.steps.result.output.shopifyOrderName !== `#${1000 + n}`) throw new Error(`engine run ${n}: ${r.status}`);
  }
  cpu.engine.push(cpuMs() - c0);
  return Number(process.hrtime.bigint() - t0) / 1e6;
}

try {
  // The first load parses every test file and writes the cache: what a first `alloy test` costs.
  const cold0 = cpuMs();
  const tc0 = process.hrtime.bigint();
  await loadProject(dir, LOAD_OPTIONS);
  const coldLoad = { wall: Number(process.hrtime.bigint() - tc0) / 1e6, cpu: cpuMs() - cold0 };
  await alloyTest(); // warm up both
  await engineApi();
  const a = [];
  const e = [];
  cpu.alloy.length = 0;
  cpu.engine.length = 0;
  loadTimes.length = 0;
  loadCpu.length = 0;
  for (let i = 0; i < RUNS; i++) {
    a.push(await alloyTest());
    e.push(await engineApi());
  }
  const ma = median(a);
  const me = median(e);
  const ca = median(cpu.alloy);
  const ce = median(cpu.engine);
  printTable(`alloy test vs the engine API: ${TESTS} tests, median of ${RUNS} runs (node ${process.version}, load average ${os.loadavg()[0].toFixed(1)})`, [
    ['path', 'wall', 'per test', 'CPU'],
    ['alloy test (load + validate + runTests)', fmt(ma), `${((ma / TESTS) * 1000).toFixed(0)} µs`, fmt(ca)],
    ['  of which loading and validating', fmt(median(loadTimes)), '', fmt(median(loadCpu))],
    ['  (the first load: no cache yet, once)', fmt(coldLoad.wall), '', fmt(coldLoad.cpu)],
    ['engine API (executeWorkflow)', fmt(me), `${((me / TESTS) * 1000).toFixed(0)} µs`, fmt(ce)],
  ]);
  console.log(`\nratio alloy test / engine API: ${ratio(ma, me)} wall, ${ratio(ca, ce)} CPU (target ≤ 2.00x)`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
