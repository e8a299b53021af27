/**
 * Rollback after an interrupted move, lock ownership after a stale break, and the version
 * chain rules the local store enforces on createVersion.
 */
import { existsSync, writeFileSync } from 'node:fs';
import { readFile, utimes, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  LocalStore,
  acquireLock,
  encodeObject,
  fsckStore,
  LockTimeoutError,
  publishStack,
  publishVersion,
  releaseIntegration,
  rollbackPublished,
  type PublishLogEntry,
} from '../../src/store/index.js';
import { cleanupTempDirs, fixedClock, integration, tempDir, workflow } from './helpers.js';

afterEach(cleanupTempDirs);

const opts = { author: 'tester', now: fixedClock() };
const killedAfterLog = (phase: string) => {
  if (phase === 'publish-log-appended') throw new Error('simulated kill after the log line');
};

async function threePublished(dir: string) {
  const store = new LocalStore(dir);
  for (const n of ['a', 'b', 'c']) await releaseIntegration(store, integration('shop', [workflow(n)]), opts);
  for (const v of [1, 2, 3]) await publishVersion(store, { integration: 'shop', selector: v }, { who: 'ann' });
  return store;
}

describe('rollback after a move interrupted between its log line and the pointer', () => {
  it('a rollback killed after its log line can be retried and goes to the previous version', async () => {
    const dir = await tempDir();
    const store = await threePublished(dir);
    const crashing = new LocalStore(dir, { crashAt: killedAfterLog });
    await expect(rollbackPublished(crashing, 'shop', { who: 'bob' })).rejects.toThrow(/simulated kill/);
    expect((await store.readPublished('shop'))?.version).toBe(3);
    const retried = await rollbackPublished(store, 'shop', { who: 'bob' });
    expect(retried.ref.version).toBe(2);
    expect((await store.readPublished('shop'))?.version).toBe(2);
    // And once more: back to v1, then nothing.
    expect((await rollbackPublished(store, 'shop', { who: 'bob' })).ref.version).toBe(1);
    await expect(rollbackPublished(store, 'shop', { who: 'bob' })).rejects.toThrow(/nothing to roll back to/);
    expect((await fsckStore(store)).errors).toBe(0);
  });

  it('after an interrupted rollback and a later publish, rollback returns to the version published before it', async () => {
    const dir = await tempDir();
    const store = await threePublished(dir);
    await releaseIntegration(store, integration('shop', [workflow('d')]), opts);
    await expect(rollbackPublished(new LocalStore(dir, { crashAt: killedAfterLog }), 'shop', { who: 'bob' })).rejects.toThrow(/simulated kill/);
    await publishVersion(store, { integration: 'shop', selector: 4 }, { who: 'cy' });
    expect((await rollbackPublished(store, 'shop', { who: 'cy' })).ref.version).toBe(3);
    expect((await rollbackPublished(store, 'shop', { who: 'cy' })).ref.version).toBe(2);
  });

  it('an interrupted publish does not count either: rollback skips the version that never went live', async () => {
    const dir = await tempDir();
    const store = await threePublished(dir);
    await releaseIntegration(store, integration('shop', [workflow('d')]), opts);
    await expect(publishVersion(new LocalStore(dir, { crashAt: killedAfterLog }), { integration: 'shop', selector: 4 }, { who: 'x' })).rejects.toThrow(/simulated kill/);
    expect((await store.readPublished('shop'))?.version).toBe(3);
    expect((await rollbackPublished(store, 'shop', { who: 'x' })).ref.version).toBe(2);
  });

  it('publishStack keeps only entries that took effect', () => {
    const ref = (v: number) => ({ version: v, id: String(v).repeat(64).slice(0, 64) });
    const e = (from: number | null, to: number, action: 'publish' | 'rollback'): PublishLogEntry => ({ from: from === null ? null : ref(from), to: ref(to), action, who: 'x', when: '2026-01-01T00:00:00.000Z' });
    const log = [e(null, 1, 'publish'), e(1, 2, 'publish'), e(2, 1, 'rollback'), e(2, 3, 'publish')];
    // The rollback to v1 never happened (the next move starts from v2).
    expect(publishStack(log, ref(3).id).map((r) => r.version)).toEqual([1, 2, 3]);
    // The last entry counts only if the pointer is where it ended.
    expect(publishStack(log, ref(2).id).map((r) => r.version)).toEqual([1, 2]);
  });
});

describe('lock ownership', () => {
  it('a holder whose lock was broken as stale does not delete the new holder\'s lock on release', async () => {
    const file = path.join(await tempDir(), 'shop.publish.lock');
    const a = await acquireLock(file);
    // 31 s later by B's clock (A is slow or suspended): B judges it stale and takes it.
    const b = await acquireLock(file, { now: () => Date.now() + 31_000, timeoutMs: 1000 });
    const bOwner = await readFile(file, 'utf8');
    await a.release();
    expect(existsSync(file)).toBe(true);
    expect(await readFile(file, 'utf8')).toBe(bOwner);
    // C must wait for B, not get in beside it.
    await expect(acquireLock(file, { timeoutMs: 150 })).rejects.toBeInstanceOf(LockTimeoutError);
    await expect(a.assertHeld()).rejects.toMatchObject({ code: 'E_STORE_LOCK_LOST' });
    await b.assertHeld();
    await b.release();
    expect(existsSync(file)).toBe(false);
    const c = await acquireLock(file, { timeoutMs: 500 });
    await c.release();
  });

  it('a live holder\'s heartbeat keeps its lock from being judged stale by age', async () => {
    const file = path.join(await tempDir(), 'x.lock');
    const a = await acquireLock(file, { staleMs: 120 });
    // Old acquisition time, but A's heartbeat keeps touching the file.
    await new Promise((r) => setTimeout(r, 400));
    await expect(acquireLock(file, { staleMs: 120, timeoutMs: 100, isAlive: () => true })).rejects.toBeInstanceOf(LockTimeoutError);
    await a.assertHeld();
    await a.release();
  });

  it('breaks a lock that nobody touches once it is older than the bound (other host)', async () => {
    const file = path.join(await tempDir(), 'x.lock');
    await writeFile(file, JSON.stringify({ pid: process.pid, host: 'elsewhere', time: Date.now() - 60_000 }));
    const old = new Date(Date.now() - 60_000);
    await utimes(file, old, old);
    const held = await acquireLock(file, { staleMs: 30_000, timeoutMs: 1000 });
    expect(JSON.parse(await readFile(file, 'utf8')).host).toBe(os.hostname());
    await held.release();
  });

  it('a publish whose lock was broken and taken over mid-move does not move the pointer, and leaves the new lock alone', async () => {
    const dir = await tempDir();
    const store = new LocalStore(dir);
    const r1 = await releaseIntegration(store, integration('shop', [workflow('a')]), opts);
    const lockFile = store.lockPath('shop', 'publish');
    const theirs = JSON.stringify({ pid: 1, host: 'other', time: Date.now(), token: 'f'.repeat(32) });
    // Between the log line and the pointer, another process breaks our lock and takes it.
    const slow = new LocalStore(dir, {
      crashAt: (phase) => {
        if (phase === 'publish-log-appended') writeFileSync(lockFile, theirs);
      },
    });
    await expect(slow.movePublished('shop', { expected: null, to: { version: 1, id: r1.id }, action: 'publish', who: 'slow' })).rejects.toMatchObject({ code: 'E_STORE_LOCK_LOST' });
    expect(await store.readPublished('shop')).toBeNull();
    expect(await readFile(lockFile, 'utf8')).toBe(theirs);
  });
});

describe('version chain rules (local store)', () => {
  it('refuses versions/<n> when v<n-1> is missing or the parent is not v<n-1>; fsck stays clean', async () => {
    const store = new LocalStore(await tempDir());
    const src = integration('shop', [workflow('a')]);
    const r1 = await releaseIntegration(store, src, opts);
    const intObj = encodeObject({ type: 'integration', def: src.def });
    const release = (version: number, parent: string | null) =>
      encodeObject({ type: 'release', integration: 'shop', version, parent, integrationObject: intObj.id, workflows: {}, message: '', author: 'x', time: '2026-01-01T00:00:00.000Z' } as any);
    const gap = release(7, r1.id);
    const orphan = release(2, null);
    const wrongV1 = release(1, r1.id);
    await store.putObjects([intObj, gap, orphan, wrongV1]);
    await expect(store.createVersion('shop', { version: 7, id: gap.id })).rejects.toMatchObject({ code: 'E_STORE_BAD_RELEASE', message: expect.stringContaining('v6 does not exist') });
    await expect(store.createVersion('shop', { version: 2, id: orphan.id })).rejects.toMatchObject({ code: 'E_STORE_BAD_RELEASE', message: expect.stringContaining('parent') });
    // An existing version is still "exists" (409), not a chain error.
    await expect(store.createVersion('shop', { version: 1, id: wrongV1.id })).rejects.toMatchObject({ code: 'E_STORE_VERSION_EXISTS' });
    expect((await store.listVersions('shop')).map((r) => r.version)).toEqual([1]);
    const good = release(2, r1.id);
    await store.putObjects([good]);
    await store.createVersion('shop', { version: 2, id: good.id });
    expect((await fsckStore(store)).errors).toBe(0);
  });
});
