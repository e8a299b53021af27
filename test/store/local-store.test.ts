import { readFile, writeFile, readdir, mkdir, utimes } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  LocalStore,
  acquireLock,
  CorruptObjectError,
  encodeObject,
  fsckStore,
  listVersionInfo,
  loadRelease,
  LockTimeoutError,
  planRelease,
  publishVersion,
  releaseIntegration,
  rollbackPublished,
  VersionExistsError,
  PublishConflictError,
  LiteralSecretError,
} from '../../src/store/index.js';
import { cleanupTempDirs, fixedClock, integration, tempDir, workflow } from './helpers.js';

afterEach(cleanupTempDirs);

const opts = { author: 'tester', now: fixedClock() };

async function snapshotObjects(store: LocalStore): Promise<Map<string, Buffer>> {
  const m = new Map<string, Buffer>();
  for (const { file } of await store.listObjectFiles()) m.set(file, await readFile(file));
  return m;
}

describe('local store: releases', () => {
  it('release twice gives one version; the second is "up to date" and writes nothing', async () => {
    const store = new LocalStore(await tempDir());
    const src = integration('shop', [workflow('a'), workflow('b')]);
    const r1 = await releaseIntegration(store, src, { ...opts, message: 'first' });
    expect(r1).toMatchObject({ status: 'released', version: 1, objectsWritten: 4 });
    const before = await snapshotObjects(store);
    const r2 = await releaseIntegration(store, src, opts);
    expect(r2).toMatchObject({ status: 'up-to-date', version: 1, id: r1.id, objectsWritten: 0 });
    expect((await store.listVersions('shop')).map((v) => v.version)).toEqual([1]);
    expect(await snapshotObjects(store)).toEqual(before);
  });

  it('an edit gives v2 whose parent is v1, and v1 objects stay byte-identical', async () => {
    const dir = await tempDir();
    const store = new LocalStore(dir);
    const r1 = await releaseIntegration(store, integration('shop', [workflow('a'), workflow('b')]), opts);
    const v1Files = await snapshotObjects(store);
    const edited = workflow('a', [{ id: 'map', uses: 'transform', with: { email: '{{ event.mail }}' } }]);
    const r2 = await releaseIntegration(store, integration('shop', [edited, workflow('b')]), { ...opts, message: 'edit a' });
    expect(r2).toMatchObject({ status: 'released', version: 2, changes: { changed: ['a'], unchanged: ['b'] } });
    // a new workflow object and a new release object; the integration object and b are shared
    expect(r2.objectsWritten).toBe(2);
    for (const [file, bytes] of v1Files) expect(await readFile(file)).toEqual(bytes);
    const rel2 = await loadRelease(store, 'shop', { version: 2, id: r2.id });
    expect(rel2.release.parent).toBe(r1.id);
    expect(rel2.workflows.get('a')).toEqual(edited);
    const infos = await listVersionInfo(store, 'shop');
    expect(infos.map((i) => [i.version, i.message])).toEqual([[1, ''], [2, 'edit a']]);
    expect((await fsckStore(store)).errors).toBe(0);
  });

  it('never rewrites versions/<n>', async () => {
    const store = new LocalStore(await tempDir());
    const r1 = await releaseIntegration(store, integration('shop', [workflow('a')]), opts);
    await expect(store.createVersion('shop', { version: 1, id: r1.id })).rejects.toBeInstanceOf(VersionExistsError);
    expect((await readFile(store.versionPath('shop', 1), 'utf8')).trim()).toBe(r1.id);
  });

  it('refuses literal secrets naming file and field, and stores nothing', async () => {
    const dir = await tempDir();
    const store = new LocalStore(dir);
    const w = workflow('a');
    w.stream = { url: 'https://acme.example/hook', secret: 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw' };
    const err = await planRelease(store, integration('shop', [w])).catch((e) => e);
    expect(err).toBeInstanceOf(LiteralSecretError);
    expect(err.findings).toEqual([{ file: 'integrations/shop/workflows/a.yaml', field: '/stream/secret', kind: 'Standard Webhooks secret' }]);
    expect(JSON.stringify(err.toJSON())).not.toContain('whsec_');
    expect(await readdir(dir)).toEqual([]);
    w.stream.secret = '{{ secrets.ACME_STREAM_SECRET }}';
    await expect(planRelease(store, integration('shop', [w]))).resolves.toMatchObject({ upToDate: false });
  });

  it('reads the latest version in O(1) from the hint, and steps past a lagging hint', async () => {
    const store = new LocalStore(await tempDir());
    for (let i = 0; i < 3; i++) await releaseIntegration(store, integration('shop', [workflow(`w${i}`)]), opts);
    await writeFile(store.latestHintPath('shop'), '1\n');
    expect((await store.latestVersion('shop'))?.version).toBe(3);
    const report = await fsckStore(store);
    expect(report.errors).toBe(0);
    expect(report.problems.map((p) => p.code)).toContain('W_STORE_HINT_BEHIND');
  });
});

describe('local store: tamper detection', () => {
  it('a changed object file fails on read naming the object and the file; fsck reports it', async () => {
    const store = new LocalStore(await tempDir());
    const src = integration('shop', [workflow('a')]);
    await releaseIntegration(store, src, opts);
    const wfId = (await planRelease(store, src)).tree.ids.workflows.a;
    const file = store.objectPath(wfId);
    const text = await readFile(file, 'utf8');
    await writeFile(file, text.replace('event.email', 'event.evil'));
    const err = await store.readObject(wfId).catch((e) => e);
    expect(err).toBeInstanceOf(CorruptObjectError);
    expect(err.message).toContain(wfId);
    expect(err.message).toContain(file);
    const report = await fsckStore(store);
    expect(report.errors).toBeGreaterThanOrEqual(1);
    expect(report.problems).toContainEqual(expect.objectContaining({ code: 'E_STORE_CORRUPT', path: file, object: wfId }));
  });

  it('fsck reports a ref to a missing object and a broken parent chain', async () => {
    const store = new LocalStore(await tempDir());
    const r1 = await releaseIntegration(store, integration('shop', [workflow('a')]), opts);
    await releaseIntegration(store, integration('shop', [workflow('b')]), opts);
    const { rm } = await import('node:fs/promises');
    await rm(store.objectPath(r1.id));
    const report = await fsckStore(store);
    expect(report.problems.map((p) => p.code)).toEqual(expect.arrayContaining(['E_STORE_MISSING_OBJECT']));
    expect(report.errors).toBeGreaterThanOrEqual(1);
  });
});

describe('local store: publish, rollback, log', () => {
  it('publishes, rolls back along the log, and logs every move', async () => {
    const store = new LocalStore(await tempDir(), { now: fixedClock('2026-03-04T05:06:07.000Z') });
    const ids: string[] = [];
    for (const n of ['a', 'b', 'c']) ids.push((await releaseIntegration(store, integration('shop', [workflow(n)]), opts)).id);
    await publishVersion(store, { integration: 'shop', selector: 1 }, { who: 'ann' });
    await publishVersion(store, { integration: 'shop', selector: 2 }, { who: 'bob' });
    const p3 = await publishVersion(store, { integration: 'shop', selector: 'latest' }, { who: 'cy', message: 'go' });
    expect(p3).toMatchObject({ status: 'published', ref: { version: 3, id: ids[2] }, previous: { version: 2 } });
    expect(await publishVersion(store, { integration: 'shop', selector: 3 }, { who: 'cy' })).toMatchObject({ status: 'already-published' });
    expect((await rollbackPublished(store, 'shop', { who: 'dee' })).ref.version).toBe(2);
    expect((await rollbackPublished(store, 'shop', { who: 'dee' })).ref.version).toBe(1);
    await expect(rollbackPublished(store, 'shop', { who: 'dee' })).rejects.toThrow(/nothing to roll back to/);
    expect(await store.readPublished('shop')).toEqual({ version: 1, id: ids[0] });
    const log = await store.readPublishLog('shop');
    expect(log.map((e) => [e.from?.version ?? null, e.to.version, e.action, e.who])).toEqual([
      [null, 1, 'publish', 'ann'],
      [1, 2, 'publish', 'bob'],
      [2, 3, 'publish', 'cy'],
      [3, 2, 'rollback', 'dee'],
      [2, 1, 'rollback', 'dee'],
    ]);
    expect(log[2]).toMatchObject({ message: 'go', when: '2026-03-04T05:06:07.000Z' });
    expect((await fsckStore(store)).errors).toBe(0);
  });

  it('moves published only by compare-and-swap', async () => {
    const store = new LocalStore(await tempDir());
    const r1 = await releaseIntegration(store, integration('shop', [workflow('a')]), opts);
    await store.movePublished('shop', { expected: null, to: { version: 1, id: r1.id }, action: 'publish', who: 'x' });
    await expect(store.movePublished('shop', { expected: null, to: { version: 1, id: r1.id }, action: 'publish', who: 'y' })).rejects.toBeInstanceOf(PublishConflictError);
    expect((await store.readPublishLog('shop')).length).toBe(1);
  });
});

describe('locks', () => {
  it('breaks a lock whose pid is dead, and times out on a live one naming the holder', async () => {
    const dir = await tempDir();
    const file = path.join(dir, 'locks', 'x.lock');
    await mkdir(path.dirname(file), { recursive: true });
    // pid 2^22+1 is above Linux's default pid_max range used here; treated as dead
    await writeFile(file, JSON.stringify({ pid: 4194305, host: os.hostname(), time: Date.now() }));
    const held = await acquireLock(file, { timeoutMs: 2000 });
    expect(JSON.parse(await readFile(file, 'utf8')).pid).toBe(process.pid);
    const err = await acquireLock(file, { timeoutMs: 150 }).catch((e) => e);
    expect(err).toBeInstanceOf(LockTimeoutError);
    expect(err.message).toContain(`pid ${process.pid}`);
    await held.release();
    const again = await acquireLock(file, { timeoutMs: 500 });
    await again.release();
  });

  it('breaks a lock older than the bound even when its pid is alive (other host)', async () => {
    const dir = await tempDir();
    const file = path.join(dir, 'x.lock');
    await writeFile(file, JSON.stringify({ pid: process.pid, host: 'elsewhere', time: Date.now() - 60_000 }));
    // Untouched for 60 s too (a live holder's heartbeat refreshes the mtime).
    const old = new Date(Date.now() - 60_000);
    await utimes(file, old, old);
    const held = await acquireLock(file, { staleMs: 30_000, timeoutMs: 1000 });
    await held.release();
  });

  it('serializes writers in one process: 5 concurrent releases of distinct content make v1..v5', async () => {
    const store = new LocalStore(await tempDir());
    const results = await Promise.all([0, 1, 2, 3, 4].map((i) => releaseIntegration(store, integration('shop', [workflow(`w${i}`)]), opts)));
    expect(results.map((r) => r.version).sort()).toEqual([1, 2, 3, 4, 5]);
    expect((await fsckStore(store)).errors).toBe(0);
  });

  it('objects are written once: putObjects on an existing id leaves the file untouched', async () => {
    const store = new LocalStore(await tempDir());
    const o = encodeObject({ type: 'workflow', def: workflow('a') });
    await store.putObjects([o]);
    const st1 = await (await import('node:fs/promises')).stat(store.objectPath(o.id));
    await store.putObjects([o]);
    const st2 = await (await import('node:fs/promises')).stat(store.objectPath(o.id));
    expect(st2.ino).toBe(st1.ino);
    expect(st2.mtimeMs).toBe(st1.mtimeMs);
  });
});
