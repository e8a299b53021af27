/**
 * What the runtime needs from the engine: run (or resume) one execution record for a
 * workflow, calling `checkpoint` after every step. The runtime stores each checkpoint in
 * the event log before the promise resolves, so a crash loses at most the step in flight.
 * The real implementation wraps src/engine (see engine-executor.ts); tests may pass a
 * small fake with the same shape.
 */
import type { LoadedWorkflow } from '../core/project-types.js';
import type { ExecutionRecord, StepRecord } from '../engine/types.js';

export interface ExecuteOptions {
  /**
   * Persist the record; resolves once it is durable. Throws when the runtime is stopping.
   * `changed`: the step records changed since the previous call, when the caller knows them
   * (the engine does); without it every step is compared.
   */
  checkpoint(record: ExecutionRecord, changed?: readonly StepRecord[]): Promise<void>;
  /** Aborted when the runtime stops for good (after the shutdown grace period). */
  signal: AbortSignal;
}

export type WorkflowExecutor = (
  workflow: LoadedWorkflow,
  record: ExecutionRecord,
  options: ExecuteOptions,
) => Promise<ExecutionRecord>;

// The last millisecond formatted: an ingest burst creates many records in the same one.
let lastMs = NaN;
let lastIso = '';
function isoAt(ms: number): string {
  if (ms !== lastMs) {
    lastIso = new Date(ms).toISOString();
    lastMs = ms;
  }
  return lastIso;
}

/** A new execution record, status `queued`, as the engine's ExecutionRecord. */
export function newExecutionRecord(input: {
  id: string;
  workflow: string;
  version: string;
  event: unknown;
  userId?: string;
  now: number;
}): ExecutionRecord {
  const { id, workflow, version, userId, event } = input;
  const createdAt = isoAt(input.now);
  // Two literals rather than a spread of an optional field: built per ingested execution.
  return userId ? { id, workflow, version, userId, event, status: 'queued', createdAt, steps: {} } : { id, workflow, version, event, status: 'queued', createdAt, steps: {} };
}

/**
 * Tracks which steps have been reported, for `-v` output per checkpoint. The engine mutates
 * one record in place, so progress is compared against remembered states, not an old record.
 * Given the steps that changed (the engine's checkpoint says), only those are compared, so
 * a checkpoint costs what changed: scanning every step made an `each` over n items O(n²).
 * With `changed`, a step first finished in this run is reported without being remembered:
 * the engine checkpoints a step once per state it reaches, and only a resumed run persists
 * steps of the record it started from again in the same state (those are remembered).
 * Remembering every path (10,000 in an `each` over 10,000 items) was about a twentieth of the
 * dev runtime's own work on such an execution.
 */
export function createStepTracker(
  initial?: ExecutionRecord,
): (record: ExecutionRecord, changed?: readonly StepRecord[]) => StepRecord[] {
  // Per path, the status and end time last reported (a step can end, then run again on resume).
  const seen = new Map<string, { status: string; endedAt: string | undefined }>();
  for (const [p, s] of Object.entries(initial?.steps ?? {})) if (s.status !== 'running') seen.set(p, { status: s.status, endedAt: s.endedAt });
  return (record, changed) => {
    const out: StepRecord[] = [];
    if (changed) {
      for (const step of changed) {
        if (step.status === 'running') continue;
        const was = seen.size === 0 ? undefined : seen.get(step.path);
        if (was === undefined) out.push(step);
        else if (was.status !== step.status || was.endedAt !== step.endedAt) {
          was.status = step.status;
          was.endedAt = step.endedAt;
          out.push(step);
        }
      }
      return out;
    }
    for (const step of Object.values(record.steps ?? {})) {
      if (step.status === 'running') continue;
      const was = seen.get(step.path);
      if (was === undefined || was.status !== step.status || was.endedAt !== step.endedAt) {
        seen.set(step.path, { status: step.status, endedAt: step.endedAt });
        out.push(step);
      }
    }
    return out;
  };
}
