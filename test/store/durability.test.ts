/**
 * Directory durability: a name is only durable once the directory holding it is fsynced
 * (fsync(2)), so every directory the store creates must have its parent fsynced, and the
 * publish log's directory must be fsynced when the log file is created. We observe every
 * fsyncDir call (the one function that fsyncs directories) for a first release and publish
 * into a store that does not exist yet, and check each created name was made durable.
 */
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

const synced: string[] = [];
vi.mock('../../src/store/dir-sync.js', async (importOriginal) => {
  const real = await importOriginal<typeof import('../../src/store/dir-sync.js')>();
  return {
    fsyncDir: async (dir: string) => {
      synced.push(path.resolve(dir));
      return real.fsyncDir(dir);
    },
  };
});

const { LocalStore, publishVersion, releaseIntegration } = await import('../../src/store/index.js');
const { cleanupTempDirs, fixedClock, integration, tempDir, workflow } = await import('./helpers.js');

/** Every directory under root (root included). */
async function dirsUnder(root: string): Promise<string[]> {
  const out = [root];
  for (const e of await readdir(root, { withFileTypes: true })) {
    if (e.isDirectory()) out.push(...(await dirsUnder(path.join(root, e.name))));
  }
  return out;
}

beforeEach(() => {
  synced.length = 0;
});
afterEach(cleanupTempDirs);

describe('store directories are fsynced', () => {
  it('a first release into a new store fsyncs the parent of every directory it created', async () => {
    const parent = await tempDir();
    const root = path.join(parent, 'store');
    const store = new LocalStore(root);
    await releaseIntegration(store, integration('shop', [workflow('a'), workflow('b')]), { author: 't', now: fixedClock() });
    const created = (await dirsUnder(root)).filter((d) => !d.endsWith(`${path.sep}locks`));
    // store/, objects/, objects/xx, refs/, refs/shop, refs/shop/versions: each name lives in its parent.
    for (const d of created) expect(synced, `parent of ${path.relative(parent, d)} fsynced`).toContain(path.dirname(d));
    expect(synced).toContain(path.join(root, 'refs', 'shop', 'versions'));
  });

  it('the first publish fsyncs logs/, logs/<integration>/ and the directory of the new log file before moving the pointer', async () => {
    const root = path.join(await tempDir(), 'store');
    const store = new LocalStore(root);
    await releaseIntegration(store, integration('shop', [workflow('a')]), { author: 't', now: fixedClock() });
    synced.length = 0;
    await publishVersion(store, { integration: 'shop', selector: 1 }, { who: 't' });
    const logDir = path.join(root, 'logs', 'shop');
    expect(synced).toContain(root); // logs/ is a name in the store root
    expect(synced).toContain(path.join(root, 'logs')); // logs/shop
    expect(synced).toContain(logDir); // logs/shop/published (new file)
    expect(synced).toContain(path.join(root, 'refs', 'shop')); // refs/shop/published
    // The log's names are durable before the pointer's rename is.
    expect(synced.indexOf(logDir)).toBeLessThan(synced.lastIndexOf(path.join(root, 'refs', 'shop')));
  });

  it('init() fsyncs the store root and its parent when it creates them', async () => {
    const parent = await tempDir();
    const root = path.join(parent, 'a', 'store');
    await new LocalStore(root).init();
    for (const d of [parent, path.join(parent, 'a'), root]) expect(synced).toContain(d);
  });
});
