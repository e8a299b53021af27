#!/bin/sh
# The raw-SQL queue ceiling (issue 12): pgbench runs pgbench-queue.sql with 4 clients for
# ${SECONDS_:-10} s against ${PGURL:-postgres://postgres@127.0.0.1:5432/test} in its own schema,
# then drops the schema. Prints pgbench's tps (= jobs/s, one job per script run).
set -eu
URL=${PGURL:-postgres://postgres@127.0.0.1:5432/test}
S=spike_pgbench_$$
DIR=$(dirname "$0")
psql -q "$URL" -c "CREATE SCHEMA $S; CREATE TABLE $S.spike_jobs (id bigserial PRIMARY KEY, state text NOT NULL, payload jsonb, started_at timestamptz, ended_at timestamptz); CREATE INDEX ON $S.spike_jobs (id) WHERE state = 'queued';"
PGOPTIONS="-c search_path=$S" pgbench -n -c "${CLIENTS:-4}" -j 2 -T "${SECONDS_:-10}" -f "$DIR/pgbench-queue.sql" "$URL" 2>&1 | grep -E "tps|latency average|failed"
psql -q "$URL" -c "DROP SCHEMA $S CASCADE"
