/**
 * Shared plumbing of the store commands (release, publish, rollback, versions, show, diff,
 * status, fsck): which store to open, who is acting, and rendering bits. Commands stay thin
 * over src/store.
 */
import type { CliContext } from '../context.js';
import type { ProjectConfig } from '../../core/model.js';
import { findConfig, noProjectError } from '../../core/project.js';
import { openStore, shortId, crashHookFromEnv, detectProvenance, type Store, type FieldChange } from '../../store/lib.js';

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

/** The store named by --store / --remote, else the project's local store. */
export async function openCommandStore(ctx: CliContext, flags: StoreFlags, location?: ProjectLocation): Promise<Store> {
  const loc = location ?? (await findProjectLocation(ctx, !flags.store));
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
