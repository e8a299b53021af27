/**
 * The rules every Store keeps (store.ts), run on each implementation that lives in this repo's
 * processes: LocalStore (files) and PgStore (PostgreSQL). `open` gives a fresh, empty store and
 * a way to damage one object's stored bytes (to prove reads re-hash).
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  CorruptObjectError,
  encodeObject,
  fsckStore,
  loadRelease,
  PublishConflictError,
  publishVersion,
  releaseIntegration,
  rollbackPublished,
  VersionExistsError,
  type Store,
} from '../../src/store/index.js';
import { fixedClock, integration, workflow } from './helpers.js';

export interface ContractStore {
  store: Store;
  /** Replaces the stored bytes of object `id` (behind the store's back). */
  corrupt(id: string): Promise<void>;
  close(): Promise<void>;
}

const opts = { author: 'tester', now: fixedClock() };

export function runStoreContract(name: string, open: () => Promise<ContractStore>): void {
  describe(`Store contract: ${name}`, () => {
    let s: ContractStore;
    let store: Store;
    beforeEach(async () => {
      s = await open();
      store = s.store;
    });
    afterEach(async () => {
      await s.close();
    });

    it('releases once per content; v2 chains to v1; objects are shared and stored once', async () => {
      const src = integration('shop', [workflow('a'), workflow('b')]);
      const r1 = await releaseIntegration(store, src, { ...opts, message: 'first' });
      expect(r1).toMatchObject({ status: 'released', version: 1, objectsWritten: 4 });
      expect(await releaseIntegration(store, src, opts)).toMatchObject({ status: 'up-to-date', version: 1, objectsWritten: 0 });
      const r2 = await releaseIntegration(store, integration('shop', [workflow('a', [{ id: 'map', uses: 'transform', with: { x: '{{ event.y }}' } }]), workflow('b')]), opts);
      expect(r2).toMatchObject({ status: 'released', version: 2, objectsWritten: 2 });
      expect((await loadRelease(store, 'shop', { version: 2, id: r2.id })).release.parent).toBe(r1.id);
      expect(await store.listIntegrations()).toEqual(['shop']);
      expect(await store.latestVersion('shop')).toEqual({ version: 2, id: r2.id });
      expect(await store.latestVersion('other')).toBeNull();
      expect((await store.listVersions('shop')).map((v) => v.version)).toEqual([1, 2]);
      expect((await store.listVersions('shop', { newest: 1 })).map((v) => v.version)).toEqual([2]);
      await expect(store.readVersion('shop', 3)).rejects.toThrow(/does not exist/);
      expect((await fsckStore(store)).errors).toBe(0);
    });

    it('a version is created once, never rewritten, never with a gap', async () => {
      const r1 = await releaseIntegration(store, integration('shop', [workflow('a')]), opts);
      await expect(store.createVersion('shop', { version: 1, id: r1.id })).rejects.toBeInstanceOf(VersionExistsError);
      expect(await store.readVersion('shop', 1)).toEqual({ version: 1, id: r1.id });
      // A release object for v3 while v2 does not exist.
      const rel = encodeObject({ ...(await store.readObject(r1.id)), version: 3, parent: r1.id } as never);
      await store.putObjects([rel]);
      await expect(store.createVersion('shop', { version: 3, id: rel.id })).rejects.toThrow(/v2 does not exist/);
    });

    it('objects: negotiation, re-hash on write, written once, re-hash on every read', async () => {
      const o = encodeObject({ type: 'workflow', def: workflow('a') });
      expect(await store.missingObjects([o.id, o.id])).toEqual([o.id]);
      await expect(store.missingObjects(['nope'])).rejects.toThrow(/not an object id/);
      await expect(store.putObjects([{ id: o.id, bytes: Buffer.from('{"type":"workflow"}') }])).rejects.toThrow(/do not hash/);
      expect(await store.missingObjects([o.id])).toEqual([o.id]);
      await store.putObjects([o, o]);
      await store.putObjects([o]);
      expect(await store.missingObjects([o.id])).toEqual([]);
      expect(await store.readObject(o.id)).toEqual({ type: 'workflow', def: workflow('a') });
      await s.corrupt(o.id);
      await expect(store.readObject(o.id)).rejects.toBeInstanceOf(CorruptObjectError);
    });

    it('publish moves by compare-and-swap, rolls back along the log, and logs every move', async () => {
      const ids: string[] = [];
      for (const n of ['a', 'b', 'c']) ids.push((await releaseIntegration(store, integration('shop', [workflow(n)]), opts)).id);
      expect(await store.readPublished('shop')).toBeNull();
      await publishVersion(store, { integration: 'shop', selector: 1 }, { who: 'ann' });
      await publishVersion(store, { integration: 'shop', selector: 'latest' }, { who: 'bob', message: 'go' });
      await expect(store.movePublished('shop', { expected: null, to: { version: 2, id: ids[1] }, action: 'publish', who: 'stale' })).rejects.toBeInstanceOf(PublishConflictError);
      await expect(store.movePublished('shop', { expected: ids[2], to: { version: 2, id: ids[0] }, action: 'publish', who: 'liar' })).rejects.toThrow(/is .*, not/);
      expect((await rollbackPublished(store, 'shop', { who: 'cy' })).ref.version).toBe(1);
      expect(await store.readPublished('shop')).toEqual({ version: 1, id: ids[0] });
      const log = await store.readPublishLog('shop');
      expect(log.map((e) => [e.from?.version ?? null, e.to.version, e.action, e.who])).toEqual([
        [null, 1, 'publish', 'ann'],
        [1, 3, 'publish', 'bob'],
        [3, 1, 'rollback', 'cy'],
      ]);
      expect(log[1].message).toBe('go');
    });

    it('concurrent releases of distinct content make v1..v5; concurrent publishes from one expected value: one wins', async () => {
      const results = await Promise.all([0, 1, 2, 3, 4].map((i) => releaseIntegration(store, integration('shop', [workflow(`w${i}`)]), opts)));
      expect(results.map((r) => r.version).sort()).toEqual([1, 2, 3, 4, 5]);
      const moves = await Promise.allSettled(results.map((r) => store.movePublished('shop', { expected: null, to: { version: r.version, id: r.id }, action: 'publish', who: `p${r.version}` })));
      expect(moves.filter((m) => m.status === 'fulfilled')).toHaveLength(1);
      expect(moves.filter((m) => m.status === 'rejected').every((m) => (m as PromiseRejectedResult).reason instanceof PublishConflictError)).toBe(true);
      expect(await store.readPublishLog('shop')).toHaveLength(1);
      expect((await fsckStore(store)).errors).toBe(0);
    });
  });
}
