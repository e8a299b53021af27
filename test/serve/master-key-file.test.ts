/**
 * The master key file is on disk before anything is sealed with it: created whole (temp file,
 * fsync, link, folder fsync) and a rotated key fsynced before `keys rotate` re-wraps under it.
 * Before, a plain write (no fsync) could leave serve.db holding secrets sealed with a key the
 * file lost at a power cut, and a kill between create and write left an empty key file.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';

const synced = vi.hoisted(() => ({ count: 0 }));
vi.mock('node:fs', async (importOriginal) => {
  const actual = await importOriginal<typeof import('node:fs')>();
  const fsyncSync = (fd: number) => {
    synced.count += 1;
    actual.fsyncSync(fd);
  };
  return { ...actual, fsyncSync, default: { ...actual, fsyncSync } };
});

const { addKeyToFile, loadKeyring } = await import('../../src/serve/crypto.js');

let dir: string;
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe('master key file', () => {
  it('is created whole, 0600, fsynced with its folder, and leaves no temp file; a rotated key is fsynced', () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'alloy-master-key-'));
    const file = path.join(dir, 'master.keys');
    synced.count = 0;
    const ring = loadKeyring({}, file);
    expect(synced.count).toBeGreaterThanOrEqual(2); // the file and its folder
    expect(readFileSync(file, 'utf8').trim().split('\n')).toHaveLength(1);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(readdirSync(dir)).toEqual(['master.keys']);
    // Opened again, the same key (not a new file).
    expect(loadKeyring({}, file).current.kid).toBe(ring.current.kid);
    synced.count = 0;
    const rotated = addKeyToFile(file);
    expect(synced.count).toBeGreaterThanOrEqual(1);
    expect(rotated.all()).toHaveLength(2);
  });
});
