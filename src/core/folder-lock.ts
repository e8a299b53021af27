/**
 * One process per data folder, for the commands whose folder holds work that a second process
 * would take up again (serve's unfinished executions, the relay's queued requests: each would
 * be run or delivered twice). The lock is a SQLite file held in exclusive locking mode: its
 * lock is an fcntl lock, which the OS releases when the process dies, kill -9 included, so no
 * stale lock outlives its holder (a lock file with a pid or an mtime would need guessing).
 */
import path from 'node:path';
import { AlloyError } from '../errors.js';
import { ensurePrivateDir, preparePrivateFile } from './safe-fs.js';

/** Takes `<dir>/<file>` or throws `refused` (when another process holds it); resolves to the release. */
export async function lockFolder(dir: string, file: string, refused: () => AlloyError, base?: string): Promise<() => void> {
  ensurePrivateDir(dir, base);
  const lockFile = path.join(dir, file);
  preparePrivateFile(lockFile, [`${lockFile}-journal`]);
  const { default: Database } = await import('better-sqlite3');
  const db = new Database(lockFile, { timeout: 0 });
  try {
    db.pragma('locking_mode = EXCLUSIVE');
    // The first write takes the exclusive lock, kept until the connection closes.
    db.exec('CREATE TABLE IF NOT EXISTS holder (pid INTEGER); DELETE FROM holder;');
    db.prepare('INSERT INTO holder VALUES (?)').run(process.pid);
  } catch (err) {
    db.close();
    if (String((err as { code?: unknown }).code).startsWith('SQLITE_BUSY')) throw refused();
    throw err;
  }
  return () => db.close();
}
