/**
 * ServeState on PostgreSQL (node-postgres), for `alloy serve --database postgres://…`: every
 * serve process of a cluster opens the same database and sees the same users, credentials,
 * installations, events and executions. Loaded only when a database URL is given (the CLI
 * imports it lazily), so SQLite users never load `pg`.
 *
 * The same contract as sqlite-state.ts (test/serve/state-contract.ts runs on both). What
 * differs:
 * - The schema is made by numbered migrations (pg-migrations.ts), run under an advisory lock
 *   by whichever process opens the state first; `alloy serve migrate` runs them alone.
 * - `schema` picks the PostgreSQL schema (search_path) the tables live in (default `alloy`),
 *   so tests and several deployments can share one database.
 * - Ingest is one statement (dedupe key and executions together, atomic without a
 *   transaction round trip), shared by the ingests that arrive while earlier ones are in
 *   flight (see "ingest, batched" below); with `inTransaction` it runs alone inside a
 *   transaction and the hook runs in it too (see PgIngestOptions).
 * - Writes are durable when PostgreSQL's COMMIT returns (synchronous_commit as configured).
 * - The rows that change rarely (users, API keys, credentials, installations) are read from
 *   memory once read (see "read cache" below): every ingest reads the API key, the user and
 *   their installations, and every execution its credential. Any change to those tables, by
 *   any process or by hand in SQL, is told to every process by a trigger's NOTIFY at commit
 *   (migration 6); a process holds nothing while its listening connection is down.
 */
import pg from 'pg';
import { AlloyError, UsageError } from '../../errors.js';
import type { ExecutionRecord } from '../../engine/types.js';
import { isFinalRecord } from '../../engine/durability.js';
import { redactUrl } from './database-url.js';
import { waitFor } from './buckets.js';
import { MIGRATIONS, type Migration } from './pg-migrations.js';
import type {
  ApiKeyRecord,
  CredentialRecord,
  ExecutionFilter,
  ExecutionRow,
  ExecutionStore,
  IngestInput,
  IngestResult,
  InstallationRecord,
  OAuthStateRecord,
  Page,
  PageRequest,
  ServeState,
  UserRecord,
} from './types.js';
import { eventDedupePrefix } from './types.js';

export const DEFAULT_PG_SCHEMA = 'alloy';

export interface PgStateOptions {
  /** postgres://user@host:port/database (the password, if any, in the URL or PGPASSWORD). */
  url: string;
  /** Schema the tables live in; created when missing. Default `alloy`. */
  schema?: string;
  /** Connections in this process's pool. Default 10. */
  poolSize?: number;
  /** Apply missing migrations on open (default true); false refuses a database that needs them. */
  migrate?: boolean;
  /** Told about errors of idle connections (a restarted server); the pool reconnects on next use. */
  onPoolError?: (err: Error) => void;
  /** After how long an ingest statement in flight counts as stalled (default INGEST_STALL_MS; tests). */
  ingestStallMs?: number;
}

export interface PgIngestOptions {
  /**
   * Runs inside the ingest's transaction after the executions are inserted, on the same
   * connection, when the ingest is not a duplicate: whatever it writes commits or rolls back
   * with them (if it throws, nothing is stored and ingest rejects).
   */
  inTransaction?: (client: pg.PoolClient, result: IngestResult) => Promise<void>;
  /**
   * A data-modifying statement that runs inside the ingest's one statement (so it commits
   * with the executions, without a transaction's extra round trips): a CTE body that reads the
   * new executions' ids from `e(id)` (no rows for a duplicate), its parameters numbered from
   * `$4`. The execution queue inserts its jobs with it. Ingests with the same statement and
   * values share statements (`e` then holds every request's new executions).
   */
  withStatement?: { sql: string; values: unknown[] };
}

export interface PgExecutionStore extends ExecutionStore {
  ingest(input: IngestInput, options?: PgIngestOptions): Promise<IngestResult>;
}

/** The PostgreSQL state; `pool` and `schema` are shared with the execution queue. */
export interface PgServeState extends ServeState {
  readonly kind: 'postgres';
  readonly pool: pg.Pool;
  readonly schema: string;
  executions: PgExecutionStore;
  /** Runs `fn` in a transaction on one connection (COMMIT, or ROLLBACK when it throws). */
  transaction<T>(fn: (client: pg.PoolClient) => Promise<T>): Promise<T>;
  /**
   * Hands the next `executions.getForRun(id)` an answer already read (the execution queue
   * reads it with the job's claim, under the execution's lock, just before the runner asks);
   * `undefined` forgets one not asked for. Used once.
   */
  primeForRun(id: string, loaded: ForRunRow | undefined): void;
  /**
   * Hands the final checkpoint of execution `id` (a record that ended it, checkpointed with
   * `last`: nothing of the run follows it, not even a stream delivery, whose crash must
   * leave the job to be retried) to `write` instead of writing it on its own: the execution queue writes it in the statement that completes
   * the execution's job (one round trip and one WAL flush for every execution that ended
   * meanwhile). `write` answers undefined to decline (the record is then written as usual).
   * `undefined` forgets it. Used once.
   */
  finishWith(id: string, write: ((record: ExecutionRecord) => Promise<void> | undefined) | undefined): void;
  /**
   * The cost-bucket reports waiting to be written, for a statement of the execution queue's
   * to carry (rows for BUCKET_REPORTS_UPSERT's JSON parameter); `done()` once that statement
   * settled (written or not: a report is pacing, dropped on failure).
   */
  takeBucketReports(): BucketReports | undefined;
}

export interface BucketReports {
  json: string;
  done(): void;
}

/** An execution with its installation and its credentials' accounts, as GET_FOR_RUN_SQL (and alloy_take_jobs) read it. */
export interface ForRunRow {
  id: string;
  doc: ExecutionDbRow['doc'];
  status: ExecutionRow['status'];
  updated_at: string;
  record: ExecutionRecord;
  installation: InstallationRecord | null;
  accounts: Record<string, string | null> | null;
}

const MAX_PAGE = 200;
const limitOf = (p?: PageRequest) => Math.max(1, Math.min(MAX_PAGE, p?.limit ?? 50));
const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,62}$/;

export function checkSchemaName(schema: string): string {
  if (!SCHEMA_NAME.test(schema)) throw new UsageError(`"${schema}" is not a schema name alloy accepts`, { hint: 'Use lower-case letters, digits and _ (at most 63), starting with a letter or _.' });
  return schema;
}

function poolOf(options: PgStateOptions, schema: string): pg.Pool {
  const pool = new pg.Pool({
    connectionString: options.url,
    max: options.poolSize ?? 10,
    // Every connection works in the state's schema; nothing is schema-qualified in queries.
    // Read committed whatever the role's or database's default: the queue reads an execution
    // after taking its lock (alloy_take_jobs) and compares-and-sets cursors, both of which need
    // each statement to see what committed before it.
    options: `-c search_path=${schema} -c default_transaction_isolation=read\\ committed`,
    connectionTimeoutMillis: 10_000,
    idleTimeoutMillis: 30_000,
    // A connection the network dropped silently is found by the kernel's keep-alive probes,
    // the first after 10 s idle (then the system's interval and count: minutes, not hours).
    keepAlive: true,
    keepAliveInitialDelayMillis: 10_000,
  });
  // Without a listener an idle connection's error (the server restarted) would crash the process.
  pool.on('error', (err) => options.onPoolError?.(err));
  return pool;
}

/** A stable 64-bit advisory lock key per schema, computed by the server. */
const LOCK_SQL = "SELECT pg_advisory_xact_lock(hashtextextended('alloy-serve-migrate:' || $1, 0))";

export interface MigrationReport {
  schema: string;
  applied: Migration[];
  /** Every migration the database has, after this run. */
  current: number;
}

/**
 * Applies the missing migrations in one transaction under an advisory lock, so processes
 * starting together migrate once: the first takes the lock and migrates, the others wait for
 * it and then find every migration recorded. A database migrated by a newer alloy (a
 * migration this one does not know) is refused rather than run on a schema it does not know.
 */
export async function migrate(pool: pg.Pool, schema: string, migrations: readonly Migration[] = MIGRATIONS): Promise<MigrationReport> {
  const client = await pool.connect();
  // A connection cut meanwhile emits 'error' on the checked-out client; unheard it would end the process.
  let lost: Error | undefined;
  const onError = (err: Error) => (lost = err);
  client.on('error', onError);
  try {
    await client.query('BEGIN');
    await client.query(LOCK_SQL, [schema]);
    await client.query(`CREATE SCHEMA IF NOT EXISTS ${schema}`);
    await client.query(`CREATE TABLE IF NOT EXISTS ${schema}.alloy_migrations (id integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`);
    const done = new Set((await client.query<{ id: number }>(`SELECT id FROM ${schema}.alloy_migrations`)).rows.map((r) => r.id));
    const known = new Set(migrations.map((m) => m.id));
    const unknown = [...done].filter((id) => !known.has(id));
    if (unknown.length) {
      throw new UsageError(`schema ${schema} has migration ${Math.max(...unknown)}, newer than this alloy knows (${Math.max(0, ...known)})`, { hint: 'Run the alloy version that migrated it, or a newer one.' });
    }
    const applied: Migration[] = [];
    for (const m of migrations) {
      if (done.has(m.id)) continue;
      await client.query(`SET LOCAL search_path = ${schema}`);
      await client.query(m.sql);
      await client.query(`INSERT INTO ${schema}.alloy_migrations (id, name) VALUES ($1, $2)`, [m.id, m.name]);
      applied.push(m);
    }
    await client.query('COMMIT');
    return { schema, applied, current: Math.max(0, ...done, ...applied.map((m) => m.id)) };
  } catch (err) {
    await client.query('ROLLBACK').catch(() => {});
    throw err;
  } finally {
    client.off('error', onError);
    client.release(lost);
  }
}

/** Ids of the migrations this alloy has that the database lacks (empty when up to date). */
export async function pendingMigrations(pool: pg.Pool, schema: string): Promise<number[]> {
  const exists = await pool.query(`SELECT to_regclass($1) AS t`, [`${schema}.alloy_migrations`]);
  const done = exists.rows[0].t ? new Set((await pool.query<{ id: number }>(`SELECT id FROM ${schema}.alloy_migrations`)).rows.map((r) => r.id)) : new Set<number>();
  return MIGRATIONS.filter((m) => !done.has(m.id)).map((m) => m.id);
}

/** Applies the migrations and closes the pool: `alloy serve migrate`. */
export async function migrateDatabase(options: PgStateOptions): Promise<MigrationReport> {
  const schema = checkSchemaName(options.schema ?? DEFAULT_PG_SCHEMA);
  const pool = poolOf({ ...options, poolSize: 1 }, schema);
  try {
    return await migrate(pool, schema);
  } catch (err) {
    throw openError(options.url, err);
  } finally {
    await pool.end().catch(() => {});
  }
}

/** Network failures: the URL may be right and the server down or restarting (57P03: starting up or shutting down). */
const UNREACHABLE = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN', '57P03']);

/**
 * A failure to reach or migrate the database, naming the URL without its password: a server
 * that cannot be reached is a failure (exit 1, E_UNAVAILABLE), anything else (a wrong
 * database, user or password, a newer schema) a usage error (exit 2).
 */
function openError(url: string, err: unknown): AlloyError {
  if (err instanceof AlloyError) return err;
  const message = `cannot open the PostgreSQL state at ${redactUrl(url)}: ${(err as Error).message}`;
  const hint = 'Check that the server runs and the URL (user, host, port, database) is right.';
  if (UNREACHABLE.has(String((err as { code?: unknown }).code))) return new AlloyError('E_UNAVAILABLE', message, { hint });
  return new UsageError(message, { hint });
}

type Row = { doc: unknown };
const docs = <T>(rows: Row[]) => rows.map((r) => r.doc as T);

interface ExecutionDbRow {
  doc: Omit<ExecutionRow, 'status' | 'record' | 'updatedAt'>;
  status: ExecutionRow['status'];
  updated_at: string;
  record: ExecutionRecord;
}
const EXECUTION_COLUMNS = 'id, doc, status, updated_at, record';
const executionOf = (r: ExecutionDbRow): ExecutionRow => ({ ...r.doc, status: r.status, updatedAt: r.updated_at, record: r.record });

/** An execution, its installation and the accounts of the installation's credentials (ExecutionStore.getForRun). */
const GET_FOR_RUN_SQL = `
SELECT e.id, e.doc, e.status, e.updated_at, e.record, i.doc AS installation,
  (SELECT json_object_agg(c.id, c.account) FROM installation_credentials ic JOIN credentials c ON c.id = ic.credential_id WHERE ic.installation_id = e.installation_id) AS accounts
FROM executions e LEFT JOIN installations i ON i.id = e.installation_id
WHERE e.id = $1`;

/**
 * The ingest of one or several requests (a batch, see `ingest` below) in one statement: each
 * request's dedupe key ($1, its executions' ids as JSON text in $2), then the executions ($3)
 * of every request that has no key or whose key was new (and `extra`'s rows, see
 * withStatement). Keys are inserted in key order: two batches holding the same keys (another
 * process, or a key held back to the next batch) wait on each other in one order, never in a
 * cycle. A batch never holds one key twice (the caller sees to it). Answers the keys stored.
 */
const ingestSql = (extra?: string) => `
WITH d AS (
  INSERT INTO dedupe (key, execution_ids)
  SELECT k.key, k.ids::json FROM unnest($1::text[], $2::text[]) AS k(key, ids) ORDER BY k.key
  ON CONFLICT (key) DO NOTHING RETURNING key
), e AS (
  INSERT INTO executions (id, installation_id, user_id, workflow, status, updated_at, doc, record)
  SELECT x.id, x.installation_id, x.user_id, x.workflow, x.status, x.updated_at, x.doc::json, x.record::json
  FROM json_to_recordset($3::json) AS x(dedupe_key text, id text, installation_id text, user_id text, workflow text, status text, updated_at text, doc text, record text)
  WHERE x.dedupe_key IS NULL OR x.dedupe_key IN (SELECT key FROM d)
  RETURNING id
)${extra ? `, x AS (${extra})` : ''}
SELECT (SELECT array_agg(key) FROM d) AS keyed`;
const INGEST_SQL = ingestSql();

/** Requests, and executions, per ingest statement (a request with more executions goes alone). */
const INGEST_BATCH_MAX = 64;
const INGEST_BATCH_ROWS = 512;
/** And characters of rows' JSON per statement (large events: one parameter, parsed whole by the server). */
const INGEST_BATCH_CHARS = 4 * 1024 * 1024;
/**
 * An ingest statement unanswered this long no longer counts against INGEST_IN_FLIGHT: one stuck
 * on a half-open connection or a lock does not stop the process's other ingests. It is not
 * abandoned (it may still commit; its requests wait for its answer, and its keys stay held).
 */
const INGEST_STALL_MS = 10_000;
/**
 * Ingest statements in flight per process (per kind of ingest): a request arriving while they
 * are all in flight waits and goes with the others that arrived meanwhile in the next one.
 */
const INGEST_IN_FLIGHT = 2;

/**
 * The cost buckets are pacing, not a record (with SQLite they live in memory): their writes
 * commit without waiting for the WAL flush (synchronous_commit off for that statement's
 * transaction), saving two flushes per call to an app. A server crash can lose the last
 * updates; the next answer from the app sets the bucket again.
 */
const ASYNC_COMMIT = "nowait AS (SELECT set_config('synchronous_commit', 'off', true))";

/**
 * A bucket's reservation in one statement: the row is locked, restored to `now`, and the
 * expected cost taken only when it is there; the answer says how much was available, so the
 * caller can compute the wait. Concurrent takers queue on the row lock.
 */
const TAKE_SQL = `
WITH ${ASYNC_COMMIT}, b AS (
  SELECT key, last_cost, restore_rate,
    least(maximum_available, current_available + greatest(0, $2::bigint - at_ms) / 1000.0 * restore_rate) AS avail
  FROM rate_buckets WHERE key = $1 FOR UPDATE
), u AS (
  UPDATE rate_buckets r SET current_available = b.avail - b.last_cost, at_ms = $2::bigint
  FROM b WHERE r.key = b.key AND b.restore_rate > 0 AND b.avail >= b.last_cost
  RETURNING r.key
)
SELECT b.avail, b.last_cost, b.restore_rate, (SELECT count(*) FROM u)::int AS took, (SELECT count(*) FROM nowait)::int AS nowait FROM b`;

/** Buckets' latest throttle status, from apps' answers: rows of a JSON array (see takeBucketReports). */
export const BUCKET_REPORTS_UPSERT = (param: string) => `
INSERT INTO rate_buckets (key, maximum_available, current_available, restore_rate, last_cost, at_ms)
SELECT x.key, x.maximum_available, x.current_available, x.restore_rate, x.last_cost, x.at_ms
FROM json_to_recordset(${param}::json) AS x(key text, maximum_available float8, current_available float8, restore_rate float8, last_cost float8, at_ms bigint)
ON CONFLICT (key) DO UPDATE SET maximum_available = EXCLUDED.maximum_available, current_available = EXCLUDED.current_available, restore_rate = EXCLUDED.restore_rate, last_cost = EXCLUDED.last_cost, at_ms = EXCLUDED.at_ms`;
/** Reports on their own (see ASYNC_COMMIT). */
const REPORT_SQL = `WITH ${ASYNC_COMMIT}, r AS (${BUCKET_REPORTS_UPSERT('$1')} RETURNING 1) SELECT (SELECT count(*) FROM nowait)::int AS nowait, (SELECT count(*) FROM r)::int AS n`;

/** How long a bucket report may wait for another statement to carry it before it is written on its own. */
const REPORT_WAIT_MS = 20;

/**
 * One request's rows for INGEST_SQL, each with its request's dedupe key, as JSON objects joined
 * by commas (a batch's $3 is `[`, its requests' texts joined, `]`; each made once, when the
 * request arrives, so a resend does not make it again). `doc` and `record` travel as
 * JSON text inside the JSON array: a `json` field taken out by json_to_recordset is converted
 * through text, which refuses `\u0000` (an event payload may carry it); a text field holding
 * the escaped form is not.
 */
function ingestRowsOf(input: IngestInput): string {
  return input.executions
    .map(({ status, record, updatedAt, ...doc }) =>
      JSON.stringify({
        dedupe_key: input.dedupeKey ?? null,
        id: doc.id,
        installation_id: doc.installationId,
        user_id: doc.userId,
        workflow: doc.workflow,
        status,
        updated_at: updatedAt,
        doc: JSON.stringify(doc),
        record: JSON.stringify(record),
      }),
    )
    .join(',');
}

/**
 * A failure one request of a batch can have caused, by its data: the server's SQLSTATE class 22
 * (data exception), 23 (integrity: a taken id) or 54 (program limit: a statement too large).
 * Anything else (the connection, the server read-only, out of space, a lock or statement
 * timeout, a deadlock, the client's own errors) is no request's doing, and the statement may
 * even have committed before its answer was lost.
 * https://www.postgresql.org/docs/15/errcodes-appendix.html
 */
function isRequestCaused(err: unknown): boolean {
  return err instanceof pg.DatabaseError && typeof err.code === 'string' && /^(22|23|54)/.test(err.code);
}

/** A prepared statement's name per distinct text (a name is bound to one text per connection). */
const statementNames = new Map<string, string>();
function statementName(text: string): string {
  let n = statementNames.get(text);
  if (!n) statementNames.set(text, (n = String(statementNames.size + 1)));
  return n;
}

/** Opens the state, migrating first unless `migrate: false`. */
// Cursor keys name their installation as `:<id>:` (strpos, not LIKE: ids contain `_`).
const DELETE_CURSORS_OF = "DELETE FROM cursors WHERE strpos(key, ':' || $1 || ':') > 0";
const DELETE_CURSORS_OF_USER = "DELETE FROM cursors c USING installations i WHERE i.user_id = $1 AND strpos(c.key, ':' || i.id || ':') > 0";

/** The channel migration 6's triggers notify on (payload `<schema>:<table>`). */
const CACHE_CHANNEL = 'alloy_cache';
const CACHE_TTL_MS = 5000;
const CACHE_MAX = 10_000;
/**
 * The listener proves it still hears: this process notifies `<schema>!ping` this often, and
 * a listener that heard nothing for LISTENER_STALE_MS is dropped (a half-open connection after
 * a partition or failover, or a pooler in transaction mode that never delivers notifications,
 * raises no error). Not `<schema>:`, which would clear the cache.
 */
const HEARTBEAT_MS = 1000;
const LISTENER_STALE_MS = 3000;

/** Cached records are shared by every reader: frozen, so none can change another's (ServeState's rule: copy first). */
function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}

export async function openPgState(options: PgStateOptions): Promise<PgServeState> {
  const schema = checkSchemaName(options.schema ?? DEFAULT_PG_SCHEMA);
  const pool = poolOf(options, schema);
  try {
    if (options.migrate === false) {
      const pending = await pendingMigrations(pool, schema);
      if (pending.length) throw new UsageError(`the database needs migration ${pending.join(', ')} (schema ${schema})`, { hint: 'Run alloy serve migrate --database … first.' });
    } else await migrate(pool, schema);
  } catch (err) {
    await pool.end().catch(() => {});
    throw openError(options.url, err);
  }

  const q = async <R extends pg.QueryResultRow = any>(text: string, values: unknown[] = [], name?: string) => (await pool.query<R>(name ? { name, text, values } : { text, values })).rows;

  let closed = false;

  // ---- read cache ----------------------------------------------------------------------
  // Reads of users, API keys, credentials and installations are answered from memory while
  // this process listens on `alloy_cache` (its own connection, opened on the first such
  // read). Every change to those tables NOTIFYs at commit (migration 6's triggers, so a change
  // made by hand in SQL counts too), and the cache is dropped when one arrives for this
  // schema. What this process writes drops it at once, before and after the write. A read
  // stores its answer only if nothing was dropped while it ran (`generation`), so an answer
  // read before a change never outlives the change's notification. While the listening
  // connection is down (or not yet listening) nothing is held and every read goes to the
  // database; an entry older than CACHE_TTL_MS is read again (a bound should a connection
  // die silently). So a revoked API key or a changed installation takes effect in every
  // process as soon as the notification arrives (milliseconds).
  let generation = 0;
  let listening = false;
  let listener: pg.Client | undefined;
  let dropListener: (() => void) | undefined;
  let listenRetryAt = 0;
  // Monotonic times: a wall clock stepped back must not stretch the bounds.
  let lastHeard = 0;
  let heartbeat: NodeJS.Timeout | undefined;
  const readCache = new Map<string, { value: unknown; at: number }>();
  const forget = () => {
    generation++;
    readCache.clear();
  };
  const ping = `${schema}!ping`;
  const listen = () => {
    if (listener || closed || performance.now() < listenRetryAt) return;
    const client = new pg.Client({ connectionString: options.url, application_name: `alloy-cache:${schema}`.slice(0, 63), keepAlive: true });
    listener = client;
    const lost = (err?: Error) => {
      if (listener !== client) return;
      listener = undefined;
      dropListener = undefined;
      listening = false;
      clearInterval(heartbeat);
      heartbeat = undefined;
      listenRetryAt = performance.now() + 1000;
      forget();
      if (err) options.onPoolError?.(err);
      client.end().catch(() => {});
    };
    dropListener = () => lost();
    client.on('error', lost);
    client.on('end', () => lost());
    client.on('notification', (n) => {
      if (n.channel !== CACHE_CHANNEL) return;
      if (n.payload === ping) lastHeard = performance.now();
      else if (n.payload?.startsWith(`${schema}:`)) forget();
    });
    client
      .connect()
      .then(() => client.query(`LISTEN ${CACHE_CHANNEL}`))
      .then(() => {
        if (listener !== client || closed) return;
        // Changes committed before LISTEN took effect were never told: start from nothing.
        forget();
        lastHeard = performance.now();
        listening = true;
        heartbeat = setInterval(() => void pool.query('SELECT pg_notify($1, $2)', [CACHE_CHANNEL, ping]).catch(() => {}), HEARTBEAT_MS);
        heartbeat.unref();
      })
      .catch((err: Error) => lost(err));
  };
  /** `keep` says whether an answer may be held (a missing row or a token due for refresh is read each time). */
  async function cached<T>(key: string, load: () => Promise<T>, keep: (value: T) => boolean = (v) => v !== undefined): Promise<T> {
    listen();
    if (!listening) return load();
    const now = performance.now();
    if (now - lastHeard > LISTENER_STALE_MS) {
      // Deaf: nothing it held can be trusted; listen again on a new connection.
      dropListener?.();
      return load();
    }
    const hit = readCache.get(key);
    if (hit && now - hit.at < CACHE_TTL_MS) return hit.value as T;
    const gen = generation;
    const value = deepFreeze(await load());
    if (gen === generation && listening && keep(value)) {
      if (readCache.size >= CACHE_MAX) readCache.clear();
      readCache.set(key, { value, at: now });
    }
    return value;
  }
  /** A write to a cached table: the cache is dropped before it starts and after it ends. */
  async function writing<T>(fn: () => Promise<T>): Promise<T> {
    forget();
    try {
      return await fn();
    } finally {
      forget();
    }
  }

  async function transaction<T>(fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    const client = await pool.connect();
    // A connection cut while checked out (a restarted server) emits 'error' on the client; with
    // no listener that would end the process. The query in progress rejects on its own.
    let lost: Error | undefined;
    const onError = (err: Error) => (lost = err);
    client.on('error', onError);
    try {
      await client.query('BEGIN');
      const r = await fn(client);
      await client.query('COMMIT');
      return r;
    } catch (err) {
      await client.query('ROLLBACK').catch(() => {});
      throw err;
    } finally {
      client.off('error', onError);
      client.release(lost); // a broken connection is discarded, not returned to the pool
    }
  }

  /** Filtered, cursor-paginated select over one table. */
  async function listWhere<T extends { id: string }>(table: string, columns: string, where: Record<string, string | undefined>, page: PageRequest | undefined, map: (r: any) => T): Promise<Page<T>> {
    const limit = limitOf(page);
    const clauses: string[] = [];
    const args: unknown[] = [];
    for (const [col, v] of Object.entries(where)) {
      if (v === undefined) continue;
      args.push(v);
      clauses.push(`${col} = $${args.length}`);
    }
    const desc = page?.order === 'desc';
    if (page?.after) {
      args.push(page.after);
      clauses.push(`id ${desc ? '<' : '>'} $${args.length}`);
    }
    args.push(limit + 1);
    const text = `SELECT ${columns} FROM ${table}${clauses.length ? ` WHERE ${clauses.join(' AND ')}` : ''} ORDER BY id${desc ? ' DESC' : ''} LIMIT $${args.length}`;
    // Prepared per distinct text (a handful per table): ingest lists a user's installations on every event.
    const rows = await q(text, args, `alloy_list_${statementName(text)}`);
    const items = rows.slice(0, limit).map(map);
    return rows.length > limit ? { items, next: items[items.length - 1].id } : { items };
  }

  const one = async <T>(sql: string, id: string, name: string): Promise<T | undefined> => (await q<Row>(sql, [id], name))[0]?.doc as T | undefined;

  // ---- ingest, batched -------------------------------------------------------------------
  // Concurrent ingests share statements: while INGEST_IN_FLIGHT of them are in flight, new
  // requests wait, and the next statement carries up to INGEST_BATCH_MAX of them (one round
  // trip and one commit for all). Each request is answered as if it had been sent alone (see
  // sendBatch for failures; decision 0009). A dedupe key already on its way
  // (in this batch or one in flight) waits until that statement returned, then meets the
  // stored key and answers as its duplicate.
  type Extra = PgIngestOptions['withStatement'];
  /** A request waiting for a statement: its rows' JSON text (see ingestRowsOf) made once. */
  type Waiting = { input: IngestInput; rows: string; resolve: (r: IngestResult | Promise<IngestResult>) => void; reject: (err: unknown) => void };
  // One lane per kind of statement (the queue's job rows differ by priority).
  type Lane = { extra: Extra; waiting: Waiting[]; flights: Map<symbol, number>; keys: Set<string>; stallTimer?: ReturnType<typeof setTimeout> };
  const lanes = new Map<string, Lane>();
  const stallMs = options.ingestStallMs ?? INGEST_STALL_MS;
  // Ingest statements of all lanes at once, stalled ones included: two pool connections stay
  // for the rest of the state's work (reads, checkpoints, the queue).
  const maxFlights = Math.max(1, (options.poolSize ?? 10) - 2);
  let flightsInAll = 0;

  /** Stores the requests (no dedupe key twice) in one statement on `c`; answers the keys that were new. */
  async function insertBatch(c: pg.Pool | pg.PoolClient, batch: readonly Pick<Waiting, 'input' | 'rows'>[], extra: Extra): Promise<Set<string>> {
    const keys: string[] = [];
    const ids: string[] = [];
    for (const { input } of batch) {
      if (input.dedupeKey == null) continue;
      keys.push(input.dedupeKey);
      ids.push(JSON.stringify(input.executions.map((e) => e.id)));
    }
    const rows = `[${batch.map((w) => w.rows).filter((r) => r !== '').join(',')}]`;
    const args = [keys, ids, rows];
    const statement = extra
      ? { name: `alloy_ingest_${statementName(extra.sql)}`, text: ingestSql(extra.sql), values: [...args, ...extra.values] }
      : { name: 'alloy_ingest', text: INGEST_SQL, values: args };
    const { keyed } = (await c.query<{ keyed: string[] | null }>(statement)).rows[0];
    return new Set(keyed ?? []);
  }

  /**
   * The answers after insertBatch: a request whose key was stored before is a duplicate,
   * answered with that ingest's executions, unless they are its own (execution ids are never
   * reused: its own statement committed, and only the answer was lost; after such a loss,
   * `maybeStored`, a key stored with no executions is taken as its own too).
   */
  function answers(c: pg.Pool | pg.PoolClient, inputs: readonly IngestInput[], keyed: Set<string>, maybeStored = false): Array<Promise<IngestResult>> {
    const dup = (i: IngestInput) => i.dedupeKey != null && !keyed.has(i.dedupeKey);
    const seenKeys = inputs.filter(dup).map((i) => i.dedupeKey!);
    // The key's row was committed by another statement (after this one's snapshot): read it now.
    const seen = seenKeys.length
      ? c
          .query<{ key: string; execution_ids: string[] }>({ name: 'alloy_dedupe_get', text: 'SELECT key, execution_ids FROM dedupe WHERE key = ANY($1::text[])', values: [seenKeys] })
          .then((r) => new Map(r.rows.map((row) => [row.key, row.execution_ids])))
      : undefined;
    return inputs.map((i) => {
      const own = i.executions.map((e) => e.id);
      if (!dup(i)) return Promise.resolve({ duplicate: false, executionIds: own });
      return seen!.then((m) => {
        const stored = m.get(i.dedupeKey!) ?? [];
        const ours = (own.length > 0 || maybeStored) && stored.length === own.length && stored.every((id, n) => id === own[n]);
        return { duplicate: !ours, executionIds: stored };
      });
    });
  }

  /** After a lost answer: whether every execution of an unkeyed request is stored (by that statement). */
  async function storedAlready(input: IngestInput): Promise<boolean> {
    const ids = input.executions.map((e) => e.id);
    if (ids.length === 0) return false;
    const { n } = (await pool.query<{ n: number }>('SELECT count(*)::int AS n FROM executions WHERE id = ANY($1::text[])', [ids])).rows[0];
    return n === ids.length;
  }

  /**
   * Sends a batch and settles each request. A failure one of its requests caused by its data
   * (isRequestCaused) stored nothing: the batch is split in halves, sent one after the other,
   * until the faulty request is alone (never the whole batch at once: the lane's bound on
   * statements in flight holds). Any other failure is no request's doing and may even have
   * come after the commit: the whole batch is sent once more (`maybeStored`), then, failing
   * again, each of its requests rejects.
   */
  async function sendBatch(lane: Lane, batch: Waiting[], maybeStored = false): Promise<void> {
    let keyed: Set<string>;
    try {
      keyed = await insertBatch(pool, batch, lane.extra);
    } catch (err) {
      if (!isRequestCaused(err)) {
        if (!maybeStored) return sendBatch(lane, batch, true);
        return batch.forEach((w) => w.reject(err));
      }
      if (batch.length === 1) {
        const [w] = batch;
        // Its executions are there while its statement failed on their ids: the earlier attempt committed.
        const e = err as pg.DatabaseError;
        if (maybeStored && e.code === '23505' && e.constraint === 'executions_pkey' && w.input.dedupeKey == null && (await storedAlready(w.input).catch(() => false))) {
          return w.resolve({ duplicate: false, executionIds: w.input.executions.map((x) => x.id) });
        }
        return w.reject(err);
      }
      const half = Math.ceil(batch.length / 2);
      await sendBatch(lane, batch.slice(0, half), maybeStored);
      await sendBatch(lane, batch.slice(half), maybeStored);
      return;
    }
    const got = answers(
      pool,
      batch.map((w) => w.input),
      keyed,
      maybeStored,
    );
    batch.forEach((w, n) => w.resolve(got[n]));
  }

  /** Statements of the lane in flight that still count against INGEST_IN_FLIGHT (not stalled, see INGEST_STALL_MS). */
  function activeFlights(lane: Lane, now: number): number {
    let n = 0;
    for (const at of lane.flights.values()) if (now - at < stallMs) n++;
    return n;
  }

  /** When the oldest statement still counted will count as stalled; undefined when none is counted. */
  function nextStall(lane: Lane, now: number): number | undefined {
    let oldest: number | undefined;
    for (const at of lane.flights.values()) if (now - at < stallMs && (oldest === undefined || at < oldest)) oldest = at;
    return oldest === undefined ? undefined : oldest + stallMs;
  }

  function pump(lane: Lane): void {
    if (closed) {
      const waiting = lane.waiting;
      lane.waiting = [];
      for (const w of waiting) w.reject(new Error('the PostgreSQL state is closed'));
      return;
    }
    // At most INGEST_IN_FLIGHT statements counted, and as many stalled ones again, and within
    // maxFlights over all lanes: stalled statements hold pool connections.
    while (lane.waiting.length > 0 && lane.flights.size < 2 * INGEST_IN_FLIGHT && flightsInAll < maxFlights && activeFlights(lane, performance.now()) < INGEST_IN_FLIGHT) {
      const batch: Waiting[] = [];
      const later: Waiting[] = [];
      const keys: string[] = [];
      let rows = 0;
      let bytes = 0;
      for (const [n, w] of lane.waiting.entries()) {
        const full = batch.length >= INGEST_BATCH_MAX || rows + w.input.executions.length > INGEST_BATCH_ROWS || bytes + w.rows.length > INGEST_BATCH_CHARS;
        if (batch.length > 0 && full) {
          later.push(...lane.waiting.slice(n)); // full: the rest keep their order
          break;
        }
        const key = w.input.dedupeKey;
        // A key already on its way waits until that statement returned: the first sent is the one stored.
        if (key != null && lane.keys.has(key)) {
          later.push(w);
          continue;
        }
        if (key != null) {
          lane.keys.add(key);
          keys.push(key);
        }
        rows += w.input.executions.length;
        bytes += w.rows.length;
        batch.push(w);
      }
      lane.waiting = later;
      if (batch.length === 0) return; // every waiting key is on its way: sent when it returns
      const flight = Symbol('ingest statement');
      lane.flights.set(flight, performance.now());
      flightsInAll++;
      void sendBatch(lane, batch).finally(() => {
        lane.flights.delete(flight);
        flightsInAll--;
        for (const k of keys) lane.keys.delete(k);
        pump(lane);
        // Another lane may have waited for the bound over all lanes.
        for (const other of lanes.values()) if (other !== lane && other.waiting.length > 0) pump(other);
      });
    }
    // Requests wait behind counted statements: look again when the oldest of them would count
    // as stalled (a statement's end looks again anyway).
    const at = lane.waiting.length > 0 && !lane.stallTimer ? nextStall(lane, performance.now()) : undefined;
    if (at !== undefined) {
      lane.stallTimer = setTimeout(() => {
        lane.stallTimer = undefined;
        pump(lane);
      }, Math.max(0, at - performance.now()) + 1);
      lane.stallTimer.unref();
    }
  }

  async function ingest(input: IngestInput, opts?: PgIngestOptions): Promise<IngestResult> {
    const extra = opts?.withStatement;
    const hook = opts?.inTransaction;
    // Made here, once: a request that cannot be serialised rejects alone, before it joins a lane.
    const rows = ingestRowsOf(input);
    // With a hook: alone, in a transaction of its own (the hook runs on its connection).
    if (hook)
      return transaction(async (client) => {
        const [r] = await Promise.all(answers(client, [input], await insertBatch(client, [{ input, rows }], extra)));
        if (!r.duplicate) await hook(client, r);
        return r;
      });
    const laneKey = extra ? `${statementName(extra.sql)}\0${JSON.stringify(extra.values)}` : '';
    let lane = lanes.get(laneKey);
    if (!lane) lanes.set(laneKey, (lane = { extra, waiting: [], flights: new Map(), keys: new Set() }));
    const l = lane;
    return new Promise<IngestResult>((resolve, reject) => {
      l.waiting.push({ input, rows, resolve, reject });
      pump(l);
    });
  }

  // ---- cost-bucket reports ------------------------------------------------------------
  // A report (the app's throttle status after a call) is pacing, not a record (see
  // ASYNC_COMMIT): it waits up to REPORT_WAIT_MS for the execution queue's next statement
  // that completes jobs (asynchronous commit too; it usually follows the call's execution at
  // once) to carry it (takeBucketReports); else it is written on its own. Only the latest report per bucket is kept. This process's take of a bucket first
  // writes its own waiting report and waits for one on its way; other processes see a report
  // at most REPORT_WAIT_MS (plus a statement) later, as if the answer had come that much later.
  type Report = { key: string; maximum_available: number; current_available: number; restore_rate: number; last_cost: number; at_ms: number };
  const pendingReports = new Map<string, Report>();
  const reportsInFlight = new Map<string, Promise<unknown>>();
  let reportTimer: ReturnType<typeof setTimeout> | undefined;
  /** Takes the waiting reports for a statement: they count as on their way until `done()`. */
  function takeReports(): BucketReports | undefined {
    if (pendingReports.size === 0) return undefined;
    // In key order: two processes' statements lock the buckets they upsert in one order (no deadlock).
    const rows = [...pendingReports.values()].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    pendingReports.clear();
    if (reportTimer) clearTimeout(reportTimer);
    reportTimer = undefined;
    let done!: () => void;
    const settled = new Promise<void>((resolve) => (done = resolve));
    for (const r of rows) reportsInFlight.set(r.key, settled);
    void settled.then(() => {
      for (const r of rows) if (reportsInFlight.get(r.key) === settled) reportsInFlight.delete(r.key);
    });
    return { json: JSON.stringify(rows), done };
  }
  async function flushReports(): Promise<void> {
    const reports = takeReports();
    if (!reports) return;
    // Pacing state: a failed write is dropped (the next answer from the app sets the bucket again).
    try {
      if (!closed) await q(REPORT_SQL, [reports.json], 'alloy_bucket_reports');
    } catch {
      // dropped
    } finally {
      reports.done();
    }
  }

  // Answers read by the execution queue for the runner's next getForRun (see primeForRun).
  const primed = new Map<string, ForRunRow>();
  // Final checkpoints the execution queue writes itself (see finishWith).
  const finishers = new Map<string, (record: ExecutionRecord) => Promise<void> | undefined>();
  const state: PgServeState = {
    kind: 'postgres',
    pool,
    schema,
    transaction,
    takeBucketReports: takeReports,
    primeForRun(id, loaded) {
      if (loaded) primed.set(id, loaded);
      else primed.delete(id);
    },
    finishWith(id, write) {
      if (write) finishers.set(id, write);
      else finishers.delete(id);
    },
    users: {
      async create(u: UserRecord) {
        await writing(() => q('INSERT INTO users (id, doc) VALUES ($1, $2)', [u.id, JSON.stringify(u)]));
        return u;
      },
      get: (id) => cached(`user\0${id}`, () => one<UserRecord>('SELECT doc FROM users WHERE id = $1', id, 'alloy_user_get')),
      list: (page) => listWhere<UserRecord>('users', 'id, doc', {}, page, (r) => r.doc),
      delete: (id) =>
        writing(() => transaction(async (c) => {
          const n = (await c.query('DELETE FROM users WHERE id = $1', [id])).rowCount ?? 0;
          await c.query(DELETE_CURSORS_OF_USER, [id]);
          await c.query('DELETE FROM installation_credentials WHERE installation_id IN (SELECT id FROM installations WHERE user_id = $1)', [id]);
          await c.query('DELETE FROM installations WHERE user_id = $1', [id]);
          await c.query('DELETE FROM credentials WHERE user_id = $1', [id]);
          await c.query('DELETE FROM executions WHERE user_id = $1', [id]);
          // The user's Idempotency-Keys. starts_with, not a range: the key's index follows the
          // database's collation, which need not compare bytewise; a scan, once per deletion.
          await c.query('DELETE FROM dedupe WHERE starts_with(key, $1)', [eventDedupePrefix(id)]);
          return n > 0;
        })),
    },
    apiKeys: {
      async create(k: ApiKeyRecord) {
        await writing(() => q('INSERT INTO api_keys (id, hash, doc) VALUES ($1, $2, $3)', [k.id, k.hash, JSON.stringify(k)]));
      },
      findByHash: (hash) => cached(`key\0${hash}`, () => one<ApiKeyRecord>('SELECT doc FROM api_keys WHERE hash = $1', hash, 'alloy_key_by_hash')),
      list: async () => docs<ApiKeyRecord>(await q('SELECT doc FROM api_keys ORDER BY id')),
      delete: (id) => writing(async () => (await pool.query('DELETE FROM api_keys WHERE id = $1', [id])).rowCount! > 0),
    },
    credentials: {
      async put(c: CredentialRecord) {
        await writing(() => q(
          'INSERT INTO credentials (id, user_id, app, account, doc) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (id) DO UPDATE SET user_id = EXCLUDED.user_id, app = EXCLUDED.app, account = EXCLUDED.account, doc = EXCLUDED.doc',
          [c.id, c.userId, c.app, c.account ?? null, JSON.stringify(c)],
          'alloy_credential_put',
        ));
      },
      // A token that expires is read each time: its refresh (connections.ts) must see another process's at once.
      get: (id) => cached(`credential\0${id}`, () => one<CredentialRecord>('SELECT doc FROM credentials WHERE id = $1', id, 'alloy_credential_get'), (c) => c !== undefined && !c.expiresAt),
      listByUser: async (userId) => docs<CredentialRecord>(await q('SELECT doc FROM credentials WHERE user_id = $1 ORDER BY id', [userId])),
      findByAccount: (app, account) =>
        cached(`by-account\0${app}\0${account}`, async () => docs<CredentialRecord>(await q('SELECT doc FROM credentials WHERE app = $1 AND account = $2 ORDER BY id', [app, account], 'alloy_credential_by_account')), () => true),
      delete: (id) => writing(async () => (await pool.query('DELETE FROM credentials WHERE id = $1', [id])).rowCount! > 0),
      all: async () => docs<CredentialRecord>(await q('SELECT doc FROM credentials ORDER BY id')),
    },
    installations: {
      put: (i: InstallationRecord) =>
        writing(() => transaction(async (c) => {
          await c.query(
            'INSERT INTO installations (id, user_id, integration, status, doc) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (id) DO UPDATE SET user_id = EXCLUDED.user_id, integration = EXCLUDED.integration, status = EXCLUDED.status, doc = EXCLUDED.doc',
            [i.id, i.userId, i.integration, i.status, JSON.stringify(i)],
          );
          await c.query('DELETE FROM installation_credentials WHERE installation_id = $1', [i.id]);
          const creds = [...new Set(Object.values(i.credentials))];
          if (creds.length) await c.query('INSERT INTO installation_credentials (installation_id, credential_id) SELECT $1, unnest($2::text[]) ON CONFLICT DO NOTHING', [i.id, creds]);
        })),
      get: (id) => cached(`installation\0${id}`, () => one<InstallationRecord>('SELECT doc FROM installations WHERE id = $1', id, 'alloy_installation_get')),
      list: (filter, page) =>
        cached(
          `installations\0${JSON.stringify([filter.userId, filter.integration, filter.status, page?.limit, page?.after, page?.order])}`,
          () => listWhere<InstallationRecord>('installations', 'id, doc', { user_id: filter.userId, integration: filter.integration, status: filter.status }, page, (r) => r.doc),
          () => true,
        ),
      async byCredentials(ids) {
        if (ids.length === 0) return [];
        return cached(
          `by-credentials\0${JSON.stringify(ids)}`,
          async () =>
            docs<InstallationRecord>(
              await q(
                "SELECT i.doc FROM installations i WHERE i.status = 'active' AND i.id IN (SELECT installation_id FROM installation_credentials WHERE credential_id = ANY($1::text[])) ORDER BY i.id",
                [ids],
                'alloy_installations_by_credentials',
              ),
            ),
          () => true,
        );
      },
      delete: (id) =>
        writing(() => transaction(async (c) => {
          const n = (await c.query('DELETE FROM installations WHERE id = $1', [id])).rowCount ?? 0;
          await c.query('DELETE FROM installation_credentials WHERE installation_id = $1', [id]);
          await c.query(DELETE_CURSORS_OF, [id]);
          return n > 0;
        })),
      all: async () => docs<InstallationRecord>(await q('SELECT doc FROM installations ORDER BY id')),
    },
    executions: {
      ingest,
      async get(id) {
        const r = (await q<ExecutionDbRow>(`SELECT ${EXECUTION_COLUMNS} FROM executions WHERE id = $1`, [id], 'alloy_execution_get'))[0];
        return r ? executionOf(r) : undefined;
      },
      async getForRun(id) {
        const given = primed.get(id);
        primed.delete(id);
        const r = given ?? (await q<ForRunRow>(GET_FOR_RUN_SQL, [id], 'alloy_execution_for_run'))[0];
        if (!r) return undefined;
        const accounts: Record<string, string | undefined> = {};
        for (const [k, v] of Object.entries(r.accounts ?? {})) accounts[k] = v ?? undefined;
        return { row: executionOf(r), installation: r.installation ?? undefined, accounts };
      },
      list: (filter: ExecutionFilter, page) =>
        listWhere<ExecutionRow>('executions', EXECUTION_COLUMNS, { user_id: filter.userId, installation_id: filter.installationId, workflow: filter.workflow, status: filter.status }, page, executionOf),
      async checkpoint(id, record, opts) {
        const finisher = opts?.last && isFinalRecord(record) ? finishers.get(id) : undefined;
        if (finisher) {
          finishers.delete(id);
          const written = finisher(record);
          if (written) return written;
        }
        // A cancelled execution stays cancelled: later checkpoints only update the record.
        await q(
          "UPDATE executions SET status = CASE WHEN status = 'cancelled' THEN status ELSE $2 END, record = $3, updated_at = $4 WHERE id = $1",
          [id, record.status, JSON.stringify(record), new Date().toISOString()],
          'alloy_checkpoint',
        );
      },
      async cancel(id, at) {
        const rows = await q("UPDATE executions SET status = 'cancelled', updated_at = $2 WHERE id = $1 AND status IN ('queued', 'running') RETURNING id", [id, at]);
        return rows.length > 0;
      },
      unfinished: async () => (await q<{ id: string }>("SELECT id FROM executions WHERE status IN ('queued', 'running') ORDER BY id")).map((r) => r.id),
      countResume: async (id, by = 1) => (await q<{ resumes: number }>('UPDATE executions SET resumes = resumes + $2 WHERE id = $1 RETURNING resumes', [id, by], 'alloy_count_resume'))[0]?.resumes ?? 0,
    },
    oauthStates: {
      async put(s: OAuthStateRecord, now?: string, maxLive?: number) {
        if (now) await q('DELETE FROM oauth_states WHERE expires_at <= $1', [now]);
        const insert = 'INSERT INTO oauth_states (nonce, expires_at, doc) VALUES ($1, $2, $3)';
        const values = [s.nonce, s.expiresAt, JSON.stringify(s)];
        if (!now || maxLive === undefined) return (await q(insert, values), true);
        // The user's lock first, in its own statement: a statement's snapshot is taken when it
        // starts, so a count in the locking statement could miss a put committed while it waited.
        return transaction(async (client) => {
          await client.query('SELECT pg_advisory_xact_lock(hashtext($1), hashtext($2))', ['alloy_oauth_states', s.userId]);
          const { n } = (await client.query<{ n: number }>("SELECT count(*)::int AS n FROM oauth_states WHERE doc->>'userId' = $1 AND expires_at > $2", [s.userId, now])).rows[0];
          if (n >= maxLive) return false;
          await client.query(insert, values);
          return true;
        });
      },
      async peek(nonce, now) {
        const r = (await q<{ doc: OAuthStateRecord; expires_at: string }>('SELECT doc, expires_at FROM oauth_states WHERE nonce = $1', [nonce]))[0];
        return r && r.expires_at > now ? r.doc : undefined;
      },
      async take(nonce, now) {
        // DELETE … RETURNING: of two processes taking one nonce, exactly one gets the row.
        const r = (await q<{ doc: OAuthStateRecord; expires_at: string }>('DELETE FROM oauth_states WHERE nonce = $1 RETURNING doc, expires_at', [nonce]))[0];
        return r && r.expires_at > now ? r.doc : undefined;
      },
    },
    cursors: {
      get: async (key) => (await q<{ value: string }>('SELECT value FROM cursors WHERE key = $1', [key], 'alloy_cursor_get'))[0]?.value,
      async set(key, value) {
        await q('INSERT INTO cursors (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value', [key, value], 'alloy_cursor_set');
      },
      async compareAndSet(key, expected, next) {
        // Under READ COMMITTED a second UPDATE waits for the first's row lock, then re-checks
        // `value = expected` on the new row and matches nothing: one writer wins.
        const r =
          expected === undefined
            ? await pool.query({ name: 'alloy_cursor_create', text: 'INSERT INTO cursors (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING', values: [key, next] })
            : await pool.query({ name: 'alloy_cursor_cas', text: 'UPDATE cursors SET value = $3 WHERE key = $1 AND value = $2', values: [key, expected, next] });
        return (r.rowCount ?? 0) > 0;
      },
    },
    buckets: {
      async take(key, now) {
        // This process's own last report of the bucket is written before it is read.
        if (pendingReports.has(key)) await flushReports();
        await reportsInFlight.get(key);
        const r = (await q<{ avail: number; last_cost: number; restore_rate: number; took: number }>(TAKE_SQL, [key, now], 'alloy_bucket_take'))[0];
        if (!r || r.took > 0 || r.restore_rate <= 0) return 0;
        return waitFor(r.avail, r.last_cost, r.restore_rate);
      },
      async report(key, b) {
        const row = { key, maximum_available: b.maximumAvailable, current_available: b.currentlyAvailable, restore_rate: b.restoreRate, last_cost: b.lastCost, at_ms: Math.round(b.at) };
        // Only plain numbers ride on a checkpoint (whose failure would interrupt an execution); anything else is written alone, as before.
        if (![row.maximum_available, row.current_available, row.restore_rate, row.last_cost, row.at_ms].every((v) => typeof v === 'number' && Number.isFinite(v))) {
          await q(REPORT_SQL, [JSON.stringify([row])], 'alloy_bucket_reports');
          return;
        }
        pendingReports.set(key, row);
        reportTimer ??= setTimeout(() => void flushReports(), REPORT_WAIT_MS);
      },
    },
    async ping() {
      if (closed) return false;
      try {
        await pool.query('SELECT 1');
        return true;
      } catch {
        return false;
      }
    },
    async close() {
      if (closed) return;
      await flushReports();
      closed = true;
      // Ingests not sent yet are refused; statements in flight are waited for (pool.end).
      for (const lane of lanes.values()) {
        clearTimeout(lane.stallTimer);
        lane.stallTimer = undefined;
        pump(lane);
      }
      const l = listener;
      listener = undefined;
      listening = false;
      clearInterval(heartbeat);
      await l?.end().catch(() => {});
      await pool.end();
    },
  };
  return state;
}
