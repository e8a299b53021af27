/**
 * Storing new executions: one row per (installation, workflow), persisted with the dedupe key
 * in one ingest (atomic in every ServeState) and queued with it (the runner's execution queue). Used by the ingest
 * routes (custom events, app webhooks) and by the schedules and polls (timers.ts).
 */
import { newId } from '../server/ids.js';
import { newExecutionRecord } from '../server/executor.js';
import type { ServeMetrics } from './metrics.js';
import type { Runner } from './runner.js';
import type { ExecutionRow, IngestResult, InstallationRecord } from './state/types.js';

/** A queued execution of `workflow` (`<integration>/<name>`) for an installation, on its version. */
export function executionRowFor(i: InstallationRecord, workflow: string, event: unknown, nowMs: number): ExecutionRow {
  const id = newId('ex', nowMs);
  const record = newExecutionRecord({ id, workflow, version: `v${i.version}`, event, userId: i.userId, now: nowMs });
  return { id, installationId: i.id, userId: i.userId, integration: i.integration, version: i.version, workflow, status: 'queued', record, createdAt: record.createdAt, updatedAt: record.createdAt };
}

/** Stores the rows under `dedupeKey` (nothing when the key was seen) and queues what was stored, through the runner. */
export async function ingestExecutions(
  deps: { runner: Runner; metrics?: ServeMetrics },
  source: string,
  dedupeKey: string | undefined,
  rows: ExecutionRow[],
): Promise<IngestResult> {
  const result = await deps.runner.ingest({ dedupeKey, executions: rows });
  if (!result.duplicate) deps.metrics?.ingested(source, rows.length);
  return result;
}
