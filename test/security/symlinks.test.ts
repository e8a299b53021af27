/**
 * Writes never follow symlinks: a cloned repository with committed links under .alloy/
 * (stream-secret, dev.json, the event log, the store, locks, the relay queue) gets a clear
 * E_SYMLINK naming the path, and the link's target is left untouched.
 */
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, symlinkSync, writeFileSync, existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadOrCreateIngressSecret, loadOrCreateStreamSecret, prepareDevLogFile, writeDevInfo } from '../../src/server/dev-state.js';
import { LocalStore, releaseIntegration } from '../../src/store/index.js';
import { acquireLock } from '../../src/store/lock.js';
import { RelayQueue } from '../../src/tunnel/relay-queue.js';
import { ensurePrivateDir, ensurePrivateDirAsync } from '../../src/core/safe-fs.js';
import { fixedClock, integration, workflow } from '../store/helpers.js';
import { openServe, rotateMasterKey } from '../../src/serve/admin.js';
import { SnapshotBook } from '../../src/test-runner/snapshots.js';

let root: string;
let victim: string;
beforeEach(() => {
  root = mkdtempSync(path.join(os.tmpdir(), 'alloy-sec-link-'));
  victim = path.join(root, 'victim');
  writeFileSync(victim, 'precious\n');
  mkdirSync(path.join(root, 'repo', '.alloy'), { recursive: true });
});
afterEach(() => rmSync(root, { recursive: true, force: true }));

const repo = () => path.join(root, 'repo');
const link = (rel: string, target = victim) => symlinkSync(target, path.join(repo(), rel));
function refusal(fn: () => unknown): { code?: string; message?: string } {
  try {
    fn();
  } catch (err) {
    return err as { code?: string; message?: string };
  }
  return {};
}
async function refusalAsync(fn: () => Promise<unknown>): Promise<{ code?: string; message?: string }> {
  try {
    await fn();
  } catch (err) {
    return err as { code?: string; message?: string };
  }
  return {};
}

describe('no writes through symlinks under .alloy', () => {
  it('.alloy/stream-secret -> victim: refused, victim untouched (also when the target does not exist yet)', () => {
    link('.alloy/stream-secret');
    const err = refusal(() => loadOrCreateStreamSecret(repo()));
    expect(err.code).toBe('E_SYMLINK');
    expect(err.message).toContain(path.join('.alloy', 'stream-secret'));
    expect(readFileSync(victim, 'utf8')).toBe('precious\n');
    const dangling = path.join(root, 'created-by-link');
    link('.alloy/ingress-secret', dangling);
    expect(refusal(() => loadOrCreateIngressSecret(repo())).code).toBe('E_SYMLINK');
    expect(existsSync(dangling)).toBe(false);
  });

  it('dev.json, the event log and .alloy itself', () => {
    link('.alloy/dev.json');
    expect(refusal(() => writeDevInfo(repo(), { url: 'http://127.0.0.1:1', pid: 1, startedAt: '' })).code).toBe('E_SYMLINK');
    link('.alloy/dev.sqlite');
    expect(refusal(() => prepareDevLogFile(repo())).code).toBe('E_SYMLINK');
    rmSync(path.join(repo(), '.alloy', 'dev.sqlite'));
    // The body file (large delivery bodies, issue 13) is checked like the WAL.
    link('.alloy/dev.sqlite-bodies');
    expect(refusal(() => prepareDevLogFile(repo())).code).toBe('E_SYMLINK');
    rmSync(path.join(repo(), '.alloy', 'dev.sqlite-bodies'));
    const other = path.join(root, 'other');
    mkdirSync(path.join(other, 'repo'), { recursive: true });
    symlinkSync(root, path.join(other, 'repo', '.alloy'));
    expect(refusal(() => loadOrCreateStreamSecret(path.join(other, 'repo'))).code).toBe('E_SYMLINK');
    expect(readFileSync(victim, 'utf8')).toBe('precious\n');
  });

  it('store objects, refs and locks', async () => {
    const storeDir = path.join(repo(), '.alloy', 'store');
    const elsewhere = path.join(root, 'elsewhere');
    mkdirSync(elsewhere);
    mkdirSync(storeDir);
    symlinkSync(elsewhere, path.join(storeDir, 'objects'));
    const store = new LocalStore(storeDir);
    const err = await refusalAsync(() => releaseIntegration(store, integration('shop', [workflow('a')]), { author: 'ci', now: fixedClock() }));
    expect(err.code).toBe('E_SYMLINK');
    const lockFile = path.join(root, 'x.lock');
    symlinkSync(victim, lockFile);
    expect((await refusalAsync(() => acquireLock(lockFile, { timeoutMs: 100 }))).code).toBe('E_SYMLINK');
    expect(readFileSync(victim, 'utf8')).toBe('precious\n');
  });

  it('the relay queue', async () => {
    const queueDir = path.join(repo(), '.alloy', 'relay', 'queue');
    mkdirSync(queueDir, { recursive: true });
    const elsewhere = path.join(root, 'q-elsewhere');
    mkdirSync(elsewhere);
    symlinkSync(elsewhere, path.join(queueDir, 'alice'));
    const q = await RelayQueue.open(queueDir, { maxItems: 1, maxBytes: 1e6, maxAgeMs: 1e9 });
    const request = (id: string) => ({ id, receivedAt: new Date().toISOString(), method: 'POST', path: '/v1/run/event', headers: [] as [string, string][], body: '' });
    expect((await refusalAsync(() => q.enqueue('alice', request('a')))).code).toBe('E_SYMLINK');
    expect((await import('node:fs')).readdirSync(elsewhere)).toEqual([]);
    expect((await q.enqueue('bob', request('b'))).ok).toBe(true);
    symlinkSync(victim, path.join(queueDir, 'bob', 'dropped.json'));
    // Over the bound: the drop count is saved to dropped.json, which is now a link.
    expect((await refusalAsync(() => q.enqueue('bob', request('c')))).code).toBe('E_SYMLINK');
    expect(readFileSync(victim, 'utf8')).toBe('precious\n');
  });
  it('a private folder under a symlinked level: refused before anything is made in the link\'s target', async () => {
    const elsewhere = path.join(root, 'dir-elsewhere');
    mkdirSync(elsewhere);
    rmSync(path.join(repo(), '.alloy'), { recursive: true });
    link('.alloy', elsewhere);
    const deep = path.join(repo(), '.alloy', 'cache', 'x');
    expect(refusal(() => ensurePrivateDir(deep, repo())).code).toBe('E_SYMLINK');
    expect((await refusalAsync(() => ensurePrivateDirAsync(deep, repo()))).code).toBe('E_SYMLINK');
    expect((await import('node:fs')).readdirSync(elsewhere)).toEqual([]);
    rmSync(path.join(repo(), '.alloy'));
    ensurePrivateDir(deep, repo());
    expect(existsSync(deep)).toBe(true);
  });
});

describe('no writes through symlinks in the project (a hostile clone)', () => {
  it('alloy test snapshots: a linked __snapshots__/ is refused, nothing written at its target; a linked integration folder is fine', async () => {
    const elsewhere = path.join(root, 'dir-elsewhere');
    mkdirSync(elsewhere);
    const tests = path.join('integrations', 'x', 'tests');
    mkdirSync(path.join(repo(), tests), { recursive: true });
    const snapshot = async () => {
      const book = new SnapshotBook(repo(), { update: true, ci: false });
      expect(book.check(path.join(tests, 'a.test.yaml'), 'first', { status: 'succeeded' }).state).toBe('written');
      await book.save();
    };
    link(path.join(tests, '__snapshots__'), elsewhere);
    expect((await refusalAsync(snapshot)).code).toBe('E_SYMLINK');
    expect(readdirSync(elsewhere)).toEqual([]);
    rmSync(path.join(repo(), tests, '__snapshots__'));
    // Without links it writes the file, readable by the project's other users as any project file.
    await snapshot();
    const written = path.join(repo(), tests, '__snapshots__', 'a.test.yaml.snap.json');
    expect(JSON.parse(readFileSync(written, 'utf8'))).toEqual({ first: { status: 'succeeded' } });
    expect(statSync(written).mode & 0o044).not.toBe(0);
    // A monorepo links an integration in from elsewhere: its tests were read through the link, and their snapshots go there too.
    const shared = path.join(root, 'shared-integration');
    mkdirSync(path.join(shared, 'tests'), { recursive: true });
    link(path.join('integrations', 'y'), shared);
    const book = new SnapshotBook(repo(), { update: true, ci: false });
    book.check(path.join('integrations', 'y', 'tests', 'b.test.yaml'), 'b', 1);
    await book.save();
    expect(readdirSync(path.join(shared, 'tests', '__snapshots__'))).toEqual(['b.test.yaml.snap.json']);
  });
});

describe('no writes through symlinks in the serve data folder (default .alloy/serve in a project)', () => {
  const data = () => path.join(repo(), '.alloy', 'serve');
  const env = {} as NodeJS.ProcessEnv;

  it('serve.db -> victim, a dangling master.keys, and a symlinked data folder: E_SYMLINK, nothing made at the target', async () => {
    mkdirSync(data());
    link('.alloy/serve/serve.db');
    expect((await refusalAsync(() => openServe({ dataDir: data() }, env))).code).toBe('E_SYMLINK');
    expect(readFileSync(victim, 'utf8')).toBe('precious\n');
    rmSync(path.join(data(), 'serve.db'));
    rmSync(path.join(data(), 'master.keys'), { force: true });
    const dangling = path.join(root, 'created-by-link');
    link('.alloy/serve/master.keys', dangling);
    expect((await refusalAsync(() => openServe({ dataDir: data() }, env))).code).toBe('E_SYMLINK');
    expect(existsSync(dangling)).toBe(false);
    rmSync(data(), { recursive: true });
    const elsewhere = path.join(root, 'elsewhere');
    mkdirSync(elsewhere);
    link('.alloy/serve', elsewhere);
    expect((await refusalAsync(() => openServe({ dataDir: data(), dataBase: repo() }, env))).code).toBe('E_SYMLINK');
    expect(readdirSync(elsewhere)).toEqual([]);
  });

  it('keys rotate does not append through a symlinked master.keys', async () => {
    const { state } = await openServe({ dataDir: data() }, env);
    await state.close();
    const keys = path.join(data(), 'master.keys');
    writeFileSync(victim, readFileSync(keys));
    rmSync(keys);
    link('.alloy/serve/master.keys');
    const before = readFileSync(victim, 'utf8');
    expect((await refusalAsync(() => rotateMasterKey({ dataDir: data() }, env))).code).toBe('E_SYMLINK');
    expect(readFileSync(victim, 'utf8')).toBe(before);
  });

  it('serve.db is private (0600) also in a data folder that is not', async () => {
    mkdirSync(data(), { mode: 0o755 });
    chmodSync(data(), 0o755);
    const { state } = await openServe({ dataDir: data() }, env);
    await state.close();
    expect(statSync(path.join(data(), 'serve.db')).mode & 0o777).toBe(0o600);
    expect(statSync(path.join(data(), 'master.keys')).mode & 0o777).toBe(0o600);
  });

  it('an existing master.keys readable by others (0644: widened, or committed and checked out) stops serve with E_MASTER_KEY_EXPOSED; it was used as is', async () => {
    const first = await openServe({ dataDir: data() }, env);
    await first.state.close();
    const keys = path.join(data(), 'master.keys');
    const text = readFileSync(keys, 'utf8');
    chmodSync(keys, 0o644);
    const refused = await refusalAsync(() => openServe({ dataDir: data() }, env));
    expect(refused.code).toBe('E_MASTER_KEY_EXPOSED');
    expect(refused.message).toContain('644');
    expect((await refusalAsync(() => rotateMasterKey({ dataDir: data() }, env))).code).toBe('E_MASTER_KEY_EXPOSED');
    expect(readFileSync(keys, 'utf8')).toBe(text);
    // The hint's fix works.
    chmodSync(keys, 0o600);
    const { state } = await openServe({ dataDir: data() }, env);
    await state.close();
  });

  it('a master.keys readable by its group only (Kubernetes fsGroup makes it 0660 on every start) is taken back to 0600 and used', async () => {
    const first = await openServe({ dataDir: data() }, env);
    await first.state.close();
    const keys = path.join(data(), 'master.keys');
    chmodSync(keys, 0o660);
    const { state } = await openServe({ dataDir: data() }, env);
    await state.close();
    expect(statSync(keys).mode & 0o777).toBe(0o600);
  });
});
