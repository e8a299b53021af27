/**
 * Crash-safe file primitives. A file is never visible half-written: content goes to a temp
 * file in the same directory, is fsynced, then appears under its final name with one atomic
 * call; the directory is fsynced so the name survives a power cut. Directories are made with
 * mkdirDurable, which fsyncs the parent of each one it creates: a file's name is only
 * durable if every directory above it is too (fsync(2): "an fsync on the file does not
 * necessarily ensure that the entry in the directory containing the file has also
 * reached disk").
 */
import { randomBytes } from 'node:crypto';
import { promises as fsp, constants as fsConstants } from 'node:fs';
import path from 'node:path';
import { fsyncDir } from './dir-sync.js';
import { refuseSymlinkAsync } from '../core/safe-fs.js';

/**
 * Writes never go through a symbolic link (core/safe-fs.ts): the target and its folder are
 * checked with lstat, and temp files are opened O_EXCL|O_NOFOLLOW.
 */
async function refuseLinks(target: string): Promise<void> {
  await refuseSymlinkAsync(path.dirname(target));
  await refuseSymlinkAsync(target);
}
const O_NOFOLLOW = fsConstants.O_NOFOLLOW ?? 0;

export function tempName(target: string): string {
  return path.join(path.dirname(target), `.tmp-${process.pid}-${randomBytes(6).toString('hex')}-${path.basename(target)}`);
}

export function isTempName(name: string): boolean {
  return name.startsWith('.tmp-');
}

async function writeTemp(target: string, data: Uint8Array | string): Promise<string> {
  const tmp = tempName(target);
  const fh = await fsp.open(tmp, fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_EXCL | O_NOFOLLOW, 0o644);
  try {
    await fh.writeFile(data);
    await fh.sync();
  } finally {
    await fh.close();
  }
  return tmp;
}

export { fsyncDir };

/**
 * `mkdir -p` that survives a power cut: fsyncs the parent of every directory it created
 * (top-down, so each new name is durable before the one below it is relied on). Costs
 * nothing when the directory already exists.
 */
export async function mkdirDurable(dir: string): Promise<void> {
  const first = await fsp.mkdir(dir, { recursive: true });
  if (first === undefined) return;
  const created: string[] = [];
  for (let d = path.resolve(dir); ; d = path.dirname(d)) {
    created.unshift(d);
    if (d === path.resolve(first) || path.dirname(d) === d) break;
  }
  for (const d of created) await fsyncDir(path.dirname(d));
}

/** Replace `target` atomically (temp + fsync + rename). Used for pointers that move. */
export async function writeFileAtomic(target: string, data: Uint8Array | string, options: { syncDir?: boolean } = {}): Promise<void> {
  await mkdirDurable(path.dirname(target));
  await refuseLinks(target);
  const tmp = await writeTemp(target, data);
  try {
    await fsp.rename(tmp, target);
  } catch (err) {
    await fsp.rm(tmp, { force: true });
    throw err;
  }
  if (options.syncDir !== false) await fsyncDir(path.dirname(target));
}

/**
 * Create `target` with the given content only if it does not exist; returns false when it
 * already exists. The content is complete before the name appears: the temp file is
 * hard-linked to the target, and link(2) fails with EEXIST exactly like open(O_CREAT|O_EXCL)
 * would, so nothing is ever overwritten and nothing is ever half-written.
 */
export async function createFileOnce(target: string, data: Uint8Array | string, options: { syncDir?: boolean } = {}): Promise<boolean> {
  await mkdirDurable(path.dirname(target));
  await refuseLinks(target);
  const tmp = await writeTemp(target, data);
  let created = true;
  try {
    await fsp.link(tmp, target);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') created = false;
    else if (code === 'EPERM' || code === 'ENOTSUP' || code === 'ENOSYS' || code === 'EXDEV') {
      // Filesystems without hard links: fall back to an O_EXCL open of the target.
      created = await createExclusiveDirect(target, data);
    } else throw err;
  } finally {
    await fsp.rm(tmp, { force: true });
  }
  if (created && options.syncDir !== false) await fsyncDir(path.dirname(target));
  return created;
}

async function createExclusiveDirect(target: string, data: Uint8Array | string): Promise<boolean> {
  let fh: fsp.FileHandle;
  try {
    fh = await fsp.open(target, fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_EXCL, 0o644);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw err;
  }
  try {
    await fh.writeFile(data);
    await fh.sync();
  } finally {
    await fh.close();
  }
  return true;
}

/**
 * Append one line and fsync (the publish log). O_APPEND keeps concurrent appends whole.
 * When this append creates the file, its directory is fsynced too: otherwise a power cut
 * could keep a later write (the published pointer) and lose the log line that explains it.
 */
export async function appendLineDurable(file: string, line: string): Promise<void> {
  await mkdirDurable(path.dirname(file));
  await refuseLinks(file);
  let fh: fsp.FileHandle;
  let created = false;
  try {
    fh = await fsp.open(file, fsConstants.O_WRONLY | fsConstants.O_APPEND | fsConstants.O_CREAT | fsConstants.O_EXCL, 0o644);
    created = true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    fh = await fsp.open(file, fsConstants.O_WRONLY | fsConstants.O_APPEND | O_NOFOLLOW, 0o644);
  }
  try {
    await fh.write(`${line}\n`);
    await fh.sync();
  } finally {
    await fh.close();
  }
  if (created) await fsyncDir(path.dirname(file));
}

export async function readFileIfExists(file: string): Promise<Buffer | undefined> {
  try {
    return await fsp.readFile(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

export async function readdirIfExists(dir: string): Promise<string[]> {
  try {
    return await fsp.readdir(dir);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return [];
    throw err;
  }
}

export async function exists(file: string): Promise<boolean> {
  try {
    await fsp.access(file);
    return true;
  } catch {
    return false;
  }
}
