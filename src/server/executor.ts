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
  /** Persist the record; resolves once it is durable. Throws when the runtime is stopping. */
  checkpoint(record: ExecutionRecord): Promise<void>;
  /** Aborted when the runtime stops for good (after the shutdown grace period). */
  signal: AbortSignal;
}

export type WorkflowExecutor = (
  workflow: LoadedWorkflow,
  record: ExecutionRecord,
  options: ExecuteOptions,
) => Promise<ExecutionRecord>;

/** A new execution record, status `queued`, as the engine's ExecutionRecord. */
export function newExecutionRecord(input: {
  id: string;
  workflow: string;
  version: string;
  event: unknown;
  userId?: string;
  now: number;
}): ExecutionRecord {
  return {
    id: input.id,
    workflow: input.workflow,
    version: input.version,
    ...(input.userId ? { userId: input.userId } : {}),
    event: input.event,
    status: 'queued',
    createdAt: new Date(input.now).toISOString(),
    steps: {},
  };
}

/**
 * Tracks which steps have been reported, for `-v` output per checkpoint. The engine mutates
 * one record in place, so progress is compared against remembered states, not an old record.
 */
export function createStepTracker(initial?: ExecutionRecord): (record: ExecutionRecord) => StepRecord[] {
  const seen = new Map<string, string>();
  const state = (s: StepRecord) => `${s.status}:${s.endedAt ?? ''}`;
  for (const [p, s] of Object.entries(initial?.steps ?? {})) if (s.status !== 'running') seen.set(p, state(s));
  return (record) => {
    const out: StepRecord[] = [];
    for (const [p, step] of Object.entries(record.steps ?? {})) {
      if (step.status === 'running') continue;
      const st = state(step);
      if (seen.get(p) !== st) {
        seen.set(p, st);
        out.push(step);
      }
    }
    return out;
  };
}
