/**
 * The store in PostgreSQL, for `alloy serve --database`: the tables of migration 3
 * (src/serve/state/pg-migrations.ts) in the serve state's schema, on its pool, so every serve
 * process serves and publishes one store. Same rules as LocalStore (the store contract,
 * test/store/store-contract.ts, runs on both): objects are re-hashed when written and on every
 * read; versions/<n> is created once (the primary key), consecutive and chained to its parent;
 * `published` moves by compare-and-swap, its log entry and the pointer in one transaction
 * under an advisory lock per integration.
 */
import type pg from 'pg';
import { isObjectId, sha256Hex } from './canonical.js';
import { CorruptObjectError, MissingObjectError, PublishConflictError, StoreError, StoreNotFoundError, VersionExistsError } from './errors.js';
import { assertIntegrationName, assertVersionNumber } from './names.js';
import { assertReleaseFollows, decodeObject, releaseDependencies, type EncodedObject, type StoreObject } from './objects.js';
import type { PublishLogEntry, PublishRequest, Store, VersionRef } from './store.js';

const BATCH = 500;

const badId = (id: string) => new StoreError('E_STORE_BAD_ID', `"${id}" is not an object id`, { hint: 'Object ids are 64 hex digits (sha256).' });

export class PgStore implements Store {
  readonly kind = 'postgres' as const;

  constructor(
    private readonly pool: pg.Pool,
    /** For messages: where the store is (no password). */
    readonly location: string,
    private readonly options: { now?: () => Date } = {},
  ) {}

  // ------------------------------------------------------------------ objects

  async missingObjects(ids: string[]): Promise<string[]> {
    const unique = [...new Set(ids)];
    for (const id of unique) if (!isObjectId(id)) throw badId(id);
    const have = new Set<string>();
    for (let i = 0; i < unique.length; i += BATCH * 10) {
      const rows = (await this.pool.query<{ id: string }>('SELECT id FROM store_objects WHERE id = ANY($1::text[])', [unique.slice(i, i + BATCH * 10)])).rows;
      for (const r of rows) have.add(r.id);
    }
    return unique.filter((id) => !have.has(id));
  }

  async putObjects(objects: EncodedObject[]): Promise<void> {
    const unique = [...new Map(objects.map((o) => [o.id, o])).values()];
    for (const o of unique) {
      if (sha256Hex(o.bytes) !== o.id) {
        throw new StoreError('E_STORE_HASH_MISMATCH', `object bytes do not hash to ${o.id}`, { hint: 'This is a bug in the caller: ids are the sha256 of the exact bytes.' });
      }
    }
    // Written once: an existing id keeps its row (ON CONFLICT DO NOTHING).
    for (let i = 0; i < unique.length; i += BATCH) {
      const part = unique.slice(i, i + BATCH);
      await this.pool.query('INSERT INTO store_objects (id, bytes) SELECT * FROM unnest($1::text[], $2::bytea[]) ON CONFLICT (id) DO NOTHING', [part.map((o) => o.id), part.map((o) => Buffer.from(o.bytes))]);
    }
  }

  /** The verified bytes of an object. */
  async readObjectBytes(id: string): Promise<Buffer> {
    if (!isObjectId(id)) throw badId(id);
    const row = (await this.pool.query<{ bytes: Buffer }>({ name: 'alloy_store_object', text: 'SELECT bytes FROM store_objects WHERE id = $1', values: [id] })).rows[0];
    if (!row) throw new MissingObjectError(id, this.location);
    if (sha256Hex(row.bytes) !== id) throw new CorruptObjectError(id, `${this.location} (store_objects)`, 'content does not match its sha256');
    return row.bytes;
  }

  async readObject(id: string): Promise<StoreObject> {
    const value = decodeObject(await this.readObjectBytes(id));
    if (typeof value === 'string') throw new CorruptObjectError(id, `${this.location} (store_objects)`, value);
    return value;
  }

  // ------------------------------------------------------------------ versions

  async listIntegrations(): Promise<string[]> {
    return (await this.pool.query<{ integration: string }>('SELECT integration FROM store_versions UNION SELECT integration FROM store_published ORDER BY 1')).rows.map((r) => r.integration);
  }

  async latestVersion(integration: string): Promise<VersionRef | null> {
    const r = (await this.pool.query<VersionRef>('SELECT version, id FROM store_versions WHERE integration = $1 ORDER BY version DESC LIMIT 1', [assertIntegrationName(integration)])).rows[0];
    return r ?? null;
  }

  async readVersion(integration: string, version: number): Promise<VersionRef> {
    const r = (await this.pool.query<VersionRef>({ name: 'alloy_store_version', text: 'SELECT version, id FROM store_versions WHERE integration = $1 AND version = $2', values: [assertIntegrationName(integration), assertVersionNumber(version)] })).rows[0];
    if (!r) throw new StoreNotFoundError(`${integration} v${version} does not exist in ${this.location}`, `List the versions with \`alloy versions ${integration}\`.`);
    return r;
  }

  /** What the store server's `?problems=1` listing reads: refs here are typed columns, so none is unreadable. */
  async checkedVersions(integration: string): Promise<{ versions: VersionRef[]; bad: { version: number; error: unknown }[] }> {
    return { versions: await this.listVersions(integration), bad: [] };
  }

  async listVersions(integration: string, options: { newest?: number } = {}): Promise<VersionRef[]> {
    const name = assertIntegrationName(integration);
    if (options.newest !== undefined && options.newest > 0) {
      const rows = (await this.pool.query<VersionRef>('SELECT version, id FROM store_versions WHERE integration = $1 ORDER BY version DESC LIMIT $2', [name, Math.floor(options.newest)])).rows;
      return rows.reverse();
    }
    return (await this.pool.query<VersionRef>('SELECT version, id FROM store_versions WHERE integration = $1 ORDER BY version', [name])).rows;
  }

  async createVersion(integration: string, ref: VersionRef): Promise<void> {
    assertIntegrationName(integration);
    assertVersionNumber(ref.version);
    // Objects before refs: a ref never names an object the store lacks.
    const release = await this.readObject(ref.id);
    if (release.type !== 'release' || release.integration !== integration || release.version !== ref.version) {
      throw new StoreError('E_STORE_BAD_RELEASE', `object ${ref.id} is not release ${integration} v${ref.version}`, { hint: 'This is a bug in the caller: a version ref must name its own release object.' });
    }
    const existing = await this.readVersion(integration, ref.version).catch(() => undefined);
    if (existing) throw new VersionExistsError(integration, ref.version);
    const parent = ref.version === 1 ? null : ((await this.readVersion(integration, ref.version - 1).catch(() => undefined))?.id ?? undefined);
    assertReleaseFollows(integration, ref.version, release, parent);
    const missing = await this.missingObjects(releaseDependencies(release));
    if (missing.length) throw new MissingObjectError(missing[0], `needed by ${integration} v${ref.version}`);
    // The primary key makes the version once: of two processes creating v<n>, one gets 409.
    const r = await this.pool.query('INSERT INTO store_versions (integration, version, id) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING', [integration, ref.version, ref.id]);
    if (r.rowCount === 0) throw new VersionExistsError(integration, ref.version);
  }

  // ------------------------------------------------------------------ published

  async readPublished(integration: string): Promise<VersionRef | null> {
    const r = (await this.pool.query<VersionRef>({ name: 'alloy_store_published', text: 'SELECT version, id FROM store_published WHERE integration = $1', values: [assertIntegrationName(integration)] })).rows[0];
    return r ?? null;
  }

  async movePublished(integration: string, request: PublishRequest): Promise<PublishLogEntry> {
    assertIntegrationName(integration);
    return this.transaction(async (c) => {
      // One mover per integration at a time, in any process; the lock ends with the transaction.
      await c.query("SELECT pg_advisory_xact_lock(hashtextextended('alloy-store-publish:' || $1, 0))", [integration]);
      const current = (await c.query<VersionRef>('SELECT version, id FROM store_published WHERE integration = $1', [integration])).rows[0] ?? null;
      if ((current?.id ?? null) !== request.expected) throw new PublishConflictError(integration, request.expected, current?.id ?? null);
      const target = (await c.query<VersionRef>('SELECT version, id FROM store_versions WHERE integration = $1 AND version = $2', [integration, assertVersionNumber(request.to.version)])).rows[0];
      if (!target) throw new StoreNotFoundError(`${integration} v${request.to.version} does not exist in ${this.location}`, `List the versions with \`alloy versions ${integration}\`.`);
      if (target.id !== request.to.id) {
        throw new StoreError('E_STORE_BAD_REF', `${integration} v${request.to.version} is ${target.id}, not ${request.to.id}`, { hint: 'Re-run the command; it resolves the version again.' });
      }
      const entry: PublishLogEntry = {
        from: current,
        to: target,
        action: request.action,
        who: request.who,
        when: (this.options.now ?? (() => new Date()))().toISOString(),
        ...(request.message ? { message: request.message } : {}),
      };
      // The log line and the pointer commit together: no move without its line, or the reverse.
      await c.query('INSERT INTO store_publish_log (integration, entry) VALUES ($1, $2)', [integration, JSON.stringify(entry)]);
      await c.query('INSERT INTO store_published (integration, version, id) VALUES ($1, $2, $3) ON CONFLICT (integration) DO UPDATE SET version = EXCLUDED.version, id = EXCLUDED.id', [integration, target.version, target.id]);
      return entry;
    });
  }

  async readPublishLog(integration: string): Promise<PublishLogEntry[]> {
    return (await this.pool.query<{ entry: PublishLogEntry }>('SELECT entry FROM store_publish_log WHERE integration = $1 ORDER BY seq', [assertIntegrationName(integration)])).rows.map((r) => r.entry);
  }

  /** Holds a session advisory lock per integration for `fn` (released if this process dies). */
  async withReleaseLock<T>(integration: string, fn: () => Promise<T>): Promise<T> {
    assertIntegrationName(integration);
    const c = await this.pool.connect();
    const broken = watchBroken(c);
    const key = `alloy-store-release:${integration}`;
    try {
      await c.query('SELECT pg_advisory_lock(hashtextextended($1, 0))', [key]);
      try {
        return await fn();
      } finally {
        await c.query('SELECT pg_advisory_unlock(hashtextextended($1, 0))', [key]);
      }
    } finally {
      c.release(broken.done());
    }
  }

  // ------------------------------------------------------------------ the store server's push records

  /** Who pushed a version through the store API (token fingerprint) and when. */
  async recordPush(integration: string, version: number, id: string, pushedBy: { by: string; at: string }): Promise<void> {
    await this.pool.query('INSERT INTO store_pushes (integration, version, id, pushed_by, at) VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING', [integration, version, id, pushedBy.by, pushedBy.at]);
  }

  async readPush(integration: string, version: number, id: string): Promise<{ by: string; at: string } | undefined> {
    const r = (await this.pool.query<{ pushed_by: string; at: string }>('SELECT pushed_by, at FROM store_pushes WHERE integration = $1 AND version = $2 AND id = $3', [integration, version, id])).rows[0];
    return r ? { by: r.pushed_by, at: r.at } : undefined;
  }

  /** The pool belongs to the serve state, which closes it. */
  async close(): Promise<void> {}

  private async transaction<T>(fn: (c: pg.PoolClient) => Promise<T>): Promise<T> {
    const c = await this.pool.connect();
    const broken = watchBroken(c);
    try {
      await c.query('BEGIN');
      const r = await fn(c);
      await c.query('COMMIT');
      return r;
    } catch (err) {
      await c.query('ROLLBACK').catch(() => {});
      throw err;
    } finally {
      c.release(broken.done());
    }
  }
}

/**
 * Listens for 'error' on a checked-out client: a connection cut meanwhile (a restarted
 * server) emits it, and unheard it would end the process. `done()` stops listening and
 * answers the error, so the client is discarded rather than returned to the pool.
 */
function watchBroken(c: pg.PoolClient): { done(): Error | undefined } {
  let lost: Error | undefined;
  const onError = (err: Error) => (lost = err);
  c.on('error', onError);
  return {
    done() {
      c.off('error', onError);
      return lost;
    },
  };
}
