/**
 * The runtime state of `alloy serve`, behind async interfaces with two backends: SQLite
 * (sqlite-state.ts, the default, one process) and PostgreSQL (pg-state.ts, shared by many
 * processes); open.ts picks one. test/serve/state-contract.ts is the one contract suite both
 * pass. Rules every implementation keeps:
 *
 * - Every method is async and every write is durable when its promise resolves.
 * - A record read may be shared with other readers (SQLite answers the users, API keys,
 *   credentials and installations it keeps in memory with frozen objects): copy it before
 *   changing it (`{ ...record, status }`), as every caller does.
 * - Lists are ordered by id ascending (ids are time-sortable) and paginated by cursor:
 *   `after` is the last id of the previous page; `next` is set when more rows may follow.
 *   With `order: 'desc'` a list runs newest first and `after` continues downwards (ids
 *   below it): the web UI's first page of 10,000 executions is one indexed read.
 * - Secrets are stored only as `Sealed` values (crypto.ts): the state never sees clear text.
 * - `ingest` is atomic: the dedupe key, the event and its executions are stored together or
 *   not at all; a repeated key returns the first call's execution ids and stores nothing.
 * - Deleting a user deletes their credentials, installations, executions and cursors.
 * - A cursor's compare-and-set is atomic: of two writers holding the same `expected`, one
 *   succeeds and the other gets false (schedules' and polls' cursors, shared by processes).
 */
import type { ExecutionRecord } from '../../engine/types.js';
import type { CursorStore } from '../../server/time-ports.js';
import type { BucketStore } from './buckets.js';

export type { BucketStore, RateBucket } from './buckets.js';

export interface Page<T> {
  items: T[];
  /** Cursor for the next page, when there may be one. */
  next?: string;
}

export interface PageRequest {
  limit?: number;
  after?: string;
  /** Default `asc`. */
  order?: 'asc' | 'desc';
}

/** An envelope-encrypted value (see crypto.ts). */
export interface Sealed {
  /** Id of the master key that wrapped the data key. */
  kid: string;
  /** Wrapped data key, iv and tag of the wrap, base64. */
  wrapped: string;
  /** iv, ciphertext and tag of the value, base64. */
  iv: string;
  data: string;
  tag: string;
}

export interface UserRecord {
  id: string;
  name?: string;
  createdAt: string;
}

export type ApiKeyRole = 'admin' | 'ingest' | 'read';

export interface ApiKeyRecord {
  id: string;
  role: ApiKeyRole;
  /** sha256 hex of the key (the key itself is shown once, at creation). */
  hash: string;
  name?: string;
  createdAt: string;
}

export type CredentialKind = 'key' | 'token' | 'oauth2';

export interface CredentialRecord {
  id: string;
  userId: string;
  app: string;
  kind: CredentialKind;
  /** The account the credential is for (Shopify: the shop domain); routes app webhooks. */
  account?: string;
  /** When an access token expires (oauth2 with refresh), ISO 8601. */
  expiresAt?: string;
  /** The connection fields (accessToken, refreshToken, …), sealed. */
  secret: Sealed;
  createdAt: string;
  updatedAt: string;
}

export type InstallationStatus = 'active' | 'inactive';

export interface InstallationRecord {
  id: string;
  userId: string;
  integration: string;
  version: number;
  status: InstallationStatus;
  /** App name -> credential id. */
  credentials: Record<string, string>;
  /** The config values, sealed (some may be secret). */
  config: Sealed;
  createdAt: string;
  updatedAt: string;
}

export interface ExecutionRow {
  id: string;
  installationId: string;
  userId: string;
  integration: string;
  version: number;
  /** `<integration>/<workflow>`. */
  workflow: string;
  status: ExecutionRecord['status'] | 'cancelled';
  /** The engine's record (secrets redacted by the engine). */
  record: ExecutionRecord;
  /** The execution this one re-runs, when it is a rerun. */
  rerunOf?: string;
  createdAt: string;
  updatedAt: string;
}

export interface IngestInput {
  /**
   * Idempotency-Key or the app's delivery, scoped by the caller: a user's Idempotency-Key is
   * `eventDedupeKey(userId, key)` (dropped with the user), a webhook's `<app>:<account>:…`.
   */
  dedupeKey?: string;
  executions: ExecutionRow[];
}

export interface IngestResult {
  duplicate: boolean;
  executionIds: string[];
}

export interface ExecutionFilter {
  userId?: string;
  installationId?: string;
  workflow?: string;
  status?: string;
}

export interface InstallationFilter {
  userId?: string;
  integration?: string;
  status?: InstallationStatus;
}

export interface OAuthStateRecord {
  /** The state nonce sent to the app. */
  nonce: string;
  userId: string;
  app: string;
  account?: string;
  redirectAfter?: string;
  /** The user's createdAt when the flow started: a user deleted and made again under the same id is another user. */
  userCreatedAt?: string;
  expiresAt: string;
  /**
   * Set on the row the callback leaves behind (keyed by the SHA-256 of a connect token, never
   * the token): the app's token set, sealed, waiting for `userId` to complete the connection
   * (POST /v1/oauth/:app/complete). Absent on a started flow's state.
   */
  pending?: {
    /** `{ accessToken, refreshToken? }` sealed for `oauth-connect:<nonce>:<userId>:<app>:<account>` (a row moved to another user or shop does not open). */
    secret: Sealed;
    /** When the access token expires (tokens with a refresh token), ISO 8601. */
    tokenExpiresAt?: string;
  };
}

export interface UserStore {
  create(user: UserRecord): Promise<UserRecord>;
  get(id: string): Promise<UserRecord | undefined>;
  list(page?: PageRequest): Promise<Page<UserRecord>>;
  /** Removes the user and their credentials, installations and executions; false when unknown. */
  delete(id: string): Promise<boolean>;
}

export interface ApiKeyStore {
  create(key: ApiKeyRecord): Promise<void>;
  findByHash(hash: string): Promise<ApiKeyRecord | undefined>;
  list(): Promise<ApiKeyRecord[]>;
  delete(id: string): Promise<boolean>;
}

export interface CredentialStore {
  put(credential: CredentialRecord): Promise<void>;
  get(id: string): Promise<CredentialRecord | undefined>;
  listByUser(userId: string): Promise<CredentialRecord[]>;
  /** Credentials of `app` for `account` (a shop domain), any user. */
  findByAccount(app: string, account: string): Promise<CredentialRecord[]>;
  delete(id: string): Promise<boolean>;
  /** Every credential (for re-wrapping data keys under a new master key). */
  all(): Promise<CredentialRecord[]>;
}

export interface InstallationStore {
  put(installation: InstallationRecord): Promise<void>;
  get(id: string): Promise<InstallationRecord | undefined>;
  list(filter: InstallationFilter, page?: PageRequest): Promise<Page<InstallationRecord>>;
  /** Active installations using one of these credentials. */
  byCredentials(credentialIds: string[]): Promise<InstallationRecord[]>;
  delete(id: string): Promise<boolean>;
  all(): Promise<InstallationRecord[]>;
}

export interface ExecutionStore {
  /** Stores the executions and the dedupe key in one transaction (see the header). */
  ingest(input: IngestInput): Promise<IngestResult>;
  get(id: string): Promise<ExecutionRow | undefined>;
  list(filter: ExecutionFilter, page?: PageRequest): Promise<Page<ExecutionRow>>;
  /**
   * Stores a checkpoint of the engine's record (status follows the record). `last`: the
   * runner writes nothing more of this run after it (a final record with no stream delivery
   * to follow); a state may hand it to the execution queue (PostgreSQL: see finishWith).
   */
  checkpoint(id: string, record: ExecutionRecord, options?: { last?: boolean }): Promise<void>;
  /** Marks a queued or running execution cancelled; false when it already ended. */
  cancel(id: string, at: string): Promise<boolean>;
  /** Ids of executions queued or running (to resume after a restart), oldest first. */
  unfinished(): Promise<string[]>;
  /**
   * Adds `by` to how many times the execution was resumed after the process running it
   * stopped, and answers the new count (0 when unknown): the crash-loop guard, as in the dev
   * runtime (E_CRASH_LOOP past a limit). Kept in the state so it holds across processes: a
   * worker that resumes another's execution counts on the same row. `-1` takes back a stop
   * that was not a death.
   */
  countResume(id: string, by?: 1 | -1): Promise<number>;
  /**
   * Optional: the execution with its installation and the account of each of that
   * installation's credentials (credential id -> account), in one read, for a worker about
   * to run it (PostgreSQL: one round trip instead of three). Undefined when the execution is unknown.
   */
  getForRun?(id: string): Promise<ExecutionForRun | undefined>;
}

export interface ExecutionForRun {
  row: ExecutionRow;
  installation?: InstallationRecord;
  /** Credential id -> its account (Shopify: the shop domain), for the installation's credentials. */
  accounts: Record<string, string | undefined>;
}

export interface OAuthStateStore {
  /**
   * Stores a state; with `now`, first deletes the states that expired (an abandoned flow's row
   * goes with the next one). With `maxLive` too, stores nothing and answers false when the
   * user already has that many live states (checked and stored atomically, across processes).
   */
  put(state: OAuthStateRecord, now?: string, maxLive?: number): Promise<boolean>;
  /** Returns and deletes the state (a nonce is good once); undefined when unknown or expired. */
  take(nonce: string, now: string): Promise<OAuthStateRecord | undefined>;
  /** Returns the state without taking it; undefined when unknown or expired. */
  peek(nonce: string, now: string): Promise<OAuthStateRecord | undefined>;
}

export interface ServeState {
  users: UserStore;
  apiKeys: ApiKeyStore;
  credentials: CredentialStore;
  installations: InstallationStore;
  executions: ExecutionStore;
  oauthStates: OAuthStateStore;
  /**
   * Named durable cursors of the schedules and polls (`schedule:<installation>:<workflow>`,
   * `poll:…`, `poll-slot:…`); deleting an installation (or its user) deletes the cursors
   * whose key contains `:<installation id>:`.
   */
  cursors: CursorStore;
  /** Cost buckets per (app, account) for the limiter; shared by every process where the state is. */
  buckets: BucketStore;
  /** True while the backend answers (readiness). */
  ping(): Promise<boolean>;
  close(): Promise<void>;
}

/**
 * The dedupe key of a user's Idempotency-Key. Deleting the user deletes every key under
 * `eventDedupePrefix(userId)` (user ids have no `:`), so a user made again under the same id
 * starts with no keys: an old key would answer `duplicate` with executions deleted with the
 * first user, and run nothing.
 */
export const eventDedupePrefix = (userId: string) => `event:${userId}:`;
export const eventDedupeKey = (userId: string, key: string) => eventDedupePrefix(userId) + key;
