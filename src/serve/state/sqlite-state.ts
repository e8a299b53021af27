/**
 * ServeState on one SQLite file (better-sqlite3, WAL, synchronous=FULL) in the serve data
 * folder: the embedded default. Rows keep their indexed columns beside a JSON document, so
 * the same shapes map onto PostgreSQL tables (issue 12). Every write is on disk (WAL
 * fdatasync) before its promise resolves. Normal locking with a busy timeout,
 * so operator commands (`alloy serve keys create`) can write while the server runs.
 */
import Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import type { ExecutionRecord } from '../../engine/types.js';
import { AlloyError } from '../../errors.js';
import { memoryBucketStore } from './buckets.js';
import { createGroupCommit } from './sqlite-group-commit.js';
import type {
  ApiKeyRecord,
  CredentialRecord,
  ExecutionFilter,
  ExecutionRow,
  IngestInput,
  IngestResult,
  InstallationFilter,
  InstallationRecord,
  OAuthStateRecord,
  Page,
  PageRequest,
  ServeState,
  UserRecord,
} from './types.js';
import { eventDedupePrefix } from './types.js';

const SCHEMA = `
CREATE TABLE IF NOT EXISTS users (id TEXT PRIMARY KEY, doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS api_keys (id TEXT PRIMARY KEY, hash TEXT NOT NULL UNIQUE, doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS credentials (id TEXT PRIMARY KEY, user_id TEXT NOT NULL, app TEXT NOT NULL, account TEXT, doc TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS credentials_user ON credentials(user_id);
CREATE INDEX IF NOT EXISTS credentials_account ON credentials(app, account);
CREATE TABLE IF NOT EXISTS installations (id TEXT PRIMARY KEY, user_id TEXT NOT NULL, integration TEXT NOT NULL, status TEXT NOT NULL, doc TEXT NOT NULL);
DROP INDEX IF EXISTS installations_user;
DROP INDEX IF EXISTS installations_integration;
-- Each list filter ends in id, so a filtered page is read in index order with no sort
-- (run/event reads the user's active installations on every request).
CREATE INDEX IF NOT EXISTS installations_user_status ON installations(user_id, status, id);
CREATE INDEX IF NOT EXISTS installations_user_id ON installations(user_id, id);
CREATE INDEX IF NOT EXISTS installations_integration_id ON installations(integration, id);
CREATE TABLE IF NOT EXISTS installation_credentials (installation_id TEXT NOT NULL, credential_id TEXT NOT NULL, PRIMARY KEY (credential_id, installation_id));
CREATE TABLE IF NOT EXISTS executions (id TEXT PRIMARY KEY, installation_id TEXT NOT NULL, user_id TEXT NOT NULL, workflow TEXT NOT NULL, status TEXT NOT NULL, doc TEXT NOT NULL, resumes INTEGER NOT NULL DEFAULT 0);
CREATE INDEX IF NOT EXISTS executions_user ON executions(user_id, id);
-- No index by installation (dropped from files made before): an installation's executions are
-- its user's, so that filter reads the user's index (see executions.list). Every index of this
-- table is written by each ingest; this one cost about 3 of the 24 WAL pages of a 24-row ingest
-- transaction.
DROP INDEX IF EXISTS executions_installation;
CREATE INDEX IF NOT EXISTS executions_unfinished ON executions(id) WHERE status IN ('queued', 'running');
CREATE TABLE IF NOT EXISTS dedupe (key TEXT PRIMARY KEY, execution_ids TEXT NOT NULL) WITHOUT ROWID;
-- The owners of deleted installations, whose executions stay: listing those by installation
-- reads the owner's index (see executions.list) instead of scanning executions for one row.
CREATE TABLE IF NOT EXISTS deleted_installations (id TEXT PRIMARY KEY, user_id TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS oauth_states (nonce TEXT PRIMARY KEY, expires_at TEXT NOT NULL, doc TEXT NOT NULL);
-- The sweep of expired states (each OAuth start) and the per-user count of live ones read these,
-- not the whole table (a user starting flows in a loop makes it large).
CREATE INDEX IF NOT EXISTS oauth_states_expires ON oauth_states(expires_at);
CREATE INDEX IF NOT EXISTS oauth_states_user ON oauth_states(json_extract(doc, '$.userId'), expires_at);
CREATE TABLE IF NOT EXISTS cursors (key TEXT PRIMARY KEY, value TEXT NOT NULL);
`;

const MAX_PAGE = 200;

function pageOf<T extends { id: string }>(rows: { doc: string }[], limit: number, parse: (row: { doc: string }) => T = (r) => JSON.parse(r.doc) as T): Page<T> {
  const items = rows.slice(0, limit).map(parse);
  return rows.length > limit ? { items, next: items[items.length - 1].id } : { items };
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}

const limitOf = (p?: PageRequest) => Math.max(1, Math.min(MAX_PAGE, Math.trunc(p?.limit ?? 50) || 50));

export function openSqliteState(file: string): ServeState {
  mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  // Durability as in the dev event log (src/server/event-log.ts): commits run with
  // synchronous=NORMAL (no fsync inside COMMIT, which would block the event loop), and every
  // write's promise resolves only after an fdatasync of the WAL on libuv's thread pool
  // (sqlite-group-commit.ts).
  db.pragma('synchronous = NORMAL');
  db.pragma('busy_timeout = 5000');
  db.pragma('secure_delete = ON');
  // 32 MiB of page cache (SQLite's default is 2 MiB): executions are updated at each
  // checkpoint, and a cache smaller than the working set turns every update into page reads.
  db.pragma('cache_size = -32768');
  // user_version 2: executions written since keep their record in its own column; 3: their
  // `doc` holds only the fields without a column (see ExecutionColumns). An alloy from before
  // cannot read those rows; a file from a newer alloy is refused rather than misread, and
  // before the schema below touches anything (it drops and adds indexes and columns).
  const fileVersion = db.pragma('user_version', { simple: true }) as number;
  if (fileVersion > SQLITE_STATE_VERSION) {
    db.close();
    throw newerFile(file, fileVersion);
  }
  // The schema, the columns older files lack, the one-time fill and the version: one
  // transaction, so a crash or a busy lock part-way leaves the file as it was (a committed
  // table with its fill lost would hide deleted installations' executions for good). A file
  // already at this version needs none of it: its schema statements change nothing, and take
  // no write lock (a second process, an operator command, opens it while serve writes).
  const hasTable = (name: string) => db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?").get(name) !== undefined;
  const hasColumn = (name: string) => db.prepare("SELECT 1 FROM pragma_table_info('executions') WHERE name = ?").get(name) !== undefined;
  if (fileVersion === SQLITE_STATE_VERSION) db.exec(SCHEMA);
  else {
    const upgrade = db.transaction(() => {
      // Read again under the write lock: another alloy may have upgraded the file meanwhile.
      const version = db.pragma('user_version', { simple: true }) as number;
      if (version > SQLITE_STATE_VERSION) throw newerFile(file, version);
      const fillDeletedInstallations = version < 4 && hasTable('executions');
      db.exec(SCHEMA);
      // Files from before the crash-loop counter, and from before checkpoints had their own
      // columns (record, updated_at: see `checkpoint` below), gain the columns.
      if (!hasColumn('resumes')) db.exec('ALTER TABLE executions ADD COLUMN resumes INTEGER NOT NULL DEFAULT 0');
      if (!hasColumn('record')) db.exec('ALTER TABLE executions ADD COLUMN record TEXT');
      if (!hasColumn('updated_at')) db.exec('ALTER TABLE executions ADD COLUMN updated_at TEXT');
      // A file from before version 4: the installations deleted until now, found once (a scan of
      // executions, at the first start of this version only).
      if (fillDeletedInstallations) {
        db.exec('INSERT OR IGNORE INTO deleted_installations (id, user_id) SELECT installation_id, min(user_id) FROM executions WHERE installation_id NOT IN (SELECT id FROM installations) GROUP BY installation_id');
      }
      if (version < SQLITE_STATE_VERSION) db.pragma(`user_version = ${SQLITE_STATE_VERSION}`);
    });
    try {
      upgrade.immediate();
    } catch (err) {
      db.close();
      throw err;
    }
  }
  // Every write goes through one group commit: writes of one event-loop turn share a
  // transaction and an fdatasync of the WAL, and resolve only once that sync is done.
  const group = createGroupCommit(db, `${file}-wal`);
  /**
   * Reads of the tables that change rarely (users, api keys, credentials, installations) are
   * answered from memory: every run/event reads the API key, the user and their
   * installations. The cache is dropped whenever this connection writes one of those tables
   * and whenever another connection (an operator command like `alloy serve keys create`)
   * has committed anything, which `PRAGMA data_version` tells (https://www.sqlite.org/pragma.html#pragma_data_version).
   * It holds the rows' JSON text, so every caller still gets its own parsed objects.
   */
  const readCache = new Map<string, Map<string, unknown[]>>();
  const dataVersion = db.prepare('PRAGMA data_version').pluck();
  let seenVersion = dataVersion.get();
  // Checked once per event-loop turn: the reads of one turn are taken as made at its start.
  let versionChecked = false;
  // One function for every turn, not a closure per turn.
  const nextTurn = () => {
    versionChecked = false;
  };
  /** Drops what is held in memory when another connection has committed since this turn's last look. */
  const checkVersion = () => {
    if (versionChecked) return;
    versionChecked = true;
    setImmediate(nextTurn);
    const v = dataVersion.get();
    if (v !== seenVersion) {
      seenVersion = v;
      clearReadCache();
      forgetAll();
    }
  };
  // Keyed by SQL text, then by the arguments: the SQL strings are constants (their hash is
  // computed once), and a one-argument read is keyed by the argument itself, with no string
  // built per read.
  let cachedRows = 0;
  const clearReadCache = () => {
    readCache.clear();
    cachedRows = 0;
  };
  const cachedAll = (sql: string, args: unknown[]): unknown[] => {
    checkVersion();
    const key = args.length === 1 ? String(args[0]) : args.join('\0');
    let bySql = readCache.get(sql);
    if (!bySql) readCache.set(sql, (bySql = new Map()));
    let rows = bySql.get(key);
    if (!rows) {
      rows = stmt(sql).all(...args);
      if (cachedRows >= 10_000) {
        clearReadCache();
        readCache.set(sql, (bySql = new Map()));
      }
      bySql.set(key, rows);
      cachedRows++;
    }
    return rows;
  };
  /** A write, durable when it resolves; `keepsCache` only for writes of executions, dedupe keys and OAuth states. */
  const durable = <T>(fn: () => T, keepsCache = false): Promise<T> =>
    group.write(
      keepsCache
        ? fn
        : () => {
            clearReadCache();
            return fn();
          },
    );
  // Prepared once per SQL text (preparing is most of the cost of a small query).
  const cache = new Map<string, Database.Statement>();
  const stmt = (sql: string): Database.Statement => {
    let st = cache.get(sql);
    if (!st) cache.set(sql, (st = db.prepare(sql)));
    return st;
  };

  /** Filtered, cursor-paginated select over one table. */
  // The SQL of each shape of list (table, columns, which filters, order, cursor, limit), built
  // once: run/event lists the user's active installations on every request, and the same
  // string instance keeps its hash for the read cache's and the statement cache's lookups.
  const listSql = new Map<string, string>();
  const listWhere = (table: string, where: Record<string, string | undefined>, page?: PageRequest, cached = false, columns = 'doc') => {
    const limit = limitOf(page);
    const args: unknown[] = [];
    let shape = `${table}|${columns}|`;
    for (const col in where) {
      const v = where[col];
      if (v === undefined) continue;
      shape += `${col},`;
      args.push(v);
    }
    const desc = page?.order === 'desc';
    if (page?.after) args.push(page.after);
    shape += `|${desc ? 'd' : 'a'}${page?.after ? '>' : ''}|${limit}`;
    let sql = listSql.get(shape);
    if (sql === undefined) {
      const clauses: string[] = [];
      for (const col in where) if (where[col] !== undefined) clauses.push(`${col} = ?`);
      if (page?.after) clauses.push(desc ? 'id < ?' : 'id > ?');
      // The limit is written into the SQL (an integer from 1 to 201): a bound LIMIT parameter
      // measured ~40 µs more per query than a literal one with better-sqlite3 12.
      sql = `SELECT ${columns} FROM ${table}${clauses.length ? ` WHERE ${clauses.join(' AND ')}` : ''} ORDER BY id${desc ? ' DESC' : ''} LIMIT ${limit + 1}`;
      // Bounded: the shapes are few (tables x filters x order x 201 limits), never the values.
      if (listSql.size >= 4096) listSql.clear();
      listSql.set(shape, sql);
    }
    return { rows: (cached ? cachedAll(sql, args) : stmt(sql).all(...args)) as { doc: string }[], limit };
  };

  const putInstallation = (i: InstallationRecord) => {
    stmt('INSERT OR REPLACE INTO installations (id, user_id, integration, status, doc) VALUES (?, ?, ?, ?, ?)').run(i.id, i.userId, i.integration, i.status, JSON.stringify(i));
    stmt('DELETE FROM installation_credentials WHERE installation_id = ?').run(i.id);
    const ins = stmt('INSERT OR IGNORE INTO installation_credentials (installation_id, credential_id) VALUES (?, ?)');
    for (const c of Object.values(i.credentials)) ins.run(i.id, c);
  };

  // Cursor keys name their installation as `:<id>:` (instr, not LIKE: ids contain `_`).
  const deleteCursorsOf = (installationId: string) => stmt("DELETE FROM cursors WHERE instr(key, ':' || ? || ':') > 0").run(installationId);
  const deleteUser = (id: string) => {
    const n = stmt('DELETE FROM users WHERE id = ?').run(id).changes;
    for (const r of stmt('SELECT id FROM installations WHERE user_id = ?').all(id) as { id: string }[]) deleteCursorsOf(r.id);
    stmt('DELETE FROM installation_credentials WHERE installation_id IN (SELECT id FROM installations WHERE user_id = ?)').run(id);
    stmt('DELETE FROM installations WHERE user_id = ?').run(id);
    stmt('DELETE FROM credentials WHERE user_id = ?').run(id);
    stmt('DELETE FROM executions WHERE user_id = ?').run(id);
    stmt('DELETE FROM deleted_installations WHERE user_id = ?').run(id);
    // The user's Idempotency-Keys: a range of the key's b-tree (SQLite compares TEXT bytewise,
    // and `;` follows `:`).
    const prefix = eventDedupePrefix(id);
    stmt('DELETE FROM dedupe WHERE key >= ? AND key < ?').run(prefix, `${prefix.slice(0, -1)};`);
    forgetAll();
    return n > 0;
  };

  /**
   * The rows of executions just ingested, as stored, until their first checkpoint: the runner
   * reads each new execution once when it starts it, and that read is answered from here
   * instead of the WAL. Every write of an execution's row drops its entry, so a hit is always
   * the row as stored. Held as the stored columns' text, so every reader parses its own copy.
   *
   * Bounded by size, and when full new rows are not remembered (nothing is dropped): the queue
   * runs executions oldest first, so with a backlog larger than this the oldest rows are the
   * ones read next, and dropping them for the newest (as this did) made every read of such a
   * backlog a miss while each ingest still paid for an entry. With no runner reading them (an
   * ingest-only bench, a stopped runner) the entries also lived long enough to be promoted and
   * then collected from the old generation (docs/serve-api.md, eighth pass (a)).
   */
  const fresh = new Map<string, ExecutionColumns>();
  let freshBytes = 0;
  const FRESH_MAX_BYTES = 8 * 1024 * 1024;
  /** What an entry costs beyond its two JSON texts (the object, its short strings, the map's slot). */
  const FRESH_ENTRY_BYTES = 256;
  const sizeOfTexts = (doc: string, record: string | null) => FRESH_ENTRY_BYTES + doc.length + (record?.length ?? 0);
  const sizeOf = (c: ExecutionColumns) => sizeOfTexts(c.doc, c.record);
  const forget = (id: string) => {
    const c = fresh.get(id);
    if (c === undefined) return;
    fresh.delete(id);
    freshBytes -= sizeOf(c);
  };
  /** Whether a row of `size` would be remembered (checked before its columns are built). */
  const hasRoom = (size: number) => size <= FRESH_MAX_BYTES / 64 && freshBytes + size <= FRESH_MAX_BYTES;
  const remember = (id: string, c: ExecutionColumns, size: number) => {
    fresh.set(id, c);
    freshBytes += size;
  };
  const forgetAll = () => {
    fresh.clear();
    freshBytes = 0;
  };

  /** An execution's columns as stored (and remembered in `fresh`). */
  const columnsOf = (e: ExecutionRow, d: ExecutionDoc): ExecutionColumns => ({
    id: e.id,
    installation_id: e.installationId,
    user_id: e.userId,
    workflow: e.workflow,
    doc: d.doc,
    record: d.record,
    updated_at: e.updatedAt,
    status: e.status,
  });
  const insertExecution = stmt('INSERT INTO executions (id, installation_id, user_id, workflow, status, doc, record, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)');
  // The key first, and read back only when it was there: a new key (the usual case) is one
  // b-tree descent, not a lookup and then an insert.
  const insertDedupe = stmt('INSERT INTO dedupe (key, execution_ids) VALUES (?, ?) ON CONFLICT (key) DO NOTHING');
  const selectDedupe = stmt('SELECT execution_ids FROM dedupe WHERE key = ?');
  const ingest = (input: IngestInput, docs: ExecutionDoc[]): IngestResult => {
    const ids = input.executions.map((e) => e.id);
    if (input.dedupeKey && insertDedupe.run(input.dedupeKey, JSON.stringify(ids)).changes === 0) {
      const seen = selectDedupe.get(input.dedupeKey) as { execution_ids: string };
      return { duplicate: true, executionIds: JSON.parse(seen.execution_ids) };
    }
    input.executions.forEach((e, i) => insertExecution.run(e.id, e.installationId, e.userId, e.workflow, e.status, docs[i].doc, docs[i].record, e.updatedAt));
    return { duplicate: false, executionIds: ids };
  };

  /** The user whose executions an installation's are (see executions.list). */
  const ownerOf = (installationId: string): string | undefined =>
    ((stmt('SELECT user_id FROM installations WHERE id = ?').get(installationId) ?? stmt('SELECT user_id FROM deleted_installations WHERE id = ?').get(installationId)) as { user_id: string } | undefined)?.user_id;

  const deleteInstallation = (id: string) => {
    stmt('INSERT OR IGNORE INTO deleted_installations (id, user_id) SELECT id, user_id FROM installations WHERE id = ?').run(id);
    const n = stmt('DELETE FROM installations WHERE id = ?').run(id).changes;
    stmt('DELETE FROM installation_credentials WHERE installation_id = ?').run(id);
    deleteCursorsOf(id);
    return n > 0;
  };

  const EXECUTION_COLUMNS = 'id, installation_id, user_id, workflow, doc, record, updated_at, status';
  const getExecution = (id: string): ExecutionRow | undefined => {
    checkVersion();
    const r = fresh.get(id) ?? (stmt(`SELECT ${EXECUTION_COLUMNS} FROM executions WHERE id = ?`).get(id) as ExecutionColumns | undefined);
    return r && executionOf(r);
  };
  const writeExecution = (e: ExecutionRow) => {
    forget(e.id);
    const d = executionDoc(e);
    return stmt('UPDATE executions SET status = ?, doc = ?, record = ?, updated_at = ? WHERE id = ?').run(e.status, d.doc, d.record, e.updatedAt, e.id);
  };

  // The record goes to its own column: a checkpoint serializes only the record, and SQLite
  // neither parses nor rewrites the row's JSON (json_set on `doc` measured ~8 µs more per
  // checkpoint, most of a small checkpoint's statement). A cancelled execution stays
  // cancelled: the engine's later checkpoints only update the record.
  const checkpointStmt = stmt(
    `UPDATE executions SET status = CASE WHEN status = 'cancelled' THEN 'cancelled' ELSE ? END, record = ?, updated_at = ? WHERE id = ?`,
  );
  const checkpoint = (id: string, record: ExecutionRecord) => {
    forget(id);
    checkpointStmt.run(record.status, JSON.stringify(record), new Date().toISOString(), id);
  };
  const cancel = (id: string, at: string) => {
    const e = getExecution(id);
    if (!e || (e.status !== 'queued' && e.status !== 'running')) return false;
    writeExecution({ ...e, status: 'cancelled', updatedAt: at });
    return true;
  };
  const take = (nonce: string, now: string) => {
    const row = stmt('SELECT doc, expires_at FROM oauth_states WHERE nonce = ?').get(nonce) as { doc: string; expires_at: string } | undefined;
    if (!row) return undefined;
    stmt('DELETE FROM oauth_states WHERE nonce = ?').run(nonce);
    return row.expires_at > now ? (JSON.parse(row.doc) as OAuthStateRecord) : undefined;
  };

  const one = <T>(sql: string, id: string): T | undefined => {
    const row = stmt(sql).get(id) as { doc: string } | undefined;
    return row ? (JSON.parse(row.doc) as T) : undefined;
  };
  /**
   * A cached row's record, parsed once and frozen: every request reads the same API key, user
   * and installations, and parsing their JSON each time was most of a cached read. Callers
   * copy a record before changing it (ServeState's rule), which freezing enforces here.
   */
  const parsedRows = new WeakMap<object, unknown>();
  const shared = <T>(row: { doc: string }): T => {
    let v = parsedRows.get(row);
    if (v === undefined) parsedRows.set(row, (v = deepFreeze(JSON.parse(row.doc))));
    return v as T;
  };
  /** `one` over a cached table (see cachedAll). */
  const cachedOne = <T>(sql: string, id: string): T | undefined => {
    const row = cachedAll(sql, [id])[0] as { doc: string } | undefined;
    return row ? shared<T>(row) : undefined;
  };
  const docs = <T>(rows: unknown[]) => (rows as { doc: string }[]).map((r) => JSON.parse(r.doc) as T);
  const sharedDocs = <T>(rows: unknown[]) => (rows as { doc: string }[]).map((r) => shared<T>(r));
  let closed = false;

  return {
    users: {
      async create(u: UserRecord) {
        await durable(() => stmt('INSERT INTO users (id, doc) VALUES (?, ?)').run(u.id, JSON.stringify(u)));
        return u;
      },
      async get(id) {
        return cachedOne<UserRecord>('SELECT doc FROM users WHERE id = ?', id);
      },
      async list(page) {
        const { rows, limit } = listWhere('users', {}, page);
        return pageOf<UserRecord>(rows, limit);
      },
      async delete(id) {
        return durable(() => deleteUser(id));
      },
    },
    apiKeys: {
      async create(k: ApiKeyRecord) {
        await durable(() => stmt('INSERT INTO api_keys (id, hash, doc) VALUES (?, ?, ?)').run(k.id, k.hash, JSON.stringify(k)));
      },
      async findByHash(hash) {
        return cachedOne<ApiKeyRecord>('SELECT doc FROM api_keys WHERE hash = ?', hash);
      },
      async list() {
        return docs<ApiKeyRecord>(stmt('SELECT doc FROM api_keys ORDER BY id').all());
      },
      async delete(id) {
        return durable(() => stmt('DELETE FROM api_keys WHERE id = ?').run(id).changes > 0);
      },
    },
    credentials: {
      async put(c: CredentialRecord) {
        await durable(() => stmt('INSERT OR REPLACE INTO credentials (id, user_id, app, account, doc) VALUES (?, ?, ?, ?, ?)').run(c.id, c.userId, c.app, c.account ?? null, JSON.stringify(c)));
      },
      async get(id) {
        return cachedOne<CredentialRecord>('SELECT doc FROM credentials WHERE id = ?', id);
      },
      async listByUser(userId) {
        return docs<CredentialRecord>(stmt('SELECT doc FROM credentials WHERE user_id = ? ORDER BY id').all(userId));
      },
      async findByAccount(app, account) {
        return sharedDocs<CredentialRecord>(cachedAll('SELECT doc FROM credentials WHERE app = ? AND account = ? ORDER BY id', [app, account]));
      },
      async delete(id) {
        return durable(() => stmt('DELETE FROM credentials WHERE id = ?').run(id).changes > 0);
      },
      async all() {
        return docs<CredentialRecord>(stmt('SELECT doc FROM credentials ORDER BY id').all());
      },
    },
    installations: {
      async put(i) {
        await durable(() => putInstallation(i));
      },
      async get(id) {
        return cachedOne<InstallationRecord>('SELECT doc FROM installations WHERE id = ?', id);
      },
      async list(filter: InstallationFilter, page) {
        const { rows, limit } = listWhere('installations', { user_id: filter.userId, integration: filter.integration, status: filter.status }, page, true);
        return pageOf<InstallationRecord>(rows, limit, shared);
      },
      async byCredentials(ids) {
        if (ids.length === 0) return [];
        const rows = cachedAll(`SELECT DISTINCT i.doc AS doc, i.id AS id FROM installations i JOIN installation_credentials c ON c.installation_id = i.id WHERE c.credential_id IN (${ids.map(() => '?').join(',')}) AND i.status = 'active' ORDER BY i.id`, ids);
        return sharedDocs<InstallationRecord>(rows);
      },
      async delete(id) {
        return durable(() => deleteInstallation(id));
      },
      async all() {
        return docs<InstallationRecord>(stmt('SELECT doc FROM installations ORDER BY id').all());
      },
    },
    executions: {
      async ingest(input) {
        // Remembered in the write itself, right after the insert: the rows are visible from the
        // commit on, before the sync ends, and a checkpoint or cancel in between forgets them in
        // a later write (remembered after the sync, the stale row came back over it). The batch
        // may run twice (see sqlite-group-commit.ts): a second run forgets what the first
        // remembered (new ids are not remembered before their first run); a failed write forgets.
        let ran = false;
        try {
          return await durable(() => {
            if (ran) for (const e of input.executions) forget(e.id);
            ran = true;
            const docs = input.executions.map(executionDoc);
            const result = ingest(input, docs);
            if (!result.duplicate) {
              for (let i = 0; i < docs.length; i++) {
                const id = input.executions[i].id;
                const size = sizeOfTexts(docs[i].doc, docs[i].record);
                if (hasRoom(size)) remember(id, columnsOf(input.executions[i], docs[i]), size);
              }
            }
            return result;
          }, true);
        } catch (err) {
          for (const e of input.executions) forget(e.id);
          throw err;
        }
      },
      async get(id) {
        return getExecution(id);
      },
      async list(filter: ExecutionFilter, page) {
        // By installation: read through its user's index (executions_user), as the table has no
        // index by installation. The user is the installation's owner, or for an installation
        // deleted since (its executions stay), the owner kept in deleted_installations.
        let userId = filter.userId;
        if (filter.installationId !== undefined && userId === undefined) {
          userId = ownerOf(filter.installationId);
          if (userId === undefined) return { items: [] };
        }
        const { rows, limit } = listWhere('executions', { user_id: userId, installation_id: filter.installationId, workflow: filter.workflow, status: filter.status }, page, false, EXECUTION_COLUMNS);
        return pageOf<ExecutionRow>(rows, limit, (r) => executionOf(r as unknown as ExecutionColumns));
      },
      async checkpoint(id, record) {
        await durable(() => checkpoint(id, record), true);
      },
      async cancel(id, at) {
        return durable(() => cancel(id, at), true);
      },
      async unfinished() {
        return (stmt("SELECT id FROM executions WHERE status IN ('queued', 'running') ORDER BY id").all() as { id: string }[]).map((r) => r.id);
      },
      async countResume(id, by = 1) {
        return durable(() => (stmt('UPDATE executions SET resumes = resumes + ? WHERE id = ? RETURNING resumes').get(by, id) as { resumes: number } | undefined)?.resumes ?? 0, true);
      },
    },
    oauthStates: {
      async put(s, now, maxLive) {
        // One connection, one transaction: the count and the insert are not interleaved with another put.
        return durable(() => {
          if (now) stmt('DELETE FROM oauth_states WHERE expires_at <= ?').run(now);
          if (now && maxLive !== undefined) {
            const { n } = stmt("SELECT count(*) AS n FROM oauth_states WHERE json_extract(doc, '$.userId') = ? AND expires_at > ?").get(s.userId, now) as { n: number };
            if (n >= maxLive) return false;
          }
          stmt('INSERT INTO oauth_states (nonce, expires_at, doc) VALUES (?, ?, ?)').run(s.nonce, s.expiresAt, JSON.stringify(s));
          return true;
        }, true);
      },
      async take(nonce, now) {
        return durable(() => take(nonce, now), true);
      },
      async peek(nonce, now) {
        const row = stmt('SELECT doc, expires_at FROM oauth_states WHERE nonce = ?').get(nonce) as { doc: string; expires_at: string } | undefined;
        return row && row.expires_at > now ? (JSON.parse(row.doc) as OAuthStateRecord) : undefined;
      },
    },
    // One process owns the SQLite file, so its buckets can stay in memory.
    buckets: memoryBucketStore(),
    cursors: {
      async get(key) {
        return (stmt('SELECT value FROM cursors WHERE key = ?').get(key) as { value: string } | undefined)?.value;
      },
      async set(key, value) {
        await durable(() => stmt('INSERT INTO cursors (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value').run(key, value));
      },
      async compareAndSet(key, expected, next) {
        // One statement each: SQLite serializes writers, so the check and the write are one step.
        return durable(() =>
          expected === undefined
            ? stmt('INSERT INTO cursors (key, value) VALUES (?, ?) ON CONFLICT(key) DO NOTHING').run(key, next).changes > 0
            : stmt('UPDATE cursors SET value = ? WHERE key = ? AND value = ?').run(next, key, expected).changes > 0,
        );
      },
    },
    async ping() {
      if (closed) return false;
      try {
        stmt('SELECT 1').get();
        return true;
      } catch {
        return false;
      }
    },
    async close() {
      if (closed) return;
      closed = true;
      await group.close();
      db.close();
    },
  };
}

/**
 * The state file's format (PRAGMA user_version): 2, executions keep their record in its own
 * column; 3, an execution's `doc` holds only the fields that have no column of their own; 4,
 * deleting an installation records its owner in deleted_installations (an older alloy would
 * delete without it, and listing by that installation would then find nothing).
 */
const SQLITE_STATE_VERSION = 4;

const newerFile = (file: string, version: number) =>
  new AlloyError('E_STATE_NEWER', `${file} was written by a newer alloy (state version ${version}; this alloy knows ${SQLITE_STATE_VERSION})`, {
    hint: 'Run the alloy version that wrote it (or newer), or point --data at another folder.',
    exitCode: 2,
  });

/**
 * An execution's row as stored. The columns `id`, `installation_id`, `user_id`, `workflow`,
 * `status` and `updated_at` are the row's fields of those names; `record` is its record (a
 * checkpoint rewrites only it, `status` and `updated_at`); `doc` is the JSON of the rest
 * (integration, version, createdAt, rerunOf), written at ingest and by a cancel. Rows from
 * older files are read too: state version 2 wrote the whole row but its record into `doc`, and
 * before the record column (`record` NULL) `doc` held the whole row with its record.
 */
type ExecutionColumns = { id: string; installation_id: string; user_id: string; workflow: string; doc: string; record: string | null; updated_at: string | null; status: string };

/** The two JSON texts of an execution's row: the fields without a column of their own, and the record. */
interface ExecutionDoc {
  doc: string;
  record: string;
}
function executionDoc(e: ExecutionRow): ExecutionDoc {
  // Each byte here is written twice (WAL, then the database) and fsynced: with the fields that
  // have columns left out a row is about a third shorter (a 24-row ingest transaction wrote 19.4
  // WAL pages instead of 20.6).
  // Named one by one: a rest pattern copies the row through V8's generic property path.
  const rest = e.rerunOf === undefined ? { integration: e.integration, version: e.version, createdAt: e.createdAt } : { integration: e.integration, version: e.version, rerunOf: e.rerunOf, createdAt: e.createdAt };
  return { doc: JSON.stringify(rest), record: JSON.stringify(e.record) };
}
function executionOf(r: ExecutionColumns): ExecutionRow {
  const doc = JSON.parse(r.doc) as Record<string, unknown>;
  const status = r.status as ExecutionRow['status'];
  // Before the record column: the whole row, record included.
  if (r.record === null) return { ...(doc as unknown as ExecutionRow), status };
  const record = JSON.parse(r.record) as ExecutionRecord;
  // State version 2: the row without its record.
  if (typeof doc.id === 'string') return { ...(doc as unknown as ExecutionRow), status, record, updatedAt: r.updated_at! };
  return { id: r.id, installationId: r.installation_id, userId: r.user_id, ...(doc as Pick<ExecutionRow, 'integration' | 'version' | 'createdAt' | 'rerunOf'>), workflow: r.workflow, status, record, updatedAt: r.updated_at! };
}
