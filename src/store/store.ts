/**
 * The one interface commands use, with a local filesystem implementation (local-store.ts)
 * and a remote HTTP one (remote/client.ts). Refs have the same rules on both sides:
 * versions/<n> is created once, `published` moves by compare-and-swap and every move is
 * logged.
 */
import type { EncodedObject, StoreObject } from './objects.js';

/** A version ref: version number and the id of its release object. */
export interface VersionRef {
  version: number;
  id: string;
}

export type PublishAction = 'publish' | 'rollback';

/** One line of `logs/<integration>/published`. */
export interface PublishLogEntry {
  from: VersionRef | null;
  to: VersionRef;
  action: PublishAction;
  who: string;
  /** ISO 8601. */
  when: string;
  message?: string;
}

export interface PublishRequest {
  /** Release id the caller saw as published (null: nothing published). The move fails if it changed. */
  expected: string | null;
  to: VersionRef;
  action: PublishAction;
  who: string;
  message?: string;
}

export interface Store {
  readonly kind: 'local' | 'remote' | 'postgres';
  /** Directory or URL, for messages. */
  readonly location: string;

  /** Which of these ids the store does not have (negotiation before a push). */
  missingObjects(ids: string[]): Promise<string[]>;
  /** Store objects; each is re-hashed and written once. */
  putObjects(objects: EncodedObject[]): Promise<void>;
  /** Read and verify one object (re-hashed on every read). */
  readObject(id: string): Promise<StoreObject>;

  listIntegrations(): Promise<string[]>;
  /** The newest version, or null when the integration has none. */
  latestVersion(integration: string): Promise<VersionRef | null>;
  /** Throws StoreNotFoundError when the version does not exist. */
  readVersion(integration: string, version: number): Promise<VersionRef>;
  /** Oldest first; `newest: n` reads only the newest n refs (what `versions --limit` shows). */
  listVersions(integration: string, options?: { newest?: number }): Promise<VersionRef[]>;
  /** Create versions/<n>; throws VersionExistsError when it exists (never overwrites). */
  createVersion(integration: string, ref: VersionRef): Promise<void>;

  readPublished(integration: string): Promise<VersionRef | null>;
  /** Compare-and-swap the published pointer; throws PublishConflictError on a stale `expected`. */
  movePublished(integration: string, request: PublishRequest): Promise<PublishLogEntry>;
  readPublishLog(integration: string): Promise<PublishLogEntry[]>;

  /**
   * Serialize "read latest, compare, create versions/<n+1>" for one integration. The local
   * store holds a lock file; a remote store has no lock to hold and relies on createVersion
   * answering 409, which the release turns into RaceLostError.
   */
  withReleaseLock<T>(integration: string, fn: () => Promise<T>): Promise<T>;

  close(): Promise<void>;
}
