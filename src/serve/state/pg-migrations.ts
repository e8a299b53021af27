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
  {
    id: 6,
    name: 'read cache invalidation',
    sql: `
-- Every process keeps the rows that change rarely (users, API keys, credentials,
-- installations) in memory (pg-state.ts, "read cache"). Any change to them, by alloy or by
-- hand in SQL, tells every listening process at commit: NOTIFY alloy_cache '<schema>:<table>'.
CREATE FUNCTION alloy_cache_notify() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
  PERFORM pg_notify('alloy_cache', TG_TABLE_SCHEMA || ':' || TG_TABLE_NAME);
  RETURN NULL;
END
$fn$;
CREATE TRIGGER users_cache AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON users FOR EACH STATEMENT EXECUTE FUNCTION alloy_cache_notify();
CREATE TRIGGER api_keys_cache AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON api_keys FOR EACH STATEMENT EXECUTE FUNCTION alloy_cache_notify();
CREATE TRIGGER credentials_cache AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON credentials FOR EACH STATEMENT EXECUTE FUNCTION alloy_cache_notify();
CREATE TRIGGER installations_cache AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON installations FOR EACH STATEMENT EXECUTE FUNCTION alloy_cache_notify();
CREATE TRIGGER installation_credentials_cache AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON installation_credentials FOR EACH STATEMENT EXECUTE FUNCTION alloy_cache_notify();
-- Also under session_replication_role = replica (pg_restore --disable-triggers, logical replication).
ALTER TABLE users ENABLE ALWAYS TRIGGER users_cache;
ALTER TABLE api_keys ENABLE ALWAYS TRIGGER api_keys_cache;
ALTER TABLE credentials ENABLE ALWAYS TRIGGER credentials_cache;
ALTER TABLE installations ENABLE ALWAYS TRIGGER installations_cache;
ALTER TABLE installation_credentials ENABLE ALWAYS TRIGGER installation_credentials_cache;
`,
  },
  {
    id: 7,
    name: 'take jobs with their executions and slots',
    sql: `
-- The execution queue's fetch (src/serve/queue/pg-queue.ts) in one round trip: claims up to
-- n jobs of pg-boss's job table as pg-boss 10's fetch does, tries each one's execution lock
-- (session advisory lock, re-entrant), and for each one locked here and not running in this
-- process already (running), reads the execution with its installation and its credentials'
-- accounts, and takes a free slot of the installation and then of the shop (the first of
-- the installation's apps, by name, whose credential has an account), skipping the slots this
-- process holds (held). PL/pgSQL: each statement below takes a new snapshot, so an execution
-- is read after its lock was got (a checkpoint committed by the process that held it before
-- is seen; under READ COMMITTED, which the state's connections pin). Standard queues only
-- (alloy makes no other): pg-boss's singleton/stately fetch rules are not reproduced.
-- pg-boss's tables need not exist yet: names resolve when it runs.
CREATE FUNCTION alloy_take_jobs(queue_name text, n integer, exec_kind text, slot_kind text, per_installation integer, per_shop integer, running text[], held text[])
RETURNS TABLE (r_job uuid, r_id text, r_priority integer, r_locked boolean, r_found boolean, r_doc json, r_status text, r_updated_at text, r_record json,
  r_installation_id text, r_installation json, r_accounts json, r_shop text, r_islot text, r_sslot text)
LANGUAGE plpgsql AS $fn$
DECLARE
  jobs uuid[];
  ids text[];
  prios integer[];
  locks boolean[];
  taken text[] := held;
  seen text[] := running;
  k text;
BEGIN
  WITH next AS (
    SELECT j.id FROM job j WHERE j.name = queue_name AND j.state < 'active' AND j.start_after < now()
    ORDER BY j.priority DESC, j.created_on, j.id LIMIT n FOR UPDATE SKIP LOCKED
  ), claimed AS (
    UPDATE job j SET state = 'active', started_on = now(), retry_count = CASE WHEN j.started_on IS NOT NULL THEN j.retry_count + 1 ELSE j.retry_count END
    FROM next WHERE j.name = queue_name AND j.id = next.id
    RETURNING j.id, j.data, j.priority, j.created_on
  ), ordered AS (
    SELECT c.id, c.data->>'id' AS eid, c.priority, pg_try_advisory_lock(hashtext(exec_kind), hashtext(c.data->>'id')) AS got
    FROM claimed c ORDER BY c.priority DESC, c.created_on, c.id
  )
  SELECT array_agg(o.id), array_agg(o.eid), array_agg(o.priority), array_agg(o.got) INTO jobs, ids, prios, locks FROM ordered o;
  FOR x IN 1 .. coalesce(cardinality(jobs), 0) LOOP
    r_job := jobs[x]; r_id := ids[x]; r_priority := prios[x]; r_locked := locks[x];
    r_found := false; r_doc := NULL; r_status := NULL; r_updated_at := NULL; r_record := NULL;
    r_installation_id := NULL; r_installation := NULL; r_accounts := NULL; r_shop := NULL; r_islot := NULL; r_sslot := NULL;
    -- (a second job of one execution in this batch is left to the caller, as one running here)
    IF r_locked AND NOT (r_id = ANY(seen)) THEN
      seen := seen || r_id;
      SELECT true, e.doc, e.status, e.updated_at, e.record, e.installation_id, i.doc,
        (SELECT json_object_agg(c.id, c.account) FROM installation_credentials ic JOIN credentials c ON c.id = ic.credential_id WHERE ic.installation_id = e.installation_id),
        (SELECT a.key || ':' || c.account FROM json_each_text(i.doc->'credentials') a JOIN credentials c ON c.id = a.value
          WHERE coalesce(c.account, '') <> '' ORDER BY a.key COLLATE "C" LIMIT 1)
      INTO r_found, r_doc, r_status, r_updated_at, r_record, r_installation_id, r_installation, r_accounts, r_shop
      FROM executions e LEFT JOIN installations i ON i.id = e.installation_id WHERE e.id = r_id;
      IF r_found AND r_status IN ('queued', 'running') THEN
        FOR s IN 0 .. per_installation - 1 LOOP
          k := 'i:' || r_installation_id || '#' || s;
          IF NOT (k = ANY(taken)) AND pg_try_advisory_lock(hashtext(slot_kind), hashtext(k)) THEN
            r_islot := k; taken := taken || k; EXIT;
          END IF;
        END LOOP;
        IF r_islot IS NOT NULL AND r_shop IS NOT NULL THEN
          FOR s IN 0 .. per_shop - 1 LOOP
            k := 's:' || r_shop || '#' || s;
            IF NOT (k = ANY(taken)) AND pg_try_advisory_lock(hashtext(slot_kind), hashtext(k)) THEN
              r_sslot := k; taken := taken || k; EXIT;
            END IF;
          END LOOP;
        END IF;
      END IF;
      r_found := coalesce(r_found, false);
    END IF;
    RETURN NEXT;
  END LOOP;
END
$fn$;
`,
  },
  {
    id: 8,
    name: 'one index fewer on executions',
    sql: `
-- Every ingest inserts an execution row and every status change updates all its indexes:
-- executions_unfinished (migration 1) served only ExecutionStore.unfinished(), which
-- executions_status (status, id) serves as well (an index scan of both statuses, then a sort).
DROP INDEX executions_unfinished;
`,
  },
  {
    id: 9,
    name: 'OAuth states by expiry and by user',
    sql: `
-- Each OAuth start sweeps the expired states and counts the user's live ones (a cap per user):
-- both read these, not the whole table, which a user starting flows in a loop makes large.
CREATE INDEX oauth_states_expires ON oauth_states (expires_at);
CREATE INDEX oauth_states_user ON oauth_states ((doc->>'userId'), expires_at);
`,
  },
];
