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
  // Two processes starting together each take a shared lock on the way to the exclusive one;
  // each then finds the other in its way, and both were refused. So a busy lock is tried again
  // a few times after a random pause (the two fall out of step and one wins); a folder that
  // stays held is refused after about a second.
  for (let attempt = 1; ; attempt++) {
    const db = new Database(lockFile, { timeout: 100 });
    try {
      db.pragma('locking_mode = EXCLUSIVE');
      // Exclusive from the start, and kept until the connection closes.
      db.exec('BEGIN EXCLUSIVE');
      db.exec('CREATE TABLE IF NOT EXISTS holder (pid INTEGER); DELETE FROM holder;');
      db.prepare('INSERT INTO holder VALUES (?)').run(process.pid);
      db.exec('COMMIT');
      return () => db.close();
    } catch (err) {
      db.close();
      if (!String((err as { code?: unknown }).code).startsWith('SQLITE_BUSY')) throw err;
      if (attempt === 5) throw refused();
    }
    await new Promise((resolve) => setTimeout(resolve, 50 + Math.random() * 150));
  }
}
