/**
 * The SQLite state answers reads of users, keys, credentials and installations from memory;
 * a write through another connection (an operator command while serve runs) must be seen at
 * once, so a revoked API key stops working on the next request.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { openSqliteState } from '../../src/serve/state/sqlite-state.js';
import type { ServeState } from '../../src/serve/state/types.js';

const open: ServeState[] = [];
afterEach(async () => {
  for (const s of open.splice(0)) await s.close();
});

function two(): [ServeState, ServeState] {
  const file = path.join(mkdtempSync(path.join(tmpdir(), 'alloy-state-cache-')), 'serve.db');
  const a = openSqliteState(file);
  const b = openSqliteState(file);
  open.push(a, b);
  return [a, b];
}

describe('sqlite state read cache', () => {
  it('sees an API key deleted by another connection on the next lookup', async () => {
    const [server, operator] = two();
    await operator.apiKeys.create({ id: 'key_1', role: 'ingest', hash: 'a'.repeat(64), createdAt: '' });
    expect(await server.apiKeys.findByHash('a'.repeat(64))).toMatchObject({ id: 'key_1' });
    expect(await server.apiKeys.findByHash('a'.repeat(64))).toMatchObject({ id: 'key_1' }); // cached
    expect(await operator.apiKeys.delete('key_1')).toBe(true);
    expect(await server.apiKeys.findByHash('a'.repeat(64))).toBeUndefined();
  });

  it('sees its own writes and another connection’s installation changes', async () => {
    const [server, other] = two();
    await server.users.create({ id: 'u1', createdAt: '' });
    const inst = { id: 'i1', userId: 'u1', integration: 'x', version: 1, status: 'active' as const, credentials: { shopify: 'c1' }, config: { kid: 'k', wrapped: '', iv: '', data: '', tag: '' }, createdAt: '', updatedAt: '' };
    await server.installations.put(inst);
    expect((await server.installations.list({ userId: 'u1', status: 'active' })).items.map((i) => i.id)).toEqual(['i1']);
    expect((await server.installations.byCredentials(['c1'])).map((i) => i.id)).toEqual(['i1']);
    await server.installations.put({ ...inst, status: 'inactive' });
    expect((await server.installations.list({ userId: 'u1', status: 'active' })).items).toEqual([]);
    expect(await server.installations.byCredentials(['c1'])).toEqual([]);
    await other.installations.put({ ...inst, version: 2 });
    expect((await server.installations.list({ userId: 'u1', status: 'active' })).items.map((i) => i.version)).toEqual([2]);
    expect((await server.installations.get('i1'))?.version).toBe(2);
    // Records read from memory are shared and frozen: a caller cannot change what the next read returns.
    const got = (await server.installations.get('i1'))!;
    expect(() => {
      got.version = 99;
    }).toThrow(TypeError);
    expect(() => {
      got.credentials.shopify = 'other';
    }).toThrow(TypeError);
    expect((await server.installations.get('i1'))?.version).toBe(2);
    expect({ ...got, version: 3 }.version).toBe(3);
    await other.users.delete('u1');
    expect(await server.users.get('u1')).toBeUndefined();
    expect(await server.installations.get('i1')).toBeUndefined();
  });

  it('answers a just-ingested execution from memory as stored, a fresh object each read, until it is written or changed elsewhere', async () => {
    const [server, other] = two();
    const at = new Date(0).toISOString();
    const row = (id: string) => ({ id, installationId: 'i1', userId: 'u1', integration: 'x', version: 1, workflow: 'x/w', status: 'queued' as const, record: { id, workflow: 'x/w', version: 'v1', status: 'queued' as const, createdAt: at, steps: {} }, createdAt: at, updatedAt: at });
    await server.executions.ingest({ executions: [row('ex_1'), row('ex_2')] });
    const first = (await server.executions.get('ex_1'))!;
    first.record.status = 'running';
    expect((await server.executions.get('ex_1'))?.record.status).toBe('queued');
    await server.executions.checkpoint('ex_1', { ...first.record, status: 'succeeded' });
    expect(await server.executions.get('ex_1')).toMatchObject({ status: 'succeeded', record: { status: 'succeeded' } });
    // Another connection's commit drops the memory: the next read is the stored row.
    await other.users.create({ id: 'u2', createdAt: at });
    expect(await server.executions.cancel('ex_2', at)).toBe(true);
    expect((await server.executions.get('ex_2'))?.status).toBe('cancelled');
  });

  it('remembers a just-ingested row as stored when its batch runs again because another write in it failed', async () => {
    const [server] = two();
    const at = new Date(0).toISOString();
    const row = { id: 'ex_1', installationId: 'i1', userId: 'u1', integration: 'x', version: 1, workflow: 'x/w', status: 'queued' as const, record: { id: 'ex_1', workflow: 'x/w', version: 'v1', status: 'queued' as const, createdAt: at, steps: {} }, rerunOf: 'ex_0', createdAt: at, updatedAt: at };
    await server.users.create({ id: 'u1', createdAt: at });
    // One event-loop turn, one transaction: the ingest runs, the duplicate user after it fails the
    // transaction, and the batch runs again with a savepoint per write (sqlite-group-commit.ts).
    const [ingested, dup] = await Promise.allSettled([server.executions.ingest({ dedupeKey: 'event:k', executions: [row] }), server.users.create({ id: 'u1', createdAt: at })]);
    expect(dup.status).toBe('rejected');
    expect(ingested).toEqual({ status: 'fulfilled', value: { duplicate: false, executionIds: ['ex_1'] } });
    expect(await server.executions.get('ex_1')).toEqual(row);
    await server.executions.checkpoint('ex_1', { ...row.record, status: 'succeeded' });
    expect(await server.executions.get('ex_1')).toMatchObject({ status: 'succeeded', rerunOf: 'ex_0', record: { status: 'succeeded' } });
  });

  it('keeps the oldest just-ingested rows when its memory is full, as the queue reads them next, and remembers no newer one', async () => {
    const file = path.join(mkdtempSync(path.join(tmpdir(), 'alloy-state-cache-')), 'serve.db');
    const server = openSqliteState(file);
    open.push(server);
    const at = new Date(0).toISOString();
    // ~100 KB records: 90 rows are more than the 8 MiB the memory holds.
    const pad = 'x'.repeat(100_000);
    const row = (id: string) => ({ id, installationId: 'i1', userId: 'u1', integration: 'x', version: 1, workflow: 'x/w', status: 'queued' as const, record: { id, workflow: 'x/w', version: 'v1', status: 'queued' as const, createdAt: at, steps: {}, event: pad }, createdAt: at, updatedAt: at });
    const ids = Array.from({ length: 90 }, (_, i) => `ex_${String(i).padStart(3, '0')}`);
    for (const id of ids) await server.executions.ingest({ executions: [row(id)] });
    await new Promise((r) => setImmediate(r));
    const raw = new Database(file);
    try {
      // One event-loop turn: the first read looks at the file's version, the raw write after it
      // is not looked at again this turn, so a row answered from memory still says `queued`.
      const reads = [server.executions.get(ids[0])];
      raw.prepare("UPDATE executions SET status = 'running'").run();
      reads.push(server.executions.get(ids[1]), server.executions.get(ids[89]));
      const [a, b, newest] = await Promise.all(reads);
      expect([a?.status, b?.status]).toEqual(['queued', 'queued']);
      expect(newest?.status).toBe('running');
    } finally {
      raw.close();
    }
  });
});
