/**
 * Files `alloy dev` keeps under `.alloy/` (gitignored):
 *   dev.sqlite       the event log (see event-log.ts), dev.sqlite.pid beside it while open
 *   dev.json         the running server's address, so `emit`, `executions`, `replay`, `logs` find it
 *   stream-secret    the Standard Webhooks secret (`whsec_…`) generated once, stable across restarts
 *   ingress-secret   the Standard Webhooks secret tunnel ingress must be signed with (same life)
 * The folder is 0700, its files 0600, and nothing here is written through a symlink.
 *   recordings/      fixtures written by `alloy dev --record`
 */
import { randomBytes } from 'node:crypto';
import { lstatSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { readEnvFile } from '../core/env-file.js';
import { ensurePrivateDir, isTrustedStateFile, preparePrivateFile, refuseSymlink, writeFileSafeSync } from '../core/safe-fs.js';

export interface DevInfo {
  url: string;
  pid: number;
  startedAt: string;
  /** The ingress-only listener, when a tunnel is open. */
  ingressUrl?: string;
  /** The tunnel's public URL. */
  publicUrl?: string;
  /** Apps faked for this run (`alloy dev --fake`): `alloy emit` signs as the fake. */
  fakes?: string[];
}

export function alloyDir(root: string): string {
  return path.join(root, '.alloy');
}

export function devLogFile(root: string): string {
  return path.join(alloyDir(root), 'dev.sqlite');
}

export function devInfoFile(root: string): string {
  return path.join(alloyDir(root), 'dev.json');
}

export function recordingsDir(root: string): string {
  return path.join(alloyDir(root), 'recordings');
}

/** `.alloy/` itself: created 0700; a symlinked `.alloy` (or file in it) is refused (core/safe-fs.ts). */
export function ensureAlloyDir(root: string): string {
  const dir = alloyDir(root);
  ensurePrivateDir(dir, root);
  return dir;
}

/** The event log file, checked and made private (0600, with its -wal/-shm/-bodies) before SQLite opens it. */
export function prepareDevLogFile(root: string): string {
  ensureAlloyDir(root);
  const file = devLogFile(root);
  preparePrivateFile(file, [`${file}-wal`, `${file}-shm`, `${file}-bodies`, `${file}.pid`]);
  return file;
}

export function writeDevInfo(root: string, info: DevInfo): void {
  ensureAlloyDir(root);
  // Temp file + rename (a reader never sees half a file); never through a symlink.
  writeFileSafeSync(devInfoFile(root), `${JSON.stringify(info, null, 2)}\n`);
}

export function readDevInfo(root: string): DevInfo | undefined {
  try {
    // Only a dev.json alloy wrote (0600, ours, not a link): a committed one could point
    // `alloy emit`, `executions` and `logs` at someone else's server.
    const st = lstatSync(devInfoFile(root));
    if (!st.isFile() || !isTrustedStateFile(st, alloyDir(root))) return undefined;
    const v = JSON.parse(readFileSync(devInfoFile(root), 'utf8')) as DevInfo;
    return typeof v.url === 'string' ? v : undefined;
  } catch {
    return undefined;
  }
}

/** Removes dev.json when it is ours (a newer server may have replaced it). */
export function removeDevInfo(root: string, pid: number): void {
  const info = readDevInfo(root);
  if (info && info.pid === pid) rmSync(devInfoFile(root), { force: true });
}

/**
 * A secret from `.alloy/`: `created` when none was there; `replaced` (saying why, for the
 * caller to tell the user) when one was there but not trusted, and a new one took its place.
 */
export interface DevSecret {
  secret: string;
  created: boolean;
  replaced?: string;
}

/** The stream signing secret: created once (0600), then the same on every start. */
export function loadOrCreateStreamSecret(root: string): DevSecret {
  return loadOrCreateSecret(root, 'stream-secret');
}

/**
 * The ingress secret: requests that arrive through a tunnel (POST /v1/run/event, custom
 * webhooks) must carry a Standard Webhooks signature made with it. Kept like the stream secret.
 */
export function loadOrCreateIngressSecret(root: string): DevSecret {
  return loadOrCreateSecret(root, 'ingress-secret');
}

/** The ingress secret when `alloy dev` has made one (never creates it; a symlink is not followed). */
export function readIngressSecret(root: string): string | undefined {
  const file = path.join(alloyDir(root), 'ingress-secret');
  try {
    const st = lstatSync(file);
    if (!st.isFile() || !isTrustedStateFile(st, alloyDir(root))) return undefined;
    const value = readFileSync(file, 'utf8').trim();
    return SECRET_FORMAT.test(value) ? value : undefined;
  } catch {
    return undefined;
  }
}

const SECRET_FORMAT = /^whsec_[A-Za-z0-9+/=]{20,}$/;

function loadOrCreateSecret(root: string, name: string): DevSecret {
  const file = path.join(alloyDir(root), name);
  ensureAlloyDir(root);
  // A committed symlink (`.alloy/stream-secret -> ~/victim`) is neither read nor written.
  refuseSymlink(file);
  let replaced: string | undefined;
  try {
    // A secret alloy did not write (not 0600, or another user's: a committed
    // `.alloy/ingress-secret` is 0644 after a checkout under the usual umask) is known to
    // whoever committed it, and would let them sign events into this runtime's tunnel: it is
    // replaced, and the caller says so (a receiver configured with the old one must be updated).
    const st = lstatSync(file);
    if (isTrustedStateFile(st, alloyDir(root))) {
      const existing = readFileSync(file, 'utf8').trim();
      if (SECRET_FORMAT.test(existing)) return { secret: existing, created: false };
      replaced = `.alloy/${name} did not hold a secret alloy can use`;
    } else {
      replaced = `.alloy/${name} was not written by alloy for this user (mode ${(st.mode & 0o777).toString(8)}${typeof process.getuid === 'function' && st.uid !== process.getuid() ? ', another user\'s' : ''}): a committed or copied secret is known to others`;
    }
  } catch {
    /* none yet: create below */
  }
  // Standard Webhooks secrets are `whsec_` + base64 of 24 to 64 random bytes.
  const secret = `whsec_${randomBytes(32).toString('base64')}`;
  writeFileSafeSync(file, `${secret}\n`);
  return replaced ? { secret, created: true, replaced } : { secret, created: true };
}

/**
 * The environment a local runtime sees: the project's `.env` under the process environment
 * (the process wins, as in connectors/credentials.ts). Parsed by node:util parseEnv, never executed.
 */
export async function loadProjectEnv(root: string, processEnv: NodeJS.ProcessEnv): Promise<Record<string, string | undefined>> {
  const dotenv = (await readEnvFile(path.join(root, '.env'), '.env')) ?? {};
  const out: Record<string, string | undefined> = { ...dotenv };
  for (const [k, v] of Object.entries(processEnv)) if (v !== undefined && v !== '') out[k] = v;
  return out;
}
