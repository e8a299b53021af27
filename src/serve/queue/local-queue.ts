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
  const parked = new Map<string, Fifo>();
  const running = new Map<string, AbortController>();
  /** Set when stop's grace period ended: executions still starting are interrupted at once. */
  let stopReason: Error | undefined;
  let work: QueueWork | undefined;
  let pool: WorkerPool | undefined;
  const pending: string[] = [];

  const park = (key: string, id: string) => {
    let q = parked.get(key);
    if (!q) parked.set(key, (q = new Fifo()));
    q.push(id);
  };
  const unpark = (key: string) => {
    const q = parked.get(key);
    if (!q) return;
    const next = q.shift();
    if (q.size === 0) parked.delete(key);
    if (next !== undefined) pool!.push(next);
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

/**
 * A FIFO of ids with O(1) removal from the front: a shop's backlog parks thousands of ids, and
 * Array#shift on an array that large copies it (V8 trims only small arrays in place), so
 * every execution that ended cost a copy of the whole backlog.
 */
class Fifo {
  private items: string[] = [];
  private head = 0;
  get size(): number {
    return this.items.length - this.head;
  }
  push(id: string): void {
    this.items.push(id);
  }
  shift(): string | undefined {
    if (this.head === this.items.length) return undefined;
    const id = this.items[this.head++];
    // Drop what was taken once it is most of the array (amortized O(1)).
    if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    } else if (this.head === this.items.length) {
      this.items = [];
      this.head = 0;
    }
    return id;
  }
}
