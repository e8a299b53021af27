/**
 * Lock files with stale-lock recovery. A lock is a file created with O_EXCL holding the
 * owner's pid, host and start time. A waiter breaks a lock whose owner is gone: same host
 * and the pid no longer exists, or older than `staleMs` whatever the host (a process
 * killed with SIGKILL never removes its lock).
 *
 * Breaking is itself serialized by a short-lived `<lock>.break` file, and the breaker
 * re-reads the lock before deleting it, so two waiters can't both break one stale lock and
 * then delete each other's fresh one.
 */
import { promises as fsp, constants as fsConstants } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { LockTimeoutError } from './errors.js';
import { tempName } from './fs-util.js';

export interface LockOwner {
  pid: number;
  host: string;
  /** Milliseconds since the epoch when the lock was taken. */
  time: number;
}

export interface LockOptions {
  /** A lock older than this is broken even if its pid looks alive (other host, pid reuse). Default 30 s. */
  staleMs?: number;
  /** Give up waiting after this long. Default 20 s. */
  timeoutMs?: number;
  now?: () => number;
  /** Is this pid alive on this host? Injected for tests. */
  isAlive?: (pid: number) => boolean;
}

export interface HeldLock {
  file: string;
  release(): Promise<void>;
}

const BREAKER_STALE_MS = 5_000;

export function isPidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it exists but belongs to someone else.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export async function readLockOwner(file: string): Promise<LockOwner | undefined> {
  let text: string;
  try {
    text = await fsp.readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  try {
    const v = JSON.parse(text) as LockOwner;
    if (Number.isInteger(v.pid) && typeof v.host === 'string' && Number.isFinite(v.time)) return v;
  } catch {
    /* fall through: a torn lock file (killed while writing it) */
  }
  // Unreadable owner: judge by the file's age only.
  const st = await fsp.stat(file).catch(() => undefined);
  return { pid: -1, host: '?', time: st ? st.mtimeMs : 0 };
}

export function isLockStale(owner: LockOwner, options: Required<Pick<LockOptions, 'staleMs' | 'now' | 'isAlive'>>): boolean {
  if (options.now() - owner.time > options.staleMs) return true;
  if (owner.host === os.hostname() && owner.pid > 0 && !options.isAlive(owner.pid)) return true;
  return false;
}

export async function acquireLock(file: string, options: LockOptions = {}): Promise<HeldLock> {
  const now = options.now ?? Date.now;
  const staleMs = options.staleMs ?? 30_000;
  const timeoutMs = options.timeoutMs ?? 20_000;
  const isAlive = options.isAlive ?? isPidAlive;
  const deadline = now() + timeoutMs;
  await fsp.mkdir(path.dirname(file), { recursive: true });
  let delay = 5;
  for (;;) {
    const owner: LockOwner = { pid: process.pid, host: os.hostname(), time: now() };
    if (await createLockFile(file, JSON.stringify(owner))) {
      let released = false;
      return {
        file,
        release: async () => {
          if (released) return;
          released = true;
          await fsp.rm(file, { force: true });
        },
      };
    }
    const current = await readLockOwner(file);
    if (current && isLockStale(current, { staleMs, now, isAlive })) {
      await breakStaleLock(file, current, now);
      continue;
    }
    if (now() >= deadline) {
      const holder = current ? `pid ${current.pid} on ${current.host} since ${new Date(current.time).toISOString()}` : 'another process';
      throw new LockTimeoutError(file, holder);
    }
    await new Promise((r) => setTimeout(r, delay + Math.floor(Math.random() * delay)));
    delay = Math.min(delay * 2, 100);
  }
}

/**
 * The owner record is written to a temp file first and hard-linked into place (link fails
 * with EEXIST like O_EXCL), so a process killed while taking the lock never leaves an empty
 * lock file that only the age bound could break.
 */
async function createLockFile(file: string, content: string): Promise<boolean> {
  const tmp = tempName(file);
  await fsp.writeFile(tmp, content, { flag: 'wx', mode: 0o644 });
  try {
    await fsp.link(tmp, file);
    return true;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') return false;
    if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'ENOSYS') throw err;
    // No hard links on this filesystem: O_EXCL create (a torn file is then judged by age).
    try {
      await fsp.writeFile(file, content, { flag: 'wx', mode: 0o644 });
      return true;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EEXIST') return false;
      throw e;
    }
  } finally {
    await fsp.rm(tmp, { force: true });
  }
}

async function breakStaleLock(file: string, judged: LockOwner, now: () => number): Promise<void> {
  const breaker = `${file}.break`;
  let fh: fsp.FileHandle;
  try {
    fh = await fsp.open(breaker, fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_EXCL, 0o644);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    // Someone else is breaking it; a breaker left by a killed process is removed after a while.
    const st = await fsp.stat(breaker).catch(() => undefined);
    if (st && now() - st.mtimeMs > BREAKER_STALE_MS) await fsp.rm(breaker, { force: true });
    return;
  }
  await fh.close();
  try {
    const again = await readLockOwner(file);
    if (again && again.pid === judged.pid && again.time === judged.time && again.host === judged.host) {
      await fsp.rm(file, { force: true });
    }
  } finally {
    await fsp.rm(breaker, { force: true });
  }
}

/** Run `fn` holding the lock; the lock is released however fn ends. */
export async function withLock<T>(file: string, options: LockOptions, fn: () => Promise<T>): Promise<T> {
  const lock = await acquireLock(file, options);
  try {
    return await fn();
  } finally {
    await lock.release();
  }
}
