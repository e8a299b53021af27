/** The ServeState contract on PostgreSQL, each test in a schema of its own; and the migrations under concurrency. */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { MIGRATIONS } from '../../src/serve/state/pg-migrations.js';
import { migrate, openPgState, type PgServeState } from '../../src/serve/state/pg-state.js';
import { assertPgReachable, describePg, dropSchemas, freshSchema, PG_URL } from '../helpers/pg.js';
import { runStateContract } from './state-contract.js';
import { waitFor } from './helpers.js';

describePg('PostgreSQL state', () => {
  beforeAll(() => assertPgReachable());
  afterAll(() => dropSchemas());

  runStateContract('postgres', () => openPgState({ url: PG_URL, schema: freshSchema('contract'), poolSize: 2 }));
});

describePg('PostgreSQL migrations and races', () => {
  beforeAll(() => assertPgReachable());
  afterAll(() => dropSchemas());

  it('clients opening one new schema together migrate it exactly once', async () => {
    const schema = freshSchema('race');
    const pools = Array.from({ length: 6 }, () => new pg.Pool({ connectionString: PG_URL, max: 1 }));
    try {
      const reports = await Promise.all(pools.map((p) => migrate(p, schema)));
      // One client applied every migration; the others waited on the lock and found them done.
      expect(reports.filter((r) => r.applied.length > 0)).toHaveLength(1);
      expect(reports.flatMap((r) => r.applied.map((m) => m.id))).toEqual(MIGRATIONS.map((m) => m.id));
      expect(reports.every((r) => r.current === MIGRATIONS.at(-1)!.id)).toBe(true);
      const rows = (await pools[0].query(`SELECT id FROM ${schema}.alloy_migrations ORDER BY id`)).rows.map((r) => r.id);
      expect(rows).toEqual(MIGRATIONS.map((m) => m.id));
      // Running again applies nothing.
      expect((await migrate(pools[1], schema)).applied).toEqual([]);
    } finally {
      await Promise.all(pools.map((p) => p.end()));
    }
  });

  it('an execution row is written with four indexes (migration 8 dropped executions_unfinished); unfinished() still answers from an index', async () => {
    // Every ingest and every status change writes each index of executions.
    const schema = freshSchema('indexes');
    const state = await openPgState({ url: PG_URL, schema, poolSize: 1 });
    try {
      const names = (await state.pool.query(`SELECT indexname FROM pg_indexes WHERE schemaname = $1 AND tablename = 'executions' ORDER BY 1`, [schema])).rows.map((r) => r.indexname);
      expect(names).toEqual(['executions_installation', 'executions_pkey', 'executions_status', 'executions_user']);
      const c = await state.pool.connect();
      try {
        await c.query('SET enable_seqscan = off');
        const plan = (await c.query("EXPLAIN SELECT id FROM executions WHERE status IN ('queued', 'running') ORDER BY id")).rows.map((r) => r['QUERY PLAN']).join('\n');
        expect(plan).toContain('executions_status');
      } finally {
        await c.query('RESET enable_seqscan');
        c.release();
      }
    } finally {
      await state.close();
    }
  });

  it('refuses a schema migrated by a newer alloy, and one that needs migrating when told not to migrate', async () => {
    const schema = freshSchema('newer');
    const state = await openPgState({ url: PG_URL, schema, poolSize: 1 });
    await state.pool.query(`INSERT INTO ${schema}.alloy_migrations (id, name) VALUES (9999, 'from the future')`);
    await state.close();
    await expect(openPgState({ url: PG_URL, schema, poolSize: 1 })).rejects.toThrow(/migration 9999, newer than this alloy knows/);
    await expect(openPgState({ url: PG_URL, schema: freshSchema('unmigrated'), poolSize: 1, migrate: false })).rejects.toThrow(/needs migration 1/);
  });

  it('an unreachable server is a clear error that does not echo the password', async () => {
    const err = await openPgState({ url: 'postgres://alloy:s3cret-pw@127.0.0.1:1/none', schema: freshSchema('x') }).catch((e) => e);
    expect(err.message).toMatch(/cannot open the PostgreSQL state at postgres:\/\/alloy:\*\*\*@127\.0\.0\.1:1\/none/);
    expect(err.message).not.toContain('s3cret-pw');
  });

  it('the same dedupe key ingested by several processes at once stores one set of executions', async () => {
    const schema = freshSchema('dedupe');
    const states = await Promise.all(Array.from({ length: 4 }, () => openPgState({ url: PG_URL, schema, poolSize: 2 })));
    try {
      const at = new Date().toISOString();
      const exec = (id: string) => ({
        id,
        installationId: 'in_1',
        userId: 'u1',
        integration: 'shopify-sync',
        version: 1,
        workflow: 'shopify-sync/create-order',
        status: 'queued' as const,
        record: { id, workflow: 'shopify-sync/create-order', version: 'v1', event: {}, status: 'queued' as const, createdAt: at, steps: {} },
        createdAt: at,
        updatedAt: at,
      });
      const results = await Promise.all(states.flatMap((s, i) => [0, 1, 2].map((j) => s.executions.ingest({ dedupeKey: 'shopify:d1', executions: [exec(`ex_${i}_${j}`)] }))));
      const firsts = results.filter((r) => !r.duplicate);
      expect(firsts).toHaveLength(1);
      for (const r of results) expect(r.executionIds).toEqual(firsts[0].executionIds);
      expect((await states[0].executions.list({})).items.map((e) => e.id)).toEqual(firsts[0].executionIds);
    } finally {
      await Promise.all(states.map((s) => s.close()));
    }
  });

  it('the inTransaction hook commits with the ingest, and its failure stores nothing', async () => {
    const schema = freshSchema('hook');
    const state = await openPgState({ url: PG_URL, schema, poolSize: 2 });
    try {
      await state.pool.query('CREATE TABLE jobs (execution_id text PRIMARY KEY)');
      const at = new Date().toISOString();
      const exec = (id: string) => ({ id, installationId: 'in_1', userId: 'u1', integration: 'i', version: 1, workflow: 'i/w', status: 'queued' as const, record: { id, workflow: 'i/w', version: 'v1', event: {}, status: 'queued' as const, createdAt: at, steps: {} }, createdAt: at, updatedAt: at });
      const enqueue = async (c: pg.PoolClient, r: { executionIds: string[] }) => {
        await c.query('INSERT INTO jobs SELECT unnest($1::text[])', [r.executionIds]);
      };
      await state.executions.ingest({ dedupeKey: 'event:a', executions: [exec('ex_1'), exec('ex_2')] }, { inTransaction: enqueue });
      let calls = 0;
      const again = await state.executions.ingest({ dedupeKey: 'event:a', executions: [exec('ex_3')] }, { inTransaction: async () => void calls++ });
      expect(again).toEqual({ duplicate: true, executionIds: ['ex_1', 'ex_2'] });
      expect(calls).toBe(0);
      await expect(
        state.executions.ingest({ dedupeKey: 'event:b', executions: [exec('ex_4')] }, { inTransaction: async () => { throw new Error('queue down'); } }),
      ).rejects.toThrow('queue down');
      expect(await state.executions.get('ex_4')).toBeUndefined();
      expect((await state.pool.query('SELECT execution_id FROM jobs ORDER BY 1')).rows.map((r) => r.execution_id)).toEqual(['ex_1', 'ex_2']);
      expect((await state.executions.ingest({ dedupeKey: 'event:b', executions: [] })).duplicate).toBe(false);
    } finally {
      await state.close();
    }
  });

  describe('ingests sent together share one statement', () => {
    const at = new Date().toISOString();
    const exec = (id: string) => ({ id, installationId: 'in_1', userId: 'u1', integration: 'i', version: 1, workflow: 'i/w', status: 'queued' as const, record: { id, workflow: 'i/w', version: 'v1', event: { id }, status: 'queued' as const, createdAt: at, steps: {} }, createdAt: at, updatedAt: at });
    /** The ingest statements the state sends: how many execution rows each carried, and whether it failed. */
    function watchIngests(state: PgServeState) {
      const sent: { rows: number; failed: boolean }[] = [];
      const query = state.pool.query.bind(state.pool) as (q: unknown) => Promise<unknown>;
      (state.pool as { query: unknown }).query = (q: unknown, ...rest: unknown[]) => {
        const statement = q as { name?: string; values?: unknown[] };
        if (rest.length || !statement.name?.startsWith('alloy_ingest')) return (query as (...a: unknown[]) => unknown)(q, ...rest);
        const rows = (JSON.parse(statement.values![2] as string) as unknown[]).length;
        const entry = { rows, failed: false };
        sent.push(entry);
        return query(q).catch((err) => {
          entry.failed = true;
          throw err;
        });
      };
      return sent;
    }

    it('many concurrent ingests: a few statements, every one stored and answered as if alone', async () => {
      const state = await openPgState({ url: PG_URL, schema: freshSchema('batch'), poolSize: 4 });
      try {
        await state.executions.ingest({ dedupeKey: 'event:old', executions: [exec('ex_old')] });
        const sent = watchIngests(state);
        // Request n stores executions `ex_<n>.0…` (its id before the dot); every third has a key, one the key stored above.
        const inputs = Array.from({ length: 40 }, (_, n) => ({
          dedupeKey: n === 7 ? 'event:old' : n % 3 === 0 ? `event:${n}` : undefined,
          executions: Array.from({ length: 1 + (n % 3) }, (_, j) => exec(`ex_${String(n).padStart(2, '0')}.${j}`)),
        }));
        const results = await Promise.all(inputs.map((i) => state.executions.ingest(i)));
        results.forEach((r, n) => {
          if (n === 7) expect(r).toEqual({ duplicate: true, executionIds: ['ex_old'] });
          else expect(r).toEqual({ duplicate: false, executionIds: inputs[n].executions.map((e) => e.id) });
        });
        // The first two went alone (nothing in flight yet), the other 38 (76 executions) together.
        expect(sent.length).toBeLessThanOrEqual(3);
        expect(Math.max(...sent.map((s) => s.rows))).toBeGreaterThan(60);
        const stored = (await state.executions.list({}, { limit: 200 })).items;
        const want = ['ex_old', ...inputs.filter((_, n) => n !== 7).flatMap((i) => i.executions.map((e) => e.id))].sort();
        expect(stored.map((e) => e.id)).toEqual(want);
        expect(stored.find((e) => e.id === 'ex_13.1')).toEqual(inputs[13].executions[1]);
        const keys = (await state.pool.query('SELECT key, execution_ids FROM dedupe ORDER BY key')).rows;
        expect(keys).toContainEqual({ key: 'event:9', execution_ids: ['ex_09.0'] });
        expect(keys).toContainEqual({ key: 'event:old', execution_ids: ['ex_old'] });
      } finally {
        await state.close();
      }
    });

    it('one dedupe key twice at once: the first is stored, the second answers as its duplicate with its ids', async () => {
      const state = await openPgState({ url: PG_URL, schema: freshSchema('batch_key'), poolSize: 4 });
      try {
        const sent = watchIngests(state);
        // Two fillers take the statements in flight, so both keyed ingests wait for the same next one.
        const fillers = [state.executions.ingest({ executions: [exec('ex_f1')] }), state.executions.ingest({ executions: [exec('ex_f2')] })];
        const [a, b] = await Promise.all([
          state.executions.ingest({ dedupeKey: 'event:k', executions: [exec('ex_a1'), exec('ex_a2')] }),
          state.executions.ingest({ dedupeKey: 'event:k', executions: [exec('ex_b1')] }),
          state.executions.ingest({ executions: [exec('ex_c1')] }),
        ]);
        await Promise.all(fillers);
        expect(a).toEqual({ duplicate: false, executionIds: ['ex_a1', 'ex_a2'] });
        expect(b).toEqual({ duplicate: true, executionIds: ['ex_a1', 'ex_a2'] });
        expect((await state.executions.list({})).items.map((e) => e.id)).toEqual(['ex_a1', 'ex_a2', 'ex_c1', 'ex_f1', 'ex_f2']);
        // The first went with ex_c1 (three rows), the second was held back to a statement of its own.
        expect(sent.map((s) => s.rows)).toEqual([1, 1, 3, 1]);
      } finally {
        await state.close();
      }
    });

    it('a statement carries at most 512 executions: large requests go in statements of their own, in order', async () => {
      const state = await openPgState({ url: PG_URL, schema: freshSchema('batch_rows'), poolSize: 4 });
      try {
        const sent = watchIngests(state);
        const many = (p: string, n: number) => Array.from({ length: n }, (_, j) => exec(`ex_${p}${String(j).padStart(3, '0')}`));
        const results = await Promise.all([
          state.executions.ingest({ executions: [exec('ex_f1')] }),
          state.executions.ingest({ executions: [exec('ex_f2')] }),
          state.executions.ingest({ dedupeKey: 'event:big', executions: many('a', 300) }),
          state.executions.ingest({ executions: many('b', 300) }),
          state.executions.ingest({ executions: many('c', 100) }),
          state.executions.ingest({ dedupeKey: 'event:big', executions: many('d', 600) }),
        ]);
        expect(sent.map((s) => s.rows)).toEqual([1, 1, 300, 400, 600]);
        expect(results[5]).toEqual({ duplicate: true, executionIds: results[2].executionIds });
        expect((await state.pool.query('SELECT count(*)::int AS n FROM executions')).rows[0].n).toBe(702);
      } finally {
        await state.close();
      }
    });

    it('a batch with one failing ingest: the others are stored and answered, the faulty one rejects and stores nothing', async () => {
      const schema = freshSchema('batch_fail');
      const state = await openPgState({ url: PG_URL, schema, poolSize: 4 });
      try {
        await state.pool.query('CREATE TABLE jobs (execution_id text PRIMARY KEY)');
        await state.executions.ingest({ executions: [exec('ex_taken')] });
        const sent = watchIngests(state);
        // The statement's extra rows (as the queue's jobs) commit or roll back with each ingest.
        const withStatement = { sql: 'INSERT INTO jobs SELECT id FROM e RETURNING 1', values: [] };
        const ingest = (dedupeKey: string | undefined, ids: string[]) => state.executions.ingest({ dedupeKey, executions: ids.map(exec) }, { withStatement });
        const fillers = [ingest(undefined, ['ex_f1']), ingest(undefined, ['ex_f2'])];
        const settled = await Promise.allSettled([
          ingest('event:1', ['ex_1']),
          ingest(undefined, ['ex_2']),
          // Its second execution's id is taken: the whole statement fails.
          ingest('event:bad', ['ex_bad', 'ex_taken']),
          ingest('event:3', ['ex_3a', 'ex_3b']),
          ingest(undefined, ['ex_4']),
        ]);
        await Promise.all(fillers);
        expect(settled.map((s) => s.status)).toEqual(['fulfilled', 'fulfilled', 'rejected', 'fulfilled', 'fulfilled']);
        expect(String((settled[2] as PromiseRejectedResult).reason)).toMatch(/duplicate key value violates unique constraint "executions_pkey"/);
        expect(settled.filter((s) => s.status === 'fulfilled').map((s) => (s as PromiseFulfilledResult<unknown>).value)).toEqual([
          { duplicate: false, executionIds: ['ex_1'] },
          { duplicate: false, executionIds: ['ex_2'] },
          { duplicate: false, executionIds: ['ex_3a', 'ex_3b'] },
          { duplicate: false, executionIds: ['ex_4'] },
        ]);
        // The batch of five (seven rows) failed, then went in halves, one after the other, until
        // the faulty one was alone: [1, 2, bad] failed, [1, 2] and [bad] after it, then [3ab, 4].
        expect(sent.filter((s) => s.failed).map((s) => s.rows)).toEqual([7, 4, 2]);
        expect(sent.filter((s) => !s.failed).map((s) => s.rows)).toEqual([1, 1, 2, 3]);
        const stored = ['ex_1', 'ex_2', 'ex_3a', 'ex_3b', 'ex_4', 'ex_f1', 'ex_f2'];
        expect((await state.executions.list({})).items.map((e) => e.id)).toEqual([...stored, 'ex_taken']);
        expect((await state.pool.query('SELECT execution_id FROM jobs ORDER BY 1')).rows.map((r) => r.execution_id)).toEqual(stored);
        expect((await state.pool.query('SELECT key FROM dedupe ORDER BY 1')).rows.map((r) => r.key)).toEqual(['event:1', 'event:3']);
        // Its key was not kept: sent again with good ids, it is stored.
        expect(await ingest('event:bad', ['ex_bad'])).toEqual({ duplicate: false, executionIds: ['ex_bad'] });
      } finally {
        await state.close();
      }
    });

    it('an answer lost after the commit: the batch is sent once more, and each request is answered as stored, nothing twice', async () => {
      const schema = freshSchema('batch_lost');
      const state = await openPgState({ url: PG_URL, schema, poolSize: 4 });
      try {
        await state.pool.query('CREATE TABLE jobs (execution_id text PRIMARY KEY)');
        const withStatement = { sql: 'INSERT INTO jobs SELECT id FROM e RETURNING 1', values: [] };
        const query = state.pool.query.bind(state.pool) as (q: unknown) => Promise<unknown>;
        let lose = 0;
        // The first ingest statement of three requests commits, then its answer is lost as a cut connection loses it.
        (state.pool as { query: unknown }).query = async (q: unknown, ...rest: unknown[]) => {
          const statement = q as { name?: string; values?: unknown[] };
          if (rest.length || !statement.name?.startsWith('alloy_ingest')) return (query as (...a: unknown[]) => unknown)(q, ...rest);
          const r = await query(q);
          if ((JSON.parse(statement.values![2] as string) as unknown[]).length === 4 && lose++ === 0) throw new Error('Connection terminated unexpectedly');
          return r;
        };
        const ingest = (dedupeKey: string | undefined, ids: string[]) => state.executions.ingest({ dedupeKey, executions: ids.map(exec) }, { withStatement });
        const fillers = [ingest(undefined, ['ex_f1']), ingest(undefined, ['ex_f2'])];
        // The last: a keyed event that routed nowhere (no executions), stored all the same.
        const results = await Promise.all([ingest('event:a', ['ex_a']), ingest(undefined, ['ex_b1', 'ex_b2']), ingest('event:c', ['ex_c']), ingest('event:none', [])]);
        await Promise.all(fillers);
        expect(lose).toBe(1);
        expect(results).toEqual([
          { duplicate: false, executionIds: ['ex_a'] },
          { duplicate: false, executionIds: ['ex_b1', 'ex_b2'] },
          { duplicate: false, executionIds: ['ex_c'] },
          { duplicate: false, executionIds: [] },
        ]);
        const stored = ['ex_a', 'ex_b1', 'ex_b2', 'ex_c', 'ex_f1', 'ex_f2'];
        expect((await state.executions.list({})).items.map((e) => e.id)).toEqual(stored);
        expect((await state.pool.query('SELECT execution_id FROM jobs ORDER BY 1')).rows.map((r) => r.execution_id)).toEqual(stored);
        // A later request with a stored key is still a duplicate.
        expect(await ingest('event:a', ['ex_a2'])).toEqual({ duplicate: true, executionIds: ['ex_a'] });
      } finally {
        await state.close();
      }
    });

    it('a failure no request caused (here: every insert refused with lock_not_available) sends the batch once more, then rejects each request: no halving', async () => {
      const schema = freshSchema('batch_server');
      const state = await openPgState({ url: PG_URL, schema, poolSize: 4 });
      try {
        await state.pool.query(`CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'busy' USING ERRCODE = '55P03'; END $$`);
        await state.pool.query('CREATE TRIGGER refuse BEFORE INSERT ON executions FOR EACH ROW EXECUTE FUNCTION refuse()');
        const sent = watchIngests(state);
        const settled = await Promise.allSettled(Array.from({ length: 7 }, (_, n) => state.executions.ingest({ dedupeKey: n % 2 ? `event:${n}` : undefined, executions: [exec(`ex_${n}`)] })));
        expect(settled.map((r) => r.status)).toEqual(Array(7).fill('rejected'));
        expect(settled.map((r) => ((r as PromiseRejectedResult).reason as { code?: string }).code)).toEqual(Array(7).fill('55P03'));
        // Two requests alone (nothing in flight yet), then five together: each statement twice, none split.
        expect(sent.map((x) => x.rows).sort()).toEqual([1, 1, 1, 1, 5, 5]);
        expect(sent.every((x) => x.failed)).toBe(true);
        expect((await state.pool.query('SELECT count(*)::int AS n FROM dedupe')).rows[0].n).toBe(0);
      } finally {
        await state.close();
      }
    });

    it('statements stuck on another transaction\'s lock stop counting against the two in flight after the stall time: other ingests go on', async () => {
      const schema = freshSchema('batch_stall');
      const state = await openPgState({ url: PG_URL, schema, poolSize: 6, ingestStallMs: 300 });
      const blocker = new pg.Client({ connectionString: PG_URL, options: `-c search_path=${schema}` });
      await blocker.connect();
      try {
        // Another transaction holds two keys (uncommitted): ingests with them wait on its rows.
        await blocker.query('BEGIN');
        await blocker.query(`INSERT INTO dedupe (key, execution_ids) VALUES ('event:h1', '[]'), ('event:h2', '[]')`);
        const held = [state.executions.ingest({ dedupeKey: 'event:h1', executions: [exec('ex_h1')] }), state.executions.ingest({ dedupeKey: 'event:h2', executions: [exec('ex_h2')] })];
        const t0 = Date.now();
        const free = await state.executions.ingest({ executions: [exec('ex_free')] });
        expect(free).toEqual({ duplicate: false, executionIds: ['ex_free'] });
        expect(Date.now() - t0).toBeGreaterThanOrEqual(250);
        expect(Date.now() - t0).toBeLessThan(5000);
        // The held ones were not given up: released, they are stored and answered.
        await blocker.query('ROLLBACK');
        expect(await Promise.all(held)).toEqual([
          { duplicate: false, executionIds: ['ex_h1'] },
          { duplicate: false, executionIds: ['ex_h2'] },
        ]);
      } finally {
        await blocker.end();
        await state.close();
      }
    });

    it('stalled statements: at most as many again as the two in flight, no busy wake-ups meanwhile, and close() refuses what was not sent', async () => {
      const schema = freshSchema('batch_stall_cap');
      const state = await openPgState({ url: PG_URL, schema, poolSize: 8, ingestStallMs: 200 });
      const blocker = new pg.Client({ connectionString: PG_URL, options: `-c search_path=${schema}` });
      await blocker.connect();
      const timers = vi.spyOn(globalThis, 'setTimeout');
      try {
        await blocker.query('BEGIN');
        await blocker.query(`INSERT INTO dedupe (key, execution_ids) SELECT 'event:h' || n, '[]' FROM generate_series(1, 5) AS n`);
        const sent = watchIngests(state);
        const hold = (n: number) => state.executions.ingest({ dedupeKey: `event:h${n}`, executions: [exec(`ex_h${n}`)] });
        const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));
        // Two go at once; once they stalled, two more; once those stalled too, the cap (4) holds the rest back.
        const held = [hold(1), hold(2)];
        await pause(300);
        // h5 waits behind h3 and h4 (counted) while h1 and h2 are stalled: no wake-up per millisecond meanwhile.
        held.push(hold(3), hold(4), hold(5));
        await pause(300);
        let freeDone = false;
        const free = state.executions.ingest({ executions: [exec('ex_free')] }).then((r) => ((freeDone = true), r));
        await pause(600);
        expect(sent.map((x) => x.rows)).toEqual([1, 1, 1, 1]);
        expect(freeDone).toBe(false);
        // The state's own wake-ups while everything waits: a handful, not one per millisecond.
        const wakeups = timers.mock.calls.filter(([, ms]) => typeof ms === 'number' && ms <= 250).length;
        expect(wakeups).toBeLessThan(20);
        // close() while h5 and ex_free wait: they are refused at once; the four in flight are waited for.
        const closing = state.close();
        await expect(held[4]).rejects.toThrow(/closed/);
        await expect(free).rejects.toThrow(/closed/);
        await blocker.query('ROLLBACK');
        expect((await Promise.all(held.slice(0, 4))).map((r) => r.duplicate)).toEqual([false, false, false, false]);
        await closing;
      } finally {
        timers.mockRestore();
        await blocker.end();
        await state.close();
      }
      // After close, an ingest is refused at once.
      await expect(state.executions.ingest({ executions: [exec('ex_late')] })).rejects.toThrow(/closed/);
    });

    it('two processes sending the same keys in other orders never deadlock: keys are inserted in one order', async () => {
      const schema = freshSchema('batch_order');
      const a = await openPgState({ url: PG_URL, schema, poolSize: 4 });
      const b = await openPgState({ url: PG_URL, schema, poolSize: 4 });
      try {
        const sent = [...[a, b].map(watchIngests)];
        const keys = Array.from({ length: 60 }, (_, n) => `event:${String(n).padStart(2, '0')}`);
        for (let round = 0; round < 20; round++) {
          const mine = (s: PgServeState, order: string[], p: string) => [s.executions.ingest({ executions: [exec(`ex_${p}${round}_f1`)] }), s.executions.ingest({ executions: [exec(`ex_${p}${round}_f2`)] }), ...order.map((k) => s.executions.ingest({ dedupeKey: `${k}:${round}`, executions: [exec(`ex_${p}${round}_${k.slice(6)}`)] }))];
          const results = await Promise.all([...mine(a, keys, 'a'), ...mine(b, [...keys].reverse(), 'b')]);
          // Each key stored once: one side stored it, the other answers as its duplicate with the same ids.
          const keyed = results.filter((r) => r.executionIds.some((id) => !id.endsWith('_f1') && !id.endsWith('_f2')));
          expect(keyed.filter((r) => !r.duplicate)).toHaveLength(60);
          expect(keyed.filter((r) => r.duplicate)).toHaveLength(60);
        }
        // Not one ingest statement failed (a deadlock would fail one; its resend would hide it from the answers).
        expect(sent.flat().filter((s) => s.failed)).toEqual([]);
        expect(sent.flat().length).toBeGreaterThan(0);
      } finally {
        await a.close();
        await b.close();
      }
    });
  });

  it('getForRun reads an execution with its installation and its credentials\' accounts in one query', async () => {
    const schema = freshSchema('forrun');
    const state = await openPgState({ url: PG_URL, schema, poolSize: 2 });
    try {
      const at = new Date().toISOString();
      const sealed = { kid: 'k', wrapped: 'w', iv: 'i', data: 'd', tag: 't' };
      await state.credentials.put({ id: 'cr_1', userId: 'u1', app: 'shopify', kind: 'token', account: 'a.myshopify.com', secret: sealed, createdAt: at, updatedAt: at });
      await state.credentials.put({ id: 'cr_2', userId: 'u1', app: 'http', kind: 'key', secret: sealed, createdAt: at, updatedAt: at });
      await state.installations.put({ id: 'in_1', userId: 'u1', integration: 'i', version: 1, status: 'active', credentials: { shopify: 'cr_1', http: 'cr_2' }, config: sealed, createdAt: at, updatedAt: at });
      const exec = (id: string, installationId: string) => ({ id, installationId, userId: 'u1', integration: 'i', version: 1, workflow: 'i/w', status: 'queued' as const, record: { id, workflow: 'i/w', version: 'v1', event: { n: 1 }, status: 'queued' as const, createdAt: at, steps: {} }, createdAt: at, updatedAt: at });
      await state.executions.ingest({ executions: [exec('ex_1', 'in_1'), exec('ex_2', 'in_gone')] });
      const got = await state.executions.getForRun!('ex_1');
      expect(got?.row).toEqual(await state.executions.get('ex_1'));
      expect(got?.installation).toEqual(await state.installations.get('in_1'));
      expect(got?.accounts).toEqual({ cr_1: 'a.myshopify.com', cr_2: undefined });
      const orphan = await state.executions.getForRun!('ex_2');
      expect(orphan?.row.id).toBe('ex_2');
      expect(orphan?.installation).toBeUndefined();
      expect(orphan?.accounts).toEqual({});
      expect(await state.executions.getForRun!('ex_none')).toBeUndefined();
    } finally {
      await state.close();
    }
  });

  it('the read cache: another process\'s revocation, a change made by hand in SQL and a lost listening connection all reach a process that had the rows in memory', async () => {
    const schema = freshSchema('cache');
    const a = await openPgState({ url: PG_URL, schema, poolSize: 2 });
    const b = await openPgState({ url: PG_URL, schema, poolSize: 2 });
    const admin = new pg.Client({ connectionString: PG_URL });
    await admin.connect();
    // Statements b sends through its pool: a read answered from memory sends none.
    let sent = 0;
    const query = b.pool.query.bind(b.pool) as (...a: unknown[]) => unknown;
    let deaf = false; // b's heartbeat pings are not sent: its listener hears nothing, and raises no error
    (b.pool as unknown as { query: (...a: unknown[]) => unknown }).query = (...args: unknown[]) => {
      if (deaf && String(args[0]).includes('pg_notify')) return Promise.resolve({ rows: [] });
      sent++;
      return query(...args);
    };
    const listening = () => waitFor(async () => (await admin.query('SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = $1', [`alloy-cache:${schema}`])).rows[0].n === 1, 'b listens');
    try {
      const at = new Date().toISOString();
      await a.apiKeys.create({ id: 'k1', role: 'ingest', hash: 'h1', createdAt: at });
      await a.apiKeys.create({ id: 'k2', role: 'admin', hash: 'h2', createdAt: at });
      await a.users.create({ id: 'u1', createdAt: at });
      expect((await b.apiKeys.findByHash('h1'))?.id).toBe('k1'); // opens b's listening connection
      await listening();
      // Once b listens (its LISTEN answered), a read is kept and the next one sends nothing.
      await waitFor(async () => {
        const s0 = sent;
        await b.apiKeys.findByHash('h1');
        await b.users.get('u1');
        return sent === s0;
      }, 'reads answered from memory');
      const before = sent;
      expect((await b.apiKeys.findByHash('h1'))?.id).toBe('k1');
      expect((await b.users.get('u1'))?.id).toBe('u1');
      expect(sent).toBe(before); // from memory
      expect(Object.isFrozen(await b.users.get('u1'))).toBe(true);

      // Revoked in another process: b stops accepting the key as soon as the NOTIFY arrives.
      const revokedAt = Date.now();
      expect(await a.apiKeys.delete('k1')).toBe(true);
      await waitFor(async () => (await b.apiKeys.findByHash('h1')) === undefined, 'the revoked key is refused by b', 2000);
      expect(Date.now() - revokedAt).toBeLessThan(2000);
      // Changed by hand in SQL (the triggers notify too), and b's own writes at once.
      await b.apiKeys.findByHash('h2');
      await admin.query(`DELETE FROM ${schema}.api_keys WHERE id = 'k2'`);
      await waitFor(async () => (await b.apiKeys.findByHash('h2')) === undefined, 'a key deleted in SQL is refused by b', 2000);
      await b.users.delete('u1');
      expect(await b.users.get('u1')).toBeUndefined();
      await a.users.create({ id: 'u2', createdAt: at });
      await waitFor(async () => (await b.users.get('u2')) !== undefined, 'a new user is seen by b', 2000);
      const inst = { id: 'in_1', userId: 'u2', integration: 'i', version: 1, status: 'active' as const, credentials: {}, config: { kid: 'k', wrapped: 'w', iv: 'i', data: 'd', tag: 't' }, createdAt: at, updatedAt: at };
      await a.installations.put(inst);
      await waitFor(async () => (await b.installations.list({ userId: 'u2', status: 'active' })).items.length === 1, 'b lists the installation', 2000);
      await a.installations.put({ ...inst, status: 'inactive' });
      await waitFor(async () => (await b.installations.list({ userId: 'u2', status: 'active' })).items.length === 0, 'b sees it deactivated', 2000);

      // b's listening connection is cut: b holds nothing meanwhile, so a change it was not told of still shows.
      await a.apiKeys.create({ id: 'k3', role: 'read', hash: 'h3', createdAt: at });
      await waitFor(async () => (await b.apiKeys.findByHash('h3')) !== undefined, 'b reads k3', 2000);
      await admin.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1', [`alloy-cache:${schema}`]);
      await waitFor(async () => (await admin.query('SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = $1', [`alloy-cache:${schema}`])).rows[0].n === 0, 'the listener is gone');
      await admin.query(`ALTER TABLE ${schema}.api_keys DISABLE TRIGGER api_keys_cache`); // not told to anyone
      await admin.query(`DELETE FROM ${schema}.api_keys WHERE id = 'k3'`);
      await admin.query(`ALTER TABLE ${schema}.api_keys ENABLE TRIGGER api_keys_cache`);
      expect(await b.apiKeys.findByHash('h3')).toBeUndefined();
      // It listens again on a later read (a second after losing it).
      await waitFor(async () => (await b.users.get('u2')) && (await admin.query('SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = $1', [`alloy-cache:${schema}`])).rows[0].n === 1, 'b listens again', 5000);

      // A listener that hears nothing and raises no error (a half-open connection, a pooler in
      // transaction mode): without its heartbeat b stops trusting what it holds within 3 s,
      // well before the 5 s expiry of an entry.
      await a.apiKeys.create({ id: 'k4', role: 'read', hash: 'h4', createdAt: at });
      await waitFor(async () => {
        const s0 = sent;
        return (await b.apiKeys.findByHash('h4')) !== undefined && sent === s0;
      }, 'b answers k4 from memory', 5000);
      deaf = true;
      const deafAt = Date.now();
      await admin.query(`ALTER TABLE ${schema}.api_keys DISABLE TRIGGER api_keys_cache`);
      await admin.query(`DELETE FROM ${schema}.api_keys WHERE id = 'k4'`);
      await admin.query(`ALTER TABLE ${schema}.api_keys ENABLE ALWAYS TRIGGER api_keys_cache`);
      await waitFor(async () => (await b.apiKeys.findByHash('h4')) === undefined, 'b stops trusting a deaf listener', 4500);
      expect(Date.now() - deafAt).toBeLessThan(4500);
    } finally {
      await admin.end();
      await a.close();
      await b.close();
    }
  });

  it('withStatement writes in the ingest statement: its rows commit with new executions, none for a duplicate, and its failure stores nothing', async () => {
    const schema = freshSchema('with');
    const state = await openPgState({ url: PG_URL, schema, poolSize: 2 });
    try {
      await state.pool.query('CREATE TABLE jobs (execution_id text PRIMARY KEY, tag text NOT NULL)');
      const at = new Date().toISOString();
      const exec = (id: string) => ({ id, installationId: 'in_1', userId: 'u1', integration: 'i', version: 1, workflow: 'i/w', status: 'queued' as const, record: { id, workflow: 'i/w', version: 'v1', event: {}, status: 'queued' as const, createdAt: at, steps: {} }, createdAt: at, updatedAt: at });
      const jobs = (tag: string) => ({ withStatement: { sql: 'INSERT INTO jobs SELECT e.id, $4 FROM e RETURNING 1', values: [tag] } });
      expect(await state.executions.ingest({ dedupeKey: 'event:a', executions: [exec('ex_1'), exec('ex_2')] }, jobs('first'))).toEqual({ duplicate: false, executionIds: ['ex_1', 'ex_2'] });
      expect(await state.executions.ingest({ dedupeKey: 'event:a', executions: [exec('ex_3')] }, jobs('again'))).toEqual({ duplicate: true, executionIds: ['ex_1', 'ex_2'] });
      await state.executions.ingest({ executions: [exec('ex_4')] }, jobs('unkeyed'));
      // A job for ex_1 already exists: the statement fails whole, so ex_5 is not stored either.
      await expect(state.executions.ingest({ executions: [exec('ex_5')] }, { withStatement: { sql: "INSERT INTO jobs SELECT 'ex_1', $4 FROM e RETURNING 1", values: ['clash'] } })).rejects.toThrow();
      expect(await state.executions.get('ex_5')).toBeUndefined();
      expect((await state.pool.query('SELECT execution_id, tag FROM jobs ORDER BY 1')).rows).toEqual([
        { execution_id: 'ex_1', tag: 'first' },
        { execution_id: 'ex_2', tag: 'first' },
        { execution_id: 'ex_4', tag: 'unkeyed' },
      ]);
      expect(await state.executions.get('ex_3')).toBeUndefined();
    } finally {
      await state.close();
    }
  });
});
