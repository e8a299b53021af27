/**
 * Safe writes for state alloy keeps on disk (`.alloy/`: dev state, the event log, the store,
 * locks, the relay queue). One mechanism, used everywhere:
 *
 * - A symbolic link is never written through. A cloned repository may commit
 *   `.alloy/stream-secret -> ~/victim`; writing there would overwrite the victim. Every
 *   target (and its directory) is checked with lstat first and refused with E_SYMLINK,
 *   naming the path; the new content goes to a temp file opened with O_CREAT|O_EXCL|O_NOFOLLOW
 *   and is renamed into place (rename replaces a name, it never follows one).
 * - Private by default: directories 0700, files 0600 (secrets, recorded deliveries and the
 *   event log are nobody else's business on a shared machine).
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, closeSync, constants as fsConstants, fstatSync, lstatSync, mkdirSync, openSync, renameSync, rmSync, writeSync, fsyncSync } from 'node:fs';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { AlloyError } from '../errors.js';

export const PRIVATE_DIR_MODE = 0o700;
export const PRIVATE_FILE_MODE = 0o600;
/** O_NOFOLLOW where the platform has it (not on Windows, which has no such links to worry about here). */
const O_NOFOLLOW = fsConstants.O_NOFOLLOW ?? 0;

export function symlinkError(file: string): AlloyError {
  return new AlloyError('E_SYMLINK', `refusing to write through the symbolic link ${file}`, {
    hint: `alloy never writes through links in its state folders; remove the link (rm "${file}") and run the command again`,
    details: { path: file },
  });
}

function lstatOrUndefined(file: string): import('node:fs').Stats | undefined {
  try {
    return lstatSync(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

/**
 * Whether a state file looks written by alloy for this user: alloy makes them 0600, while a
 * file checked out by git (a hostile clone committing `.alloy/ingress-secret` or `dev.json`)
 * is 0644 or 0755, and another user's file is not ours. Always true on Windows (no such modes).
 */
export function isOwnPrivateFile(st: import('node:fs').Stats): boolean {
  if (process.platform === 'win32') return true;
  if ((st.mode & 0o077) !== 0) return false;
  return typeof process.getuid !== 'function' || st.uid === process.getuid();
}

/** Per folder: whether its filesystem keeps Unix modes (probed once per process). */
const keepsModes = new Map<string, boolean>();

/**
 * Whether the filesystem holding `dir` keeps Unix modes: a probe file created 0600 there reads
 * back 0600. WSL's /mnt/c, SMB/CIFS shares, vboxsf and some Docker Desktop bind mounts show
 * every file 0777 or 0770 whatever alloy wrote, so a mode tells nothing there. When the probe
 * cannot be made (a read-only folder) the answer is yes: the mode check stays on.
 */
export function filesystemKeepsModes(dir: string): boolean {
  if (process.platform === 'win32') return false;
  const known = keepsModes.get(dir);
  if (known !== undefined) return known;
  const probe = path.join(dir, `.mode-probe-${process.pid}-${randomBytes(4).toString('hex')}`);
  let fd: number | undefined;
  try {
    fd = openSync(probe, fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_EXCL | O_NOFOLLOW, PRIVATE_FILE_MODE);
    const kept = (fstatSync(fd).mode & 0o077) === 0;
    keepsModes.set(dir, kept);
    return kept;
  } catch {
    return true;
  } finally {
    if (fd !== undefined) {
      closeSync(fd);
      rmSync(probe, { force: true });
    }
  }
}

/**
 * Whether a state file in `dir` may be trusted as alloy's own: isOwnPrivateFile, or any file
 * on a filesystem that keeps no modes (there a committed file and alloy's look the same, and
 * refusing both would break every `alloy dev` / `emit` on such a checkout).
 */
export function isTrustedStateFile(st: import('node:fs').Stats, dir: string): boolean {
  return isOwnPrivateFile(st) || !filesystemKeepsModes(dir);
}

/** Throws E_SYMLINK when `file` exists and is a symbolic link. */
export function refuseSymlink(file: string): void {
  if (lstatOrUndefined(file)?.isSymbolicLink()) throw symlinkError(file);
}

/** Async form of refuseSymlink. */
export async function refuseSymlinkAsync(file: string): Promise<void> {
  try {
    if ((await fsp.lstat(file)).isSymbolicLink()) throw symlinkError(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw err;
  }
}

/**
 * `mkdir -p dir` (0700 for what it creates) that refuses a symlinked `dir` or a symlinked
 * directory between `base` and `dir` (`base` itself, e.g. the project root, is trusted).
 */
export function ensurePrivateDir(dir: string, base?: string): void {
  const [trusted, levels] = privateDirLevels(dir, base);
  mkdirSync(trusted, { recursive: true, mode: PRIVATE_DIR_MODE });
  // Top down, each level checked before anything is made under it: `mkdir -p` first would
  // create folders inside a symlinked level's target before the check refused it.
  for (const d of levels) {
    refuseSymlink(d);
    try {
      mkdirSync(d, { mode: PRIVATE_DIR_MODE });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      refuseSymlink(d); // made meanwhile by someone else: check what is there now
    }
  }
}

/** Async ensurePrivateDir. */
export function ensurePrivateDirAsync(dir: string, base?: string): Promise<void> {
  return ensureDirNoLinks(dir, base, PRIVATE_DIR_MODE);
}

/**
 * ensurePrivateDirAsync for folders of the project itself (tests/, __snapshots__/), which
 * are shared through git: made with the umask's usual mode rather than 0700.
 */
export function ensureProjectDirAsync(dir: string, base: string): Promise<void> {
  return ensureDirNoLinks(dir, base, 0o777);
}

async function ensureDirNoLinks(dir: string, base: string | undefined, mode: number): Promise<void> {
  const [trusted, levels] = privateDirLevels(dir, base);
  await fsp.mkdir(trusted, { recursive: true, mode });
  for (const d of levels) {
    await refuseSymlinkAsync(d);
    try {
      await fsp.mkdir(d, { mode });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      await refuseSymlinkAsync(d);
    }
  }
}

/** The trusted folder (`base`, or dir's parent without one) and the levels below it down to `dir`, top first. */
function privateDirLevels(dir: string, base?: string): [string, string[]] {
  const target = path.resolve(dir);
  const stop = base ? path.resolve(base) : path.dirname(target);
  const levels: string[] = [];
  for (let d = target; d !== stop && path.dirname(d) !== d; d = path.dirname(d)) {
    levels.unshift(d);
    if (!base) break;
  }
  const trusted = levels.length > 0 ? path.dirname(levels[0]) : target;
  return [trusted, levels];
}

function tempFor(file: string): string {
  return path.join(path.dirname(file), `.tmp-${process.pid}-${randomBytes(6).toString('hex')}-${path.basename(file)}`);
}

/**
 * Replace `file` with `data` (mode 0600 unless told): refuses a symlinked target or
 * directory, writes a temp file with O_EXCL|O_NOFOLLOW, fsyncs, renames into place.
 */
export function writeFileSafeSync(file: string, data: string | Uint8Array, options: { mode?: number; sync?: boolean } = {}): void {
  refuseSymlink(path.dirname(file));
  refuseSymlink(file);
  const tmp = tempFor(file);
  const fd = openSync(tmp, fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_EXCL | O_NOFOLLOW, options.mode ?? PRIVATE_FILE_MODE);
  try {
    const buf = typeof data === 'string' ? Buffer.from(data) : data;
    let off = 0;
    while (off < buf.length) off += writeSync(fd, buf, off, buf.length - off);
    if (options.sync) fsyncSync(fd);
  } catch (err) {
    closeSync(fd);
    rmSync(tmp, { force: true });
    throw err;
  }
  closeSync(fd);
  try {
    renameSync(tmp, file);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
}

/** Async writeFileSafeSync (always fsyncs the file; the caller fsyncs the directory if it must). */
export async function writeFileSafe(file: string, data: string | Uint8Array, options: { mode?: number } = {}): Promise<void> {
  await refuseSymlinkAsync(path.dirname(file));
  await refuseSymlinkAsync(file);
  const tmp = tempFor(file);
  const fh = await fsp.open(tmp, fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_EXCL | O_NOFOLLOW, options.mode ?? PRIVATE_FILE_MODE);
  try {
    await fh.writeFile(data);
    await fh.sync();
  } catch (err) {
    await fh.close();
    await fsp.rm(tmp, { force: true });
    throw err;
  }
  await fh.close();
  try {
    await fsp.rename(tmp, file);
  } catch (err) {
    await fsp.rm(tmp, { force: true });
    throw err;
  }
}

/**
 * Make sure a file another library opens by name (SQLite) is a regular private file: refuse a
 * link, create it empty with 0600 when missing (SQLite gives its -wal and -shm files the
 * database file's mode), and tighten an existing one (and its siblings) to 0600.
 */
export function preparePrivateFile(file: string, siblings: string[] = []): void {
  refuseSymlink(path.dirname(file));
  for (const f of [file, ...siblings]) {
    const st = lstatOrUndefined(f);
    if (!st) continue;
    if (st.isSymbolicLink()) throw symlinkError(f);
    if ((st.mode & 0o777) !== PRIVATE_FILE_MODE) {
      try {
        chmodSync(f, PRIVATE_FILE_MODE);
      } catch (err) {
        // Another user's file (EPERM): a clear refusal, not an internal error.
        if ((err as NodeJS.ErrnoException).code !== 'EPERM') throw err;
        throw new AlloyError('E_PERMISSION', `cannot make ${f} private (0600): it belongs to another user`, {
          hint: `run alloy as the file's owner, or have them run: chmod 600 "${f}"`,
          details: { path: f },
        });
      }
    }
  }
  if (!lstatOrUndefined(file)) {
    try {
      closeSync(openSync(file, fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_EXCL | O_NOFOLLOW, PRIVATE_FILE_MODE));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      refuseSymlink(file);
    }
  }
}
