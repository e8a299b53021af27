/** Operator actions on the serve data folder, used by `alloy serve keys …` (and tests). */
import path from 'node:path';
import { UsageError } from '../errors.js';
import { newId } from '../server/ids.js';
import { API_KEY_ROLES, hashApiKey, newApiKey } from './auth.js';
import { addKeyToFile, loadKeyring, makeKeyring, parseMasterKey, rewrap, type Keyring } from './crypto.js';
import { openSqliteState } from './state/sqlite-state.js';
import type { ApiKeyRecord, ApiKeyRole, ServeState } from './state/types.js';

export const STATE_FILE = 'serve.db';
export const KEY_FILE = 'master.keys';

export function keyFileOf(dataDir: string, env: NodeJS.ProcessEnv): string {
  return env.ALLOY_MASTER_KEY_FILE ? path.resolve(env.ALLOY_MASTER_KEY_FILE) : path.join(dataDir, KEY_FILE);
}

export function openDataDir(dataDir: string, env: NodeJS.ProcessEnv): { state: ServeState; keyring: Keyring } {
  const state = openSqliteState(path.join(dataDir, STATE_FILE));
  return { state, keyring: loadKeyring(env, keyFileOf(dataDir, env)) };
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
 */
export async function rotateMasterKey(dataDir: string, env: NodeJS.ProcessEnv): Promise<{ kid: string; credentials: number; installations: number }> {
  const state = openSqliteState(path.join(dataDir, STATE_FILE));
  try {
    let keyring: Keyring;
    if (env.ALLOY_MASTER_KEY) {
      if (!env.ALLOY_NEW_MASTER_KEY) throw new UsageError('ALLOY_MASTER_KEY is set: name the new key in ALLOY_NEW_MASTER_KEY', { hint: 'Then restart alloy serve with ALLOY_MASTER_KEY="<new>,<old>" (newest first).' });
      const old = loadKeyring(env, keyFileOf(dataDir, env));
      keyring = makeKeyring([parseMasterKey(env.ALLOY_NEW_MASTER_KEY, 'ALLOY_NEW_MASTER_KEY'), ...old.all()]);
    } else {
      loadKeyring(env, keyFileOf(dataDir, env));
      keyring = addKeyToFile(keyFileOf(dataDir, env));
    }
    const counts = await rewrapAll(state, keyring);
    return { kid: keyring.current.kid, ...counts };
  } finally {
    await state.close();
  }
}
