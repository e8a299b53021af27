/**
 * fsck: verify every object and ref and report each problem (it never stops at the first).
 * Errors make `alloy fsck` exit 1; warnings are states a killed process may legitimately
 * leave (orphan objects, a lagging hint, a torn last log line, a stale lock) and are safe.
 */
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { sha256Hex } from './canonical.js';
import { AlloyError } from '../errors.js';
import { isTempName, readdirIfExists, readFileIfExists } from './fs-util.js';
import { isLockStale, isPidAlive, readLockOwner } from './lock.js';
import { LocalStore, parsePublishLog, READ_CONCURRENCY } from './local-store.js';
import { decodeObject, definitionProblems, releaseDependencies, type ReleaseObject, type StoreObject } from './objects.js';
import { mapLimit } from '../core/map-limit.js';
import type { RefProblem } from './remote/client.js';
import type { Store } from './store.js';

export interface FsckProblem {
  severity: 'error' | 'warning';
  code: string;
  message: string;
  /** The file (local) or ref/object it concerns. */
  path?: string;
  object?: string;
}

export interface FsckReport {
  store: string;
  objects: number;
  versions: number;
  integrations: number;
  errors: number;
  warnings: number;
  problems: FsckProblem[];
}

function errorProblem(err: unknown, where: string): FsckProblem {
  if (err instanceof AlloyError) {
    const d = err.details ?? {};
    return {
      severity: 'error',
      code: err.code,
      message: err.message,
      path: typeof d.file === 'string' ? d.file : where,
      ...(typeof d.object === 'string' ? { object: d.object } : {}),
    };
  }
  return { severity: 'error', code: 'E_STORE_IO', message: `${where}: ${(err as Error).message}`, path: where };
}

/** A remote store (duck-typed, so a local fsck does not load the HTTP client). */
function reportsBadRefs(store: Store): store is Store & { versionsWithProblems(integration: string): Promise<{ versions: { version: number; id: string }[]; problems: RefProblem[] }> } {
  return typeof (store as { versionsWithProblems?: unknown }).versionsWithProblems === 'function';
}

export async function fsckStore(store: Store, options: { now?: () => number } = {}): Promise<FsckReport> {
  const problems: FsckProblem[] = [];
  // One report per bad object, however many refs lead to it.
  const push = (p: FsckProblem) => {
    if (p.object && p.severity === 'error' && problems.some((q) => q.object === p.object && q.code === p.code)) return;
    problems.push(p);
  };
  let objects = 0;
  const now = options.now ?? Date.now;
  /** A definition that breaks the schemas (e.g. pushed by a client that skipped validation). */
  const schemaProblem = (value: StoreObject, id: string, where: string) => {
    const errors = definitionProblems(value);
    if (errors.length) push({ severity: 'error', code: 'E_STORE_SCHEMA', message: `${value.type} object ${id} does not match the schema: ${errors.slice(0, 5).join('; ')}`, path: where, object: id });
  };

  // Objects verified so far, decoded: each object is read once (step 1 for a local store,
  // on first use for a remote one), and the refs below reuse it instead of reading it again.
  const verified = new Map<string, StoreObject>();
  const readOnce = new Map<string, Promise<StoreObject>>();
  const readObject = (id: string): Promise<StoreObject> => {
    const known = verified.get(id);
    if (known) return Promise.resolve(known);
    let p = readOnce.get(id);
    if (!p) {
      p = store.readObject(id);
      readOnce.set(id, p);
      p.catch(() => {}); // reported where it is awaited
    }
    return p;
  };

  // 1. Every object file (local only: a remote store is checked through its refs), read
  //    READ_CONCURRENCY at a time; problems are reported in file order.
  if (store instanceof LocalStore) {
    const files = await store.listObjectFiles();
    const found = await mapLimit(files, READ_CONCURRENCY, async ({ id, file }): Promise<FsckProblem | undefined> => {
      if (isTempName(path.basename(file))) {
        return { severity: 'warning', code: 'W_STORE_TEMP_FILE', message: `leftover temp file from an interrupted write (safe to delete)`, path: file };
      }
      if (!id) return { severity: 'error', code: 'E_STORE_STRAY_FILE', message: 'file in objects/ whose name is not an object id', path: file };
      objects++;
      const bytes = await fsp.readFile(file);
      if (sha256Hex(bytes) !== id) {
        return { severity: 'error', code: 'E_STORE_CORRUPT', message: `object ${id} does not match its sha256 (changed after it was written)`, path: file, object: id };
      }
      const value = decodeObject(bytes);
      if (typeof value === 'string') return { severity: 'error', code: 'E_STORE_CORRUPT', message: `object ${id}: ${value}`, path: file, object: id };
      verified.set(id, value);
      schemaProblem(value, id, file);
      return undefined;
    });
    for (const p of found) if (p) push(p);
  }

  // 2. Refs: every version names a verified release, with every dependency present, in an unbroken chain.
  const integrations = await store.listIntegrations();
  let versions = 0;
  const checked = new Set<string>();
  const checkObject = async (id: string, where: string): Promise<boolean> => {
    if (checked.has(id)) return true;
    try {
      const value = await readObject(id);
      checked.add(id);
      if (!(store instanceof LocalStore)) schemaProblem(value, id, where);
      return true;
    } catch (err) {
      push(errorProblem(err, where));
      return false;
    }
  };
  for (const integration of integrations) {
    let refs: { version: number; id: string }[] = [];
    try {
      if (store instanceof LocalStore) {
        // One ref at a time: a bad ref is reported and the rest are still checked.
        const { versions: good, bad } = await store.checkedVersions(integration);
        refs = good;
        for (const b of bad) push(errorProblem(b.error, `refs/${integration}/versions/${b.version}`));
      } else if (reportsBadRefs(store)) {
        // The server lists the good refs and reports the bad ones, instead of failing the list.
        const { versions: good, problems: bad } = await store.versionsWithProblems(integration);
        refs = good;
        for (const b of bad) push({ severity: 'error', code: b.code, message: `${integration} v${b.version}: ${b.message}`, path: `refs/${integration}/versions/${b.version}` });
      } else {
        refs = await store.listVersions(integration);
      }
    } catch (err) {
      push(errorProblem(err, `refs/${integration}/versions`));
      continue;
    }
    versions += refs.length;
    // A remote store answers each read with one GET: fetch the releases a few at a time first.
    if (!(store instanceof LocalStore)) await mapLimit(refs, 8, (ref) => readObject(ref.id).catch(() => undefined));
    let prev: { version: number; id: string } | undefined;
    for (const ref of refs) {
      const where = `refs/${integration}/versions/${ref.version}`;
      if (prev && ref.version !== prev.version + 1) {
        push({ severity: 'error', code: 'E_STORE_VERSION_GAP', message: `${integration} has no v${prev.version + 1} before v${ref.version}`, path: where });
      } else if (!prev && ref.version !== 1) {
        push({ severity: 'error', code: 'E_STORE_VERSION_GAP', message: `${integration} starts at v${ref.version}, not v1`, path: where });
      }
      let release: ReleaseObject | undefined;
      try {
        const obj = await readObject(ref.id);
        if (obj.type !== 'release') throw new Error(`names a ${obj.type} object, not a release`);
        release = obj;
        checked.add(ref.id);
      } catch (err) {
        push(errorProblem(err, where));
      }
      if (release) {
        if (release.integration !== integration || release.version !== ref.version) {
          push({ severity: 'error', code: 'E_STORE_BAD_REF', message: `${where} names release ${release.integration} v${release.version}`, path: where, object: ref.id });
        }
        const expectedParent = prev && prev.version === ref.version - 1 ? prev.id : ref.version === 1 ? null : undefined;
        if (expectedParent !== undefined && release.parent !== expectedParent) {
          push({ severity: 'error', code: 'E_STORE_BAD_PARENT', message: `${integration} v${ref.version}'s parent is not v${ref.version - 1}`, path: where, object: ref.id });
        }
        for (const dep of releaseDependencies(release)) await checkObject(dep, `${where} -> ${dep}`);
      }
      prev = ref;
    }

    // published pointer and its log
    try {
      const published = await store.readPublished(integration);
      const log = await store.readPublishLog(integration);
      const last = log[log.length - 1];
      if ((last?.to.id ?? null) !== (published?.id ?? null)) {
        push({ severity: 'warning', code: 'W_STORE_LOG_AHEAD', message: `${integration}: the last publish log entry does not match the published pointer (an interrupted publish); the pointer is what counts`, path: `logs/${integration}/published` });
      }
      if (published) {
        const match = refs.find((r) => r.version === published.version);
        if (!match || match.id !== published.id) {
          push({ severity: 'error', code: 'E_STORE_BAD_PUBLISHED', message: `${integration} published points at v${published.version} (${published.id}), which is not that version`, path: `refs/${integration}/published` });
        }
      }
    } catch (err) {
      push(errorProblem(err, `refs/${integration}/published`));
    }

    if (store instanceof LocalStore) await fsckLocalExtras(store, integration, refs.length ? refs[refs.length - 1].version : 0, problems, now);
  }

  const errors = problems.filter((p) => p.severity === 'error').length;
  return { store: store.location, objects: store instanceof LocalStore ? objects : checked.size, versions, integrations: integrations.length, errors, warnings: problems.length - errors, problems };
}

async function fsckLocalExtras(store: LocalStore, integration: string, maxVersion: number, problems: FsckProblem[], now: () => number): Promise<void> {
  const hintFile = store.latestHintPath(integration);
  const hint = await readFileIfExists(hintFile);
  if (hint) {
    const n = Number(hint.toString('utf8').trim());
    if (!Number.isSafeInteger(n) || n > maxVersion) {
      problems.push({ severity: 'error', code: 'E_STORE_BAD_HINT', message: `${integration}: latest hint says v${hint.toString('utf8').trim()} but the newest version is v${maxVersion}`, path: hintFile });
    } else if (n < maxVersion) {
      problems.push({ severity: 'warning', code: 'W_STORE_HINT_BEHIND', message: `${integration}: latest hint is v${n}, newest is v${maxVersion} (a release stopped before moving the hint; reads correct it)`, path: hintFile });
    }
  }
  const logText = await readFileIfExists(store.publishLogPath(integration));
  if (logText) {
    const { bad } = parsePublishLog(logText.toString('utf8'));
    for (const line of bad) {
      problems.push({ severity: 'warning', code: 'W_STORE_LOG_LINE', message: `${integration}: publish log line ${line} is not a complete entry (skipped)`, path: store.publishLogPath(integration) });
    }
  }
  for (const what of ['release', 'publish'] as const) {
    const file = store.lockPath(integration, what);
    const owner = await readLockOwner(file);
    if (owner && isLockStale(owner, { staleMs: 30_000, now, isAlive: isPidAlive })) {
      problems.push({ severity: 'warning', code: 'W_STORE_STALE_LOCK', message: `stale ${what} lock left by pid ${owner.pid} (the next ${what} breaks it)`, path: file });
    }
  }
  for (const name of await readdirIfExists(path.join(store.refsDir(integration), 'versions'))) {
    if (isTempName(name)) problems.push({ severity: 'warning', code: 'W_STORE_TEMP_FILE', message: 'leftover temp file from an interrupted write (safe to delete)', path: path.join(store.refsDir(integration), 'versions', name) });
  }
}
