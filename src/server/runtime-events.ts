/**
 * What the dev runtime tells its host (terminal output in dev, logs in serve) and its clients:
 * the runtime events, and the execution summary the executions API, the live stream and
 * `alloy executions` show.
 */
import type { ExecutionRecord, StepRecord } from '../engine/types.js';
import type { ExecutionRow } from './event-log.js';
import { streamNote, type StreamNote } from './stream-note.js';

/** What the runtime reports, for terminal output (dev) or logs (serve). */
export type RuntimeEvent =
  | { type: 'execution'; record: ExecutionRecord; durationMs: number }
  | { type: 'step'; executionId: string; workflow: string; step: StepRecord }
  | { type: 'accepted'; source: string; name: string; deliveryId: string; executionIds: string[]; duplicate: boolean }
  | { type: 'rejected'; route: string; status: number; code: string; message: string }
  | { type: 'error'; message: string; executionId?: string };

export interface ExecutionSummary {
  id: string;
  workflow: string;
  status: string;
  userId?: string;
  deliveryId: string;
  replayOf?: string;
  createdAt: string;
  /** When it started running (the time every execution line shows). */
  startedAt?: string;
  updatedAt: string;
  finishedAt?: string;
  durationMs?: number;
  reason?: string;
  error?: { code: string; message: string; step?: string };
  /** The stream delivery's outcome, with the reason when it failed. */
  stream?: StreamNote;
}

export function summarizeExecution(row: ExecutionRow): ExecutionSummary {
  const r = row.record as unknown as ExecutionRecord;
  return {
    id: row.id,
    workflow: row.workflow,
    status: row.status,
    ...(row.userId ? { userId: row.userId } : {}),
    deliveryId: row.deliveryId,
    ...(row.replayOf ? { replayOf: row.replayOf } : {}),
    createdAt: new Date(row.createdAt).toISOString(),
    ...(r.startedAt ? { startedAt: r.startedAt } : {}),
    updatedAt: new Date(row.updatedAt).toISOString(),
    ...(row.finishedAt ? { finishedAt: new Date(row.finishedAt).toISOString() } : {}),
    ...(r.durationMs !== undefined ? { durationMs: r.durationMs } : {}),
    ...(r.reason ? { reason: r.reason } : {}),
    ...(r.error ? { error: { code: r.error.code, message: r.error.message, ...(r.error.step ? { step: r.error.step } : {}) } } : {}),
    ...(r.stream ? { stream: streamNote(r.stream)! } : {}),
  };
}
