/**
 * Envelope encryption for secrets at rest (credentials, secret config values): each value
 * gets its own random 256-bit data key and is sealed with AES-256-GCM; the data key is
 * itself sealed (wrapped) with AES-256-GCM under a master key, named by its `kid`. The
 * record id is bound as additional data, so a sealed value copied onto another row fails to
 * open. Rotating the master key re-wraps only the data keys (rewrap), never the values.
 *
 * Master keys (a keyring, newest first, used for new wraps; the others still open):
 * - `ALLOY_MASTER_KEY`: one or more comma-separated 32-byte keys, base64 or hex;
 * - else the key file (`ALLOY_MASTER_KEY_FILE`, default `<data>/master.keys`): one key per
 *   line, newest last; created with one key (mode 0600) when missing.
 */
import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import { closeSync, constants as fsConstants, existsSync, fsyncSync, linkSync, openSync, readFileSync, rmSync, statSync, writeSync } from 'node:fs';
import path from 'node:path';
import { refuseSymlink } from '../core/safe-fs.js';
import { UsageError } from '../errors.js';
import type { Sealed } from './state/types.js';

export interface MasterKey {
  kid: string;
  key: Buffer;
}

export interface Keyring {
  /** Wraps new data keys. */
  current: MasterKey;
  get(kid: string): MasterKey | undefined;
  all(): MasterKey[];
}

const kidOf = (key: Buffer) => `mk_${createHash('sha256').update('alloy-master-key-id').update(key).digest('hex').slice(0, 12)}`;

export function parseMasterKey(text: string, source: string): MasterKey {
  const t = text.trim();
  const key = /^[0-9a-fA-F]{64}$/.test(t) ? Buffer.from(t, 'hex') : Buffer.from(t, 'base64');
  if (key.length !== 32) {
    throw new UsageError(`${source}: a master key must be 32 bytes (base64 or 64 hex digits)`, { hint: 'Generate one with `openssl rand -base64 32`.' });
  }
  return { kid: kidOf(key), key };
}

export function makeKeyring(keys: MasterKey[]): Keyring {
  if (keys.length === 0) throw new UsageError('no master key', { hint: 'Set ALLOY_MASTER_KEY (openssl rand -base64 32) or use a key file.' });
  const byKid = new Map(keys.map((k) => [k.kid, k]));
  return { current: keys[0], get: (kid) => byKid.get(kid), all: () => [...keys] };
}

export function newMasterKeyText(): string {
  return randomBytes(32).toString('base64');
}

/** The keyring from ALLOY_MASTER_KEY, else the key file (created on first use). */
export function loadKeyring(env: NodeJS.ProcessEnv, keyFile: string): Keyring {
  if (env.ALLOY_MASTER_KEY) {
    return makeKeyring(env.ALLOY_MASTER_KEY.split(',').filter((s) => s.trim()).map((s) => parseMasterKey(s, 'ALLOY_MASTER_KEY')));
  }
  // A link (even a dangling one, which existsSync does not see) is refused, never written through.
  refuseSymlink(keyFile);
  if (!existsSync(keyFile)) createKeyFile(keyFile);
  return fileKeyring(keyFile);
}

/**
 * The key file, on disk before anything is sealed with it: written whole to a temp file and
 * fsynced, linked into place (never over a file another process just made: then that one is
 * used), and the folder fsynced. A plain write left it empty after a kill between create and
 * write, or after a power loss while serve.db (fsynced) already held secrets sealed with it.
 */
function createKeyFile(keyFile: string): void {
  const tmp = path.join(path.dirname(keyFile), `.tmp-${process.pid}-${randomBytes(6).toString('hex')}-${path.basename(keyFile)}`);
  const fd = openSync(tmp, fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_EXCL | (fsConstants.O_NOFOLLOW ?? 0), 0o600);
  try {
    writeNewKeyLine(fd);
    try {
      linkSync(tmp, keyFile);
    } catch (err) {
      // Another process made the key file meanwhile: that one is used.
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
  } finally {
    // Whatever failed (a full disk at the write or fsync included), no copy of a key stays behind.
    rmSync(tmp, { force: true });
  }
  fsyncDirSync(path.dirname(keyFile));
}

function fsyncDirSync(dir: string): void {
  let fd: number | undefined;
  try {
    fd = openSync(dir, 'r');
    fsyncSync(fd);
  } catch (err) {
    // Not supported everywhere (Windows): ignored there, as src/store/dir-sync.ts does.
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'EISDIR' && code !== 'EPERM' && code !== 'EINVAL' && code !== 'EBADF') throw err;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/**
 * A keyring over a key file that re-reads the file when it changes (checked at most once a
 * second), so `alloy serve keys rotate` takes effect in a running server: new data keys are
 * wrapped with the new key, and values re-wrapped under it still open.
 */
export function fileKeyring(keyFile: string): Keyring {
  let ring = readKeyFile(keyFile);
  let mtime = statSync(keyFile).mtimeMs;
  let checked = Date.now();
  const fresh = (force = false) => {
    if (!force && Date.now() - checked < 1000) return ring;
    checked = Date.now();
    const m = statSync(keyFile).mtimeMs;
    if (m !== mtime) {
      mtime = m;
      ring = readKeyFile(keyFile);
    }
    return ring;
  };
  return {
    get current() {
      return fresh().current;
    },
    get: (kid) => fresh().get(kid) ?? fresh(true).get(kid),
    all: () => fresh().all(),
  };
}

export function readKeyFile(keyFile: string): Keyring {
  const lines = readFileSync(keyFile, 'utf8').split(/\r?\n/).map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
  return makeKeyring(lines.map((l) => parseMasterKey(l, keyFile)).reverse());
}

/** Appends a new key to the key file (it becomes current); returns the new keyring. */
export function addKeyToFile(keyFile: string): Keyring {
  refuseSymlink(keyFile);
  // O_NOFOLLOW: a link put there since the check is not appended through either.
  // On disk before `keys rotate` re-wraps data keys under it in the (fsynced) state.
  writeNewKeyLine(openSync(keyFile, fsConstants.O_WRONLY | fsConstants.O_APPEND | fsConstants.O_CREAT | (fsConstants.O_NOFOLLOW ?? 0), 0o600));
  return readKeyFile(keyFile);
}

/** Writes a new master key's line to `fd`, fsyncs and closes it. */
function writeNewKeyLine(fd: number): void {
  try {
    writeSync(fd, `${newMasterKeyText()}\n`);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

function gcmSeal(key: Buffer, plain: Buffer, aad: string): { iv: Buffer; data: Buffer; tag: Buffer } {
  const iv = randomBytes(12);
  const c = createCipheriv('aes-256-gcm', key, iv);
  c.setAAD(Buffer.from(aad, 'utf8'));
  const data = Buffer.concat([c.update(plain), c.final()]);
  return { iv, data, tag: c.getAuthTag() };
}

function gcmOpen(key: Buffer, iv: Buffer, data: Buffer, tag: Buffer, aad: string): Buffer {
  const d = createDecipheriv('aes-256-gcm', key, iv);
  d.setAAD(Buffer.from(aad, 'utf8'));
  d.setAuthTag(tag);
  return Buffer.concat([d.update(data), d.final()]);
}

function wrap(master: MasterKey, dataKey: Buffer, aad: string): string {
  const w = gcmSeal(master.key, dataKey, `wrap:${aad}`);
  return Buffer.concat([w.iv, w.data, w.tag]).toString('base64');
}

function unwrap(keyring: Keyring, sealed: Sealed, aad: string): Buffer {
  const master = keyring.get(sealed.kid);
  if (!master) throw new UsageError(`no master key ${sealed.kid} to open a stored secret`, { code: 'E_MASTER_KEY', hint: 'Start with the master key the data was sealed with (ALLOY_MASTER_KEY may list several, newest first).' });
  const b = Buffer.from(sealed.wrapped, 'base64');
  return gcmOpen(master.key, b.subarray(0, 12), b.subarray(12, b.length - 16), b.subarray(b.length - 16), `wrap:${aad}`);
}

/** Seals a JSON value for the record `aad` (its id). */
export function seal(keyring: Keyring, value: unknown, aad: string): Sealed {
  const dataKey = randomBytes(32);
  const v = gcmSeal(dataKey, Buffer.from(JSON.stringify(value), 'utf8'), aad);
  const out: Sealed = { kid: keyring.current.kid, wrapped: wrap(keyring.current, dataKey, aad), iv: v.iv.toString('base64'), data: v.data.toString('base64'), tag: v.tag.toString('base64') };
  dataKey.fill(0);
  return out;
}

export function open<T = unknown>(keyring: Keyring, sealed: Sealed, aad: string): T {
  const dataKey = unwrap(keyring, sealed, aad);
  try {
    return JSON.parse(gcmOpen(dataKey, Buffer.from(sealed.iv, 'base64'), Buffer.from(sealed.data, 'base64'), Buffer.from(sealed.tag, 'base64'), aad).toString('utf8')) as T;
  } finally {
    dataKey.fill(0);
  }
}

/** The same value with its data key wrapped under the keyring's current master key. */
export function rewrap(keyring: Keyring, sealed: Sealed, aad: string): Sealed {
  if (sealed.kid === keyring.current.kid) return sealed;
  const dataKey = unwrap(keyring, sealed, aad);
  try {
    return { ...sealed, kid: keyring.current.kid, wrapped: wrap(keyring.current, dataKey, aad) };
  } finally {
    dataKey.fill(0);
  }
}
