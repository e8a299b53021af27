/**
 * Issue 13, items 2 and 3: an `each` over 10,000 items costs the durable runtime a bounded
 * multiple of what it costs `alloy run` (no checkpoint that scans every step; the 2x
 * is the bench's, bench/large-each.mjs), and no execution
 * holds the event loop: /healthz keeps answering while it runs.
 *
 * Timing on a shared, loaded machine: both sides are measured in this test, alternated, and
 * the best of each is compared (load only ever adds time): the CPU time of the event loop's
 * thread within 4x; the wall time (waiting for a CPU and the disk included) within 10x. The durable side is timed from the
 * 202 to the final record being durable (what running it costs; ingest is not part of `run`). Stalls are counted by CPU, not by
 * the clock: a 1 ms timer notes, for every gap between its runs, the wall time and the CPU
 * time of the event loop's thread; a gap is a block when that thread computed for 50 ms or
 * more in it (a descheduled process has long gaps with little CPU). /healthz is probed meanwhile and
 * must keep answering (before the fix one probe waited for the whole execution, seconds).
 * bench/large-each.mjs prints the same figures from the built binary.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { openEventLog } from '../../src/server/event-log.js';
import { indexDefinitions } from '../../src/server/definitions.js';
import { createRuntimeServer, type RuntimeServer } from '../../src/server/runtime-server.js';
import { createEngineExecutor } from '../../src/server/engine-executor.js';
import { compileWorkflow } from '../../src/engine/compile.js';
import { createExecutionRecord, executeWorkflow } from '../../src/engine/execute.js';
import { createConnectorRegistry } from '../../src/connectors/registry.js';
import type { WorkflowDef } from '../../src/core/model.js';
import { http, projectOf, tempDir, workflow } from '../server/helpers.js';
import { mainThreadCpuMs, stallMeter } from '../helpers/stalls.js';

const N = 10_000;
const items = Array.from({ length: N }, (_, i) => ({ sku: `SKU-${i}`, qty: (i % 7) + 1, price: '9.99' }));
const def: WorkflowDef = workflow('lines', { event: 'bulk.lines' }, [
  {
    id: 'lines',
    each: '{{ event.items }}',
    as: 'line',
    steps: [{ id: 'map', uses: 'transform', with: { sku: '{{ line.sku }}', qty: '{{ line.qty }}' } }],
  } as never,
]);

/** What `alloy run` does: the engine with a checkpoint that keeps nothing. */
async function timeRun(): Promise<{ wall: number; cpu: number }> {
  const compiled = compileWorkflow(def);
  const record = createExecutionRecord({ workflow: 'demo/lines', event: { items } }, Date.now());
  const t0 = performance.now();
  const c0 = mainThreadCpuMs();
  const out = await executeWorkflow(compiled, record, {
    connectors: createConnectorRegistry({ userConnectors: [] }),
    http: async () => {
      throw new Error('no http');
    },
    clock: { now: Date.now, sleep: async () => {} },
    random: Math.random,
    checkpoint: async () => {},
    logger: { debug() {}, info() {}, warn() {} },
    resolveConnection: async () => ({}),
  });
  expect(out.status).toBe('succeeded');
  return { wall: performance.now() - t0, cpu: mainThreadCpuMs() - c0 };
}

const stalls = stallMeter();

// Wall-clock bounds: a loaded CI machine can miss one by scheduling alone; a real regression fails every try.
describe('an each over 10,000 items in the durable runtime', { retry: 2 }, () => {
  let tmp: ReturnType<typeof tempDir>;
  let server: RuntimeServer;
  let base: string;

  /** Resolved when the runtime has stored an execution's final record. */
  const ended = new Map<string, () => void>();

  beforeEach(async () => {
    tmp = tempDir();
    const project = projectOf(tmp.dir, [def]);
    server = createRuntimeServer({
      log: openEventLog({ file: path.join(tmp.dir, 'dev.sqlite') }),
      definitions: indexDefinitions(project),
      executor: createEngineExecutor({ project: () => project, env: {} }),
      onEvent: (e) => {
        if (e.type === 'execution') ended.get(e.record.id)?.();
      },
    });
    base = await server.listen();
  });
  afterEach(async () => {
    await server?.close();
    tmp.cleanup();
  });

  /**
   * Posts the event and times it until its final record is stored, probing /healthz every
   * 10 ms meanwhile (the probes run in this process, so a blocked loop delays them too).
   */
  async function timeDev(probe = true): Promise<{ ms: number; cpu: number; probes: number[]; id: string }> {
    const body = JSON.stringify({ event: 'bulk.lines', data: { items } });
    const res = await http('POST', `${base}/v1/run/event`, body, { 'content-type': 'application/json' });
    expect(res.status).toBe(202);
    // The execution's time: from its delivery being accepted to its final record on disk
    // (`alloy run` has no ingest to compare with; accepting the 400 KB event took 50-400 ms here).
    const t0 = performance.now();
    const c0 = mainThreadCpuMs();
    const id = res.json.executions[0].id as string;
    let finished = false;
    let cpu = 0;
    const done = new Promise<number>((resolve) =>
      ended.set(id, () => {
        cpu = mainThreadCpuMs() - c0;
        resolve(performance.now() - t0);
      }),
    );
    void done.then(() => (finished = true));
    const probes: number[] = [];
    if (!probe) {
      const ms = await done;
      return { ms, cpu, probes, id };
    }
    stalls.start();
    while (!finished) {
      const p0 = performance.now();
      const h = await http('GET', `${base}/healthz`);
      expect(h.status).toBe(200);
      probes.push(performance.now() - p0);
      await new Promise((r) => setTimeout(r, 10));
    }
    const ms = await done;
    stalls.stop();
    return { ms, cpu, probes, id };
  }

  it('is linear (within 4x of alloy run\'s CPU), answers /healthz meanwhile, and stores a compact record', async () => {
    await timeRun(); // warm-up (JIT, expression cache)
    const run: { wall: number; cpu: number }[] = [];
    const dev: { wall: number; cpu: number }[] = [];
    const probes: number[] = [];
    let id = '';
    // Timed without probes (they would load only the dev side), then watched with them.
    for (let i = 0; i < 3; i++) {
      run.push(await timeRun());
      const d = await timeDev(false);
      dev.push({ wall: d.ms, cpu: d.cpu });
    }
    for (let i = 0; i < 2; i++) {
      const d = await timeDev(true);
      probes.push(...d.probes);
      id = d.id;
    }
    const best = (xs: { wall: number; cpu: number }[], k: 'wall' | 'cpu') => Math.min(...xs.map((x) => x[k]));
    const show = (xs: { wall: number; cpu: number }[]) => xs.map((x) => `${x.wall.toFixed(0)} (${x.cpu.toFixed(0)} CPU)`).join('/');
    const sorted = [...probes].sort((a, b) => a - b);
    const p99 = sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * 0.99))];
    const st = stalls.result;
    console.log(
      `each over ${N}: alloy run ${show(run)} ms, dev ${show(dev)} ms; ` +
        `/healthz probes ${probes.length}, p99 ${p99.toFixed(1)} ms, max ${sorted.at(-1)!.toFixed(1)} ms; ` +
        `longest turn ${st.maxWallMs.toFixed(1)} ms wall, ${st.maxCpuMs.toFixed(1)} ms CPU; blocks >= 50 ms CPU: ${st.blocks}`,
    );
    // The 2x is measured by bench/large-each.mjs (about 1.5-1.8x on a quiet machine);
    // this test guards against the quadratic scan (200x) with bounds that load cannot fail:
    // the event loop's CPU time, which waits on the disk and descheduling do not move, within
    // 4x (GC helper threads and a busy machine's cache misses still move it), and wall time,
    // mostly waiting for a CPU on a shared machine plus the final record's fdatasync, within 10x.
    expect(best(dev, 'cpu')).toBeLessThanOrEqual(4 * best(run, 'cpu'));
    expect(best(dev, 'wall')).toBeLessThanOrEqual(10 * best(run, 'wall'));
    // No turn of the event loop spent 50 ms of CPU, and /healthz kept answering throughout.
    expect(st.blocks).toBe(0);
    expect(probes.length).toBeGreaterThan(3);
    expect(sorted.at(-1)!).toBeLessThan(1000);
    // The stored record: every item's step, readable, and small per item.
    const row = server.log.getExecution(id)!;
    expect(row.status).toBe('succeeded');
    expect(Object.keys(row.record.steps as object)).toHaveLength(N + 1);
    expect(JSON.stringify(row.record).length / N).toBeLessThan(600);
  }, 120_000);
});
