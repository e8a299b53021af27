import Database from 'better-sqlite3';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { openSqliteState } from '../../src/serve/state/sqlite-state.js';
import { runStateContract } from './state-contract.js';

runStateContract('sqlite', async () => openSqliteState(path.join(mkdtempSync(path.join(tmpdir(), 'alloy-state-')), 'serve.db')));

describe('sqlite execution rows from before the record column', () => {
  it('reads a row whose record is inside its JSON document, and checkpoints it into the new column', async () => {
    const file = path.join(mkdtempSync(path.join(tmpdir(), 'alloy-state-')), 'serve.db');
    // The layout before checkpoints had their own columns: json_set wrote the record into `doc`.
    const old = new Database(file);
    old.exec(`CREATE TABLE executions (id TEXT PRIMARY KEY, installation_id TEXT NOT NULL, user_id TEXT NOT NULL, workflow TEXT NOT NULL, status TEXT NOT NULL, doc TEXT NOT NULL, resumes INTEGER NOT NULL DEFAULT 0)`);
    const at = '2026-01-01T00:00:00.000Z';
    const record = { id: 'ex_1', workflow: 'i/w', version: 'v1', event: { n: 1 }, status: 'running', createdAt: at, steps: { a: { path: 'a', id: 'a', kind: 'action', uses: 'transform', status: 'succeeded', attempts: 1 } } };
    const row = { id: 'ex_1', installationId: 'in_1', userId: 'u1', integration: 'i', version: 1, workflow: 'i/w', status: 'running', record, createdAt: at, updatedAt: '2026-01-01T00:00:01.000Z' };
    old.prepare('INSERT INTO executions (id, installation_id, user_id, workflow, status, doc) VALUES (?, ?, ?, ?, ?, ?)').run('ex_1', 'in_1', 'u1', 'i/w', 'running', JSON.stringify(row));
    old.close();
    const state = openSqliteState(file);
    try {
      expect(await state.executions.get('ex_1')).toEqual(row);
      expect((await state.executions.list({ userId: 'u1' })).items).toEqual([row]);
      await state.executions.checkpoint('ex_1', { ...record, status: 'succeeded' });
      const after = (await state.executions.get('ex_1'))!;
      expect(after).toMatchObject({ status: 'succeeded', record: { status: 'succeeded', steps: record.steps } });
      expect(after.updatedAt > row.updatedAt).toBe(true);
      expect(await state.executions.cancel('ex_1', at)).toBe(false);
      expect(await state.executions.unfinished()).toEqual([]);
    } finally {
      await state.close();
    }
  });

  it('reads rows of state version 2 (the whole row but its record in `doc`) beside new ones, which keep in `doc` only what has no column', async () => {
    const file = path.join(mkdtempSync(path.join(tmpdir(), 'alloy-state-')), 'serve.db');
    const at = '2026-01-01T00:00:00.000Z';
    const record = (id: string) => ({ id, workflow: 'i/w', version: 'v1', userId: 'u1', event: { n: 1 }, status: 'queued', createdAt: at, steps: {} });
    const row = (id: string) => ({ id, installationId: 'in_1', userId: 'u1', integration: 'i', version: 1, workflow: 'i/w', status: 'queued' as const, record: record(id), createdAt: at, updatedAt: at });
    // A version 2 file, with its installation index.
    const old = new Database(file);
    old.exec(`CREATE TABLE executions (id TEXT PRIMARY KEY, installation_id TEXT NOT NULL, user_id TEXT NOT NULL, workflow TEXT NOT NULL, status TEXT NOT NULL, doc TEXT NOT NULL, resumes INTEGER NOT NULL DEFAULT 0, record TEXT, updated_at TEXT);
      CREATE INDEX executions_installation ON executions(installation_id, id);`);
    const { record: _r, ...rest } = { ...row('ex_1'), rerunOf: 'ex_0' };
    old.prepare('INSERT INTO executions (id, installation_id, user_id, workflow, status, doc, record, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)').run('ex_1', 'in_1', 'u1', 'i/w', 'queued', JSON.stringify(rest), JSON.stringify(record('ex_1')), at);
    old.pragma('user_version = 2');
    old.close();
    const state = openSqliteState(file);
    try {
      await state.executions.ingest({ dedupeKey: 'event:k', executions: [{ ...row('ex_2'), rerunOf: 'ex_1' }] });
      expect(await state.executions.get('ex_1')).toEqual({ ...row('ex_1'), rerunOf: 'ex_0' });
      expect(await state.executions.get('ex_2')).toEqual({ ...row('ex_2'), rerunOf: 'ex_1' });
      expect((await state.executions.list({ installationId: 'in_1' })).items).toEqual([
        { ...row('ex_1'), rerunOf: 'ex_0' },
        { ...row('ex_2'), rerunOf: 'ex_1' },
      ]);
      expect(await state.executions.cancel('ex_1', '2026-01-01T00:00:05.000Z')).toBe(true);
      expect(await state.executions.get('ex_1')).toEqual({ ...row('ex_1'), rerunOf: 'ex_0', status: 'cancelled', updatedAt: '2026-01-01T00:00:05.000Z' });
    } finally {
      await state.close();
    }
    const db = new Database(file, { readonly: true });
    try {
      expect(db.pragma('user_version', { simple: true })).toBe(4);
      // The installation index is gone (its filter reads the user's index).
      expect(db.prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'executions' ORDER BY name").pluck().all()).toEqual(['executions_unfinished', 'executions_user', 'sqlite_autoindex_executions_1']);
      const plan = db.prepare('EXPLAIN QUERY PLAN SELECT doc FROM executions WHERE user_id = ? AND installation_id = ? ORDER BY id LIMIT 51').all('u1', 'in_1') as { detail: string }[];
      expect(plan.map((p) => p.detail).join('; ')).toMatch(/^SEARCH executions USING INDEX executions_user \(user_id=\?\)$/);
      for (const d of db.prepare('SELECT doc FROM executions ORDER BY id').pluck().all() as string[]) {
        expect(JSON.parse(d)).toEqual({ integration: 'i', version: 1, createdAt: at, rerunOf: expect.any(String) });
      }
    } finally {
      db.close();
    }
  });

  it('stores an execution\'s record once (its own column, not also inside the row\'s document), ingested, checkpointed and cancelled', async () => {
    const file = path.join(mkdtempSync(path.join(tmpdir(), 'alloy-state-')), 'serve.db');
    const state = openSqliteState(file);
    const at = '2026-01-01T00:00:00.000Z';
    const big = 'x'.repeat(20_000);
    const row = (id: string) => ({ id, installationId: 'in_1', userId: 'u1', integration: 'i', version: 1, workflow: 'i/w', status: 'queued' as const, record: { id, workflow: 'i/w', version: 'v1', event: { big }, status: 'queued', createdAt: at, steps: {} }, createdAt: at, updatedAt: at });
    try {
      await state.executions.ingest({ executions: [row('ex_1'), row('ex_2')] } as never);
      await state.executions.checkpoint('ex_1', { ...row('ex_1').record, status: 'succeeded' } as never);
      expect(await state.executions.cancel('ex_2', '2026-01-01T00:00:05.000Z')).toBe(true);
      expect((await state.executions.get('ex_1'))!.record).toMatchObject({ status: 'succeeded', event: { big } });
      expect(await state.executions.get('ex_2')).toMatchObject({ status: 'cancelled', updatedAt: '2026-01-01T00:00:05.000Z', record: { event: { big } } });
    } finally {
      await state.close();
    }
    const db = new Database(file, { readonly: true });
    try {
      for (const r of db.prepare('SELECT doc, record FROM executions').all() as { doc: string; record: string }[]) {
        expect(r.doc.includes(big)).toBe(false);
        expect(r.record.split(big).length).toBe(2);
      }
    } finally {
      db.close();
    }
    // A reopened file reads the same, and one from a newer alloy is refused, not misread.
    const again = openSqliteState(file);
    expect((await again.executions.get('ex_2'))!.status).toBe('cancelled');
    await again.close();
    const newer = new Database(file);
    newer.pragma('user_version = 99');
    newer.close();
    expect(() => openSqliteState(file)).toThrow(/written by a newer alloy/);
  });

  it('a version 3 file gains the owners of the installations deleted before (found once), and lists their executions', async () => {
    const file = path.join(mkdtempSync(path.join(tmpdir(), 'alloy-state-')), 'serve.db');
    const at = '2026-01-01T00:00:00.000Z';
    const first = openSqliteState(file);
    const row = (id: string, installationId: string, userId: string) => ({ id, installationId, userId, integration: 'i', version: 1, workflow: 'i/w', status: 'queued' as const, record: { id, workflow: 'i/w', version: 'v1', event: {}, status: 'queued' as const, createdAt: at, steps: {} }, createdAt: at, updatedAt: at });
    await first.executions.ingest({ executions: [row('ex_1', 'in_gone', 'u1'), row('ex_2', 'in_kept', 'u2')] });
    await first.close();
    // As an alloy of state version 3 left it: no owners table, the installation deleted.
    const old = new Database(file);
    old.exec("DROP TABLE deleted_installations; INSERT INTO installations (id, user_id, integration, status, doc) VALUES ('in_kept', 'u2', 'i', 'active', '{}')");
    old.pragma('user_version = 3');
    old.close();
    const state = openSqliteState(file);
    try {
      expect((await state.executions.list({ installationId: 'in_gone' })).items.map((e) => e.id)).toEqual(['ex_1']);
      expect((await state.executions.list({ installationId: 'in_kept' })).items.map((e) => e.id)).toEqual(['ex_2']);
    } finally {
      await state.close();
    }
    const db = new Database(file, { readonly: true });
    try {
      expect(db.pragma('user_version', { simple: true })).toBe(4);
      expect(db.prepare('SELECT id, user_id FROM deleted_installations').all()).toEqual([{ id: 'in_gone', user_id: 'u1' }]);
    } finally {
      db.close();
    }
  });

  it('a file already at this version opens while another process holds the write lock (an operator command during a long write)', async () => {
    const file = path.join(mkdtempSync(path.join(tmpdir(), 'alloy-state-')), 'serve.db');
    await (openSqliteState(file)).close();
    const writer = new Database(file);
    writer.pragma('busy_timeout = 0');
    writer.exec('BEGIN IMMEDIATE');
    try {
      const t0 = Date.now();
      const state = openSqliteState(file);
      expect(Date.now() - t0).toBeLessThan(1000);
      expect(await state.users.get('nobody')).toBeUndefined();
      await state.close();
    } finally {
      writer.exec('ROLLBACK');
      writer.close();
    }
  });

  it('a checkpoint written while an ingest waits for its sync is what reads see (the ingested row is not remembered over it)', async () => {
    const file = path.join(mkdtempSync(path.join(tmpdir(), 'alloy-state-')), 'serve.db');
    const state = openSqliteState(file);
    try {
      const at = '2026-01-01T00:00:00.000Z';
      const record = { id: 'ex_1', workflow: 'i/w', version: 'v1', event: {}, status: 'queued' as const, createdAt: at, steps: {} };
      const ingested = state.executions.ingest({ executions: [{ id: 'ex_1', installationId: 'in_1', userId: 'u1', integration: 'i', version: 1, workflow: 'i/w', status: 'queued', record, createdAt: at, updatedAt: at }] });
      // The ingest's transaction commits on the next turn; its sync is still running when the checkpoint is queued.
      await new Promise((r) => setImmediate(r));
      const done = { ...record, status: 'succeeded' as const, steps: { a: { path: 'a', id: 'a', kind: 'action' as const, uses: 'transform', status: 'succeeded' as const, attempts: 1 } } };
      await Promise.all([ingested, state.executions.checkpoint('ex_1', done)]);
      expect((await state.executions.get('ex_1'))?.status).toBe('succeeded');
      expect(Object.keys((await state.executions.get('ex_1'))!.record.steps)).toEqual(['a']);
      expect(await state.executions.cancel('ex_1', at)).toBe(false);
    } finally {
      await state.close();
    }
  });
});
