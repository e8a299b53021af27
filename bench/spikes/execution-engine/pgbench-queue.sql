-- One durable job per transaction group, as a raw SQL queue would do it: insert, claim with
-- FOR UPDATE SKIP LOCKED, complete. Run by pgbench-ceiling.sh (three commits per job).
INSERT INTO spike_jobs (state, payload) VALUES ('queued', '{"shop":"s.myshopify.com"}');
WITH next AS (SELECT id FROM spike_jobs WHERE state = 'queued' ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED)
UPDATE spike_jobs j SET state = 'active', started_at = now() FROM next WHERE j.id = next.id RETURNING j.id AS claimed \gset
UPDATE spike_jobs SET state = 'completed', ended_at = now() WHERE id = :claimed;
