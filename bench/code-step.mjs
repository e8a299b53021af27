#!/usr/bin/env node
/**
 * A `code:` step's overhead per call against a JSONata `transform` doing the same mapping,
 * both through the engine in-process (same run, same machine). The sandbox is warm (QuickJS
 * instantiated once; every call gets a fresh context on a reused runtime, as in alloy dev).
 * Prints µs per step for both and the ratio (issue 15 aims at ≤ 5x warm), median of runs,
 * plus the cold start (first call: wasm compile and instantiate).
 *
 *   npm run build && node bench/code-step.mjs [--runs 7] [--executions 300]
 */
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { benchEngineDeps, fmt, pairedMedians, printTable } from './lib.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const distDir = path.resolve(here, '..', process.env.ENGINE_DIST ?? 'dist');
const { compileWorkflow, createExecutionRecord, executeWorkflow } = await import(pathToFileURL(path.join(distDir, 'engine', 'index.js')).href);
const { CodeSandbox } = await import(pathToFileURL(path.join(distDir, 'engine', 'code-sandbox.js')).href);

const arg = (name, def) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : def;
};
const RUNS = arg('runs', 7);
const EXECUTIONS = arg('executions', 300);
const STEPS = 10;

const event = {
  id: 820982911946154500,
  email: 'jon@example.com',
  total_price: '254.98',
  line_items: [
    { sku: 'BEAR-BOOT-42', title: 'Big Brown Bear Boots', quantity: 2, price: '74.99' },
    { sku: 'SOCK-3', title: 'Wool socks', quantity: 3, price: '35.00' },
  ],
};
const base = { apiVersion: 'alloy/v1', kind: 'Workflow', trigger: { event: 'bench' } };
// The same mapping both ways: three fields and a list.
const transformFlow = {
  ...base,
  name: 'transform',
  steps: Array.from({ length: STEPS }, (_, i) => ({
    id: `map${i}`,
    uses: 'transform',
    with: {
      orderId: '{{ event.id }}',
      email: '{{ event.email }}',
      total: '{{ $number(event.total_price) }}',
      items: "{{ [event.line_items.{ 'sku': sku, 'quantity': quantity }] }}",
    },
  })),
};
const codeFlow = {
  ...base,
  name: 'code',
  steps: Array.from({ length: STEPS }, (_, i) => ({
    id: `map${i}`,
    code: 'return { orderId: event.id, email: event.email, total: Number(event.total_price), items: event.line_items.map((l) => ({ sku: l.sku, quantity: l.quantity })) };',
  })),
};

const sandbox = new CodeSandbox();
const coldStart = process.hrtime.bigint();
await sandbox.ready();
await sandbox.run('return 1', { event: {}, steps: {}, config: {} });
const coldMs = Number(process.hrtime.bigint() - coldStart) / 1e6;

const deps = benchEngineDeps({ codeSandbox: async () => sandbox });

async function perStepUs(def) {
  const compiled = compileWorkflow(def);
  // Check both give the same output once.
  const check = await executeWorkflow(compiled, createExecutionRecord({ workflow: 'b/x', event }, Date.now()), deps);
  if (check.status !== 'succeeded') throw new Error(`${def.name}: ${JSON.stringify(check.error)}`);
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < EXECUTIONS; i++) {
    await executeWorkflow(compiled, createExecutionRecord({ workflow: 'b/x', event }, Date.now()), deps);
  }
  return Number(process.hrtime.bigint() - t0) / 1e3 / (EXECUTIONS * STEPS);
}

const outputs = await Promise.all([transformFlow, codeFlow].map(async (def) => {
  const r = await executeWorkflow(compileWorkflow(def), createExecutionRecord({ workflow: 'b/x', event }, Date.now()), deps);
  return JSON.stringify(r.steps.map0.output);
}));
if (outputs[0] !== outputs[1]) throw new Error(`the two mappings differ: ${outputs[0]} vs ${outputs[1]}`);

const [tm, cm] = await pairedMedians(RUNS, () => perStepUs(transformFlow), () => perStepUs(codeFlow));
printTable(`code step vs JSONata transform, same mapping (${RUNS} runs × ${EXECUTIONS} executions × ${STEPS} steps, median)`, [
  ['step', 'µs / step', 'ratio'],
  ['transform (JSONata)', tm.toFixed(1), '1.00x'],
  ['code (QuickJS, warm)', cm.toFixed(1), `${(cm / tm).toFixed(2)}x`],
]);
console.log(`  cold start (wasm compile + instantiate + first call): ${fmt(coldMs)}`);
console.log(`  target: code ≤ 5x transform when warm → ${cm / tm <= 5 ? 'met' : 'NOT met'}`);
sandbox.dispose();
