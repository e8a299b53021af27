/**
 * Lock files with stale-lock recovery. A lock is a file created with O_EXCL holding the
 * owner's pid, host and start time. A waiter breaks a lock whose owner is gone: same host
 * and the pid no longer exists, or older than `staleMs` whatever the host (a process
 * killed with SIGKILL never removes its lock).
 *
 * Breaking is itself serialized by a short-lived `<lock>.break` file, and the breaker
 * re-reads the lock before deleting it, so two waiters can't both break one stale lock and
 * then delete each other's fresh one.
 *
 * A lock file also holds a random token, and release() removes it only while it still
 * holds that token (under the same `.break` file): a holder whose lock was broken as stale
 * must not delete the lock its breaker took since. While held, the lock's mtime is touched
 * every staleMs/3 (a heartbeat), so a slow but live holder is not judged stale by age; and
 * `assertHeld()` lets the holder re-check ownership right before a write the lock guards.
 */
import { randomBytes } from 'node:crypto';
import { promises as fsp, constants as fsConstants } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { LockLostError, LockTimeoutError } from './errors.js';
import { mkdirDurable, tempName } from './fs-util.js';
import { refuseSymlinkAsync } from '../core/safe-fs.js';

export interface LockOwner {
  pid: number;
  host: string;
  /** Milliseconds since the epoch when the lock was taken. */
  time: number;
  /** Random per acquisition: who may release it (older lock files have none). */
  token?: string;
  /** The file's mtime (ms): the holder's heartbeat touches it. Not stored in the file. */
  touched?: number;
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
  /** Throws LockLostError when the lock file no longer holds this holder's token. */
  assertHeld(): Promise<void>;
  /** Removes the lock file only if it is still ours; idempotent. */
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
  const st = await fsp.stat(file).catch(() => undefined);
  try {
    const v = JSON.parse(text) as LockOwner;
    if (Number.isInteger(v.pid) && typeof v.host === 'string' && Number.isFinite(v.time)) {
      return { pid: v.pid, host: v.host, time: v.time, ...(typeof v.token === 'string' ? { token: v.token } : {}), ...(st ? { touched: st.mtimeMs } : {}) };
    }
  } catch {
    /* fall through: a torn lock file (killed while writing it) */
  }
  // Unreadable owner: judge by the file's age only.
  return { pid: -1, host: '?', time: st ? st.mtimeMs : 0 };
}

function sameOwner(a: LockOwner, b: LockOwner): boolean {
  return a.pid === b.pid && a.time === b.time && a.host === b.host && a.token === b.token;
}

export function isLockStale(owner: LockOwner, options: Required<Pick<LockOptions, 'staleMs' | 'now' | 'isAlive'>>): boolean {
  // Age counts from the last heartbeat when there is one.
  const lastSeen = Math.max(owner.time, owner.touched ?? 0);
  if (options.now() - lastSeen > options.staleMs) return true;
  if (owner.host === os.hostname() && owner.pid > 0 && !options.isAlive(owner.pid)) return true;
  return false;
}

export async function acquireLock(file: string, options: LockOptions = {}): Promise<HeldLock> {
  const now = options.now ?? Date.now;
  const staleMs = options.staleMs ?? 30_000;
  const timeoutMs = options.timeoutMs ?? 20_000;
  const isAlive = options.isAlive ?? isPidAlive;
  const deadline = now() + timeoutMs;
  await mkdirDurable(path.dirname(file));
  // A symlinked lock (or locks/ folder) would look held forever, or be written through.
  await refuseSymlinkAsync(path.dirname(file));
  await refuseSymlinkAsync(file);
  let delay = 5;
  for (;;) {
    const owner: LockOwner = { pid: process.pid, host: os.hostname(), time: now(), token: randomBytes(16).toString('hex') };
    if (await createLockFile(file, JSON.stringify(owner))) return heldLock(file, owner, staleMs);
    const current = await readLockOwner(file);
    // A busy breaker (someone else is breaking it) falls through to the wait below.
    if (current && isLockStale(current, { staleMs, now, isAlive }) && (await breakStaleLock(file, current, { staleMs, now, isAlive }))) continue;
    if (now() >= deadline) {
      const holder = current ? `pid ${current.pid} on ${current.host} since ${new Date(current.time).toISOString()}` : 'another process';
      throw new LockTimeoutError(file, holder);
    }
    await new Promise((r) => setTimeout(r, delay + Math.floor(Math.random() * delay)));
    delay = Math.min(delay * 2, 100);
  }
}

function heldLock(file: string, owner: LockOwner, staleMs: number): HeldLock {
  let released = false;
  const isOurs = async () => {
    const current = await readLockOwner(file);
    return current !== undefined && current.token === owner.token;
  };
  // Heartbeat: touch the mtime while held, under the `.break` file so a breaker that has
  // re-read the lock can't have it touched (and deleted) underneath. A busy breaker file
  // skips one beat; unref'd so a held lock never keeps the process alive.
  let beating: Promise<void> | undefined;
  const beat = () => {
    if (released || beating) return;
    beating = withBreaker(file, 0, async () => {
      if (released || !(await isOurs())) return;
      const t = new Date();
      await fsp.utimes(file, t, t);
    })
      .then(() => undefined, () => undefined)
      .finally(() => (beating = undefined));
  };
  const timer = setInterval(beat, Math.max(10, Math.floor(staleMs / 3)));
  timer.unref();
  return {
    file,
    assertHeld: async () => {
      if (released || !(await isOurs())) throw new LockLostError(file);
    },
    release: async () => {
      if (released) return;
      released = true;
      clearInterval(timer);
      await beating;
      // Remove it only if it is still ours: once broken as stale it belongs to someone else.
      const done = await withBreaker(file, BREAKER_STALE_MS * 2, async () => {
        if (await isOurs()) await fsp.rm(file, { force: true });
      });
      if (!done && (await isOurs())) await fsp.rm(file, { force: true });
    },
  };
}

/**
 * Runs `fn` holding `<file>.break` (O_EXCL). Waits up to `waitMs` for a busy one (removing
 * a breaker older than BREAKER_STALE_MS: its process was killed); returns false if it never
 * got it.
 */
async function withBreaker(file: string, waitMs: number, fn: () => Promise<void>): Promise<boolean> {
  const breaker = `${file}.break`;
  const started = Date.now();
  for (;;) {
    try {
      const fh = await fsp.open(breaker, fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_EXCL, 0o644);
      await fh.close();
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const st = await fsp.stat(breaker).catch(() => undefined);
      // Real time, not the injected clock: a breaker is held for milliseconds.
      if (st && Date.now() - st.mtimeMs > BREAKER_STALE_MS) {
        await fsp.rm(breaker, { force: true });
        continue;
      }
      if (Date.now() - started >= waitMs) return false;
      await new Promise((r) => setTimeout(r, 5 + Math.floor(Math.random() * 10)));
    }
  }
  try {
    await fn();
  } finally {
    await fsp.rm(breaker, { force: true });
  }
  return true;
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

async function breakStaleLock(file: string, judged: LockOwner, options: Required<Pick<LockOptions, 'staleMs' | 'now' | 'isAlive'>>): Promise<boolean> {
  // One breaker at a time (no waiting: a busy breaker means someone else is on it). The
  // lock is re-read under it and removed only if it is the one judged and is still stale
  // (a heartbeat since then makes it live).
  return withBreaker(file, 0, async () => {
    const again = await readLockOwner(file);
    if (again && sameOwner(again, judged) && isLockStale(again, options)) await fsp.rm(file, { force: true });
  });
}

/** Run `fn` holding the lock; the lock is released however fn ends. */
export async function withLock<T>(file: string, options: LockOptions, fn: (lock: HeldLock) => Promise<T>): Promise<T> {
  const lock = await acquireLock(file, options);
  try {
    return await fn(lock);
  } finally {
    await lock.release();
  }
}
