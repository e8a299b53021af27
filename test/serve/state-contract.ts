/**
 * The contract every ServeState implementation must pass (cf. n8n's job-queue contract):
 * run it from one test file per backend with a factory that opens a fresh, empty state.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { eventDedupeKey, type ExecutionRow, type InstallationRecord, type Sealed, type ServeState } from '../../src/serve/state/types.js';
import type { ExecutionRecord } from '../../src/engine/types.js';

const sealed: Sealed = { kid: 'k1', wrapped: 'w', iv: 'i', data: 'd', tag: 't' };
const at = '2026-01-01T00:00:00.000Z';

function installation(id: string, userId: string, credentials: Record<string, string> = {}, status: 'active' | 'inactive' = 'active'): InstallationRecord {
  return { id, userId, integration: 'shopify-sync', version: 1, status, credentials, config: sealed, createdAt: at, updatedAt: at };
}

function execution(id: string, userId = 'u1', installationId = 'in_1'): ExecutionRow {
  const record: ExecutionRecord = { id, workflow: 'shopify-sync/create-order', version: 'v1', userId, event: {}, status: 'queued', createdAt: at, steps: {} };
  return { id, installationId, userId, integration: 'shopify-sync', version: 1, workflow: record.workflow, status: 'queued', record, createdAt: at, updatedAt: at };
}

export function runStateContract(name: string, open: () => Promise<ServeState>): void {
  describe(`ServeState contract: ${name}`, () => {
    let state: ServeState;
    beforeEach(async () => {
      state = await open();
    });
    afterEach(async () => {
      await state.close();
    });

    it('creates, gets, pages and deletes users', async () => {
      for (const id of ['u1', 'u2', 'u3']) await state.users.create({ id, createdAt: at });
      expect(await state.users.get('u2')).toEqual({ id: 'u2', createdAt: at });
      expect(await state.users.get('nope')).toBeUndefined();
      const p1 = await state.users.list({ limit: 2 });
      expect(p1.items.map((u) => u.id)).toEqual(['u1', 'u2']);
      expect(p1.next).toBe('u2');
      const p2 = await state.users.list({ limit: 2, after: p1.next });
      expect(p2.items.map((u) => u.id)).toEqual(['u3']);
      expect(p2.next).toBeUndefined();
      await expect(state.users.create({ id: 'u1', createdAt: at })).rejects.toThrow();
    });

    it('deleting a user removes their credentials, installations and executions, nobody else\'s', async () => {
      await state.users.create({ id: 'u1', createdAt: at });
      await state.users.create({ id: 'u2', createdAt: at });
      await state.credentials.put({ id: 'c1', userId: 'u1', app: 'shopify', kind: 'token', account: 'a.myshopify.com', secret: sealed, createdAt: at, updatedAt: at });
      await state.credentials.put({ id: 'c2', userId: 'u2', app: 'shopify', kind: 'token', account: 'b.myshopify.com', secret: sealed, createdAt: at, updatedAt: at });
      await state.installations.put(installation('in_1', 'u1', { shopify: 'c1' }));
      await state.installations.put(installation('in_2', 'u2', { shopify: 'c2' }));
      await state.executions.ingest({ executions: [execution('ex_1', 'u1', 'in_1'), execution('ex_2', 'u2', 'in_2')] });
      expect(await state.users.delete('u1')).toBe(true);
      expect(await state.users.delete('u1')).toBe(false);
      expect(await state.credentials.listByUser('u1')).toEqual([]);
      expect((await state.installations.list({ userId: 'u1' })).items).toEqual([]);
      expect(await state.executions.get('ex_1')).toBeUndefined();
      expect(await state.installations.byCredentials(['c1'])).toEqual([]);
      expect((await state.credentials.listByUser('u2')).map((c) => c.id)).toEqual(['c2']);
      expect((await state.executions.get('ex_2'))?.id).toBe('ex_2');
    });

    it("deleting a user forgets their Idempotency-Keys (a user made again under the id starts afresh), nobody else's", async () => {
      for (const id of ['u1', 'u1x', 'u2']) await state.users.create({ id, createdAt: at });
      await state.executions.ingest({ dedupeKey: eventDedupeKey('u1', 'k'), executions: [execution('ex_1', 'u1')] });
      await state.executions.ingest({ dedupeKey: eventDedupeKey('u1x', 'k'), executions: [execution('ex_2', 'u1x')] });
      await state.executions.ingest({ dedupeKey: eventDedupeKey('u2', 'k'), executions: [execution('ex_3', 'u2')] });
      await state.executions.ingest({ dedupeKey: 'shopify:a.myshopify.com:orders/create:00', executions: [execution('ex_4', 'u1')] });
      expect(await state.users.delete('u1')).toBe(true);
      await state.users.create({ id: 'u1', createdAt: at });
      expect(await state.executions.ingest({ dedupeKey: eventDedupeKey('u1', 'k'), executions: [execution('ex_5', 'u1')] })).toEqual({ duplicate: false, executionIds: ['ex_5'] });
      expect(await state.executions.ingest({ dedupeKey: eventDedupeKey('u1x', 'k'), executions: [] })).toEqual({ duplicate: true, executionIds: ['ex_2'] });
      expect(await state.executions.ingest({ dedupeKey: eventDedupeKey('u2', 'k'), executions: [] })).toEqual({ duplicate: true, executionIds: ['ex_3'] });
      // A webhook delivery's key is the shop's, not the user's: it stays.
      expect((await state.executions.ingest({ dedupeKey: 'shopify:a.myshopify.com:orders/create:00', executions: [] })).duplicate).toBe(true);
    });

    it('stores API keys by hash only', async () => {
      await state.apiKeys.create({ id: 'key_1', role: 'admin', hash: 'ab'.repeat(32), createdAt: at });
      expect((await state.apiKeys.findByHash('ab'.repeat(32)))?.role).toBe('admin');
      expect(await state.apiKeys.findByHash('cd'.repeat(32))).toBeUndefined();
      expect((await state.apiKeys.list()).map((k) => k.id)).toEqual(['key_1']);
      expect(await state.apiKeys.delete('key_1')).toBe(true);
    });

    it('finds credentials by account and installations by credential (active only)', async () => {
      await state.credentials.put({ id: 'c1', userId: 'u1', app: 'shopify', kind: 'oauth2', account: 'a.myshopify.com', secret: sealed, createdAt: at, updatedAt: at });
      await state.installations.put(installation('in_1', 'u1', { shopify: 'c1' }));
      await state.installations.put(installation('in_2', 'u1', { shopify: 'c1' }, 'inactive'));
      expect((await state.credentials.findByAccount('shopify', 'a.myshopify.com')).map((c) => c.id)).toEqual(['c1']);
      expect(await state.credentials.findByAccount('shopify', 'b.myshopify.com')).toEqual([]);
      expect((await state.installations.byCredentials(['c1'])).map((i) => i.id)).toEqual(['in_1']);
      // Re-pointing an installation at another credential drops the old link.
      await state.installations.put(installation('in_1', 'u1', { shopify: 'c9' }));
      expect(await state.installations.byCredentials(['c1'])).toEqual([]);
      expect((await state.installations.list({ integration: 'shopify-sync', status: 'inactive' })).items.map((i) => i.id)).toEqual(['in_2']);
    });

    it('ingest is idempotent on its dedupe key and stores nothing the second time', async () => {
      const first = await state.executions.ingest({ dedupeKey: 'event:k1', executions: [execution('ex_1'), execution('ex_2')] });
      expect(first).toEqual({ duplicate: false, executionIds: ['ex_1', 'ex_2'] });
      const again = await state.executions.ingest({ dedupeKey: 'event:k1', executions: [execution('ex_3')] });
      expect(again).toEqual({ duplicate: true, executionIds: ['ex_1', 'ex_2'] });
      expect(await state.executions.get('ex_3')).toBeUndefined();
      // An ingest that fails stores neither its executions nor its key.
      await expect(state.executions.ingest({ dedupeKey: 'event:k2', executions: [execution('ex_4'), execution('ex_1')] })).rejects.toThrow();
      expect(await state.executions.get('ex_4')).toBeUndefined();
      expect((await state.executions.ingest({ dedupeKey: 'event:k2', executions: [] })).duplicate).toBe(false);
    });

    it('ingest keeps an event payload holding \\u0000 as sent (webhook bodies may carry it)', async () => {
      const row = execution('ex_nul');
      row.record.event = { note: 'a\u0000b', nested: [{ s: '\u0000' }] };
      expect(await state.executions.ingest({ dedupeKey: 'event:nul', executions: [row] })).toEqual({ duplicate: false, executionIds: ['ex_nul'] });
      expect((await state.executions.get('ex_nul'))?.record.event).toEqual({ note: 'a\u0000b', nested: [{ s: '\u0000' }] });
    });

    it('checkpoints, lists by filter, cancels and reports unfinished work', async () => {
      // Executions come from installations: SQLite finds an installation's owner from its row
      // (or, once deleted, deleted_installations), so an id that never was one lists nothing there.
      await state.installations.put(installation('in_2', 'u2'));
      await state.executions.ingest({ executions: [execution('ex_1'), execution('ex_2', 'u2', 'in_2'), execution('ex_3')] });
      expect(await state.executions.unfinished()).toEqual(['ex_1', 'ex_2', 'ex_3']);
      const done = { ...execution('ex_1').record, status: 'succeeded' as const };
      await state.executions.checkpoint('ex_1', done);
      expect((await state.executions.get('ex_1'))?.status).toBe('succeeded');
      expect(await state.executions.cancel('ex_1', at)).toBe(false);
      expect(await state.executions.cancel('ex_3', at)).toBe(true);
      await state.executions.checkpoint('ex_3', { ...execution('ex_3').record, status: 'running' });
      expect((await state.executions.get('ex_3'))?.status).toBe('cancelled');
      expect(await state.executions.unfinished()).toEqual(['ex_2']);
      expect((await state.executions.list({ userId: 'u1' })).items.map((e) => e.id)).toEqual(['ex_1', 'ex_3']);
      expect((await state.executions.list({ status: 'succeeded' })).items.map((e) => e.id)).toEqual(['ex_1']);
      expect((await state.executions.list({ installationId: 'in_2' })).items.map((e) => e.id)).toEqual(['ex_2']);
      const p = await state.executions.list({}, { limit: 1 });
      expect(p.next).toBe('ex_1');
      // Newest first, paged downwards, with and without a filter.
      const d1 = await state.executions.list({}, { limit: 2, order: 'desc' });
      expect(d1.items.map((e) => e.id)).toEqual(['ex_3', 'ex_2']);
      expect(d1.next).toBe('ex_2');
      const d2 = await state.executions.list({}, { limit: 2, order: 'desc', after: d1.next });
      expect(d2.items.map((e) => e.id)).toEqual(['ex_1']);
      expect(d2.next).toBeUndefined();
      expect((await state.executions.list({ userId: 'u1' }, { order: 'desc' })).items.map((e) => e.id)).toEqual(['ex_3', 'ex_1']);
    });

    it('lists an installation\'s executions among its user\'s others, paged both ways, also once the installation is deleted', async () => {
      await state.installations.put(installation('in_1', 'u1'));
      await state.installations.put(installation('in_2', 'u1'));
      await state.installations.put(installation('in_3', 'u2'));
      const ids = ['ex_01', 'ex_02', 'ex_03', 'ex_04', 'ex_05', 'ex_06', 'ex_07'];
      const of = ['in_1', 'in_2', 'in_1', 'in_3', 'in_2', 'in_1', 'in_1'];
      await state.executions.ingest({ executions: ids.map((id, k) => execution(id, of[k] === 'in_3' ? 'u2' : 'u1', of[k])) });
      const all = async (filter: { installationId: string; userId?: string }, order: 'asc' | 'desc' = 'asc') => {
        const out: string[] = [];
        let after: string | undefined;
        do {
          const p = await state.executions.list(filter, { limit: 2, order, after });
          out.push(...p.items.map((e) => e.id));
          after = p.next;
        } while (after);
        return out;
      };
      expect(await all({ installationId: 'in_1' })).toEqual(['ex_01', 'ex_03', 'ex_06', 'ex_07']);
      expect(await all({ installationId: 'in_1' }, 'desc')).toEqual(['ex_07', 'ex_06', 'ex_03', 'ex_01']);
      expect(await all({ installationId: 'in_2', userId: 'u1' })).toEqual(['ex_02', 'ex_05']);
      expect(await all({ installationId: 'in_2', userId: 'u2' })).toEqual([]);
      expect(await all({ installationId: 'in_3' })).toEqual(['ex_04']);
      expect(await all({ installationId: 'nope' })).toEqual([]);
      // A deleted installation's executions stay, and still list by it, until its user is deleted.
      expect(await state.installations.delete('in_1')).toBe(true);
      expect(await all({ installationId: 'in_1' })).toEqual(['ex_01', 'ex_03', 'ex_06', 'ex_07']);
      expect(await all({ installationId: 'in_1', userId: 'u2' })).toEqual([]);
      await state.users.create({ id: 'u1', createdAt: at });
      expect(await state.users.delete('u1')).toBe(true);
      expect(await all({ installationId: 'in_1' })).toEqual([]);
      expect(await all({ installationId: 'in_3' })).toEqual(['ex_04']);
    });

    it('counts resumes per execution (the crash-loop guard), and takes one back', async () => {
      await state.executions.ingest({ executions: [execution('ex_1'), execution('ex_2')] });
      expect(await state.executions.countResume('ex_1')).toBe(1);
      expect(await state.executions.countResume('ex_1')).toBe(2);
      expect(await state.executions.countResume('ex_1', -1)).toBe(1);
      expect(await state.executions.countResume('ex_2')).toBe(1);
      expect(await state.executions.countResume('nope')).toBe(0);
      // The counter is not part of the execution's record.
      expect(await state.executions.get('ex_1')).toEqual(execution('ex_1'));
    });

    it('an OAuth state is taken once and not after it expires', async () => {
      await state.oauthStates.put({ nonce: 'n1', userId: 'u1', app: 'shopify', expiresAt: '2026-01-01T00:10:00.000Z' });
      await state.oauthStates.put({ nonce: 'n2', userId: 'u1', app: 'shopify', expiresAt: '2026-01-01T00:10:00.000Z' });
      expect((await state.oauthStates.take('n1', at))?.userId).toBe('u1');
      expect(await state.oauthStates.take('n1', at)).toBeUndefined();
      expect(await state.oauthStates.take('n2', '2026-01-01T00:11:00.000Z')).toBeUndefined();
      // peek reads without taking (a connect token refused to the wrong user stays for the right one).
      const pending = { nonce: 'connect:p1', userId: 'u1', app: 'shopify', account: 'a.myshopify.com', expiresAt: '2026-01-01T00:10:00.000Z', pending: { secret: { kid: 'k', wrapped: 'w', iv: 'i', data: 'd', tag: 't' }, tokenExpiresAt: '2026-01-02T00:00:00.000Z' } };
      await state.oauthStates.put(pending);
      expect(await state.oauthStates.peek('connect:p1', at)).toEqual(pending);
      expect(await state.oauthStates.peek('connect:p1', '2026-01-01T00:10:00.000Z')).toBeUndefined();
      expect(await state.oauthStates.peek('nope', at)).toBeUndefined();
      expect(await state.oauthStates.take('connect:p1', at)).toEqual(pending);
      // put with `now` first sweeps what expired by then: n3 (and the n2 left behind) go, n4 stays.
      await state.oauthStates.put({ nonce: 'n3', userId: 'u1', app: 'shopify', expiresAt: '2026-01-01T00:05:00.000Z' });
      await state.oauthStates.put({ nonce: 'n4', userId: 'u1', app: 'shopify', expiresAt: '2026-01-01T00:20:00.000Z' }, '2026-01-01T00:12:00.000Z');
      expect(await state.oauthStates.peek('n3', at)).toBeUndefined();
      expect(await state.oauthStates.take('n3', at)).toBeUndefined();
      expect((await state.oauthStates.take('n4', at))?.nonce).toBe('n4');
    });

    it("caps a user's live OAuth states, atomically under concurrent puts; expired ones and other users' do not count", async () => {
      const put = (nonce: string, userId: string, expiresAt = '2026-01-01T00:10:00.000Z', now = at) => state.oauthStates.put({ nonce, userId, app: 'shopify', expiresAt }, now, 3);
      // Ten at once for one user: exactly three stored.
      const stored = await Promise.all(Array.from({ length: 10 }, (_, n) => put(`r${n}`, 'u1')));
      expect(stored.filter(Boolean)).toHaveLength(3);
      expect((await Promise.all(Array.from({ length: 10 }, (_, n) => state.oauthStates.peek(`r${n}`, at)))).filter(Boolean)).toHaveLength(3);
      expect(await put('o1', 'u2')).toBe(true);
      // One taken frees its place; once expired, all do.
      const taken = stored.indexOf(true);
      await state.oauthStates.take(`r${taken}`, at);
      expect(await put('r10', 'u1')).toBe(true);
      expect(await put('r11', 'u1')).toBe(false);
      expect(await put('r12', 'u1', '2026-01-01T00:30:00.000Z', '2026-01-01T00:10:00.000Z')).toBe(true);
    });

    it('keeps cursors, and compare-and-set lets exactly one of many racing writers advance one', async () => {
      expect(await state.cursors.get('poll:in_1:acme/w')).toBeUndefined();
      // Creating: only while absent.
      const creates = await Promise.all(Array.from({ length: 8 }, (_, n) => state.cursors.compareAndSet('poll:in_1:acme/w', undefined, `v0-${n}`)));
      expect(creates.filter(Boolean)).toHaveLength(1);
      const v0 = (await state.cursors.get('poll:in_1:acme/w'))!;
      expect(v0).toBe(`v0-${creates.indexOf(true)}`);
      // Advancing: from the value read; the losers see false and the value is the winner's.
      const moves = await Promise.all(Array.from({ length: 8 }, (_, n) => state.cursors.compareAndSet('poll:in_1:acme/w', v0, `v1-${n}`)));
      expect(moves.filter(Boolean)).toHaveLength(1);
      expect(await state.cursors.get('poll:in_1:acme/w')).toBe(`v1-${moves.indexOf(true)}`);
      expect(await state.cursors.compareAndSet('poll:in_1:acme/w', v0, 'stale')).toBe(false);
      expect(await state.cursors.compareAndSet('poll:in_1:acme/w', undefined, 'again')).toBe(false);
      await state.cursors.set('schedule:in_1:acme/w', '1000');
      await state.cursors.set('schedule:in_1:acme/w', '2000');
      expect(await state.cursors.get('schedule:in_1:acme/w')).toBe('2000');
    });

    it('deleting an installation or its user deletes its cursors, nobody else\'s', async () => {
      await state.users.create({ id: 'u1', createdAt: at });
      await state.installations.put(installation('in_1', 'u1'));
      await state.installations.put(installation('in_2', 'u1'));
      await state.installations.put(installation('in_3', 'u2'));
      for (const i of ['in_1', 'in_2', 'in_3', 'inX1']) await state.cursors.set(`schedule:${i}:acme/w`, '1');
      expect(await state.installations.delete('in_1')).toBe(true);
      expect(await state.cursors.get('schedule:in_1:acme/w')).toBeUndefined();
      expect(await state.cursors.get('schedule:in_2:acme/w')).toBe('1');
      // `_` in an id is not a wildcard: in_1 is not inX1.
      expect(await state.cursors.get('schedule:inX1:acme/w')).toBe('1');
      expect(await state.users.delete('u1')).toBe(true);
      expect(await state.cursors.get('schedule:in_2:acme/w')).toBeUndefined();
      expect(await state.cursors.get('schedule:in_3:acme/w')).toBe('1');
    });

    it('cost buckets: a take reserves the expected cost, or answers the wait; concurrent takes never overspend', async () => {
      const t0 = 1_700_000_000_000;
      expect(await state.buckets.take('shopify:unknown', t0)).toBe(0);
      await state.buckets.report('shopify:a', { maximumAvailable: 100, currentlyAvailable: 30, restoreRate: 10, at: t0, lastCost: 20 });
      expect(await state.buckets.take('shopify:a', t0)).toBe(0); // 30 -> 10
      expect(await state.buckets.take('shopify:a', t0)).toBe(1000); // 10 of 20: one second at 10/s
      expect(await state.buckets.take('shopify:a', t0 + 500)).toBe(500); // nothing was taken meanwhile
      expect(await state.buckets.take('shopify:a', t0 + 1000)).toBe(0); // 20 -> 0
      expect(await state.buckets.take('shopify:b', t0)).toBe(0); // buckets are per key
      // Refills stop at the maximum.
      expect(await state.buckets.take('shopify:a', t0 + 60_000)).toBe(0); // 100 -> 80
      expect(await state.buckets.take('shopify:a', t0 + 60_000)).toBe(0); // 80 -> 60
      // Ten takers at once with 60 points and a cost of 20: exactly three get through.
      const waits = await Promise.all(Array.from({ length: 10 }, () => state.buckets.take('shopify:a', t0 + 60_000)));
      expect(waits.filter((w) => w === 0)).toHaveLength(3);
      expect(waits.filter((w) => w === 2000)).toHaveLength(7);
      // A report replaces the bucket; one that never refills does not hold calls.
      await state.buckets.report('shopify:a', { maximumAvailable: 100, currentlyAvailable: 0, restoreRate: 0, at: t0, lastCost: 20 });
      expect(await state.buckets.take('shopify:a', t0)).toBe(0);
    });

    it('answers ping while open', async () => {
      expect(await state.ping()).toBe(true);
    });
  });
}
