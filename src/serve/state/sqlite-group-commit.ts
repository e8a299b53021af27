/**
 * Group commit for a better-sqlite3 connection in WAL mode with `synchronous=NORMAL`: queued
 * writes run in one transaction, and each caller's promise resolves only after an fdatasync
 * of the WAL (on libuv's thread pool) that started after that transaction committed. So an
 * acknowledged write is on disk, the event loop never blocks on a sync, and N concurrent
 * writers cost one transaction and at most one sync instead of N of each: rows of one batch
 * share b-tree pages, so the WAL grows by a few pages per batch rather than per write (fewer
 * checkpoints, too). The same design as the dev event log's (src/server/event-log.ts): one
 * failing write fails only its caller.
 *
 * One transaction per sync: writes queued while a sync runs are committed together when it
 * ends (they could not be acknowledged before the next sync anyway), not one transaction per
 * event-loop turn. Under load that is several turns' writes per transaction: fewer WAL page
 * writes, locks and wakes of the thread pool for the same work.
 */
import type Database from 'better-sqlite3';
import { closeSync, fdatasync, fdatasyncSync, openSync } from 'node:fs';

interface PendingWrite {
  run: () => unknown;
  resolve: (value: unknown) => void;
  reject: (err: unknown) => void;
}

export interface GroupCommit {
  /** Runs `fn` inside the next batch's transaction; resolves with its result once durable. */
  write<T>(fn: () => T): Promise<T>;
  /** Commits what is queued, waits for the syncs in flight, closes the WAL handle. */
  close(): Promise<void>;
}

export function createGroupCommit(db: Database.Database, walFile: string): GroupCommit {
  let pending: PendingWrite[] = [];
  let scheduled = false;
  let walFd: number | undefined;
  let syncing: Promise<void> | undefined;
  /** Settle functions of committed batches waiting for the next fdatasync. */
  let waiters: ((err?: unknown) => void)[] = [];

  const openWal = (): number | undefined => {
    if (walFd === undefined) {
      try {
        walFd = openSync(walFile, 'r');
      } catch {
        return undefined; // no WAL yet: nothing written
      }
    }
    return walFd;
  };

  /**
   * One fdatasync at a time: writes queued while one runs are committed when it ends, in one
   * transaction, and covered by the next (group commit over syncs as well as transactions).
   */
  const startSync = () => {
    const fd = openWal();
    const settling = waiters;
    waiters = [];
    if (fd === undefined) {
      for (const w of settling) w();
      return;
    }
    syncing = new Promise<void>((done) =>
      fdatasync(fd, (err) => {
        syncing = undefined;
        for (const w of settling) w(err ?? undefined);
        commitPending();
        done();
      }),
    );
  };

  /**
   * One transaction for the batch, optimistically without a savepoint per write; when one
   * write throws, the transaction is rolled back and the batch run again with a savepoint
   * each, so the failure fails only its caller (writes are plain statements: safe to rerun).
   */
  // Made once: wrapping a function in a transaction costs more than a small batch's statements.
  const runAll = db.transaction((batch: PendingWrite[]) => batch.map((w) => ({ ok: true, value: w.run() })));
  const runEach = db.transaction((batch: PendingWrite[]) => {
    const results: { ok: boolean; value: unknown }[] = [];
    for (const w of batch) {
      try {
        results.push({ ok: true, value: db.transaction(w.run)() });
      } catch (err) {
        results.push({ ok: false, value: err });
      }
    }
    return results;
  });
  const commitBatch = (batch: PendingWrite[]): { ok: boolean; value: unknown }[] => {
    try {
      return runAll.immediate(batch);
    } catch {
      // rolled back: one savepoint per write below
    }
    return runEach.immediate(batch);
  };

  /** Commits what is queued and starts its sync (unless one runs: its end commits them). */
  const flush = () => {
    scheduled = false;
    if (!syncing) commitPending();
  };

  const commitPending = () => {
    const batch = pending;
    pending = [];
    if (batch.length === 0) return;
    let results: { ok: boolean; value: unknown }[];
    try {
      results = commitBatch(batch);
    } catch (err) {
      for (const w of batch) w.reject(err);
      return;
    }
    waiters.push((syncError) =>
      batch.forEach((w, i) => {
        if (!results[i].ok) w.reject(results[i].value);
        else if (syncError) w.reject(syncError);
        else w.resolve(results[i].value);
      }),
    );
    if (!syncing) startSync();
  };

  return {
    write<T>(fn: () => T): Promise<T> {
      return new Promise<T>((resolve, reject) => {
        pending.push({ run: fn, resolve: resolve as (v: unknown) => void, reject });
        if (!scheduled) {
          scheduled = true;
          setImmediate(flush);
        }
      });
    },
    async close() {
      flush();
      // A sync's end commits what queued meanwhile and starts the next one.
      while (syncing) await syncing;
      if (walFd !== undefined) {
        fdatasyncSync(walFd);
        closeSync(walFd);
        walFd = undefined;
      }
    },
  };
}
