/**
 * The execution queue of a cluster (`alloy serve --database postgres://…`): one pg-boss job
 * per execution (docs/decisions/0003-execution-engine.md), its tables in the state's schema,
 * enqueued in the ingest's transaction. Any number of processes
 * take jobs; what pg-boss does not do is done with PostgreSQL session advisory locks held on
 * one connection per worker process (PostgreSQL frees them the moment that process or
 * connection dies, so nothing of ours expires or recovers a lease):
 *
 * - An execution runs only under its lock. pg-boss has no heartbeat: a job still running after
 *   `recoverAfterSeconds` is expired and retried; the retry finds the lock taken and is put
 *   back for later, so a live execution never runs twice at once, and a dead worker's is
 *   resumed (from its last checkpoint) within about recoverAfterSeconds + maintenance.
 * - Per installation and per shop, N slots (`<key>#0…N-1`); a job whose slots are all taken is
 *   put back with a short delay instead of holding a worker.
 *
 * Workers wake on NOTIFY from ingest (and every second for delayed retries), then fetch as
 * many jobs as they have free workers: no polling interval caps throughput. Cancels are
 * broadcast with NOTIFY to whichever process runs the execution.
 *
 * Round trips (decision 0003, "Later"): the hot path writes pg-boss's `job` rows with its own
 * statements shaped as pg-boss 10's: jobs inserted in the ingest's statement, fetched with
 * their execution locks in one statement, completed with their locks released in one
 * statement per group of finished jobs. pg-boss keeps its schema, maintenance (expiry into
 * retries), fail/backoff and the put-back's insert.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { setMaxListeners } from 'node:events';
import PgBoss from 'pg-boss';
import type pg from 'pg';
import type { ExecutionRecord } from '../../engine/types.js';
import type { IngestInput, IngestResult, ServeState } from '../state/types.js';
import { BUCKET_REPORTS_UPSERT, type BucketReports, type ForRunRow, type PgIngestOptions } from '../state/pg-state.js';
import type { EnqueueOptions, ExecutionQueue, PreparedExecution, QueueLimits, QueueWork } from './types.js';

/** What the queue needs of the PostgreSQL state (PgServeState has it). */
export interface PgQueueState {
  readonly pool: pg.Pool;
  readonly schema: string;
  transaction<T>(fn: (client: pg.PoolClient) => Promise<T>): Promise<T>;
  executions: {
    ingest(input: IngestInput, options?: PgIngestOptions): Promise<IngestResult>;
  };
  /** Hands the runner's next getForRun the execution read with its job (PgServeState has it). */
  primeForRun?(id: string, loaded: ForRunRow | undefined): void;
  /** Cost-bucket reports for the settle statement to carry (PgServeState has it). */
  takeBucketReports?(): BucketReports | undefined;
  /** Hands the queue an execution's final checkpoint, for the settle statement to write (PgServeState has it). */
  finishWith?(id: string, write: ((record: ExecutionRecord) => Promise<void> | undefined) | undefined): void;
}

export interface PgQueueOptions {
  /**
   * Seconds after which a running execution whose worker went silent (killed, cut off) is
   * handed to another worker. Default 30. A live execution is never handed over: it holds its lock.
   */
  recoverAfterSeconds?: number;
  log?: (message: string, fields?: Record<string, unknown>) => void;
}

const JOB = 'alloy-executions';
/** Retries after an interrupted or failed run: 1 s, 2 s, 4 s, … (pg-boss backoff), at most this many. */
const RETRY_LIMIT = 20;
/** How long a job waits when its execution runs elsewhere or its slots are taken. */
const BUSY_DELAY_MS = 250;
const IDLE_POLL_MS = 1000;

/**
 * pg-boss's job rows for the new executions `e(id)` (see PgIngestOptions.withStatement), as
 * `boss.insert(jobOf(…))` writes them (pg-boss 10's `job` table, pinned ~10.4.2; the other
 * columns keep their defaults: created now, kept 14 days), written in the ingest's statement
 * instead of a transaction around boss.insert.
 */
const INSERT_JOBS_SQL = `INSERT INTO job (name, data, priority, retry_limit, retry_delay, retry_backoff, expire_in, policy)
  SELECT $4, jsonb_build_object('id', e.id), $5::int, ${RETRY_LIMIT}, 1, true, $6::int * interval '1 second', 'standard' FROM e
  RETURNING 1`;

/** Two slots in one statement: the installation's first free one, then (only if got) the shop's (CASE fixes the order). */
const SLOTS_SQL = `WITH i AS MATERIALIZED (
  SELECT slot FROM unnest($2::text[]) AS c(slot) WHERE pg_try_advisory_lock(hashtext($1), hashtext(slot)) LIMIT 1
), s AS MATERIALIZED (
  SELECT slot FROM unnest($3::text[]) AS c(slot) WHERE CASE WHEN EXISTS (SELECT 1 FROM i) THEN pg_try_advisory_lock(hashtext($1), hashtext(slot)) ELSE false END LIMIT 1
)
SELECT (SELECT slot FROM i) AS i, (SELECT slot FROM s) AS s`;

/**
 * Completes jobs ($4, as pg-boss's complete does) and releases advisory locks ($1/$2 pairs) in
 * one statement, which also writes the state's waiting cost-bucket reports ($5, a JSON array;
 * pacing, like the job bookkeeping committed without waiting for the WAL flush) and the final
 * records of the executions that ended ($6–$9: id, status, record as JSON text, updated_at;
 * a cancelled execution stays cancelled, as the state's checkpoint does). When it carries
 * records it commits with the server's synchronous_commit (its reset_val, as every other state write): they are the durable record (one WAL flush
 * for every execution that ended meanwhile). Those executions' own locks are not among $1/$2:
 * released before the commit, another process could take the execution and read the record
 * from before; they are released by the session's next statement (see pendingUnlocks).
 */
const SETTLE_SQL = `WITH w AS (
  UPDATE executions e SET status = CASE WHEN e.status = 'cancelled' THEN e.status ELSE x.status END, record = x.record::json, updated_at = x.updated_at
  FROM unnest($6::text[], $7::text[], $8::text[], $9::text[]) AS x(id, status, record, updated_at) WHERE e.id = x.id RETURNING 1
), sync AS (
  SELECT set_config('synchronous_commit', CASE WHEN cardinality($6::text[]) > 0 THEN (SELECT reset_val FROM pg_settings WHERE name = 'synchronous_commit') ELSE 'off' END, true) AS v
), u AS (
  SELECT count(*) FILTER (WHERE pg_advisory_unlock(hashtext(k), hashtext(v))) AS n FROM unnest($1::text[], $2::text[]) AS l(k, v)
), c AS (
  UPDATE job SET completed_on = now(), state = 'completed' WHERE name = $3 AND id = ANY($4::uuid[]) AND state = 'active' RETURNING 1
), r AS (${BUCKET_REPORTS_UPSERT('$5')} RETURNING 1)
SELECT (SELECT n FROM u) AS unlocked, (SELECT count(*) FROM c) AS completed, (SELECT count(*) FROM r) AS reported, (SELECT count(*) FROM w) AS written, (SELECT v FROM sync) AS sync`;

interface JobData {
  id: string;
}

interface FetchedJob {
  id: string;
  data: JobData;
  priority: number;
  /** Whether this session got the execution's advisory lock (re-entrant: true too when it already held it). */
  locked: boolean;
  /** The execution as read under its lock with the claim (for the runner's getForRun), when it was. */
  loaded?: ForRunRow;
  /** The installation and shop the claim took slots for, and the slots got (held on the session already). */
  pre?: { installationId: string; shop?: string; i?: string; s?: string };
}

/** A row of alloy_take_jobs (migration 7). */
interface TakeRow {
  r_job: string;
  r_id: string;
  r_priority: number;
  r_locked: boolean;
  r_found: boolean;
  r_doc: ForRunRow['doc'] | null;
  r_status: ForRunRow['status'] | null;
  r_updated_at: string | null;
  r_record: ForRunRow['record'] | null;
  r_installation_id: string | null;
  r_installation: ForRunRow['installation'];
  r_accounts: ForRunRow['accounts'];
  r_shop: string | null;
  r_islot: string | null;
  r_sslot: string | null;
}

/**
 * The fetch in one round trip (alloy_take_jobs, migration 7): pg-boss 10's claim (the next
 * jobs by priority and age, FOR UPDATE SKIP LOCKED, retry_count raised on a retry), each
 * job's execution lock tried, and for each one locked here the execution read (after its
 * lock: PL/pgSQL takes a new snapshot per statement) and its installation's and shop's slots
 * taken, as takeSlots would.
 */
const TAKE_SQL = `SELECT t.* FROM (
  SELECT count(*) FILTER (WHERE pg_advisory_unlock(hashtext(k), hashtext(v))) AS n FROM unnest($9::text[], $10::text[]) AS l(k, v)
) u CROSS JOIN LATERAL alloy_take_jobs($1, $2, $3, $4, $5, $6, $7, $8) t`;

export function isPgQueueState(state: unknown): state is PgQueueState {
  return typeof state === 'object' && state !== null && 'pool' in state && 'schema' in state;
}

export function pgQueue(options: PgQueueOptions = {}): (state: ServeState, limits: QueueLimits) => ExecutionQueue {
  return (state, limits) => {
    if (!isPgQueueState(state)) throw new Error('the PostgreSQL execution queue needs the PostgreSQL state (--database)');
    return createPgQueue(state, limits, options);
  };
}

export function createPgQueue(state: PgQueueState, limits: QueueLimits, options: PgQueueOptions = {}): ExecutionQueue {
  const log = options.log ?? (() => {});
  const recoverAfter = Math.max(2, Math.round(options.recoverAfterSeconds ?? 30));
  const pool = state.pool;
  const channel = `alloy_${state.schema}`;
  const db = (c: pg.Pool | pg.PoolClient): PgBoss.Db => ({ executeSql: (text, values) => c.query(text, values) });
  // pg-boss sends some scripts as one `BEGIN; …; COMMIT` text; when one fails (its install
  // racing another process's: "already exists", which it expects) the connection would go
  // back to the pool inside an aborted transaction. Roll back before releasing it.
  // pg-boss's statements made within `pinned.run(client, …)` go to that client (a transaction of ours).
  const pinned = new AsyncLocalStorage<pg.PoolClient>();
  const poolDb: PgBoss.Db = {
    async executeSql(text, values) {
      const own = pinned.getStore();
      if (own) return own.query(text, values);
      const client = await pool.connect();
      let broken: Error | undefined;
      // A connection cut while checked out (a restarted server) emits 'error'; unheard, it would end the process.
      const onError = (err: Error) => (broken = err);
      client.on('error', onError);
      try {
        return await client.query(text, values);
      } catch (err) {
        await client.query('ROLLBACK').catch((e: Error) => (broken = e));
        throw err;
      } finally {
        client.off('error', onError);
        client.release(broken);
      }
    },
  };
  const newBoss = () => {
    const b = new PgBoss({
      db: poolDb,
      // pg-boss's tables (job, queue, archive, version, schedule, subscription) live beside the
      // state's, so one schema holds a deployment and dropping it removes everything.
      schema: state.schema,
      schedule: false,
      // Expired jobs are failed (and so retried) by whichever process's maintenance runs first
      // (pg-boss takes an advisory lock so one process at a time does it).
      supervise: true,
      maintenanceIntervalSeconds: Math.max(1, Math.min(5, Math.floor(recoverAfter / 3))),
    });
    b.on('error', (err) => log('queue error', { error: (err as Error).message }));
    return b;
  };
  let boss = newBoss();

  let ready: Promise<void> | undefined;
  const ensureReady = () =>
    (ready ??= (async () => {
      try {
        await boss.start();
      } catch (err) {
        // pg-boss 10 marks itself starting before it migrates and never clears the mark when
        // that fails: a second start() on the same instance returns at once, as if started,
        // over tables it never made. So a failed start leaves the instance behind (nothing of
        // it runs yet: its maintenance starts after the migration) and the next try starts a new one.
        const failed = boss;
        boss = newBoss();
        await failed.stop({ graceful: false, wait: true, close: false }).catch(() => {});
        throw err;
      }
      if (await boss.getQueue(JOB)) return;
      // pg-boss 10's create_queue is not safe to run twice at once: the second session's
      // insert of the queue row waits for the first's transaction, which then waits for a
      // lock on the queue table (to add its partition's foreign key) that the second holds:
      // "deadlock detected", and that process failed to start. So processes starting together
      // create it one at a time, under a transaction-scoped advisory lock; the later ones find
      // it made (create_queue's ON CONFLICT DO NOTHING).
      try {
        await state.transaction((client) =>
          pinned.run(client, async () => {
            await client.query("SELECT pg_advisory_xact_lock(hashtextextended('alloy-queue-create:' || $1, 0))", [state.schema]);
            if (!(await boss.getQueue(JOB))) await boss.createQueue(JOB, { name: JOB, policy: 'standard' });
          }),
        );
      } finally {
        // An AsyncLocalStorage once run keeps Node's promise hooks on for the whole process
        // (every promise then pays for carrying the store): off again, as nothing else uses one.
        pinned.disable();
      }
    })().catch((err) => {
      ready = undefined;
      throw err;
    }));

  const jobOf = (id: string, priority: number, startAfter?: Date): PgBoss.JobInsert<JobData> => ({
    name: JOB,
    data: { id },
    priority,
    retryLimit: RETRY_LIMIT,
    retryDelay: 1,
    retryBackoff: true,
    expireInSeconds: recoverAfter,
    ...(startAfter ? { startAfter } : {}),
  });

  // The workers' wake-up, sent after the ingest committed, not in its transaction: a
  // transaction that NOTIFYs holds a global lock from its commit's start to its end, so
  // PostgreSQL would commit every ingest one after another, each waiting for its own WAL
  // flush. Not awaited by the request, and coalesced: while one is on its way, the next
  // waits and covers every ingest meanwhile. A NOTIFY lost (a crash in between) costs a
  // worker's 1 s idle poll, never a job.
  let notifying = false;
  let notifyAgain = false;
  function notifyWorkers(): void {
    if (notifying) {
      notifyAgain = true;
      return;
    }
    notifying = true;
    void pool
      .query({ name: 'alloy_q_notify', text: 'SELECT pg_notify($1, $2)', values: [channel, ''] })
      .catch(() => {})
      .finally(() => {
        notifying = false;
        if (notifyAgain) {
          notifyAgain = false;
          notifyWorkers();
        }
      });
  }

  // ---- the worker side -------------------------------------------------------------------
  let work: QueueWork | undefined;
  let stopping = false;
  let session: pg.PoolClient | undefined; // holds this process's advisory locks and LISTEN
  let generation = 0; // bumps when the session is replaced (its locks are gone with it)
  const running = new Map<string, AbortController>();
  const heldSlots = new Set<string>(); // `<key>#<n>` held by this process (locks are re-entrant per session)
  // Execution locks to release with the session's next statement (the take or the settle):
  // those of executions whose final record a settle statement wrote, released only once it committed.
  let pendingUnlocks: { kinds: string[]; keys: string[] } = { kinds: [], keys: [] };
  const takePendingUnlocks = () => {
    const p = pendingUnlocks;
    pendingUnlocks = { kinds: [], keys: [] };
    return p;
  };
  const stopAll = new AbortController();
  // Every running execution listens for the stop (more than the 10 listeners Node warns at).
  setMaxListeners(0, stopAll.signal);
  let wake: (() => void) | undefined;
  let poked = false; // set by a NOTIFY or a freed worker while the loop was fetching
  let loopDone: Promise<void> | undefined;
  let idleWaiters: (() => void)[] = [];
  const poke = () => {
    poked = true;
    wake?.();
  };

  const checkIdle = () => {
    if (running.size > 0) return;
    const w = idleWaiters;
    idleWaiters = [];
    for (const f of w) f();
  };

  /** Ends the current session as lost (its advisory locks go with the connection). */
  let dropSession: ((err?: Error) => void) | undefined;
  async function openSession(): Promise<void> {
    const client = await pool.connect();
    const gen = ++generation;
    const lost = (err?: Error) => {
      if (gen !== generation || session !== client) return;
      session = undefined;
      client.release(err ?? true);
      // Our locks went with the connection: stop what runs under them; their jobs are retried.
      for (const c of running.values()) c.abort(new Error('database session lost'));
      log('queue session lost; reconnecting', { error: err?.message });
      poke();
    };
    dropSession = lost;
    client.on('error', lost);
    client.on('end', () => lost());
    client.on('notification', (n) => {
      if (n.channel === `${channel}_cancel` && n.payload) running.get(n.payload)?.abort(new Error('cancelled'));
      else poke();
    });
    await client.query(`LISTEN "${channel}"`);
    await client.query(`LISTEN "${channel}_cancel"`);
    // The session's writes are pg-boss's bookkeeping (claiming and completing jobs), not the
    // durable record: the execution's row is, written on the pool with synchronous commit. A
    // claim or completion lost to a server crash only puts the job back; its execution then
    // runs from its last checkpoint, or is found ended and completed. So these commits do not
    // wait for the WAL flush.
    await client.query('SET synchronous_commit = off');
    session = client;
    sessionChain = Promise.resolve();
    settling = undefined;
    heldSlots.clear();
    pendingUnlocks = { kinds: [], keys: [] }; // went with the old session
  }

  // One query at a time on the session (pg 8 queues concurrent ones with a deprecation warning; pg 9 refuses them).
  // Statements are named (prepared once per connection). `values` may be a function, called
  // when the statement is sent (a batch keeps growing while it waits its turn).
  let sessionChain: Promise<unknown> = Promise.resolve();
  // `after` runs on the answer before the session's next statement is sent (so that one's `values` sees its effects).
  function onSession<R extends pg.QueryResultRow>(name: string, text: string, values: unknown[] | (() => unknown[]), after?: (r: pg.QueryResult<R>) => void): Promise<pg.QueryResult<R>> {
    const client = session;
    if (!client) return Promise.reject(new Error('no database session'));
    const next = sessionChain
      .then(() => client.query<R>({ name, text, values: typeof values === 'function' ? values() : values }))
      .then((r) => {
        after?.(r);
        return r;
      });
    sessionChain = next.catch(() => {});
    return next;
  }
  /**
   * Claims up to `n` jobs on the session (alloy_take_jobs): each one's execution lock tried,
   * and for those locked here and not running here, the execution read and its slots taken.
   * The slots got are marked held before the session's next statement.
   */
  async function fetchJobs(n: number): Promise<FetchedJob[]> {
    const r = await onSession<TakeRow>(
      'alloy_q_take',
      TAKE_SQL,
      () => {
        const un = takePendingUnlocks();
        return [JOB, n, `${state.schema}:execution`, `${state.schema}:slot`, limits.perInstallation, limits.perShop, [...running.keys()], [...heldSlots], un.kinds, un.keys];
      },
      (r) => {
        for (const row of r.rows) {
          if (row.r_islot) heldSlots.add(row.r_islot);
          if (row.r_sslot) heldSlots.add(row.r_sslot);
        }
      },
    );
    return r.rows.map((row) => ({
      id: row.r_job,
      data: { id: row.r_id },
      priority: row.r_priority,
      locked: row.r_locked,
      ...(row.r_found
        ? {
            loaded: { id: row.r_id, doc: row.r_doc!, status: row.r_status!, updated_at: row.r_updated_at!, record: row.r_record!, installation: row.r_installation, accounts: row.r_accounts },
            pre: { installationId: row.r_installation_id!, ...(row.r_shop ? { shop: row.r_shop } : {}), ...(row.r_islot ? { i: row.r_islot } : {}), ...(row.r_sslot ? { s: row.r_sslot } : {}) },
          }
        : {}),
    }));
  }

  /**
   * Completes finished jobs and releases their locks, in one statement on the session for
   * every job that finished while the previous statement ran (group commit). Resolves when done.
   * With `final`, the execution's final record is written by that statement too, and the
   * execution's lock (`deferred`) released by the session's statement after it.
   */
  type Batch = { kinds: string[]; keys: string[]; jobs: string[]; ids: string[]; statuses: string[]; records: string[]; updatedAts: string[]; deferred: [string, string][]; done: Promise<void> };
  let settling: Batch | undefined;
  function settle(locks: [string, string][], jobId: string, final?: { id: string; record: ExecutionRecord; deferred: [string, string][] }): Promise<void> {
    let batch = settling;
    if (!batch) {
      const b: Batch = (batch = settling = { kinds: [], keys: [], jobs: [], ids: [], statuses: [], records: [], updatedAts: [], deferred: [], done: Promise.resolve() });
      const gen = generation;
      let reports: BucketReports | undefined;
      let carried: { kinds: string[]; keys: string[] } | undefined;
      b.done = onSession('alloy_q_settle', SETTLE_SQL, () => {
        if (settling === b) settling = undefined; // later ones start the next batch
        reports = state.takeBucketReports?.();
        const un = (carried = takePendingUnlocks());
        return [[...un.kinds, ...b.kinds], [...un.keys, ...b.keys], JOB, b.jobs, reports?.json ?? '[]', b.ids, b.statuses, b.records, b.updatedAts];
      }, () => {
        // Written and committed: their executions' locks go with the session's next statement.
        if (gen !== generation) return;
        for (const [kind, key] of b.deferred) {
          pendingUnlocks.kinds.push(`${state.schema}:${kind}`);
          pendingUnlocks.keys.push(key);
        }
      })
        .catch((err: unknown) => {
          // Failed on a session that lives on: the deferred unlocks it carried go with the next
          // statement instead (unlocking a lock not held is only a warning), not forgotten.
          if (carried && gen === generation) {
            pendingUnlocks.kinds.push(...carried.kinds);
            pendingUnlocks.keys.push(...carried.keys);
          }
          throw err;
        })
        .finally(() => reports?.done())
        .then(() => {});
    }
    for (const [kind, key] of locks) {
      batch.kinds.push(`${state.schema}:${kind}`);
      batch.keys.push(key);
    }
    batch.jobs.push(jobId);
    if (final) {
      batch.ids.push(final.id);
      batch.statuses.push(final.record.status);
      batch.records.push(JSON.stringify(final.record));
      batch.updatedAts.push(new Date().toISOString());
      batch.deferred.push(...final.deferred);
    }
    return batch.done;
  }

  /** Releases locks of this session in one round trip: [kind, key] pairs. */
  async function unlock(locks: [string, string][], gen: number): Promise<void> {
    if (gen !== generation || !session || locks.length === 0) return; // the session (and its locks) is gone already
    await onSession('alloy_q_unlock', 'SELECT pg_advisory_unlock(hashtext(k), hashtext(v)) FROM unnest($1::text[], $2::text[]) AS u(k, v)', [locks.map(([kind]) => `${state.schema}:${kind}`), locks.map(([, key]) => key)]).catch(() => {});
  }

  /**
   * A free slot of the installation among `limits.perInstallation` and then one of the shop
   * (when there is one) among `limits.perShop`, locked in one statement; a slot is undefined
   * when all are taken (here or elsewhere). The shop's is tried only when the installation's was got.
   */
  async function takeSlots(installation: string, shop: string | undefined): Promise<{ i?: string; s?: string }> {
    // Slots this process holds are skipped here (the lock is re-entrant within our session);
    // the others are tried in order, and each scan stops at the first it gets. The candidates
    // are chosen when the statement is sent (after the session's earlier statements, whose
    // slots are marked held by then), and marked held until the answer says which were got.
    const free = (key: string, limit: number) => Array.from({ length: limit }, (_, n) => `${key}#${n}`).filter((x) => !heldSlots.has(x));
    let candidates: string[] = [];
    let got: { i?: string; s?: string } = {};
    try {
      const r = await onSession<{ i: string | null; s: string | null }>('alloy_q_slots', SLOTS_SQL, () => {
        let iCandidates = free(`i:${installation}`, limits.perInstallation);
        let sCandidates = shop ? free(`s:${shop}`, limits.perShop) : [];
        if (iCandidates.length === 0 || (shop && sCandidates.length === 0)) iCandidates = sCandidates = []; // busy
        candidates = [...iCandidates, ...sCandidates];
        for (const c of candidates) heldSlots.add(c);
        return [`${state.schema}:slot`, iCandidates, sCandidates];
      });
      got = { i: r.rows[0]?.i ?? undefined, s: r.rows[0]?.s ?? undefined };
      return got;
    } finally {
      for (const c of candidates) if (c !== got.i && c !== got.s) heldSlots.delete(c);
    }
  }

  /** Puts a job back for later: a new job (fresh retry count) and this one completed, atomically. */
  async function putBack(job: FetchedJob, delayMs: number, priority: number): Promise<void> {
    await state.transaction(async (client) => {
      await boss.insert([jobOf(job.data.id, priority, new Date(Date.now() + delayMs + Math.random() * delayMs))], { db: db(client) });
      await boss.complete(JOB, job.id, {}, { db: db(client) });
    });
  }

  async function handle(job: FetchedJob, gen: number): Promise<void> {
    const id = job.data.id;
    const controller = new AbortController();
    const onStop = () => controller.abort(stopAll.signal.reason);
    stopAll.signal.addEventListener('abort', onStop, { once: true });
    // Claimed here first (the lock is re-entrant within our session), then across processes.
    const here = running.has(id);
    if (!here) running.set(id, controller);
    // Slots the claim took for it (none unless it was locked here and not running here).
    const slots: string[] = [];
    if (job.pre?.i) slots.push(job.pre.i);
    if (job.pre?.s) slots.push(job.pre.s);
    if (here || !job.locked) {
      // Runs here or in another live process (a retry of an expired job): look again later.
      stopAll.signal.removeEventListener('abort', onStop);
      if (!here) running.delete(id);
      // The fetch's lock counted once more on our session (and any slot it took is not needed).
      const extra = [...slots.map((x): [string, string] => ['slot', x]), ...(job.locked ? [['execution', id] as [string, string]] : [])];
      if (extra.length) await unlock(extra, gen);
      if (gen === generation) for (const x of slots) heldSlots.delete(x);
      await putBack(job, recoverAfter * 500, job.priority).catch((err) => log('queue: could not put a job back', { execution: id, error: (err as Error).message }));
      checkIdle();
      return;
    }
    let outcome: 'complete' | 'retry' | 'busy' = 'retry';
    // The final record's write, when the settle statement carried it: true once committed.
    let finished: Promise<boolean> | undefined;
    try {
      if (job.loaded) state.primeForRun?.(id, job.loaded);
      let prepared: PreparedExecution | undefined;
      try {
        prepared = await work!.prepare(id);
      } finally {
        if (job.loaded) state.primeForRun?.(id, undefined);
      }
      const pre = job.pre;
      if (pre && slots.length > 0 && (!prepared || pre.installationId !== prepared.installationId || pre.shop !== prepared.shop)) {
        // Taken for other keys than the runner's (or not needed): given back before taking the right ones.
        await unlock(slots.map((x): [string, string] => ['slot', x]), gen);
        if (gen === generation) for (const x of slots) heldSlots.delete(x);
        slots.length = 0;
      }
      if (!prepared) outcome = 'complete';
      else {
        let iSlot: string | undefined;
        let sSlot: string | undefined;
        if (pre && pre.installationId === prepared.installationId && pre.shop === prepared.shop) ({ i: iSlot, s: sSlot } = pre);
        else {
          ({ i: iSlot, s: sSlot } = await takeSlots(prepared.installationId, prepared.shop));
          if (iSlot) slots.push(iSlot);
          if (sSlot) slots.push(sSlot);
        }
        if (!iSlot || (prepared.shop && !sSlot)) outcome = 'busy';
        else {
          // The final record rides on the statement that completes the job and releases the
          // slots (the execution's own lock is released after it committed).
          state.finishWith?.(id, (record) => {
            if (gen !== generation || !session) return undefined; // written on its own, as usual
            const p = settle(slots.map((x): [string, string] => ['slot', x]), job.id, { id, record, deferred: [['execution', id]] });
            finished = p.then(
              () => true,
              () => false,
            );
            return p;
          });
          try {
            // The controller is this execution's alone: lent to the runner (no second one linked to it).
            outcome = (await prepared.run(controller.signal, (reason) => controller.abort(reason))) ? 'complete' : 'retry';
          } finally {
            state.finishWith?.(id, undefined);
          }
        }
      }
    } catch (err) {
      work!.onError?.(id, err);
    } finally {
      stopAll.signal.removeEventListener('abort', onStop);
      const locks = [...slots.map((s): [string, string] => ['slot', s]), ['execution', id] as [string, string]];
      let settled = false;
      if (finished && (await finished)) {
        // Its record written, the job completed and the slots released by one statement; the
        // execution's lock goes with the session's next one.
        outcome = 'complete';
        settled = true;
      } else if (outcome === 'complete' && gen === generation && session) {
        // The usual end: the job completed and the locks released in the session's next statement.
        settled = await settle(locks, job.id).then(
          () => true,
          () => false,
        );
      } else await unlock(locks, gen);
      if (gen === generation) for (const s of slots) heldSlots.delete(s);
      running.delete(id);
      try {
        if (outcome === 'complete') {
          if (!settled) await boss.complete(JOB, job.id); // the session went away (and its locks with it)
        } else if (outcome === 'busy') await putBack(job, BUSY_DELAY_MS, job.priority);
        else await boss.fail(JOB, job.id); // retried after a delay, by any worker
      } catch (err) {
        // The database is away: the job stays active and expires into a retry.
        log('queue: could not settle a job', { execution: id, error: (err as Error).message });
      }
      checkIdle();
      poke();
    }
  }

  async function loop(): Promise<void> {
    let backoff = 250;
    while (!stopping) {
      if (!session) {
        try {
          await openSession();
          backoff = 250;
        } catch (err) {
          log('queue: database unreachable', { error: (err as Error).message });
          await sleep(backoff);
          backoff = Math.min(5000, backoff * 2);
          continue;
        }
      }
      const free = limits.concurrency - running.size;
      poked = false;
      let fetched = 0;
      if (free > 0) {
        const gen = generation;
        // A take that failed partway (a statement timeout, a cancel) may have left advisory
        // locks on the session that nothing records: the session is dropped, which frees them
        // (what ran under it is aborted and retried, as after a lost connection).
        const jobs = await fetchJobs(Math.min(free, 50)).catch((err: Error) => {
          if (gen === generation) dropSession?.(err);
          return [];
        });
        fetched = jobs.length;
        for (const j of jobs) void handle(j, gen);
        if (fetched > 0 && fetched === Math.min(free, 50)) continue; // more may be waiting
      }
      if (poked) continue;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, IDLE_POLL_MS);
        function done() {
          clearTimeout(timer);
          wake = undefined;
          resolve();
        }
        wake = done;
      });
    }
  }

  return {
    async ingest(input, opts?: EnqueueOptions) {
      await ensureReady();
      const priority = opts?.rerun ? 1 : 0;
      // The jobs go in the ingest's own statement: one round trip, one commit.
      const result = await state.executions.ingest(input, { withStatement: { sql: INSERT_JOBS_SQL, values: [JOB, priority, recoverAfter] } });
      if (!result.duplicate && result.executionIds.length > 0) notifyWorkers();
      return result;
    },
    async start(w) {
      await ensureReady();
      work = w;
      loopDone = loop();
    },
    abort(id) {
      running.get(id)?.abort(new Error('cancelled'));
      void pool.query('SELECT pg_notify($1, $2)', [`${channel}_cancel`, id]).catch(() => {});
    },
    idle() {
      if (running.size === 0) return Promise.resolve();
      return new Promise((resolve) => idleWaiters.push(resolve));
    },
    async stop(graceMs) {
      stopping = true;
      poke();
      await loopDone;
      if (running.size > 0) {
        const timer = setTimeout(() => stopAll.abort(new Error('stopping')), graceMs);
        await new Promise<void>((resolve) => {
          idleWaiters.push(resolve);
          checkIdle();
        });
        clearTimeout(timer);
      }
      const s = session;
      session = undefined;
      generation++;
      // Destroyed, not pooled: the connection still LISTENs and may hold locks (the pool's next user must get neither).
      s?.release(true);
      // Also after a failed start (ready reset): pg-boss's maintenance timers would keep the
      // process up. A no-op when pg-boss never finished starting.
      await boss.stop({ graceful: false, wait: true, close: false }).catch(() => {});
    },
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
