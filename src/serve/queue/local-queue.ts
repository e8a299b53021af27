/**
 * The execution queue of one process (SQLite): an in-memory WorkerPool seeded from the
 * state's unfinished executions at start. At its installation's or shop's bound an
 * execution is parked (not holding a worker), so a busy installation's backlog never keeps
 * another's work from starting; it goes back to the pool when a slot of that key frees.
 */
import { WorkerPool } from '../../server/worker-pool.js';
import { KeyedSemaphore } from '../limiter.js';
import type { IngestInput, ServeState } from '../state/types.js';
import type { EnqueueOptions, ExecutionQueue, QueueLimits, QueueWork } from './types.js';

export function createLocalQueue(state: ServeState, limits: QueueLimits): ExecutionQueue {
  const perInstallation = new KeyedSemaphore(limits.perInstallation);
  const perShop = new KeyedSemaphore(limits.perShop);
  const parked = new Map<string, string[]>();
  const running = new Map<string, AbortController>();
  /** Set when stop's grace period ended: executions still starting are interrupted at once. */
  let stopReason: Error | undefined;
  let work: QueueWork | undefined;
  let pool: WorkerPool | undefined;
  const pending: string[] = [];

  const park = (key: string, id: string) => {
    const q = parked.get(key) ?? [];
    q.push(id);
    parked.set(key, q);
  };
  const unpark = (key: string) => {
    const q = parked.get(key);
    const next = q?.shift();
    if (q && q.length === 0) parked.delete(key);
    if (next) pool!.push(next);
  };

  async function run(id: string): Promise<void> {
    const prepared = await work!.prepare(id);
    if (!prepared) return;
    const iKey = `i:${prepared.installationId}`;
    const sKey = prepared.shop ? `s:${prepared.shop}` : undefined;
    const releaseI = perInstallation.tryAcquire(iKey);
    if (!releaseI) return park(iKey, id);
    const releaseS = sKey ? perShop.tryAcquire(sKey) : () => {};
    if (!releaseS) {
      releaseI();
      return park(sKey!, id);
    }
    // One controller per execution, owned here alone (cancel, stop): the runner aborts it too
    // rather than following it with one of its own. Stopping aborts every one in `running`
    // (no listener per execution on a process-wide signal).
    const controller = new AbortController();
    const abort = (reason: unknown) => controller.abort(reason);
    if (stopReason) controller.abort(stopReason);
    running.set(id, controller);
    try {
      // Interrupted (stopping) executions stay unfinished in the state: the next start resumes them.
      await prepared.run(controller.signal, abort);
    } finally {
      running.delete(id);
      releaseI();
      releaseS();
      unpark(iKey);
      if (sKey) unpark(sKey);
    }
  }

  const push = (ids: string[]) => {
    if (pool) for (const id of ids) pool.push(id);
    else pending.push(...ids);
  };

  return {
    async ingest(input: IngestInput, _options?: EnqueueOptions) {
      const result = await state.executions.ingest(input);
      if (!result.duplicate) push(result.executionIds);
      return result;
    },
    async start(w) {
      work = w;
      pool = new WorkerPool({ concurrency: limits.concurrency, run, onError: (id, err) => w.onError?.(id, err) });
      for (const id of await state.executions.unfinished()) pool.push(id);
      for (const id of pending.splice(0)) pool.push(id);
    },
    abort(id) {
      running.get(id)?.abort(new Error('cancelled'));
    },
    idle: () => pool?.idle() ?? Promise.resolve(),
    async stop(graceMs) {
      if (!pool) return;
      pool.stop();
      const timer = setTimeout(() => {
        stopReason = new Error('stopping');
        for (const c of running.values()) c.abort(stopReason);
      }, graceMs);
      await pool.idle();
      clearTimeout(timer);
    },
  };
}
