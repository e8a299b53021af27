/**
 * Shared plumbing of the store commands (release, publish, rollback, versions, show, diff,
 * status, fsck): which store to open, who is acting, and rendering bits. Commands stay thin
 * over src/store.
 */
import { existsSync, statSync } from 'node:fs';
import path from 'node:path';
import type { CliContext } from '../context.js';
import { UsageError } from '../../errors.js';
import type { ProjectConfig } from '../../core/model.js';
import { findConfig, noProjectError } from '../../core/project.js';
import { openStore, shortId, crashHookFromEnv, detectProvenance, isStoreUrl, type Store, type FieldChange } from '../../store/lib.js';

export interface StoreFlags {
  store?: string;
  remote?: string;
}

export interface ProjectLocation {
  root: string;
  config: Pick<ProjectConfig, 'store' | 'remotes'>;
}

/** Root and config without validating the definitions (history commands work on a broken tree). */
export async function findProjectLocation(ctx: CliContext, required: boolean): Promise<ProjectLocation | undefined> {
  const found = await findConfig(ctx.cwd);
  if (!found) {
    if (required) throw noProjectError(ctx.cwd);
    return undefined;
  }
  const cfg = (found.config && typeof found.config === 'object' ? found.config : {}) as Record<string, unknown>;
  return { root: found.root, config: { store: cfg.store as ProjectConfig['store'], remotes: cfg.remotes as ProjectConfig['remotes'] } };
}

/**
 * The store named by --store / --remote, else the project's local store. Only `release`
 * (`creates`) makes a store: for the others a `--store` folder that is not one (a typo) was
 * read as an empty store, so `alloy fsck` passed and `alloy versions` said "no releases".
 */
export async function openCommandStore(ctx: CliContext, flags: StoreFlags, location?: ProjectLocation, creates = false): Promise<Store> {
  const loc = location ?? (await findProjectLocation(ctx, !flags.store));
  if (flags.store && !creates && !isStoreUrl(flags.store)) requireStoreFolder(path.resolve(ctx.cwd, flags.store), flags.store);
  return openStore({
    root: loc?.root ?? ctx.cwd,
    cwd: ctx.cwd,
    config: loc?.config,
    store: flags.store,
    remote: flags.remote,
    env: ctx.env,
    local: { now: () => ctx.now(), crashAt: crashHookFromEnv(ctx.env) },
  });
}

function requireStoreFolder(dir: string, given: string): void {
  let what: string | undefined;
  try {
    if (!statSync(dir).isDirectory()) what = 'is a file, not a store folder';
    else if (!existsSync(path.join(dir, 'objects')) && !existsSync(path.join(dir, 'refs'))) what = 'is not an alloy store (no objects/ or refs/ in it)';
  } catch {
    what = 'does not exist';
  }
  if (what) throw new UsageError(`--store ${given} ${what}`, { code: 'E_NO_STORE', hint: 'Check the path (a store is made by `alloy release --store <dir>`), or name a served store by its http(s) URL.' });
}

export async function withStore<T>(store: Store, fn: (s: Store) => Promise<T>): Promise<T> {
  try {
    return await fn(store);
  } finally {
    await store.close();
  }
}

export async function whoAmI(ctx: CliContext, root: string): Promise<string> {
  return (await detectProvenance(ctx.env, root)).author;
}

export { shortId };

export function formatValue(v: unknown, max = 60): string {
  if (v === undefined) return '(none)';
  const s = typeof v === 'string' ? JSON.stringify(v) : JSON.stringify(v);
  return s.length > max ? `${s.slice(0, max - 1)}…` : s;
}

export function formatFieldChange(f: FieldChange): string {
  return `${f.path}: ${formatValue(f.from)} → ${formatValue(f.to)}`;
}
