/** Operator actions on the serve state, used by `alloy serve`, `alloy serve keys …` (and tests). */
import { chmodSync, existsSync, lstatSync, statSync } from 'node:fs';
import path from 'node:path';
import { ensurePrivateDir, filesystemKeepsModes, preparePrivateFile, refuseSymlink } from '../core/safe-fs.js';
import { lockFolder } from '../core/folder-lock.js';
import { AlloyError, UsageError } from '../errors.js';
import { newId } from '../server/ids.js';
import { API_KEY_ROLES, hashApiKey, newApiKey } from './auth.js';
import { addKeyToFile, loadKeyring, makeKeyring, parseMasterKey, rewrap, type Keyring } from './crypto.js';
import { openServeState, STATE_FILE, type OpenServeStateOptions } from './state/open.js';
import type { ApiKeyRecord, ApiKeyRole, ServeState } from './state/types.js';

export { STATE_FILE } from './state/open.js';
export const KEY_FILE = 'master.keys';

/** Where the state lives and where the master key comes from. */
export interface ServeLocation extends OpenServeStateOptions {
  /** The data folder: SQLite's database and the default key file. */
  dataDir?: string;
  /** A trusted folder above dataDir (the project, for the default `.alloy/serve`): every level below it is checked for links. */
  dataBase?: string;
}

export function keyFileOf(dataDir: string | undefined, env: NodeJS.ProcessEnv): string | undefined {
  if (env.ALLOY_MASTER_KEY_FILE) return path.resolve(env.ALLOY_MASTER_KEY_FILE);
  return dataDir ? path.join(dataDir, KEY_FILE) : undefined;
}

/**
 * The master keyring. With SQLite the key file is created on first use. With PostgreSQL it
 * is not: every process over the database must wrap and open with the same key, and a key
 * file made up by one machine would leave the others unable to read what it wrote.
 */
export function loadServeKeyring(where: ServeLocation, env: NodeJS.ProcessEnv): Keyring {
  refuseDataFile(where);
  if (env.ALLOY_MASTER_KEY) return loadKeyring(env, '');
  const file = keyFileOf(where.dataDir, env);
  if (where.database && (!file || !existsSync(file))) {
    throw new UsageError('with --database, every serve process needs the same master key', {
      hint: `Set ALLOY_MASTER_KEY (generate one with \`openssl rand -base64 32\`) to the same value for each process${file ? `, or put the key file at ${file}` : ', or point ALLOY_MASTER_KEY_FILE at a shared key file'}.`,
    });
  }
  if (!file) throw new UsageError('no master key', { hint: 'Pass --data <dir> (its master.keys), or set ALLOY_MASTER_KEY.' });
  if (where.dataDir) ensurePrivateDir(where.dataDir, where.dataBase);
  refuseSymlink(file);
  // The data folder's own key file is made 0600 by alloy. One that other users can read (a
  // copy, a restore, or a key file committed to a repository and checked out 0644) opens every
  // stored credential for them: serve stops and says so rather than use it. Group bits alone
  // (Kubernetes' fsGroup makes files 0660 on every pod start) are taken back to 0600. A key
  // file named by ALLOY_MASTER_KEY_FILE is the operator's (a secret mount) and not checked.
  if (!env.ALLOY_MASTER_KEY_FILE) refuseExposedKeyFile(file);
  return loadKeyring(env, file);
}

function refuseExposedKeyFile(file: string): void {
  let st;
  try {
    st = lstatSync(file);
  } catch {
    return; // created below, 0600
  }
  if (!st.isFile() || (st.mode & 0o077) === 0 || !filesystemKeepsModes(path.dirname(file))) return;
  if ((st.mode & 0o007) === 0) {
    try {
      chmodSync(file, 0o600);
    } catch {
      /* another user's, or a read-only mount: readable by its group only, used as is */
    }
    return;
  }
  throw new AlloyError('E_MASTER_KEY_EXPOSED', `${file} can be read by other users (mode ${(st.mode & 0o777).toString(8)}); it holds the key to every stored credential`, {
    hint: `If only you could read it (a copy that widened the mode): chmod 600 "${file}". If others may have read it, chmod 600 it, then re-wrap every secret under a new key: alloy serve keys rotate. A key file managed elsewhere (a secret mount) can be named with ALLOY_MASTER_KEY_FILE instead.`,
    details: { path: file },
  });
}

/** `--data` naming a file (it was "internal error ENOTDIR … a bug in alloy"). */
function refuseDataFile(where: ServeLocation): void {
  if (!where.dataDir) return;
  let st;
  try {
    st = statSync(where.dataDir);
  } catch {
    return; // made later
  }
  if (!st.isDirectory()) {
    throw new UsageError(`the data folder ${where.dataDir} is a file, not a folder`, { code: 'E_SERVE_DATA', hint: 'Pass --data <dir> naming a folder (made if missing) for serve.db and master.keys.' });
  }
}

/**
 * The data folder, checked like `.alloy/` (a cloned project may commit `.alloy/serve` or a file
 * in it as a link): no link, and serve.db with its -wal and -shm private (0600) before SQLite
 * opens them by name (it would follow a link, and creates files 0644).
 */
function prepareDataDir(where: ServeLocation): void {
  if (where.database || !where.dataDir) return;
  ensurePrivateDir(where.dataDir, where.dataBase);
  const file = path.join(where.dataDir, STATE_FILE);
  preparePrivateFile(file, [`${file}-wal`, `${file}-shm`]);
}

/** Opens the state (SQLite in the data folder, or PostgreSQL) and the master keyring. */
export async function openServe(where: ServeLocation, env: NodeJS.ProcessEnv): Promise<{ state: ServeState; keyring: Keyring }> {
  const keyring = loadServeKeyring(where, env);
  prepareDataDir(where);
  const state = await openState(where);
  return { state, keyring };
}

export const LOCK_FILE = 'serve.lock';

/**
 * One `alloy serve` per SQLite data folder: a server resumes every unfinished execution when it
 * starts, so a second one on the same folder ran the first one's executions again, calls
 * included (src/core/folder-lock.ts); `alloy serve keys` and other readers of serve.db do not
 * take it. Nothing with --database (any number of processes share PostgreSQL).
 */
export async function lockServeData(where: ServeLocation): Promise<() => void> {
  if (where.database || !where.dataDir) return () => undefined;
  refuseDataFile(where);
  const dataDir = where.dataDir;
  return lockFolder(
    dataDir,
    LOCK_FILE,
    () =>
      new AlloyError('E_SERVE_LOCKED', `another alloy serve is running on the data folder ${dataDir}`, {
        hint: 'Stop it first, or give this one another --data. To run several processes over one state, use --database postgres://… (docs/scale-out.md).',
      }),
    where.dataBase,
  );
}

/** openServeState, with a damaged SQLite file named as such (it was "internal error … a bug in alloy"). */
async function openState(where: ServeLocation): Promise<ServeState> {
  try {
    return await openServeState(where);
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    const file = where.database ? '' : path.join(where.dataDir!, STATE_FILE);
    if (!where.database && typeof code === 'string' && code.startsWith('SQLITE_BUSY')) {
      throw new AlloyError('E_STATE_BUSY', `the serve state ${file} stayed locked by another process for 5 s`, {
        hint: 'Another alloy process is writing it (a long delete, or a first start upgrading the file): run the command again in a moment.',
        cause: err,
      });
    }
    if (where.database || (code !== 'SQLITE_NOTADB' && code !== 'SQLITE_CORRUPT')) throw err;
    throw new AlloyError('E_STATE_DAMAGED', `cannot open the serve state ${file}: ${(err as Error).message}`, {
      hint: `The file is damaged: stop every process using it and restore ${STATE_FILE} (with its -wal) from a backup (alloy serve does not start on a damaged file).`,
      cause: err,
    });
  }
}

export async function createApiKey(state: ServeState, role: string, name: string | undefined, now: number): Promise<{ key: string; record: ApiKeyRecord }> {
  if (!API_KEY_ROLES.includes(role as ApiKeyRole)) throw new UsageError(`--role ${role} is not a role`, { hint: `Use one of: ${API_KEY_ROLES.join(', ')}.` });
  const key = newApiKey(role as ApiKeyRole);
  const record: ApiKeyRecord = { id: newId('key', now), role: role as ApiKeyRole, hash: hashApiKey(key), ...(name ? { name } : {}), createdAt: new Date(now).toISOString() };
  await state.apiKeys.create(record);
  return { key, record };
}

/** Re-wraps every data key (credentials, installation configs) under the keyring's current master key. */
export async function rewrapAll(state: ServeState, keyring: Keyring): Promise<{ credentials: number; installations: number }> {
  let credentials = 0;
  let installations = 0;
  for (const c of await state.credentials.all()) {
    if (c.secret.kid === keyring.current.kid) continue;
    await state.credentials.put({ ...c, secret: rewrap(keyring, c.secret, `credential:${c.id}`) });
    credentials++;
  }
  for (const i of await state.installations.all()) {
    if (i.config.kid === keyring.current.kid) continue;
    await state.installations.put({ ...i, config: rewrap(keyring, i.config, `config:${i.id}`) });
    installations++;
  }
  return { credentials, installations };
}

/**
 * A new master key: appended to the key file (a running server re-reads it), or, with
 * ALLOY_MASTER_KEY, taken from ALLOY_NEW_MASTER_KEY. Then every data key is re-wrapped.
 * Several processes on several machines: use ALLOY_MASTER_KEY, so that each is restarted
 * with the new list (a key file is per machine).
 */
export async function rotateMasterKey(where: ServeLocation, env: NodeJS.ProcessEnv): Promise<{ kid: string; credentials: number; installations: number }> {
  let keyring: Keyring;
  if (env.ALLOY_MASTER_KEY) {
    if (!env.ALLOY_NEW_MASTER_KEY) throw new UsageError('ALLOY_MASTER_KEY is set: name the new key in ALLOY_NEW_MASTER_KEY', { hint: 'Then restart alloy serve with ALLOY_MASTER_KEY="<new>,<old>" (newest first).' });
    const old = loadServeKeyring(where, env);
    keyring = makeKeyring([parseMasterKey(env.ALLOY_NEW_MASTER_KEY, 'ALLOY_NEW_MASTER_KEY'), ...old.all()]);
  } else {
    loadServeKeyring(where, env);
    keyring = addKeyToFile(keyFileOf(where.dataDir, env)!);
  }
  prepareDataDir(where);
  const state = await openState(where);
  try {
    const counts = await rewrapAll(state, keyring);
    return { kid: keyring.current.kid, ...counts };
  } finally {
    await state.close();
  }
}
