/**
 * The local store: a directory laid out like a small git repository (docs/store.md).
 *
 *   objects/ab/cdef…                 canonical JSON, named by sha256, written once
 *   refs/<integration>/versions/<n>  release id, created once, never rewritten
 *   refs/<integration>/latest        hint: the newest version number (versions/ is the truth)
 *   refs/<integration>/published     {"version":n,"id":…}, moved under a lock
 *   logs/<integration>/published     one JSON line per move of `published`
 *   locks/<integration>.release.lock, locks/<integration>.publish.lock
 *
 * Every object read is re-hashed; a mismatch throws CorruptObjectError naming the file.
 */
import { refuseSymlinkAsync } from '../core/safe-fs.js';
import path from 'node:path';
import { isObjectId, sha256Hex } from './canonical.js';
import {
  CorruptObjectError,
  MissingObjectError,
  PublishConflictError,
  StoreError,
  StoreNotFoundError,
  VersionExistsError,
} from './errors.js';
import {
  appendLineDurable,
  createFileOnce,
  exists,
  fsyncDir,
  mkdirDurable,
  readdirIfExists,
  readFileIfExists,
  writeFileAtomic,
} from './fs-util.js';
import { withLock, type LockOptions } from './lock.js';
import { mapLimit } from '../core/map-limit.js';
import { assertIntegrationName, assertVersionNumber } from './names.js';
import { assertReleaseFollows, decodeObject, releaseDependencies, type EncodedObject, type StoreObject } from './objects.js';
import type { PublishLogEntry, PublishRequest, Store, VersionRef } from './store.js';
import { noCrash, type CrashHook } from './test-hooks.js';

export interface LocalStoreOptions {
  /** Clock for log entries. */
  now?: () => Date;
  lock?: LockOptions;
  /** TEST HOOK: see test-hooks.ts. */
  crashAt?: CrashHook;
}

const WRITE_CONCURRENCY = 16;
/** Files read at once (refs, objects for fsck). */
export const READ_CONCURRENCY = 16;

export class LocalStore implements Store {
  readonly kind = 'local' as const;
  readonly location: string;
  private readonly now: () => Date;
  private readonly lockOptions: LockOptions;
  private readonly crashAt: CrashHook;

  constructor(
    readonly dir: string,
    options: LocalStoreOptions = {},
  ) {
    this.location = dir;
    this.now = options.now ?? (() => new Date());
    this.lockOptions = options.lock ?? {};
    this.crashAt = options.crashAt ?? noCrash;
  }

  // ------------------------------------------------------------------ paths

  objectPath(id: string): string {
    return path.join(this.dir, 'objects', id.slice(0, 2), id.slice(2));
  }
  refsDir(integration: string): string {
    return path.join(this.dir, 'refs', assertIntegrationName(integration));
  }
  versionPath(integration: string, version: number): string {
    return path.join(this.refsDir(integration), 'versions', String(assertVersionNumber(version)));
  }
  latestHintPath(integration: string): string {
    return path.join(this.refsDir(integration), 'latest');
  }
  publishedPath(integration: string): string {
    return path.join(this.refsDir(integration), 'published');
  }
  publishLogPath(integration: string): string {
    return path.join(this.dir, 'logs', assertIntegrationName(integration), 'published');
  }
  lockPath(integration: string, what: 'release' | 'publish'): string {
    return path.join(this.dir, 'locks', `${assertIntegrationName(integration)}.${what}.lock`);
  }

  // ------------------------------------------------------------------ objects

  async missingObjects(ids: string[]): Promise<string[]> {
    const missing: string[] = [];
    for (const id of new Set(ids)) {
      if (!isObjectId(id)) throw new StoreError('E_STORE_BAD_ID', `"${id}" is not an object id`, { hint: 'Object ids are 64 hex digits (sha256).' });
      if (!(await exists(this.objectPath(id)))) missing.push(id);
    }
    return missing;
  }

  async putObjects(objects: EncodedObject[]): Promise<void> {
    await this.refuseLinkedFolders();
    const dirs = new Set<string>();
    const queue = [...new Map(objects.map((o) => [o.id, o])).values()];
    const worker = async () => {
      for (let o = queue.shift(); o; o = queue.shift()) {
        if (sha256Hex(o.bytes) !== o.id) {
          throw new StoreError('E_STORE_HASH_MISMATCH', `object bytes do not hash to ${o.id}`, {
            hint: 'This is a bug in the caller: ids are the sha256 of the exact bytes.',
          });
        }
        const file = this.objectPath(o.id);
        if (await exists(file)) continue;
        if (await createFileOnce(file, o.bytes, { syncDir: false })) dirs.add(path.dirname(file));
      }
    };
    await Promise.all(Array.from({ length: Math.min(WRITE_CONCURRENCY, queue.length) }, worker));
    // One fsync per touched directory rather than per object.
    for (const d of dirs) await fsyncDir(d);
    if (dirs.size) await fsyncDir(path.join(this.dir, 'objects'));
  }

  /** The verified bytes of an object (the server sends these as they are). */
  async readObjectBytes(id: string): Promise<Buffer> {
    if (!isObjectId(id)) throw new StoreError('E_STORE_BAD_ID', `"${id}" is not an object id`, { hint: 'Object ids are 64 hex digits (sha256).' });
    const file = this.objectPath(id);
    const bytes = await readFileIfExists(file);
    if (!bytes) throw new MissingObjectError(id, file);
    if (sha256Hex(bytes) !== id) throw new CorruptObjectError(id, file, 'content does not match its sha256');
    return bytes;
  }

  async readObject(id: string): Promise<StoreObject> {
    const bytes = await this.readObjectBytes(id);
    const value = decodeObject(bytes);
    if (typeof value === 'string') throw new CorruptObjectError(id, this.objectPath(id), value);
    return value;
  }

  /** Every object id present (for fsck), with the file each came from. */
  async listObjectFiles(): Promise<{ id: string | undefined; file: string }[]> {
    const out: { id: string | undefined; file: string }[] = [];
    const root = path.join(this.dir, 'objects');
    for (const prefix of (await readdirIfExists(root)).sort()) {
      for (const rest of (await readdirIfExists(path.join(root, prefix))).sort()) {
        const id = `${prefix}${rest}`;
        out.push({ id: isObjectId(id) ? id : undefined, file: path.join(root, prefix, rest) });
      }
    }
    return out;
  }

  // ------------------------------------------------------------------ versions

  async listIntegrations(): Promise<string[]> {
    const names = await readdirIfExists(path.join(this.dir, 'refs'));
    return names.filter((n) => /^[a-z0-9][a-z0-9-]{0,63}$/.test(n)).sort();
  }

  private async readVersionFile(integration: string, version: number): Promise<string | undefined> {
    const file = this.versionPath(integration, version);
    const buf = await readFileIfExists(file);
    if (!buf) return undefined;
    const id = buf.toString('utf8').trim();
    if (!isObjectId(id)) {
      throw new StoreError('E_STORE_BAD_REF', `ref ${file} does not hold an object id`, {
        hint: 'Refs are written whole (temp file + link); this one was edited by hand. Run `alloy fsck`.',
        details: { file },
      });
    }
    return id;
  }

  /**
   * O(1) in the length of history: start from the `latest` hint and step forward while
   * versions/<n+1> exists (a release killed after creating its version but before moving
   * the hint leaves the hint one behind). Without a hint, scan versions/.
   */
  async latestVersion(integration: string): Promise<VersionRef | null> {
    let n: number;
    const hint = await readFileIfExists(this.latestHintPath(integration));
    const parsed = hint ? Number(hint.toString('utf8').trim()) : NaN;
    if (Number.isSafeInteger(parsed) && parsed >= 1 && (await exists(this.versionPath(integration, parsed)))) {
      n = parsed;
    } else {
      n = Math.max(0, ...(await this.versionNumbers(integration)));
    }
    if (n === 0) return null;
    while (await exists(this.versionPath(integration, n + 1))) n++;
    return this.readVersion(integration, n);
  }

  async versionNumbers(integration: string): Promise<number[]> {
    const names = await readdirIfExists(path.join(this.refsDir(integration), 'versions'));
    return names
      .filter((n) => /^[1-9][0-9]*$/.test(n))
      .map(Number)
      .sort((a, b) => a - b);
  }

  async readVersion(integration: string, version: number): Promise<VersionRef> {
    const id = await this.readVersionFile(integration, version);
    if (!id) {
      throw new StoreNotFoundError(`${integration} v${version} does not exist in ${this.location}`, `List the versions with \`alloy versions ${integration}\`.`);
    }
    return { version, id };
  }

  /**
   * Every version, reading one ref at a time: a bad ref is returned in `bad` (with its error)
   * and the rest are still read (fsck, and the store server's `?problems=1` listing).
   */
  async checkedVersions(integration: string): Promise<{ versions: VersionRef[]; bad: { version: number; error: unknown }[] }> {
    const versions: VersionRef[] = [];
    const bad: { version: number; error: unknown }[] = [];
    for (const n of await this.versionNumbers(integration)) {
      try {
        versions.push(await this.readVersion(integration, n));
      } catch (error) {
        bad.push({ version: n, error });
      }
    }
    return { versions, bad };
  }

  async listVersions(integration: string, options: { newest?: number } = {}): Promise<VersionRef[]> {
    let numbers: number[];
    if (options.newest !== undefined && options.newest > 0) {
      // History has no gaps (createVersion, fsck): the newest n are latest-n+1..latest, found
      // from the `latest` hint without listing versions/ (`versions --limit 20` reads about 20 files).
      const latest = await this.latestVersion(integration);
      if (!latest) return [];
      const from = Math.max(1, latest.version - Math.floor(options.newest) + 1);
      numbers = Array.from({ length: latest.version - from + 1 }, (_, i) => from + i);
    } else {
      numbers = await this.versionNumbers(integration);
    }
    const ids = await mapLimit(numbers, READ_CONCURRENCY, (n) => this.readVersionFile(integration, n));
    const out: VersionRef[] = [];
    numbers.forEach((n, i) => {
      const id = ids[i];
      if (id) out.push({ version: n, id });
    });
    return out;
  }

  async createVersion(integration: string, ref: VersionRef): Promise<void> {
    await this.refuseLinkedFolders(integration);
    // Objects before refs: a ref never names an object the store lacks.
    const release = await this.readObject(ref.id);
    if (release.type !== 'release' || release.integration !== integration || release.version !== ref.version) {
      throw new StoreError('E_STORE_BAD_RELEASE', `object ${ref.id} is not release ${integration} v${ref.version}`, {
        hint: 'This is a bug in the caller: a version ref must name its own release object.',
      });
    }
    // The chain (assertReleaseFollows); an existing v<n> is still a 409 below.
    if (!(await exists(this.versionPath(integration, ref.version)))) {
      const parent = ref.version === 1 ? null : ((await this.readVersionFile(integration, ref.version - 1)) ?? undefined);
      assertReleaseFollows(integration, ref.version, release, parent);
    }
    const missing = await this.missingObjects(releaseDependencies(release));
    if (missing.length) throw new MissingObjectError(missing[0], `needed by ${integration} v${ref.version}`);
    const created = await createFileOnce(this.versionPath(integration, ref.version), `${ref.id}\n`);
    if (!created) throw new VersionExistsError(integration, ref.version);
    this.crashAt('version-ref-created');
    await writeFileAtomic(this.latestHintPath(integration), `${ref.version}\n`);
  }

  // ------------------------------------------------------------------ published

  async readPublished(integration: string): Promise<VersionRef | null> {
    const file = this.publishedPath(integration);
    const buf = await readFileIfExists(file);
    if (!buf) return null;
    try {
      const v = JSON.parse(buf.toString('utf8')) as VersionRef;
      if (Number.isSafeInteger(v.version) && isObjectId(v.id)) return { version: v.version, id: v.id };
    } catch {
      /* reported below */
    }
    throw new StoreError('E_STORE_BAD_REF', `ref ${file} is not a valid published pointer`, {
      hint: 'It is written whole (temp file + rename); it was edited by hand. Publish again with `alloy publish`.',
      details: { file },
    });
  }

  async movePublished(integration: string, request: PublishRequest): Promise<PublishLogEntry> {
    await this.refuseLinkedFolders(integration);
    return withLock(this.lockPath(integration, 'publish'), this.lockOptions, async (lock) => {
      const current = await this.readPublished(integration);
      if ((current?.id ?? null) !== request.expected) {
        throw new PublishConflictError(integration, request.expected, current?.id ?? null);
      }
      const target = await this.readVersion(integration, request.to.version);
      if (target.id !== request.to.id) {
        throw new StoreError('E_STORE_BAD_REF', `${integration} v${request.to.version} is ${target.id}, not ${request.to.id}`, {
          hint: 'Re-run the command; it resolves the version again.',
        });
      }
      const entry: PublishLogEntry = {
        from: current,
        to: target,
        action: request.action,
        who: request.who,
        when: this.now().toISOString(),
        ...(request.message ? { message: request.message } : {}),
      };
      // Log first, then the pointer: a crash in between leaves a log line whose move did not
      // happen, which fsck reports as a warning, the next publish simply supersedes, and
      // rollback skips (publishStack counts only moves that took effect).
      // The lock guards the compare-and-swap: re-check it is still ours (not broken as stale
      // while this process was slow) before each write.
      await lock.assertHeld();
      await appendLineDurable(this.publishLogPath(integration), JSON.stringify(entry));
      this.crashAt('publish-log-appended');
      await lock.assertHeld();
      await writeFileAtomic(this.publishedPath(integration), `${JSON.stringify(target)}\n`);
      this.crashAt('published');
      return entry;
    });
  }

  async readPublishLog(integration: string): Promise<PublishLogEntry[]> {
    const buf = await readFileIfExists(this.publishLogPath(integration));
    if (!buf) return [];
    return parsePublishLog(buf.toString('utf8')).entries;
  }

  /** `logs/<integration>/pushes`: one JSON line per version pushed through the store server (token fingerprint, time). */
  pushLogPath(integration: string): string {
    return path.join(path.dirname(this.publishLogPath(integration)), 'pushes');
  }

  async recordPush(integration: string, version: number, id: string, pushedBy: { by: string; at: string }): Promise<void> {
    await appendLineDurable(this.pushLogPath(integration), JSON.stringify({ version, id, ...pushedBy }));
  }

  async readPush(integration: string, version: number, id: string): Promise<{ by: string; at: string } | undefined> {
    const text = await readFileIfExists(this.pushLogPath(integration));
    for (const line of text?.toString('utf8').split('\n') ?? []) {
      try {
        const e = JSON.parse(line) as { version?: unknown; id?: unknown; by?: unknown; at?: unknown };
        if (e.version === version && e.id === id && typeof e.by === 'string' && typeof e.at === 'string') return { by: e.by, at: e.at };
      } catch {
        /* a torn last line */
      }
    }
    return undefined;
  }

  async withReleaseLock<T>(integration: string, fn: () => Promise<T>): Promise<T> {
    await this.refuseLinkedFolders(integration);
    return withLock(this.lockPath(integration, 'release'), this.lockOptions, fn);
  }

  async close(): Promise<void> {}

  /**
   * Writes never go through links (core/safe-fs.ts): the store's own folders, and an
   * integration's, are checked before writing (each written file's folder is checked too).
   */
  private async refuseLinkedFolders(integration?: string): Promise<void> {
    const dirs = [this.dir, ...['objects', 'refs', 'logs', 'locks'].map((d) => path.join(this.dir, d))];
    if (integration) dirs.push(this.refsDir(integration), path.dirname(this.publishLogPath(integration)));
    for (const d of dirs) await refuseSymlinkAsync(d);
  }

  /** Make the store's top folders (idempotent). */
  async init(): Promise<void> {
    for (const d of ['objects', 'refs', 'logs', 'locks']) {
      await mkdirDurable(path.join(this.dir, d));
      // Writes never go through links: a committed `.alloy/store/objects -> ~/x` is refused.
      await refuseSymlinkAsync(path.join(this.dir, d));
    }
  }
}

/** Parses the JSON-lines log; a torn last line (killed mid-append) is skipped and counted. */
export function parsePublishLog(text: string): { entries: PublishLogEntry[]; bad: number[] } {
  const entries: PublishLogEntry[] = [];
  const bad: number[] = [];
  text.split('\n').forEach((line, i) => {
    if (!line.trim()) return;
    try {
      const e = JSON.parse(line) as PublishLogEntry;
      if (e && e.to && Number.isSafeInteger(e.to.version) && isObjectId(e.to.id)) entries.push(e);
      else bad.push(i + 1);
    } catch {
      bad.push(i + 1);
    }
  });
  return { entries, bad };
}
