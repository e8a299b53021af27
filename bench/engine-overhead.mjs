#!/usr/bin/env node
/**
 * Engine overhead per step, in-process: a 3-field `transform` and an `if`, each against the
 * same logic written in plain JavaScript in the same run. Prints µs per step for both and the
 * ratio, median of several runs: wall time, and this process's CPU time (user + system, from
 * process.cpuUsage), which moves less when other processes share the cores. Build first
 * (`npm run build`); ENGINE_DIST overrides the folder holding engine/index.js (default: dist).
 *
 *   node bench/engine-overhead.mjs [--runs 7] [--executions 400]
 */
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { benchEngineDeps, median, pairedMedians } from './lib.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const distDir = path.resolve(here, '..', process.env.ENGINE_DIST ?? 'dist');
const { compileWorkflow, createExecutionRecord, executeWorkflow } = await import(pathToFileURL(path.join(distDir, 'engine', 'index.js')).href);

const arg = (name, def) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : def;
};
const RUNS = arg('runs', 7);
const EXECUTIONS = arg('executions', 400);
const STEPS = 10; // steps per execution, so per-execution costs spread as they do in real workflows

const base = { apiVersion: 'alloy/v1', kind: 'Workflow', trigger: { event: 'bench' } };
const transformFlow = {
  ...base,
  name: 'transform',
  steps: Array.from({ length: STEPS }, (_, i) => ({
    id: `map${i}`,
    uses: 'transform',
    with: { orderId: '{{ event.id }}', email: '{{ event.email }}', total: '{{ $number(event.total_price) }}' },
  })),
};
const ifFlow = {
  ...base,
  name: 'if',
  steps: Array.from({ length: STEPS }, (_, i) => ({ id: `check${i}`, if: '{{ $number(event.total_price) > 100 }}', then: [] })),
};

const deps = benchEngineDeps();

const events = Array.from({ length: 64 }, (_, i) => ({ id: 1000 + i, email: `c${i}@example.com`, total_price: String(50 + i * 3.5) }));

/** Wall and CPU µs per step since `start`. */
function perStep(start) {
  const cpu = process.cpuUsage(start.cpu);
  const steps = EXECUTIONS * STEPS;
  return { wall: Number(process.hrtime.bigint() - start.wall) / 1000 / steps, cpu: (cpu.user + cpu.system) / steps };
}
const startClock = () => ({ wall: process.hrtime.bigint(), cpu: process.cpuUsage() });

async function engineRun(def) {
  const compiled = compileWorkflow(def);
  const t0 = startClock();
  for (let n = 0; n < EXECUTIONS; n++) {
    const record = createExecutionRecord({ id: `e${n}`, workflow: `bench/${def.name}`, event: events[n % events.length] }, Date.now());
    const r = await executeWorkflow(compiled, record, deps);
    if (r.status !== 'succeeded') throw new Error(`bench execution ${r.status}: ${JSON.stringify(r.error)}`);
  }
  return perStep(t0);
}

// The same logic in plain JS, run as the same number of async steps (the engine is async too).
const plainTransform = async (e) => ({ orderId: e.id, email: e.email, total: Number(e.total_price) });
const plainIf = async (e) => ({ condition: Number(e.total_price) > 100 });
let sink = 0;
async function plainRun(fn) {
  const t0 = startClock();
  for (let n = 0; n < EXECUTIONS; n++) {
    const e = events[n % events.length];
    const outputs = {};
    for (let s = 0; s < STEPS; s++) outputs[s] = await fn(e);
    sink += Object.keys(outputs).length;
  }
  return perStep(t0);
}

async function measure(label, def, fn) {
  const runs = { engine: [], plain: [] };
  await pairedMedians(RUNS, async () => runs.engine.push(await engineRun(def)), async () => runs.plain.push(await plainRun(fn)));
  // pairedMedians warms each up once first: drop those runs.
  const m = (list, k) => median(list.slice(1).map((r) => r[k]));
  const [ew, ec, pw, pc] = [m(runs.engine, 'wall'), m(runs.engine, 'cpu'), m(runs.plain, 'wall'), m(runs.plain, 'cpu')];
  console.log(
    `${label.padEnd(22)} engine ${ew.toFixed(2).padStart(6)} µs/step wall, ${ec.toFixed(2).padStart(6)} µs CPU   ` +
      `plain JS ${pw.toFixed(3)} wall, ${pc.toFixed(3)} CPU   ratio ${(ew / pw).toFixed(0)}x wall, ${(ec / pc).toFixed(0)}x CPU   (target < 50 µs/step)`,
  );
  return ec;
}

console.log(`engine overhead: ${RUNS} runs × ${EXECUTIONS} executions × ${STEPS} steps, median (node ${process.version})`);
await measure('transform (3 fields)', transformFlow, plainTransform);
await measure('if', ifFlow, plainIf);
if (sink < 0) console.log(sink);
