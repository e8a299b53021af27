/**
 * The numbered schema migrations of the PostgreSQL state (pg-state.ts). Append only: a
 * migration that shipped is never edited; a change is a new number. `migrate()` in
 * pg-state.ts applies the missing ones in order, under an advisory lock, each recorded in
 * `alloy_migrations` in the same transaction as its DDL (PostgreSQL's DDL is transactional),
 * so whichever process starts first migrates and the others find the work done.
 *
 * Ids are `text COLLATE "C"`: ordering and cursor comparison by byte, as in SQLite, whatever
 * the database's collation. Documents are `json` (kept as sent) rather than `jsonb`, which
 * refuses `\u0000` in strings that an event payload may carry.
 */
export interface Migration {
  id: number;
  name: string;
  sql: string;
}

export const MIGRATIONS: readonly Migration[] = [
  {
    id: 1,
    name: 'serve state',
    sql: `
CREATE TABLE users (id text COLLATE "C" PRIMARY KEY, doc json NOT NULL);
CREATE TABLE api_keys (id text COLLATE "C" PRIMARY KEY, hash text NOT NULL UNIQUE, doc json NOT NULL);
CREATE TABLE credentials (id text COLLATE "C" PRIMARY KEY, user_id text NOT NULL, app text NOT NULL, account text, doc json NOT NULL);
CREATE INDEX credentials_user ON credentials (user_id, id);
CREATE INDEX credentials_account ON credentials (app, account);
CREATE TABLE installations (id text COLLATE "C" PRIMARY KEY, user_id text NOT NULL, integration text NOT NULL, status text NOT NULL, doc json NOT NULL);
CREATE INDEX installations_user ON installations (user_id, id);
CREATE INDEX installations_integration ON installations (integration, id);
CREATE TABLE installation_credentials (installation_id text NOT NULL, credential_id text NOT NULL, PRIMARY KEY (credential_id, installation_id));
CREATE INDEX installation_credentials_installation ON installation_credentials (installation_id);
-- doc holds the fields fixed at creation; status, updated_at and record change with checkpoints.
CREATE TABLE executions (
  id text COLLATE "C" PRIMARY KEY,
  installation_id text NOT NULL,
  user_id text NOT NULL,
  workflow text NOT NULL,
  status text NOT NULL,
  updated_at text NOT NULL,
  doc json NOT NULL,
  record json NOT NULL
);
CREATE INDEX executions_user ON executions (user_id, id);
CREATE INDEX executions_installation ON executions (installation_id, id);
CREATE INDEX executions_status ON executions (status, id);
CREATE INDEX executions_unfinished ON executions (id) WHERE status IN ('queued', 'running');
CREATE TABLE dedupe (key text PRIMARY KEY, execution_ids json NOT NULL);
CREATE TABLE oauth_states (nonce text PRIMARY KEY, expires_at text NOT NULL, doc json NOT NULL);
`,
  },
  {
    id: 2,
    name: 'rate buckets',
    sql: `
-- The limiter's cost buckets per (app, account), shared by every process (state/buckets.ts).
CREATE TABLE rate_buckets (
  key text PRIMARY KEY,
  maximum_available double precision NOT NULL,
  current_available double precision NOT NULL,
  restore_rate double precision NOT NULL,
  last_cost double precision NOT NULL,
  at_ms bigint NOT NULL
);
`,
  },
  {
    id: 3,
    name: 'store',
    sql: `
-- The store's objects and refs (src/store/pg-store.ts), so every serve process serves one store.
CREATE TABLE store_objects (id text PRIMARY KEY, bytes bytea NOT NULL);
CREATE TABLE store_versions (integration text COLLATE "C" NOT NULL, version integer NOT NULL, id text NOT NULL, PRIMARY KEY (integration, version));
CREATE TABLE store_published (integration text PRIMARY KEY, version integer NOT NULL, id text NOT NULL);
CREATE TABLE store_publish_log (seq bigserial PRIMARY KEY, integration text NOT NULL, entry json NOT NULL);
CREATE INDEX store_publish_log_integration ON store_publish_log (integration, seq);
CREATE TABLE store_pushes (integration text NOT NULL, version integer NOT NULL, id text NOT NULL, pushed_by text NOT NULL, at text NOT NULL, PRIMARY KEY (integration, version));
`,
  },
  {
    id: 4,
    name: 'crash-loop counter',
    sql: `
-- How many times an execution was resumed after the process running it stopped (ExecutionStore.countResume).
ALTER TABLE executions ADD COLUMN resumes integer NOT NULL DEFAULT 0;
`,
  },
  {
    id: 5,
    name: 'schedule and poll cursors',
    sql: `
-- Named cursors of the schedules and polls (keys name their installation as ':<id>:'),
-- advanced by compare-and-set (UPDATE ... WHERE value = expected).
CREATE TABLE cursors (key text PRIMARY KEY, value text NOT NULL);
`,
  },
];
