/**
 * The PostgreSQL execution queue (src/serve/queue/pg-queue.ts) on the real server: two queue
 * instances with their own pools on one schema stand for two worker processes; the work is
 * a stand-in that records when each execution runs. Bounds across instances, reruns first,
 * a cancel reaching the instance that runs the execution, a slow execution never taken over
 * after its job expires, a lost lock session handing the work to the other instance.
 */
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { createPgQueue } from '../../src/serve/queue/pg-queue.js';
import type { ExecutionQueue, PreparedExecution, QueueLimits } from '../../src/serve/queue/types.js';
import { openPgState, type PgServeState } from '../../src/serve/state/pg-state.js';
import type { ExecutionRow } from '../../src/serve/state/types.js';
import { assertPgReachable, describePg, dropSchemas, freshSchema, PG_URL } from '../helpers/pg.js';
import { waitFor } from './helpers.js';

let seq = 0;
function row(installationId = 'in_1'): ExecutionRow {
  const id = `ex_${Date.now().toString(36)}_${(seq++).toString().padStart(5, '0')}`;
  const at = new Date().toISOString();
  return {
    id, installationId, userId: 'u1', integration: 'i', version: 1, workflow: 'i/w', status: 'queued',
    record: { id, workflow: 'i/w', version: 'v1', status: 'queued', trigger: { event: {} }, steps: {}, createdAt: at } as unknown as ExecutionRow['record'],
    createdAt: at, updatedAt: at,
  };
}

interface Node {
  state: PgServeState;
  queue: ExecutionQueue;
}

describePg('PostgreSQL execution queue', () => {
  const nodes: Node[] = [];
  beforeAll(() => assertPgReachable());
  afterEach(async () => {
    for (const n of nodes.splice(0)) {
      await n.queue.stop(0).catch(() => {});
      await n.state.close().catch(() => {});
    }
  });
  afterAll(() => dropSchemas());

  async function node(schema: string, limits: Partial<QueueLimits> = {}, recoverAfterSeconds = 30): Promise<Node> {
    const state = await openPgState({ url: PG_URL, schema, poolSize: 4 });
    const queue = createPgQueue(state, { concurrency: 8, perInstallation: 4, perShop: 4, ...limits }, { recoverAfterSeconds });
    const n = { state, queue };
    nodes.push(n);
    return n;
  }

  /** A worker that runs each queued execution with `run(id, its record as loaded)` (installation in_1). */
  const runEach = (a: Node, run: (id: string, record: ExecutionRow['record']) => Promise<void>) =>
    a.queue.start({
      async prepare(x: string): Promise<PreparedExecution | undefined> {
        const loaded = await a.state.executions.getForRun!(x);
        if (!loaded || (loaded.row.status !== 'queued' && loaded.row.status !== 'running')) return undefined;
        return { installationId: 'in_1', run: async () => (await run(x, loaded.row.record), true) };
      },
    });

  /** Work whose runs are recorded; `hold` decides how long each takes. */
  function recorder(name: string, log: { id: string; node: string; at: number }[], hold: (id: string, signal: AbortSignal) => Promise<boolean>, shop?: (id: string) => string | undefined, counters?: Map<string, number>, max?: Map<string, number>) {
    return {
      async prepare(id: string): Promise<PreparedExecution | undefined> {
        const installationId = 'in_' + id.slice(-1);
        const s = shop?.(id);
        return {
          installationId,
          shop: s,
          run: async (signal: AbortSignal) => {
            log.push({ id, node: name, at: Date.now() });
            const key = s ?? installationId;
            const n = (counters?.get(key) ?? 0) + 1;
            counters?.set(key, n);
            max?.set(key, Math.max(max.get(key) ?? 0, n));
            try {
              return await hold(id, signal);
            } finally {
              counters?.set(key, (counters.get(key) ?? 1) - 1);
            }
          },
        };
      },
    };
  }

  it('two processes share the work and keep the per-shop bound between them; every job completes once', async () => {
    const schema = freshSchema('q_bound');
    const a = await node(schema, { perShop: 2 });
    const b = await node(schema, { perShop: 2 });
    const log: { id: string; node: string; at: number }[] = [];
    const counters = new Map<string, number>();
    const max = new Map<string, number>();
    const hold = () => new Promise<boolean>((r) => setTimeout(() => r(true), 30));
    const shop = () => 'shopify:one.myshopify.com';
    const ids: string[] = [];
    for (let i = 0; i < 30; i++) ids.push(...(await a.queue.ingest({ executions: [row()] })).executionIds);
    await a.queue.start(recorder('a', log, hold, shop, counters, max));
    await b.queue.start(recorder('b', log, hold, shop, counters, max));
    await waitFor(async () => log.length >= 30, 'every execution ran', 60_000);
    await waitFor(async () => (await a.state.pool.query(`SELECT count(*)::int AS n FROM ${schema}.job WHERE state <> 'completed'`)).rows[0].n === 0, 'every job completed', 30_000);
    expect(new Set(log.map((l) => l.id))).toEqual(new Set(ids));
    expect(log).toHaveLength(30); // none twice
    expect(max.get('shopify:one.myshopify.com')).toBeLessThanOrEqual(2);
    expect(max.get('shopify:one.myshopify.com')).toBe(2);
    expect(new Set(log.map((l) => l.node))).toEqual(new Set(['a', 'b']));
  });

  it('processes starting at once on a new schema all come up (pg-boss creating its queue concurrently does not deadlock)', async () => {
    // pg-boss 10's create_queue, run by two sessions at once, deadlocks (one waits on the
    // other's queue row, which then waits for a lock on the queue table to add its foreign
    // key): one process's start failed with "deadlock detected" about one start in five.
    for (let round = 0; round < 3; round++) {
      const schema = freshSchema('q_start');
      const ns = await Promise.all(Array.from({ length: 4 }, () => node(schema)));
      const log: { id: string; node: string; at: number }[] = [];
      const started = await Promise.allSettled(ns.map((n, i) => n.queue.start(recorder(`n${i}`, log, async () => true))));
      expect(started.filter((r) => r.status === 'rejected').map((r) => String((r as PromiseRejectedResult).reason))).toEqual([]);
      const [id] = (await ns[0].queue.ingest({ executions: [row()] })).executionIds;
      await waitFor(async () => log.some((l) => l.id === id), 'the execution ran');
      for (const n of nodes.splice(0)) {
        await n.queue.stop(0);
        await n.state.close();
      }
    }
  });

  it('a pg-boss start that failed partway is started again by the next call, not taken as done', async () => {
    // pg-boss 10 sets its "starting" mark before it installs its tables and never clears it
    // when that fails: the same instance's next start() returned at once, and the queue was
    // never made. Here the statement that installs pg-boss's tables fails once.
    const schema = freshSchema('q_restart');
    const state = await openPgState({ url: PG_URL, schema, poolSize: 4 });
    const queue = createPgQueue(state, { concurrency: 4, perInstallation: 4, perShop: 4 });
    nodes.push({ state, queue });
    // pg-boss's statements go through pool.connect() (pg-queue's adapter); pool.query's own
    // connect (with a callback) is left alone.
    const pool = state.pool as unknown as { connect: (...a: unknown[]) => unknown };
    const connect = pool.connect.bind(state.pool);
    let armed = true;
    pool.connect = (...a: unknown[]) => {
      if (a.length > 0 || !armed) return connect(...a);
      return (connect() as Promise<import('pg').PoolClient>).then((client) => {
        const query = client.query;
        client.query = function (this: unknown, ...args: unknown[]) {
          client.query = query;
          if (armed && typeof args[0] === 'string' && args[0].includes('CREATE TABLE')) {
            armed = false;
            return Promise.reject(new Error('injected: the connection broke while pg-boss installed its tables'));
          }
          return (query as (...x: unknown[]) => unknown).apply(client, args);
        } as typeof client.query;
        return client;
      });
    };
    await expect(queue.ingest({ executions: [row()] })).rejects.toThrow(/injected/);
    expect(armed).toBe(false);
    const [id] = (await queue.ingest({ executions: [row()] })).executionIds;
    const log: { id: string; node: string; at: number }[] = [];
    await queue.start(recorder('a', log, async () => true));
    await waitFor(async () => log.some((l) => l.id === id), 'the execution ran');
    // The failed ingest stored nothing (it never reached the database): one execution, one job.
    expect((await state.pool.query(`SELECT count(*)::int AS n FROM ${schema}.job`)).rows[0].n).toBe(1);
  });

  it('runs a rerun before queued new work', async () => {
    const schema = freshSchema('q_prio');
    const a = await node(schema, { concurrency: 1 });
    for (let i = 0; i < 5; i++) await a.queue.ingest({ executions: [row()] });
    const rerun = (await a.queue.ingest({ executions: [row()] }, { rerun: true })).executionIds[0];
    const log: { id: string; node: string; at: number }[] = [];
    await a.queue.start(recorder('a', log, async () => true));
    await waitFor(async () => log.length === 6, 'all six ran', 30_000);
    expect(log[0].id).toBe(rerun);
  });

  it('ingests sent at once share statements: one job per stored execution, reruns keep their priority, a duplicate gets none', async () => {
    const schema = freshSchema('q_batch');
    const a = await node(schema);
    const results = await Promise.all([
      ...Array.from({ length: 20 }, (_, n) => a.queue.ingest({ dedupeKey: n % 2 ? `event:${n}` : undefined, executions: [row(), row()] })),
      a.queue.ingest({ dedupeKey: 'event:1', executions: [row()] }),
      a.queue.ingest({ executions: [row()] }, { rerun: true }),
      a.queue.ingest({ executions: [row()] }, { rerun: true }),
    ]);
    const stored = results.filter((r) => !r.duplicate).flatMap((r) => r.executionIds);
    expect(results.filter((r) => r.duplicate)).toEqual([{ duplicate: true, executionIds: results[1].executionIds }]);
    expect(stored).toHaveLength(42);
    const jobs = (await a.state.pool.query(`SELECT data->>'id' AS id, priority FROM ${schema}.job WHERE name = 'alloy-executions' ORDER BY 1`)).rows;
    expect(jobs.map((j) => j.id)).toEqual([...stored].sort());
    expect(jobs.filter((j) => j.priority === 1).map((j) => j.id).sort()).toEqual([...results[21].executionIds, ...results[22].executionIds].sort());
  });

  it('a cancel reaches the process that runs the execution', async () => {
    const schema = freshSchema('q_cancel');
    const a = await node(schema);
    const b = await node(schema);
    const log: { id: string; node: string; at: number }[] = [];
    let aborted = '';
    const hold = (id: string, signal: AbortSignal) =>
      new Promise<boolean>((resolve) => signal.addEventListener('abort', () => ((aborted = id), resolve(true)), { once: true }));
    const [id] = (await b.queue.ingest({ executions: [row()] })).executionIds;
    await a.queue.start(recorder('a', log, hold));
    await waitFor(async () => log.length === 1, 'running on a');
    b.queue.abort(id); // b does not run it: the NOTIFY reaches a
    await waitFor(async () => aborted === id, 'aborted on a');
  });

  it('a slow execution is not taken over when its job expires; a lost session hands it to the other process', async () => {
    const schema = freshSchema('q_recover');
    const a = await node(schema, {}, 2);
    const b = await node(schema, {}, 2);
    const log: { id: string; node: string; at: number }[] = [];
    let release = () => {};
    const slow = (_id: string, signal: AbortSignal) =>
      new Promise<boolean>((resolve) => {
        release = () => resolve(true);
        signal.addEventListener('abort', () => resolve(false), { once: true });
      });
    const [id] = (await a.queue.ingest({ executions: [row()] })).executionIds;
    await a.queue.start(recorder('a', log, slow));
    await waitFor(async () => log.length === 1, 'running on a');
    await b.queue.start(recorder('b', log, async () => true));
    // Its job expires after 2 s and is retried; b finds the execution's lock held by a.
    await new Promise((r) => setTimeout(r, 5000));
    expect(log.map((l) => l.node)).toEqual(['a']);
    // a loses its lock session (as when its process dies): b resumes the execution.
    // (Only the session holding this execution's lock: other tests share the server.)
    const pids = (
      await a.state.pool.query(`SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted AND objsubid = 2 AND classid = hashtext($1)::oid AND objid = hashtext($2)::oid`, [`${schema}:execution`, id])
    ).rows.map((r) => r.pid);
    expect(pids).toHaveLength(1);
    await b.state.pool.query('SELECT pg_terminate_backend($1)', [pids[0]]);
    await a.queue.stop(0);
    await waitFor(async () => log.some((l) => l.node === 'b' && l.id === id), 'resumed on b', 30_000);
    release();
  }, 60_000);

  it("an execution's final record is written by the statement that completes its job; its lock is released once that committed", async () => {
    // Before, the final checkpoint was a statement of its own (one more round trip and WAL
    // flush per execution) ahead of the job's completion.
    const schema = freshSchema('q_final');
    const a = await node(schema);
    const names: string[] = [];
    const query = a.state.pool.query.bind(a.state.pool) as (...args: unknown[]) => unknown;
    (a.state.pool as unknown as { query: unknown }).query = (q: unknown, ...rest: unknown[]) => {
      if (q && typeof q === 'object' && 'name' in q) names.push(String((q as { name: unknown }).name));
      return query(q, ...rest);
    };
    const ran: string[] = [];
    const [id, cancelled] = [row(), row()].map((r) => r.id);
    for (const r of [id, cancelled]) await a.queue.ingest({ executions: [{ ...row(), id: r, record: { ...row().record, id: r } }] });
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    await runEach(a, async (x, record) => {
      ran.push(x);
      if (x === cancelled) await gate;
      await a.state.executions.checkpoint(x, { ...record, status: 'succeeded', endedAt: new Date().toISOString() } as ExecutionRow['record'], { last: true });
    });
    await waitFor(async () => (await a.state.executions.get(id))?.status === 'succeeded', 'the first succeeded', 30_000);
    // Cancelled while it runs: the final record is stored, the status stays cancelled.
    await waitFor(async () => ran.includes(cancelled), 'the second runs');
    expect(await a.state.executions.cancel(cancelled, new Date().toISOString())).toBe(true);
    release();
    await waitFor(async () => (await a.state.executions.get(cancelled))?.record.status === 'succeeded', 'the second ended', 30_000);
    expect((await a.state.executions.get(cancelled))?.status).toBe('cancelled');
    expect(names).not.toContain('alloy_checkpoint');
    await waitFor(async () => (await a.state.pool.query(`SELECT count(*)::int AS n FROM ${schema}.job WHERE state <> 'completed'`)).rows[0].n === 0, 'both jobs completed');
    // Another session can take the executions' locks: this process released them.
    const other = await a.state.pool.connect();
    try {
      for (const x of [id, cancelled]) {
        await waitFor(async () => {
          const got = (await other.query('SELECT pg_try_advisory_lock(hashtext($1), hashtext($2)) AS got', [`${schema}:execution`, x])).rows[0].got as boolean;
          if (got) await other.query('SELECT pg_advisory_unlock(hashtext($1), hashtext($2))', [`${schema}:execution`, x]);
          return got;
        }, `the lock of ${x} released`);
      }
    } finally {
      other.release();
    }
    expect(ran.sort()).toEqual([id, cancelled].sort());
  }, 60_000);

  it('creating the queue leaves no AsyncLocalStorage enabled (every later promise of the process would pay for it)', async () => {
    // The store routes pg-boss's statements into the creating transaction; once run, Node
    // keeps its promise hooks on until the storage is disabled.
    const carriesStore = () => Object.getOwnPropertySymbols(Promise.resolve()).some((x) => String(x) === 'Symbol(kResourceStore)');
    expect(carriesStore()).toBe(false);
    const a = await node(freshSchema('q_hooks'));
    await a.queue.ingest({ executions: [row()] }); // starts pg-boss and creates the queue
    expect(carriesStore()).toBe(false);
  });

  it('a final record that is not the run\'s last write (a stream delivery follows) is written on its own; the job completes only when the run returns', async () => {
    // A crash during the stream's delivery must leave the job to be retried (the resumed run delivers it).
    const schema = freshSchema('q_notlast');
    const a = await node(schema);
    const [id] = (await a.queue.ingest({ executions: [row()] })).executionIds;
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let finalWritten = false;
    await runEach(a, async (x, record) => {
      const final = { ...record, status: 'succeeded', endedAt: new Date().toISOString() } as ExecutionRow['record'];
      await a.state.executions.checkpoint(x, final);
      finalWritten = true;
      await gate; // delivering the stream
      await a.state.executions.checkpoint(x, { ...final, stream: { status: 'delivered' } } as unknown as ExecutionRow['record'], { last: true });
    });
    await waitFor(async () => finalWritten, 'the final record written');
    expect((await a.state.executions.get(id))?.status).toBe('succeeded');
    expect((await a.state.pool.query(`SELECT state FROM ${schema}.job`)).rows.map((r) => r.state)).toEqual(['active']);
    release();
    await waitFor(async () => (await a.state.pool.query(`SELECT count(*)::int AS n FROM ${schema}.job WHERE state <> 'completed'`)).rows[0].n === 0, 'the job completed');
    expect((await a.state.executions.get(id))?.record.stream).toEqual({ status: 'delivered' });
  });
});
