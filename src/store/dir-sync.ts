/**
 * fsync of a directory, in a module of its own so the durability tests can observe every
 * call (test/store/durability.test.ts mocks this module and records the directories).
 */
import { promises as fsp } from 'node:fs';

/** fsync a directory so a rename/link/mkdir in it is durable. Not supported everywhere (Windows): ignored there. */
export async function fsyncDir(dir: string): Promise<void> {
  let fh: fsp.FileHandle | undefined;
  try {
    fh = await fsp.open(dir, 'r');
    await fh.sync();
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'EISDIR' && code !== 'EPERM' && code !== 'EINVAL' && code !== 'EBADF') throw err;
  } finally {
    await fh?.close();
  }
}
