/**
 * Picks the store a command works on: `--store <dir|url>`, else `--remote <name>` from
 * `remotes` in alloy.config (token from ALLOY_TOKEN, never the file), else the project's
 * local store (`store.path`, default `.alloy/store`).
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import type { ProjectConfig } from '../core/model.js';
import { UsageError } from '../errors.js';
import { LocalStore, type LocalStoreOptions } from './local-store.js';
import type { Store } from './store.js';

export const DEFAULT_STORE_PATH = '.alloy/store';

export interface OpenStoreOptions {
  /** Project root (folder of the config file). */
  root: string;
  config?: Pick<ProjectConfig, 'store' | 'remotes'>;
  /** `--store`: a directory or an http(s) URL. */
  store?: string;
  /** `--remote`: a name under `remotes`. */
  remote?: string;
  env: NodeJS.ProcessEnv;
  /** Where relative --store paths resolve (the command's cwd). */
  cwd?: string;
  local?: LocalStoreOptions;
}

export function isStoreUrl(value: string): boolean {
  return /^https?:\/\//i.test(value);
}

/** Async so the HTTP client (undici) is loaded only when a remote is used. */
export async function openStore(options: OpenStoreOptions): Promise<Store> {
  if (options.store && options.remote) {
    throw new UsageError('--store and --remote both name a store', { hint: 'Use one of them.' });
  }
  const token = options.env.ALLOY_TOKEN || undefined;
  if (options.store) {
    if (isStoreUrl(options.store)) return remoteStore(options.store, token);
    const dir = path.resolve(options.cwd ?? options.root, options.store);
    refuseAddressAsFolder(options.store, dir);
    return new LocalStore(dir, options.local);
  }
  const remoteName = options.remote ?? (options.env.ALLOY_REMOTE || undefined);
  if (remoteName) {
    const remote = options.config?.remotes?.[remoteName];
    if (!remote?.url) {
      const known = Object.keys(options.config?.remotes ?? {});
      throw new UsageError(`no remote named "${remoteName}" in the config`, {
        hint: known.length ? `Known remotes: ${known.join(', ')}.` : 'Add `remotes: { origin: { url: "http://127.0.0.1:4200" } }` to alloy.config.yaml.',
      });
    }
    if (!isStoreUrl(remote.url)) {
      throw new UsageError(`the url of remote "${remoteName}" (${JSON.stringify(remote.url)}) is not an http(s) URL`, { code: 'E_BAD_URL', hint: `Write it with its scheme in alloy.config, e.g. url: "http://${ADDRESS.test(remote.url) ? remote.url : '127.0.0.1:4200'}".` });
    }
    return remoteStore(remote.url, token);
  }
  const dir = options.config?.store?.path ?? DEFAULT_STORE_PATH;
  return new LocalStore(path.resolve(options.root, dir), options.local);
}

/** `host:port` (`localhost:4200`, `10.0.0.5:4200/`, `[::1]:4200`). */
const ADDRESS = /^(localhost|[\d.]+|\[[0-9a-f:.]+\]|[a-z0-9-]+(\.[a-z0-9-]+)+):\d{1,5}\/?$/i;

/**
 * `--store localhost:4200` (the scheme forgotten) was taken for a folder named so: `alloy
 * release` released into it and said so, and nothing reached the server. An address, or any
 * other `scheme://`, that is not an existing folder is refused with the fix.
 */
function refuseAddressAsFolder(value: string, dir: string): void {
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(value);
  if (!scheme && !ADDRESS.test(value)) return;
  if (existsSync(dir)) return;
  throw new UsageError(`--store ${JSON.stringify(value)} is neither a folder nor an http(s) URL`, {
    code: 'E_BAD_URL',
    hint: scheme ? 'A served store is reached over http:// or https://.' : `To reach a served store, give the scheme: --store http://${value}. A folder name with a colon needs a ./ in front.`,
  });
}

async function remoteStore(url: string, token: string | undefined): Promise<Store> {
  // `http://[::1` or a space in the host: the client's URL parser threw, reported as E_INTERNAL.
  if (!URL.canParse(url)) throw new UsageError(`${JSON.stringify(url)} is not a valid URL`, { code: 'E_BAD_URL', hint: 'Write the store server as http(s)://host[:port], e.g. http://127.0.0.1:4200.' });
  const { RemoteStore } = await import('./remote/client.js');
  return new RemoteStore({ url, token });
}
