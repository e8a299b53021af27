/**
 * The durable event log: one SQLite file (better-sqlite3, WAL) holding every accepted
 * inbound delivery, the executions it started (the engine's record as JSON plus indexed
 * columns), the queue of unfinished executions, and a log of finished ones.
 *
 * Durability (`synchronous: 'full'`, the default): an acknowledged write survives a power
 * loss, not only a process crash. Every write goes through a group commit: writes queued in
 * the same event-loop turn share one transaction, and each caller's promise resolves only
 * once that transaction is on disk. Ingest answers 202 after its promise resolves.
 * SQLite's own `synchronous=FULL` would fsync the WAL inside each COMMIT, blocking the event
 * loop; instead the connection runs with `synchronous=NORMAL` (which, under WAL, already
 * syncs the WAL before checkpoints and the database after them) and the runtime does FULL's
 * extra step itself: `fdatasync` of the WAL file after each commit, on libuv's thread pool,
 * before any caller of that batch is answered. So the event loop keeps accepting requests
 * while the disk syncs (https://www.sqlite.org/pragma.html#pragma_synchronous,
 * https://www.sqlite.org/wal.html). `synchronous: 'normal'` skips that sync: commits survive
 * `kill -9` but may be lost if the machine goes down.
 *
 * Bodies of BODY_FILE_MIN_BYTES or more are kept in a file of their own beside the database
 * (`<file>-bodies`, append-only), synced before the transaction that refers to them commits,
 * so SQLite writes each such body once instead of twice (into the WAL, then again at the
 * checkpoint). With `compressBodies`, bodies of COMPRESS_MIN_BYTES or more are stored
 * deflated instead. Either way readers get the exact bytes received (see appendDelivery).
 *
 * The queue is the set of executions whose status is `queued` or `running` (a partial
 * index); one process owns the file at a time, so scheduling is in memory, seeded from
 * that index when the log opens.
 *
 * One writer: the connection uses `locking_mode=EXCLUSIVE`, so the first write takes a
 * file lock the OS releases when the process dies (kill -9 included) and a second process
 * gets SQLITE_BUSY, which becomes a StoreError naming the other process (from the pid file
 * written beside the database).
 */
import Database from 'better-sqlite3';
import { closeSync, constants as fsConstants, existsSync, fdatasync, fdatasyncSync, fstatSync, fsyncSync, mkdirSync, openSync, readdir, readFileSync, readSync, renameSync, rm, rmSync, writevSync } from 'node:fs';
import { writeFileSafeSync } from '../core/safe-fs.js';
import { basename, dirname, join } from 'node:path';
import { createDeflateRaw, deflateRaw, deflateRawSync, inflateRawSync } from 'node:zlib';
import { once } from 'node:events';
import { promisify } from 'node:util';
import { randomBytes } from 'node:crypto';
import { StoreError } from '../errors.js';

/** Where a record read by getExecution says its event could not be read (see withEvent). */
export const EVENT_UNREADABLE = Symbol('alloy.eventUnreadable');

/** Statuses after which an execution never runs again (the engine's ExecutionStatus). */
export const TERMINAL_STATUSES: readonly string[] = ['succeeded', 'failed', 'filtered'];

export function isTerminal(status: string): boolean {
  return TERMINAL_STATUSES.includes(status);
}

export interface DeliveryInput {
  id: string;
  /** `event`, `shopify`, `webhook:<name>`, or `replay`. */
  source: string;
  /** Event name or app topic. */
  name: string;
  receivedAt: number;
  /** Unique delivery id from the sender (e.g. `shopify:<X-Shopify-Webhook-Id>`); duplicates are refused. */
  dedupeKey?: string;
  userId?: string;
  /** Lower-cased headers with credentials removed (see redactHeaders). */
  headers: Record<string, string>;
  body: Buffer;
  /** `shopify-hmac`, `hmac-sha256`, `standard-webhooks`, or `none` (unsigned route). */
  verification: string;
}

export interface DeliveryRow extends Omit<DeliveryInput, 'body'> {
  seq: number;
  body: Buffer;
}

export interface NewExecution {
  id: string;
  workflow: string;
  userId?: string;
  replayOf?: string;
  /** The initial execution record (status queued). */
  record: StoredRecord;
  /**
   * Where `record.event` comes from when it is not stored in the record: `body` (the
   * delivery's JSON body) or `body.data` (its `data` field, for the event API). Storing the
   * event once, in the delivery, keeps every checkpoint small.
   */
  eventRef?: EventRef;
}

export type EventRef = 'body' | 'body.data';

/** What the log needs from an execution record; the rest is the engine's business. */
export interface StoredRecord {
  id: string;
  status: string;
  [key: string]: unknown;
}

export interface ExecutionRow {
  seq: number;
  id: string;
  deliveryId: string;
  workflow: string;
  status: string;
  userId?: string;
  replayOf?: string;
  createdAt: number;
  updatedAt: number;
  finishedAt?: number;
  record: StoredRecord;
}

export interface LogEntry {
  seq: number;
  time: number;
  kind: string;
  executionId?: string;
  workflow?: string;
  status?: string;
  message: string;
  data?: Record<string, unknown>;
}

export interface ExecutionFilter {
  status?: string;
  workflow?: string;
  limit?: number;
  /** Only executions with seq below this (paging backwards). */
  before?: number;
  /** Created at or after this time (ms since the epoch). */
  since?: number;
  /** Created before this time (ms since the epoch). */
  until?: number;
  /** Ids starting with this text (search by id). */
  idPrefix?: string;
}

export interface AppendResult {
  duplicate: boolean;
  deliveryId: string;
  executionIds: string[];
}

export interface EventLogOptions {
  file: string;
  clock?: () => number;
  /** `full` (default: acknowledged writes survive power loss) or `normal` (they survive a crash): see the file comment. */
  synchronous?: 'full' | 'normal';
  /** Open for reading only (CLI commands when no server runs): the file must exist; the lock is still taken while open. */
  readonly?: boolean;
  /**
   * Store bodies of COMPRESS_MIN_BYTES or more deflated, in the row (default false: bodies of
   * BODY_FILE_MIN_BYTES or more go to the body file as received instead; measured with wrk, a
   * 28 KB Shopify order cost about a quarter more CPU per delivery with deflate than without,
   * issue 13; files keep either encoding readable). True trades that CPU for a smaller file.
   */
  compressBodies?: boolean;
  /**
   * Start from an empty log (`alloy dev --fresh`): the old file is checked to be free (the
   * lock), then removed with its WAL, and a new one created. Deleting rows instead took
   * seconds for a long history and never shrank the file.
   */
  fresh?: boolean;
}

/** SQLite page size of a new event log file (bytes). */
export const PAGE_SIZE = 16 * 1024;
/** Bodies from this size up are stored deflated; smaller ones gain too little to pay for it. */
export const COMPRESS_MIN_BYTES = 1024;
/**
 * Bodies from this size up (a 28 KB Shopify order) are appended to the body file (`<file>-bodies`)
 * instead of the database, unless `compressBodies` is set. Smaller ones (custom events) stay in the
 * row: they cost less than a page there, and the body file's own sync would cost more (issue 13).
 */
export const BODY_FILE_MIN_BYTES = 8 * 1024;
/** `deliveries.body_encoding` of a body kept in the body file: `file:<file id>:<offset>:<length>` (the body column is empty). */
const BODY_FILE_PREFIX = 'file:';
/**
 * The body file starts with `alloy-bodies-1:<16 hex id>\n` (32 bytes); rows name that id, so a
 * body file replaced or recreated by hand reads as damaged instead of giving other bytes.
 */
const BODY_FILE_MAGIC = 'alloy-bodies-1:';
const BODY_FILE_HEADER_BYTES = 32;
/** O_NOFOLLOW where the platform has it: the body file is never opened through a symlink. */
const O_NOFOLLOW = fsConstants.O_NOFOLLOW ?? 0;
const EMPTY_BODY = Buffer.alloc(0);
/** `deliveries.body_encoding` of a deflated body (RFC 1951 raw deflate); NULL means the bytes as received. */
const DEFLATE_RAW = 'deflate-raw';
/**
 * Final records whose JSON is this long or longer are stored deflated (`executions.record_encoding`,
 * schema 3): an `each` over 10,000 items is megabytes of step records repeating the same keys, a
 * tenth of that deflated, and the deflate runs on libuv's thread pool, off the event loop.
 * Ordinary records (a few KB: the event lives in the delivery) stay JSON text.
 */
export const RECORD_COMPRESS_MIN_BYTES = 64 * 1024;
const deflateRawAsync = promisify(deflateRaw);

const SCHEMA = `
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS deliveries (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  id TEXT NOT NULL UNIQUE,
  source TEXT NOT NULL,
  name TEXT NOT NULL,
  received_at INTEGER NOT NULL,
  dedupe_key TEXT UNIQUE,
  user_id TEXT,
  headers TEXT NOT NULL,
  body BLOB NOT NULL,
  verification TEXT NOT NULL,
  body_encoding TEXT
);
CREATE TABLE IF NOT EXISTS executions (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  id TEXT NOT NULL UNIQUE,
  delivery_id TEXT NOT NULL,
  workflow TEXT NOT NULL,
  status TEXT NOT NULL,
  user_id TEXT,
  replay_of TEXT,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  finished_at INTEGER,
  event_ref TEXT,
  record TEXT NOT NULL,
  -- NULL: record is JSON text; 'deflate-raw': deflated JSON (schema 3, large final records).
  record_encoding TEXT
);
CREATE INDEX IF NOT EXISTS executions_status ON executions(status, seq);
CREATE INDEX IF NOT EXISTS executions_workflow ON executions(workflow, seq);
CREATE INDEX IF NOT EXISTS executions_delivery ON executions(delivery_id);
-- The workflow's bare name (after "integration/"), for \`executions --workflow <name>\` (schema 2).
CREATE INDEX IF NOT EXISTS executions_workflow_name ON executions(substr(workflow, instr(workflow, '/') + 1), seq);
CREATE INDEX IF NOT EXISTS executions_queue ON executions(seq) WHERE status IN ('queued', 'running');
-- Progress of unfinished executions, one row per step record changed since the record column
-- was last written whole (schema 2): a checkpoint writes what changed, not the whole record.
-- The final save writes the whole record and deletes these rows.
CREATE TABLE IF NOT EXISTS execution_steps (
  execution_id TEXT NOT NULL,
  path TEXT NOT NULL,
  step TEXT NOT NULL,
  PRIMARY KEY (execution_id, path)
);
CREATE TABLE IF NOT EXISTS log (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  time INTEGER NOT NULL,
  kind TEXT NOT NULL,
  execution_id TEXT,
  workflow TEXT,
  status TEXT,
  message TEXT NOT NULL,
  data TEXT
);
`;

const SCHEMA_VERSION = '3';
/** The expression executions_workflow_name indexes: queries must spell it the same way to use it. */
const WORKFLOW_NAME = "substr(workflow, instr(workflow, '/') + 1)";

interface PendingWrite {
  run: () => unknown;
  resolve: (value: any) => void;
  reject: (err: unknown) => void;
}

export class EventLog {
  readonly file: string;
  readonly readonly: boolean;
  private readonly db: Database.Database;
  private readonly clock: () => number;
  private pending: PendingWrite[] = [];
  private flushScheduled = false;
  /** The WAL file, synced after each group commit when durability is `full`. */
  private walFd: number | undefined;
  private syncsInFlight = 0;
  private syncing = false;
  private runBatch: Database.Transaction<(items: PendingWrite[]) => { ok: boolean; value: unknown }[]> | undefined;
  /** Writes arrived while a sync ran: flush() commits them when it ends. */
  private flushAfterSync = false;
  /** Settle functions of committed batches waiting for the next fdatasync. */
  private syncWaiters: ((syncError?: unknown) => void)[] = [];
  private closed = false;
  private readonly stmts: ReturnType<EventLog['prepare']>;
  /** event_ref of unfinished executions, so checkpoints need no read. */
  private readonly eventRefs = new Map<string, EventRef>();
  private readonly compressBodies: boolean;
  private readonly syncBodies: boolean;
  /** The body file (`<file>-bodies`), opened on first use; its end, where the next body goes. */
  private bodyFd: number | undefined;
  private bodyEnd = 0;
  /** The id in the body file's header (read or written when the file is opened). */
  private bodyFileId: string | undefined;
  /** Appended bodies waiting for the next fdatasync of the body file (one runs at a time). */
  private bodySyncWaiters: ((err?: unknown) => void)[] = [];
  private bodySyncing = false;
  private bodySyncScheduled = false;
  /** Bodies appended this turn, written together (from unwrittenAt on) before their sync. */
  private unwritten: Buffer[] = [];
  private unwrittenAt = 0;
  /** False only for a file from before body_encoding, opened read-only (it cannot be migrated then). */
  private hasBodyEncoding = true;
  /** False only for a file from before execution_steps, opened read-only. */
  private hasStepsTable = true;

  constructor(options: EventLogOptions) {
    this.file = options.file;
    this.readonly = options.readonly ?? false;
    this.clock = options.clock ?? Date.now;
    this.compressBodies = options.compressBodies ?? false;
    this.syncBodies = options.synchronous !== 'normal';
    if (!this.readonly) mkdirSync(dirname(this.file), { recursive: true });
    try {
      // Even "read-only" opens read-write: after a kill -9 the WAL must be recovered by whoever opens next.
      this.db = new Database(this.file, { fileMustExist: this.readonly, timeout: 0 });
    } catch (err) {
      throw new StoreError('E_EVENT_LOG_OPEN', `cannot open the event log ${this.file}: ${(err as Error).message}`, {
        hint: this.readonly ? 'start `alloy dev` once to create it' : 'check the folder is writable',
        cause: err,
      });
    }
    try {
      this.db.pragma('locking_mode = EXCLUSIVE');
      // A new file gets 16 KB pages (an existing one keeps its size: SQLite cannot change it under WAL).
      // A 28 KB Shopify order then spans 2 overflow pages instead of 7, so the commit and the
      // checkpoint make a third of the write/read syscalls: about 25 % less CPU a stored delivery
      // (issue 13, test in docs/runtime.md). Small events cost the same as at 4 KB; 32 KB cost more.
      if (!this.readonly) this.db.pragma(`page_size = ${PAGE_SIZE}`);
      this.db.pragma('journal_mode = WAL');
      this.db.pragma('synchronous = NORMAL');
      // Take the exclusive lock now (the first write acquires it), so a second process fails here, at open.
      this.db.exec('BEGIN EXCLUSIVE; COMMIT;');
      if (!this.readonly) {
        this.db.exec(SCHEMA);
        // Schema 2 added execution_steps and executions_workflow_name (created above on older files too).
        this.db
          .prepare('INSERT INTO meta(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value')
          .run('schema', SCHEMA_VERSION);
        // Files from before body_encoding (schema 1) gain the column; their bodies stay as they are (NULL = raw).
        if (!this.columnExists('deliveries', 'body_encoding')) this.db.exec('ALTER TABLE deliveries ADD COLUMN body_encoding TEXT');
        // How many times an unfinished execution was resumed after the process died (crash-loop guard).
        if (!this.columnExists('executions', 'resumes')) this.db.exec('ALTER TABLE executions ADD COLUMN resumes INTEGER NOT NULL DEFAULT 0');
        // Schema 3: large final records stored deflated; older rows are JSON text (NULL).
        if (!this.columnExists('executions', 'record_encoding')) this.db.exec('ALTER TABLE executions ADD COLUMN record_encoding TEXT');
        writeFileSafeSync(lockInfoFile(this.file), JSON.stringify({ pid: process.pid, startedAt: this.clock() }));
        // The WAL exists from the first write and stays while the connection is open (exclusive mode).
        if (options.synchronous !== 'normal') this.walFd = openSync(`${this.file}-wal`, 'r');
      } else {
        this.db.pragma('query_only = ON');
        this.db.prepare('SELECT 1 FROM executions LIMIT 1').get();
        this.hasBodyEncoding = this.columnExists('deliveries', 'body_encoding');
        this.hasStepsTable = this.db.prepare(`SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'execution_steps'`).get() !== undefined;
      }
    } catch (err) {
      try {
        this.db.close();
      } catch {
        /* already failing */
      }
      if ((err as { code?: string }).code === 'SQLITE_BUSY') {
        const owner = readLockInfo(this.file);
        throw new StoreError(
          'E_EVENT_LOG_LOCKED',
          `the event log ${this.file} is in use by another process${owner ? ` (pid ${owner.pid})` : ''}`,
          {
            hint: 'stop the other `alloy dev` first, or point this one at another project folder',
            details: owner ? { pid: owner.pid } : undefined,
          },
        );
      }
      const damaged = isDamaged(err);
      throw new StoreError('E_EVENT_LOG_OPEN', `cannot open the event log ${this.file}: ${(err as Error).message}`, {
        ...(damaged ? { hint: '`alloy dev --fresh` sets the damaged log aside (kept next to it as .damaged-<pid>-<time>) and starts a new one' } : {}),
        cause: err,
      });
    }
    this.stmts = this.prepare();
  }

  private columnExists(table: string, column: string): boolean {
    return this.db.prepare('SELECT 1 FROM pragma_table_info(?) WHERE name = ?').get(table, column) !== undefined;
  }

  /** Executions with rows in execution_steps (written by this process or found when read). */
  private readonly stepRows = new Set<string>();
  /** Progress not yet written, by execution id (see saveProgress). */
  private readonly progress = new Map<string, PendingProgress>();

  private prepare() {
    const db = this.db;
    const encoding = this.hasBodyEncoding ? 'body_encoding' : 'NULL AS body_encoding';
    const ro = this.readonly;
    const w = <T extends unknown[]>(sql: string) => (ro ? undefined : db.prepare<T>(sql));
    return {
      insertDelivery: w<unknown[]>(
        `INSERT INTO deliveries(id, source, name, received_at, dedupe_key, user_id, headers, body, verification, body_encoding)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(dedupe_key) DO NOTHING`,
      ),
      insertExecution: w<unknown[]>(
        `INSERT INTO executions(id, delivery_id, workflow, status, user_id, replay_of, created_at, updated_at, event_ref, record)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      ),
      updateExecution: w<unknown[]>(
        `UPDATE executions SET status = ?, updated_at = ?, finished_at = ?, record = ?, record_encoding = ? WHERE id = ?`,
      ),
      updateProgress: w<unknown[]>(`UPDATE executions SET status = ?, updated_at = ?, record = ?, record_encoding = NULL WHERE id = ?`),
      upsertStep: w<unknown[]>(
        `INSERT INTO execution_steps(execution_id, path, step) VALUES (?, ?, ?)
         ON CONFLICT(execution_id, path) DO UPDATE SET step = excluded.step`,
      ),
      deleteSteps: w<[string]>(`DELETE FROM execution_steps WHERE execution_id = ?`),
      insertLog: w<unknown[]>(
        `INSERT INTO log(time, kind, execution_id, workflow, status, message, data) VALUES (?, ?, ?, ?, ?, ?, ?)`,
      ),
      eventRefOf: db.prepare<[string]>(`SELECT event_ref FROM executions WHERE id = ?`),
      stepsOf: this.hasStepsTable
        ? db.prepare<[string]>(`SELECT path, step FROM execution_steps WHERE execution_id = ? ORDER BY rowid`)
        : undefined,
      deliveryBody: db.prepare<[string]>(`SELECT body, ${encoding} FROM deliveries WHERE id = ?`),
      deliveryByDedupe: db.prepare<[string]>(`SELECT id FROM deliveries WHERE dedupe_key = ?`),
      executionIdsByDelivery: db.prepare<[string]>(`SELECT id FROM executions WHERE delivery_id = ? ORDER BY seq`),
      getExecution: db.prepare<[string]>(`SELECT * FROM executions WHERE id = ?`),
      getDelivery: db.prepare<[string]>(
        `SELECT seq, id, source, name, received_at, dedupe_key, user_id, headers, body, verification, ${encoding} FROM deliveries WHERE id = ?`,
      ),
      pending: db.prepare(`SELECT id FROM executions WHERE status IN ('queued', 'running') ORDER BY seq`),
      logAfter: db.prepare<[number, number]>(`SELECT * FROM log WHERE seq > ? ORDER BY seq LIMIT ?`),
      logTail: db.prepare<[number]>(`SELECT * FROM (SELECT * FROM log ORDER BY seq DESC LIMIT ?) ORDER BY seq`),
      counts: db.prepare(`SELECT status, COUNT(*) AS n FROM executions GROUP BY status`),
      deliveryCount: db.prepare(`SELECT COUNT(*) AS n FROM deliveries`),
    };
  }

  /** Runs `fn` inside the next group commit; resolves with its result after the commit is durable. */
  write<T>(fn: () => T): Promise<T> {
    if (this.closed) return Promise.reject(new StoreError('E_EVENT_LOG_CLOSED', 'the event log is closed'));
    if (this.readonly) return Promise.reject(new StoreError('E_EVENT_LOG_READONLY', 'the event log is open read-only'));
    return new Promise<T>((resolve, reject) => {
      this.pending.push({ run: fn, resolve, reject });
      if (!this.flushScheduled) {
        this.flushScheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  /**
   * Commits every queued write in one transaction (each in its own savepoint, so one failure
   * fails only its caller), then makes the WAL durable before answering any of them.
   */
  flush(): void {
    this.flushScheduled = false;
    const batch = this.pending;
    if (batch.length === 0) return;
    // While an fdatasync runs, writes wait for it and are committed the moment it ends, in one
    // transaction, and synced by the next fdatasync: none of them could be acknowledged before
    // that sync anyway, so holding them costs no latency, and it saves the transactions (each
    // COMMIT rewrites every page it dirtied, 16 KB each, into the WAL: the same hot index and
    // table pages, once per commit). Closing commits at once (see below).
    if (this.syncing && !this.closed) {
      this.flushAfterSync = true;
      return;
    }
    this.pending = [];
    let results: { ok: boolean; value: unknown }[];
    try {
      results = this.commitBatch(batch);
    } catch (err) {
      for (const item of batch) item.reject(err);
      return;
    }
    const settle = (syncError?: unknown) => {
      batch.forEach((item, i) => {
        if (!results[i].ok) item.reject(results[i].value);
        else if (syncError) item.reject(new StoreError('E_EVENT_LOG_SYNC', `the event log could not be synced to disk: ${(syncError as Error).message}`, { cause: syncError }));
        else item.resolve(results[i].value);
      });
    };
    const fd = this.walFd;
    if (fd === undefined) return settle();
    if (this.closed) {
      // Closing: sync in place (this covers every earlier commit too), nobody is left to serve.
      const waiting = this.syncWaiters;
      this.syncWaiters = [];
      let error: unknown;
      try {
        fdatasyncSync(fd);
      } catch (err) {
        error = err;
      }
      settle(error);
      for (const w of waiting) w(error);
      return;
    }
    this.syncWaiters.push(settle);
    if (!this.syncing) this.startSync(fd);
  }

  /**
   * One transaction for the whole batch. Optimistically without a savepoint per write (a
   * SAVEPOINT/RELEASE pair costs about 7 µs a write): when one write fails, the whole
   * transaction is rolled back and the batch is run again with a savepoint each, so the
   * failure fails only its caller. Writes are plain statements and Map updates, safe to
   * run twice after a rollback.
   */
  private commitBatch(batch: PendingWrite[]): { ok: boolean; value: unknown }[] {
    try {
      // The transaction function is made once: db.transaction() builds its wrappers per call.
      this.runBatch ??= this.db.transaction((items: PendingWrite[]) => items.map((item) => ({ ok: true, value: item.run() })));
      return this.runBatch.immediate(batch);
    } catch {
      // Rolled back: retry one savepoint per write.
    }
    const results: { ok: boolean; value: unknown }[] = [];
    this.db
      .transaction(() => {
        for (const item of batch) {
          try {
            results.push({ ok: true, value: this.db.transaction(item.run)() });
          } catch (err) {
            results.push({ ok: false, value: err });
          }
        }
      })
      .immediate();
    return results;
  }

  /**
   * One fdatasync at a time: commits made while one runs wait for the next, which then
   * covers all of them (a second level of group commit, over fsyncs instead of transactions).
   */
  private startSync(fd: number): void {
    const waiters = this.syncWaiters;
    this.syncWaiters = [];
    this.syncing = true;
    this.syncsInFlight++;
    fdatasync(fd, (err) => {
      this.syncing = false;
      this.syncsInFlight--;
      for (const w of waiters) w(err ?? undefined);
      if (this.flushAfterSync) {
        // Writes held during this sync: commit them now (flush starts the next sync).
        this.flushAfterSync = false;
        this.flush();
      }
      if (!this.syncing && this.syncWaiters.length > 0 && this.walFd !== undefined) this.startSync(this.walFd);
      else this.closeWalIfDone();
    });
  }

  private closeWalIfDone(): void {
    if (this.closed && this.syncsInFlight === 0 && this.walFd !== undefined) {
      closeSync(this.walFd);
      this.walFd = undefined;
    }
  }

  /**
   * Stores a delivery and its executions atomically. A delivery whose dedupe key is
   * already stored is a duplicate: nothing is written and the first delivery's ids return.
   */
  appendDelivery(delivery: DeliveryInput, executions: NewExecution[]): Promise<AppendResult> {
    // Large bodies are stored deflated (lossless: getDelivery returns the exact bytes received,
    // so the signature can be checked again). A 28 KB Shopify order deflates to about 5 KB at
    // level 1: SQLite then writes about a fifth of the bytes, once into the WAL and once more
    // at the checkpoint (about 65 µs less SQLite work a request, and a file 5× smaller).
    // Deflating on the event loop (about 45 µs) measured cheaper than zlib's asynchronous API,
    // whose per-call stream set-up cost more than it moved off the loop (docs/runtime.md).
    if (this.compressBodies && !this.closed && !this.readonly && delivery.body.length >= COMPRESS_MIN_BYTES) {
      let deflated: Buffer | undefined;
      try {
        deflated = deflateRawSync(delivery.body, { level: 1 });
      } catch {
        deflated = undefined; // zlib out of memory: store the bytes as received
      }
      // Kept only when it saves at least a tenth (already compressed or random bytes do not shrink).
      if (deflated && deflated.length <= delivery.body.length * 0.9) return this.insertDelivery(delivery, executions, deflated, DEFLATE_RAW);
    }
    if (!this.compressBodies && !this.closed && !this.readonly && delivery.body.length >= BODY_FILE_MIN_BYTES) {
      const at = this.appendBody(delivery.body);
      // The body is on disk before the transaction that refers to it can commit (the
      // transaction is queued only once the body file's fdatasync has ended), so a stored row
      // never points at bytes a power loss took away; a crash in between leaves unused bytes
      // at the file's end, nothing else. Without the sync (`synchronous: 'normal'`) the bytes
      // are in the page cache before the commit, which is what surviving `kill -9` needs.
      if (at !== undefined) {
        const ref = `${BODY_FILE_PREFIX}${this.bodyFileId}:${at}:${delivery.body.length}`;
        if (!this.syncBodies) return this.insertDelivery(delivery, executions, EMPTY_BODY, ref);
        return this.bodiesSynced().then(() => this.insertDelivery(delivery, executions, EMPTY_BODY, ref));
      }
    }
    return this.insertDelivery(delivery, executions, delivery.body, null);
  }

  /** The body file's path. */
  get bodyFile(): string {
    return `${this.file}-bodies`;
  }

  /**
   * Appends `body` to the body file (created 0600, never through a symlink) and returns where
   * it starts, or undefined when it cannot be written (the caller stores the body in the row).
   */
  private appendBody(body: Buffer): number | undefined {
    try {
      if (this.bodyFd === undefined) this.openBodyFile(true);
      if (this.bodyFileId === undefined) return undefined; // not a body file of ours: left alone
      const at = this.bodyEnd;
      if (this.syncBodies) {
        // Written with the others of this turn in one call just before their sync (startBodySync).
        if (this.unwritten.length === 0) this.unwrittenAt = at;
        this.unwritten.push(body);
      } else {
        writeAll(this.bodyFd!, [body], at);
      }
      this.bodyEnd = at + body.length;
      return at;
    } catch {
      // Disk full, a symlink where the file should be, ...: this body goes into the row as before.
      return undefined;
    }
  }

  /**
   * Resolves once every body appended so far is on disk: one fdatasync of the body file at a
   * time, and bodies appended while one runs share the next (the same grouping as the WAL's).
   */
  private bodiesSynced(): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.bodySyncWaiters.push((err) => {
        if (!err) resolve();
        else if (err instanceof StoreError) reject(err);
        else reject(new StoreError('E_EVENT_LOG_SYNC', `the event log could not be synced to disk: ${(err as Error).message}`, { cause: err }));
      });
      // Started at the end of this turn, so the bodies appended in one turn share one sync and
      // their rows then one transaction (starting it at once would split each group in two).
      if (!this.bodySyncing && !this.bodySyncScheduled) {
        this.bodySyncScheduled = true;
        setImmediate(() => {
          this.bodySyncScheduled = false;
          if (!this.bodySyncing && this.bodySyncWaiters.length > 0) this.startBodySync();
        });
      }
    });
  }

  private startBodySync(): void {
    const waiters = this.bodySyncWaiters;
    this.bodySyncWaiters = [];
    const bodies = this.unwritten;
    this.unwritten = [];
    if (this.closed || this.bodyFd === undefined) {
      // Closed before these bodies' turn ended: their rows are never written (nor the bodies).
      const closed = new StoreError('E_EVENT_LOG_CLOSED', 'the event log is closed');
      for (const w of waiters) w(closed);
      return;
    }
    if (bodies.length > 0) {
      try {
        writeAll(this.bodyFd!, bodies, this.unwrittenAt);
      } catch (err) {
        // None of these rows is written (each waits for this sync): the senders get an error and retry.
        for (const w of waiters) w(err);
        return;
      }
    }
    this.bodySyncing = true;
    fdatasync(this.bodyFd!, (err) => {
      this.bodySyncing = false;
      for (const w of waiters) w(err ?? undefined);
      if (this.bodySyncWaiters.length > 0) this.startBodySync();
      this.closeBodyFileIfDone();
    });
  }

  private closeBodyFileIfDone(): void {
    if (this.closed && !this.bodySyncing && this.bodyFd !== undefined) {
      closeSync(this.bodyFd);
      this.bodyFd = undefined;
    }
  }

  /**
   * Opens the body file (never through a symlink) and reads its header; `create` (the writer)
   * makes it, 0600, with a new id when it does not exist or is empty. A file without a valid
   * header is left as it is (bodyFileId stays undefined).
   */
  private openBodyFile(create: boolean): void {
    if (create && this.readonly) throw new StoreError('E_EVENT_LOG_READONLY', 'the event log is open read-only');
    const fd = openSync(this.bodyFile, create ? fsConstants.O_RDWR | fsConstants.O_CREAT | O_NOFOLLOW : fsConstants.O_RDONLY | O_NOFOLLOW, 0o600);
    this.bodyFd = fd;
    const size = fstatSync(fd).size;
    // Shorter than a header: new, or its header was cut by a crash (then no row can refer to
    // it: rows are written only after a sync that covered the header).
    if (size < BODY_FILE_HEADER_BYTES && create) {
      const id = randomBytes(8).toString('hex');
      writeAll(fd, [Buffer.from(`${BODY_FILE_MAGIC}${id}\n`)], 0);
      this.bodyFileId = id;
      this.bodyEnd = BODY_FILE_HEADER_BYTES;
      // The new file's name is made durable too, as SQLite does for files it creates (POSIX
      // promises a file's entry only after its folder is synced); folders cannot be opened on Windows.
      if (this.syncBodies && process.platform !== 'win32') {
        try {
          const dir = openSync(dirname(this.bodyFile), fsConstants.O_RDONLY);
          try {
            fsyncSync(dir);
          } finally {
            closeSync(dir);
          }
        } catch {
          /* best effort: ext4 and most filesystems keep the entry with the file's own sync */
        }
      }
      return;
    }
    const head = Buffer.alloc(BODY_FILE_HEADER_BYTES);
    const n = readSync(fd, head, 0, BODY_FILE_HEADER_BYTES, 0);
    const text = head.toString('latin1', 0, n);
    if (n === BODY_FILE_HEADER_BYTES && text.startsWith(BODY_FILE_MAGIC) && text.endsWith('\n')) {
      this.bodyFileId = text.slice(BODY_FILE_MAGIC.length, -1);
      this.bodyEnd = size;
    }
  }

  /** `length` bytes of the body file from `at` (a body stored there by appendDelivery). */
  private readBody(fileId: string, at: number, length: number): Buffer {
    const damaged = () =>
      new StoreError('E_EVENT_LOG_DAMAGED', `a delivery body is missing from ${this.bodyFile}`, {
        hint: 'the body file was removed, replaced or cut short; `alloy dev --fresh` starts a new event log',
      });
    try {
      // The writer opens it for appending too (made, with a new id, if it was removed: old rows then read as damaged).
      if (this.bodyFd === undefined) this.openBodyFile(!this.readonly);
    } catch {
      throw damaged();
    }
    const fd = this.bodyFd!;
    if (this.bodyFileId !== fileId) throw damaged();
    const out = Buffer.allocUnsafe(length);
    let done = 0;
    while (done < length) {
      const n = readSync(fd, out, done, length - done, at + done);
      if (n === 0) throw damaged();
      done += n;
    }
    return out;
  }

  /** The exact bytes received, whatever way they are stored. */
  private decodeBody(r: StoredBody): Buffer {
    const enc = r.body_encoding;
    if (typeof enc === 'string' && enc.startsWith(BODY_FILE_PREFIX)) {
      const [fileId, atText, lengthText] = enc.slice(BODY_FILE_PREFIX.length).split(':');
      const at = Number(atText);
      const length = Number(lengthText);
      if (fileId && Number.isSafeInteger(at) && Number.isSafeInteger(length) && at >= BODY_FILE_HEADER_BYTES && length >= 0) return this.readBody(fileId, at, length);
    }
    return decodeBody(r);
  }

  private insertDelivery(delivery: DeliveryInput, executions: NewExecution[], body: Buffer, encoding: string | null): Promise<AppendResult> {
    return this.write(() => {
      const s = this.stmts;
      const info = s.insertDelivery!.run(
        delivery.id,
        delivery.source,
        delivery.name,
        delivery.receivedAt,
        delivery.dedupeKey ?? null,
        delivery.userId ?? null,
        JSON.stringify(delivery.headers),
        body,
        delivery.verification,
        encoding,
      );
      if (info.changes === 0) {
        const first = s.deliveryByDedupe.get(delivery.dedupeKey!) as { id: string };
        const ids = (s.executionIdsByDelivery.all(first.id) as { id: string }[]).map((r) => r.id);
        return { duplicate: true, deliveryId: first.id, executionIds: ids };
      }
      this.insertExecutions(delivery.id, executions, delivery.receivedAt);
      return { duplicate: false, deliveryId: delivery.id, executionIds: executions.map((e) => e.id) };
    });
  }

  /** Adds executions for an already stored delivery (replay). */
  appendExecutions(deliveryId: string, executions: NewExecution[]): Promise<string[]> {
    return this.write(() => {
      this.insertExecutions(deliveryId, executions, this.clock());
      return executions.map((e) => e.id);
    });
  }

  /** Inside a write: the execution rows of one delivery, created and updated `now`. */
  private insertExecutions(deliveryId: string, executions: NewExecution[], now: number): void {
    for (const e of executions) {
      this.stmts.insertExecution!.run(
        e.id,
        deliveryId,
        e.workflow,
        e.record.status,
        e.userId ?? null,
        e.replayOf ?? null,
        now,
        now,
        e.eventRef ?? null,
        this.recordJson(e.record, e.eventRef),
      );
      if (e.eventRef) this.eventRefs.set(e.id, e.eventRef);
    }
  }

  /**
   * Stores the whole record (the final one, usually). A terminal status also appends a log
   * entry. Progress saved with saveProgress and not yet written is dropped (this supersedes
   * it), and the execution's step rows are deleted: the record column holds everything again.
   * Records with many steps are serialized and deflated a slice at a time, letting the event loop run
   * between slices (the caller must not change the record until the promise settles).
   */
  async saveRecord(record: StoredRecord, logEntry?: Omit<LogEntry, 'seq' | 'time'>): Promise<void> {
    this.progress.delete(record.id);
    let ref: EventRef | null | undefined = this.eventRefs.get(record.id);
    if (ref === undefined) {
      const row = this.stmts.eventRefOf.get(record.id) as { event_ref: EventRef | null } | undefined;
      ref = row?.event_ref ?? null;
    }
    const stored = await serializeRecord(record, ref ?? undefined);
    const terminal = isTerminal(record.status);
    if (terminal) this.eventRefs.delete(record.id);
    const hadSteps = this.stepRows.delete(record.id);
    return this.write(() => {
      this.progress.delete(record.id);
      const now = this.clock();
      const info = this.stmts.updateExecution!.run(record.status, now, terminal ? now : null, stored, typeof stored === 'string' ? null : DEFLATE_RAW, record.id);
      if (info.changes === 0) throw new StoreError('E_EXECUTION_NOT_FOUND', `no execution ${record.id} in the event log`);
      if (hadSteps) this.stmts.deleteSteps!.run(record.id);
      if (logEntry) this.insertLog(now, logEntry);
    });
  }

  /**
   * Stores the progress of an unfinished execution at the cost of what changed: its own
   * fields (the record without steps and event) and the given step records, upserted one row
   * each. Calls before the next group commit are merged into one write, serialized when the
   * commit runs (so the latest state of each step is stored) and skipped when saveRecord was
   * called for the execution meanwhile (the final record supersedes it). The promise resolves
   * once the progress is durable; callers that need no durability now may ignore it (a
   * failed write fails the final save too).
   */
  saveProgress(record: StoredRecord, steps: readonly { path: string }[]): Promise<void> {
    const pending = this.progress.get(record.id);
    if (pending) {
      pending.record = record;
      for (const st of steps) pending.steps.set(st.path, st);
      return pending.done;
    }
    const entry: PendingProgress = { record, steps: new Map(steps.map((st) => [st.path, st])), done: Promise.resolve() };
    this.progress.set(record.id, entry);
    entry.done = this.write(() => {
      // Superseded by saveRecord: nothing to do.
      if (this.progress.get(record.id) !== entry) return;
      this.progress.delete(record.id);
      const r = entry.record;
      const { steps: _steps, event: _event, ...head } = r;
      const now = this.clock();
      // Progress never finishes a row, only saveRecord does: the record may say succeeded
      // while its stream delivery is still under way (or waits to retry), and a
      // `GET /v1/executions/:id?wait=` must not answer before that delivery is recorded.
      const status = isTerminal(r.status) ? 'running' : r.status;
      const info = this.stmts.updateProgress!.run(status, now, JSON.stringify({ ...head, steps: {} }), r.id);
      if (info.changes === 0) throw new StoreError('E_EXECUTION_NOT_FOUND', `no execution ${r.id} in the event log`);
      for (const [path, st] of entry.steps) this.stmts.upsertStep!.run(r.id, path, JSON.stringify(st));
      if (entry.steps.size > 0) this.stepRows.add(r.id);
    });
    return entry.done;
  }

  /** The record of a row with its step rows merged in (unfinished executions saved by saveProgress). */
  private withSteps(id: string, record: StoredRecord): StoredRecord {
    const rows = this.stmts.stepsOf?.all(id) as { path: string; step: string }[] | undefined;
    if (!rows || rows.length === 0) return record;
    if (!this.readonly) this.stepRows.add(id);
    const steps = { ...((record.steps as Record<string, unknown> | undefined) ?? {}) };
    for (const r of rows) steps[r.path] = JSON.parse(r.step);
    return { ...record, steps };
  }

  private recordJson(record: StoredRecord, ref: EventRef | undefined): string {
    if (!ref) return JSON.stringify(record);
    const { event: _event, ...rest } = record;
    return JSON.stringify(rest);
  }

  /**
   * Puts `event` back into a record stored without it (from its delivery's body). A body that
   * cannot be read (the body file removed or replaced, an encoding of a newer alloy) leaves
   * `event: {}` for views, and says why under EVENT_UNREADABLE (not enumerable, never stored):
   * the runner fails such an execution instead of running its steps on an empty event.
   */
  private withEvent(row: RawExecution, record: StoredRecord): StoredRecord {
    if (!row.event_ref) return record;
    const stored = this.stmts.deliveryBody.get(row.delivery_id) as StoredBody | undefined;
    let event: unknown;
    let unreadable: StoreError | undefined;
    try {
      const body = stored ? this.decodeBody(stored) : undefined;
      const parsed = body ? JSON.parse(body.toString('utf8')) : undefined;
      event = row.event_ref === 'body.data' ? (parsed as { data?: unknown } | undefined)?.data : parsed;
    } catch (err) {
      event = undefined;
      unreadable = err instanceof StoreError ? err : new StoreError('E_EVENT_LOG_DAMAGED', `the delivery body could not be read: ${(err as Error).message}`, { cause: err });
    }
    if (!stored && !unreadable) unreadable = new StoreError('E_EVENT_LOG_DAMAGED', `delivery ${row.delivery_id} is missing from the event log`);
    // Keep the engine's key order: event right after the identifying fields.
    const out: StoredRecord = { ...record, event: event ?? {} };
    if (unreadable) Object.defineProperty(out, EVENT_UNREADABLE, { value: unreadable, enumerable: false });
    return out;
  }

  /** Appends a free log entry (rejected deliveries, reloads). */
  appendLog(entry: Omit<LogEntry, 'seq' | 'time'>): Promise<void> {
    return this.write(() => this.insertLog(this.clock(), entry));
  }

  private insertLog(now: number, e: Omit<LogEntry, 'seq' | 'time'>): void {
    this.stmts.insertLog!.run(
      now,
      e.kind,
      e.executionId ?? null,
      e.workflow ?? null,
      e.status ?? null,
      e.message,
      e.data ? JSON.stringify(e.data) : null,
    );
  }

  /** One execution with its full record (the event included). */
  getExecution(id: string): ExecutionRow | undefined {
    const row = this.stmts.getExecution.get(id) as RawExecution | undefined;
    if (!row) return undefined;
    const out = toExecution(row);
    if (!isTerminal(row.status)) out.record = this.withSteps(row.id, out.record);
    out.record = this.withEvent(row, out.record);
    if (row.event_ref && !isTerminal(row.status)) this.eventRefs.set(row.id, row.event_ref as EventRef);
    return out;
  }

  /** The delivery; `{ body: false }` skips reading its body (views need only its metadata; body then empty). */
  getDelivery(id: string, opts?: { body?: boolean }): DeliveryRow | undefined {
    const row = this.stmts.getDelivery.get(id) as RawDelivery | undefined;
    if (row && opts?.body === false) return { ...toDelivery(row), body: EMPTY_BODY };
    return row ? { ...toDelivery(row), body: this.decodeBody(row) } : undefined;
  }

  /** Listed executions carry their record without the event when it lives in the delivery (summaries do not need it). */
  listExecutions(filter: ExecutionFilter = {}): ExecutionRow[] {
    const where: string[] = [];
    const params: unknown[] = [];
    if (filter.status) {
      where.push('status = ?');
      params.push(filter.status);
    }
    if (filter.workflow) {
      // `integration/workflow` exactly, or a bare workflow name (through executions_workflow_name).
      where.push(filter.workflow.includes('/') ? 'workflow = ?' : `${WORKFLOW_NAME} = ?`);
      params.push(filter.workflow);
    }
    if (filter.before !== undefined) {
      where.push('seq < ?');
      params.push(filter.before);
    }
    if (filter.since !== undefined) {
      where.push('created_at >= ?');
      params.push(filter.since);
    }
    if (filter.until !== undefined) {
      where.push('created_at < ?');
      params.push(filter.until);
    }
    if (filter.idPrefix) {
      // A range on the unique id index: a prefix search without a scan.
      where.push('id >= ? AND id < ?');
      params.push(filter.idPrefix, `${filter.idPrefix}\u{10ffff}`);
    }
    const limit = Math.max(1, Math.min(filter.limit ?? 50, 1000));
    const sql = `SELECT * FROM executions ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY seq DESC LIMIT ${limit}`;
    return (this.db.prepare(sql).all(...params) as RawExecution[]).map((row) => {
      const out = toExecution(row);
      if (!isTerminal(row.status)) out.record = this.withSteps(row.id, out.record);
      return out;
    });
  }

  /**
   * Counts one more resume of an unfinished execution, durably, before it runs again; resolves
   * with the new count. An execution resumed this many times died with the process each time
   * (the crash-loop guard in the runtime fails it past a limit). `by: -1` takes back a stop
   * that was not a death (the runtime closed cleanly while it ran).
   */
  countResume(id: string, by: 1 | -1 = 1): Promise<number> {
    return this.write(() => {
      const row = this.db.prepare<[number, string]>('UPDATE executions SET resumes = resumes + ? WHERE id = ? RETURNING resumes').get(by, id) as { resumes: number } | undefined;
      return row?.resumes ?? 0;
    });
  }

  /** Ids of unfinished executions, oldest first: what the worker pool resumes on start. */
  pendingExecutionIds(): string[] {
    return (this.stmts.pending.all() as { id: string }[]).map((r) => r.id);
  }

  /** Log entries after `seq` (for `logs -f`), or the last `limit` when `after` is undefined. */
  readLog(after: number | undefined, limit = 200): LogEntry[] {
    const rows = (after === undefined ? this.stmts.logTail.all(limit) : this.stmts.logAfter.all(after, limit)) as RawLog[];
    return rows.map(toLog);
  }

  countDeliveries(): number {
    return (this.stmts.deliveryCount.get() as { n: number }).n;
  }

  countByStatus(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const r of this.stmts.counts.all() as { status: string; n: number }[]) out[r.status] = r.n;
    return out;
  }

  /** Forgets every delivery, execution and log entry (`alloy dev --fresh`). */
  clear(): Promise<void> {
    return this.write(() => {
      this.db.exec('DELETE FROM deliveries; DELETE FROM executions; DELETE FROM execution_steps; DELETE FROM log;');
    });
  }

  /** A durable named cursor (schedule ticks, poll positions), kept in `meta` under `cursor:`. */
  getCursor(key: string): string | undefined {
    const row = this.db.prepare('SELECT value FROM meta WHERE key = ?').get(`cursor:${key}`) as { value: string } | undefined;
    return row?.value;
  }

  /** Stores a cursor through the write queue (committed with the writes queued before it). */
  setCursor(key: string, value: string): Promise<void> {
    return this.write(() => {
      this.db.prepare('INSERT INTO meta(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value').run(`cursor:${key}`, value);
    });
  }

  /** Sets a cursor only while it still holds `expected` (undefined: absent); checked and written in one write. */
  compareAndSetCursor(key: string, expected: string | undefined, next: string): Promise<boolean> {
    return this.write(() => {
      const k = `cursor:${key}`;
      const r =
        expected === undefined
          ? this.db.prepare('INSERT INTO meta(key, value) VALUES (?, ?) ON CONFLICT(key) DO NOTHING').run(k, next)
          : this.db.prepare('UPDATE meta SET value = ? WHERE key = ? AND value = ?').run(next, k, expected);
      return r.changes > 0;
    });
  }

  /** Commits what is queued, closes the database and removes the pid file. Idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.flush();
    this.db.close();
    this.closeWalIfDone();
    this.closeBodyFileIfDone();
    if (!this.readonly) rmSync(lockInfoFile(this.file), { force: true });
  }

  get isClosed(): boolean {
    return this.closed;
  }
}

export function openEventLog(options: EventLogOptions): EventLog {
  if (options.fresh && !options.readonly) discardEventLog(options.file);
  const log = new EventLog(options);
  if (!options.readonly) removeDiscarded(options.file);
  return log;
}

/**
 * `alloy dev --fresh`: checks the log is not in use (opening takes the lock: this fails with
 * E_EVENT_LOG_LOCKED while another process has it), then renames it and its WAL aside
 * (constant time) for removeDiscarded to delete in the background: unlinking a large file
 * takes time in proportion to its size. A leftover from a crash is removed next time.
 */
export function discardEventLog(file: string): void {
  if (!existsSync(file)) return;
  let damaged = false;
  try {
    new EventLog({ file, synchronous: 'normal' }).close();
  } catch (err) {
    // Damaged (not a database, malformed): nothing to lock, so not in use; kept aside, not deleted.
    if (!(err instanceof StoreError && isDamaged(err.cause))) throw err;
    damaged = true;
  }
  const aside = `${file}.${damaged ? 'damaged' : 'discarded'}-${process.pid}-${Date.now()}`;
  for (const suffix of ['', '-wal', '-shm', '-bodies']) {
    if (existsSync(`${file}${suffix}`)) renameSync(`${file}${suffix}`, `${aside}${suffix}`);
  }
}

/** Writes `buffers` one after the other at `at` (one writev, more only if the kernel writes less). */
function writeAll(fd: number, buffers: Buffer[], at: number): void {
  let pos = at;
  let rest = buffers;
  while (rest.length > 0) {
    let n = writevSync(fd, rest, pos);
    pos += n;
    const left: Buffer[] = [];
    for (const b of rest) {
      if (n >= b.length) n -= b.length;
      else {
        left.push(n > 0 ? b.subarray(n) : b);
        n = 0;
      }
    }
    rest = left;
  }
}

/** SQLite's answer for a file that is not (or no longer) a database. */
function isDamaged(err: unknown): boolean {
  const code = (err as { code?: unknown } | undefined)?.code;
  return code === 'SQLITE_CORRUPT' || code === 'SQLITE_NOTADB';
}

/** Deletes, off the event loop, old files `--fresh` set aside (see openEventLog). */
function removeDiscarded(file: string): void {
  const dir = dirname(file);
  const prefix = `${basename(file)}.discarded-`;
  readdir(dir, (err, names) => {
    if (err) return;
    for (const name of names) if (name.startsWith(prefix)) rm(join(dir, name), { force: true }, () => {});
  });
}

function lockInfoFile(file: string): string {
  return `${file}.pid`;
}

function readLockInfo(file: string): { pid: number } | undefined {
  try {
    const v = JSON.parse(readFileSync(lockInfoFile(file), 'utf8')) as { pid?: unknown };
    return typeof v.pid === 'number' ? { pid: v.pid } : undefined;
  } catch {
    return undefined;
  }
}

interface PendingProgress {
  record: StoredRecord;
  steps: Map<string, { path: string }>;
  done: Promise<void>;
}

/** Records with up to this many steps are serialized in one go (about a millisecond). */
const STEPS_IN_ONE_GO = 500;
/** Longest stretch of step serialization before the event loop gets a turn. */
const SERIALIZE_SLICE_MS = 5;

/**
 * JSON.stringify(record) (without `event` when it lives in the delivery) as consecutive pieces
 * of text whose concatenation is that JSON: for a record with many steps, one piece per
 * SERIALIZE_SLICE_MS of work with a turn of the event loop between pieces (by time, not by
 * count: on a loaded machine 500 steps took from 2 to 16 ms), since a 10,000-step record is
 * megabytes of JSON, too long to build in one go (joining it into one string, then encoding
 * that string for zlib, took 35-55 ms of one turn on its own).
 */
export async function stringifyRecordPieces(record: StoredRecord, ref: EventRef | undefined): Promise<string[]> {
  const steps = record.steps as Record<string, unknown> | undefined;
  const keys = steps && typeof steps === 'object' ? Object.keys(steps) : [];
  if (keys.length <= STEPS_IN_ONE_GO) {
    if (!ref) return [JSON.stringify(record)];
    const { event: _event, ...rest } = record;
    return [JSON.stringify(rest)];
  }
  const pieces: string[] = [];
  let head = '{';
  let first = true;
  for (const key of Object.keys(record)) {
    if (ref && key === 'event') continue;
    if (key === 'steps') {
      let slice: string[] = [`${head}${first ? '' : ','}"steps":{`];
      let firstStep = true;
      let sliceStart = performance.now();
      for (let i = 0; i < keys.length; i++) {
        if (i % 32 === 31 && performance.now() - sliceStart >= SERIALIZE_SLICE_MS) {
          pieces.push(slice.join(''));
          slice = [];
          await new Promise<void>((r) => setImmediate(r));
          sliceStart = performance.now();
        }
        const text = JSON.stringify(steps![keys[i]]);
        if (text === undefined) continue;
        slice.push(`${firstStep ? '' : ','}${JSON.stringify(keys[i])}:${text}`);
        firstStep = false;
      }
      pieces.push(slice.join(''));
      head = '}';
      first = false;
      continue;
    }
    const text = JSON.stringify(record[key]);
    if (text === undefined) continue;
    head += `${first ? '' : ','}${JSON.stringify(key)}:${text}`;
    first = false;
  }
  pieces.push(`${head}}`);
  return pieces;
}

/** The record's JSON in one string (see stringifyRecordPieces). */
export async function stringifyRecord(record: StoredRecord, ref: EventRef | undefined): Promise<string> {
  return (await stringifyRecordPieces(record, ref)).join('');
}

/**
 * The record column: the JSON text, or deflated (raw deflate, level 1) from RECORD_COMPRESS_MIN_BYTES
 * up. A large record is fed to one deflate stream a piece at a time: each piece is encoded and
 * deflated on the thread pool while the event loop runs, and the multi-megabyte text never
 * exists as one string.
 */
export async function serializeRecord(record: StoredRecord, ref: EventRef | undefined): Promise<string | Buffer> {
  const pieces = await stringifyRecordPieces(record, ref);
  let length = 0;
  for (const p of pieces) length += p.length;
  if (length < RECORD_COMPRESS_MIN_BYTES) return pieces.length === 1 ? pieces[0] : pieces.join('');
  if (pieces.length === 1) return deflateRawAsync(pieces[0], { level: 1 });
  const z = createDeflateRaw({ level: 1 });
  const out: Buffer[] = [];
  z.on('data', (b: Buffer) => out.push(b));
  const ended = new Promise<void>((resolve, reject) => {
    z.once('end', resolve);
    z.once('error', reject);
  });
  for (const piece of pieces) {
    // Waiting for 'drain' hands each piece to the thread pool before the next is encoded.
    if (!z.write(piece)) await Promise.race([once(z, 'drain'), ended]);
  }
  z.end();
  await ended;
  return Buffer.concat(out);
}

interface RawExecution {
  seq: number;
  id: string;
  delivery_id: string;
  workflow: string;
  status: string;
  user_id: string | null;
  replay_of: string | null;
  created_at: number;
  updated_at: number;
  finished_at: number | null;
  event_ref: string | null;
  record: string | Buffer;
  /** Absent in files from before schema 3 opened read-only. */
  record_encoding?: string | null;
}
interface RawDelivery {
  seq: number;
  id: string;
  source: string;
  name: string;
  received_at: number;
  dedupe_key: string | null;
  user_id: string | null;
  headers: string;
  body: Buffer;
  verification: string;
  body_encoding: string | null;
}
interface StoredBody {
  body: Buffer;
  body_encoding: string | null;
}

/** The exact bytes received, whatever way they are stored. */
function decodeBody(r: StoredBody): Buffer {
  if (r.body_encoding === null || r.body_encoding === undefined) return r.body;
  if (r.body_encoding === DEFLATE_RAW) return inflateRawSync(r.body);
  throw new StoreError('E_EVENT_LOG_ENCODING', `unknown body encoding "${r.body_encoding}" in the event log`, {
    hint: 'this file was written by a newer alloy: upgrade',
  });
}

interface RawLog {
  seq: number;
  time: number;
  kind: string;
  execution_id: string | null;
  workflow: string | null;
  status: string | null;
  message: string;
  data: string | null;
}

function toExecution(r: RawExecution): ExecutionRow {
  return {
    seq: r.seq,
    id: r.id,
    deliveryId: r.delivery_id,
    workflow: r.workflow,
    status: r.status,
    userId: r.user_id ?? undefined,
    replayOf: r.replay_of ?? undefined,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
    finishedAt: r.finished_at ?? undefined,
    record: JSON.parse(recordText(r)) as StoredRecord,
  };
}

/** The record column as JSON text (deflated when record_encoding says so). */
function recordText(r: RawExecution): string {
  const enc = r.record_encoding ?? null;
  if (enc === null) return r.record as string;
  if (enc === DEFLATE_RAW) return inflateRawSync(r.record as Buffer).toString('utf8');
  throw new StoreError('E_EVENT_LOG_ENCODING', `unknown record encoding "${enc}" in the event log`, {
    hint: 'this event log was written by a newer alloy; upgrade to read it',
  });
}

function toDelivery(r: RawDelivery): DeliveryRow {
  return {
    seq: r.seq,
    id: r.id,
    source: r.source,
    name: r.name,
    receivedAt: r.received_at,
    dedupeKey: r.dedupe_key ?? undefined,
    userId: r.user_id ?? undefined,
    headers: JSON.parse(r.headers) as Record<string, string>,
    body: r.body,
    verification: r.verification,
  };
}

function toLog(r: RawLog): LogEntry {
  return {
    seq: r.seq,
    time: r.time,
    kind: r.kind,
    executionId: r.execution_id ?? undefined,
    workflow: r.workflow ?? undefined,
    status: r.status ?? undefined,
    message: r.message,
    data: r.data ? (JSON.parse(r.data) as Record<string, unknown>) : undefined,
  };
}
