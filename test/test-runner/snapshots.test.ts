/**
 * SnapshotBook's writes: never larger than what a later run reads back (the read refuses files
 * over the limit), and never through a symbolic link.
 */
import { lstat, mkdir, readFile, readdir, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { MAX_SNAPSHOT_FILE_BYTES, SnapshotBook, snapshotPath } from '../../src/test-runner/snapshots.js';
import { tempDir } from '../helpers/cli.js';

const TEST_FILE = 'integrations/x/tests/a.test.yaml';
let root: string;
let cleanup: () => Promise<void>;
beforeEach(async () => {
  ({ dir: root, cleanup } = await tempDir('alloy-snap-'));
  await mkdir(path.join(root, 'integrations/x/tests'), { recursive: true });
});
afterEach(async () => cleanup());

/** The size of the snapshot file holding one test `t` whose snapshot is a string of `n` characters. */
const fileBytes = (n: number) => Buffer.byteLength(JSON.stringify({ t: 'x'.repeat(n) }, null, 2) + '\n');
const book = (maxFileBytes?: number, update = false) => new SnapshotBook(root, { update, ci: false, ...(maxFileBytes ? { maxFileBytes } : {}) });

describe('snapshot writes are capped like snapshot reads', () => {
  it('a file at the limit is written and read back; one byte over is E_SNAPSHOT (exit 2), nothing written', async () => {
    // Before, writes had no cap: a run wrote a file the next run refused to read.
    const limit = 4096;
    const overhead = fileBytes(0);
    const at = book(limit);
    expect(at.check(TEST_FILE, 't', 'x'.repeat(limit - overhead))).toEqual({ state: 'written' });
    await at.save();
    expect((await lstat(snapshotPath(root, TEST_FILE))).size).toBe(limit);
    expect(book(limit).check(TEST_FILE, 't', 'x'.repeat(limit - overhead))).toEqual({ state: 'match' });

    const over = book(limit, true);
    expect(over.check(TEST_FILE, 't', 'x'.repeat(limit - overhead + 1))).toEqual({ state: 'updated' });
    const err = await over.save().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toMatchObject({
      code: 'E_SNAPSHOT',
      exitCode: 2,
      message: `cannot write snapshot file ${path.join('integrations/x/tests/__snapshots__/a.test.yaml.snap.json')}: it would be ${limit + 1} bytes; the limit is ${limit}`,
      hint: expect.stringContaining('expect.steps'),
    });
    // The old file stays, and reads back.
    expect((await lstat(snapshotPath(root, TEST_FILE))).size).toBe(limit);
    expect(book(limit).check(TEST_FILE, 't', 'x'.repeat(limit - overhead))).toEqual({ state: 'match' });
  });

  it('one file too large writes none of the run', async () => {
    const other = 'integrations/x/tests/b.test.yaml';
    const b = book(4096);
    b.check(other, 't', 'small');
    b.check(TEST_FILE, 't', 'x'.repeat(5000));
    await expect(b.save()).rejects.toMatchObject({ code: 'E_SNAPSHOT' });
    await expect(readdir(path.join(root, 'integrations/x/tests'))).resolves.toEqual([]);
  });

  it('the default limit is the one reads use (64 MiB)', async () => {
    expect(MAX_SNAPSHOT_FILE_BYTES).toBe(64 * 1024 * 1024);
    const b = book();
    b.check(TEST_FILE, 't', 'x'.repeat(MAX_SNAPSHOT_FILE_BYTES - fileBytes(0) + 1));
    await expect(b.save()).rejects.toMatchObject({ code: 'E_SNAPSHOT', message: expect.stringContaining(`it would be ${MAX_SNAPSHOT_FILE_BYTES + 1} bytes`) });
    await expect(lstat(snapshotPath(root, TEST_FILE))).rejects.toMatchObject({ code: 'ENOENT' });
  });
});

describe.skipIf(process.platform === 'win32')('snapshot writes never follow a symbolic link', () => {
  it('a snapshot file linked to another file in __snapshots__/ is read, but not written through', async () => {
    const dir = path.dirname(snapshotPath(root, TEST_FILE));
    await mkdir(dir);
    const target = path.join(dir, 'other.snap.json');
    await writeFile(target, '{"t": 1}\n');
    await symlink(target, snapshotPath(root, TEST_FILE));
    const b = book(undefined, true);
    expect(b.check(TEST_FILE, 't', 2)).toEqual({ state: 'updated' });
    await expect(b.save()).rejects.toMatchObject({ code: 'E_SYMLINK' });
    expect(await readFile(target, 'utf8')).toBe('{"t": 1}\n');
  });

  /** Plants a link into a fresh folder outside the project; the save must refuse it and write nothing there. */
  const refusedThroughLink = async (plant: (outside: string) => Promise<void>) => {
    const { dir: outside, cleanup: done } = await tempDir('alloy-snap-out-');
    try {
      await plant(outside);
      const b = book();
      expect(b.check(TEST_FILE, 't', 1)).toEqual({ state: 'written' });
      await expect(b.save()).rejects.toMatchObject({ code: 'E_SYMLINK' });
      expect(await readdir(outside)).toEqual([]);
    } finally {
      await done();
    }
  };

  it('a dangling link (to a file that does not exist yet) is not created through', () =>
    refusedThroughLink(async (outside) => {
      await mkdir(path.dirname(snapshotPath(root, TEST_FILE)));
      await symlink(path.join(outside, 'planted.json'), snapshotPath(root, TEST_FILE));
    }));

  it('a linked __snapshots__/ folder is not written into', () => refusedThroughLink((outside) => symlink(outside, path.dirname(snapshotPath(root, TEST_FILE)))));
});
