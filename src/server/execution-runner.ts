/**
 * The execution runner of the dev runtime: a worker pool that runs executions stored in the
 * event log through the engine, checkpointing as it goes (docs/runtime.md, "Durable writes"),
 * stores each final record, and tells who waits (`?wait=`) that an execution finished.
 * HTTP handling lives in routes/; this module knows nothing of requests.
 */
import { EventEmitter, setMaxListeners } from 'node:events';
import type { ExecutionRecord, StepRecord } from '../engine/types.js';
import { hasSideEffects, isCallInFlight } from '../engine/durability.js';
import { EVENT_UNREADABLE, isTerminal, type EventLog, type ExecutionRow, type StoredRecord } from './event-log.js';
import type { RuntimeDefinitions } from './definitions.js';
import { createStepTracker, type WorkflowExecutor } from './executor.js';
import type { RuntimeEvent } from './runtime-events.js';
import { streamNote } from './stream-note.js';
import { WorkerPool } from './worker-pool.js';

/** Resumes after which an unfinished execution is failed with E_CRASH_LOOP instead (it was in flight at each of that many process deaths). */
export const CRASH_LOOP_LIMIT = 3;
export const DEFAULT_CONCURRENCY = 16;
/**
 * Records handed over by ingest (see push) kept at most: past this, a queued execution is
 * read from the log when it starts, so a backlog does not hold parsed events in memory.
 */
const COMMITTED_MAX = 1024;

export interface ExecutionRunnerOptions {
  log: EventLog;
  executor: WorkflowExecutor;
  /** The definitions now (hot reload swaps them; a running execution keeps its workflow). */
  definitions(): RuntimeDefinitions;
  concurrency?: number;
  clock: () => number;
  emit(event: RuntimeEvent): void;
}

export interface ExecutionRunner {
  /**
   * Queues an execution stored in the log. `handed`: the very record just stored (status
   * queued) by the caller, so its first run needs no read (row, record JSON and the delivery
   * body to put the event back); anything else (resume, replay) is read from the log.
   */
  push(id: string, handed?: { workflow: string; record: ExecutionRecord }): void;
  /** Queues every unfinished execution in the log, oldest first (counted as resumes); returns how many. */
  resumePending(): number;
  readonly size: { queued: number; running: number };
  /** Resolves once `id` has finished, after `ms` at the latest, or at once when it already has. */
  waitForFinish(id: string, ms: number): Promise<void>;
  /** Ends every waitForFinish now (shutdown: they answer while the log is open). */
  endWaits(): void;
  /**
   * Takes no more work, lets running executions finish for `graceMs`, then aborts what still
   * runs (its last checkpoint is in the log; it resumes on the next start).
   */
  stop(graceMs: number): Promise<void>;
}

export function createExecutionRunner(options: ExecutionRunnerOptions): ExecutionRunner {
  const { log, clock, emit } = options;
  const abort = new AbortController();
  // One listener per running execution (engine-executor.ts ties each to this signal).
  setMaxListeners(0, abort.signal);
  const finished = new EventEmitter();
  finished.setMaxListeners(0);
  /** `?wait=` long-polls: stop() ends them at once so they answer while the log is open. */
  const waiters = new Set<() => void>();
  /** Records handed over by push (see there), by execution id. */
  const committed = new Map<string, { workflow: string; record: ExecutionRecord }>();
  /** Ids handed to the pool by resumePending: left unfinished when the last process stopped. */
  const resuming = new Set<string>();
  const pool = new WorkerPool({
    concurrency: options.concurrency ?? DEFAULT_CONCURRENCY,
    run: runExecution,
    onError: (id, err) => emit({ type: 'error', executionId: id, message: (err as Error).message }),
  });

  async function runExecution(id: string): Promise<void> {
    const handed = committed.get(id);
    if (handed) committed.delete(id);
    const row = handed ?? log.getExecution(id);
    if (!row || (!handed && isTerminal((row as ExecutionRow).status))) return;
    const started = clock();
    let last = row.record as unknown as ExecutionRecord;
    const newlyFinished = createStepTracker(last);
    /**
     * Step records changed since the last progress write (see checkpoint): an array, a step
     * possibly more than once (saveProgress keeps one per path; the engine mutates each in
     * place). Kept in a Map by path, the puts cost an `each` over 10,000 items 2-3 % of its time.
     */
    let dirty: StepRecord[] = [];
    const routed = options.definitions().workflows.get(row.workflow);
    let final: ExecutionRecord;
    // Counted durably before it runs again: an execution that took the process down every
    // time it ran must not take it down forever (it is failed instead of resumed).
    const resumes = resuming.delete(id) ? await log.countResume(id) : 0;
    // The record as it stands, failed without running (again) for `error`'s reason.
    const failedNow = (error: ExecutionRecord['error']): ExecutionRecord => ({ ...last, status: 'failed', endedAt: new Date(clock()).toISOString(), error });
    if (resumes >= CRASH_LOOP_LIMIT) {
      final = failedNow({
        code: 'E_CRASH_LOOP',
        message: `the runtime stopped ${resumes} times while this execution was running (crashed or killed); it is not resumed again`,
        hint: 'Look at the steps it ran last (alloy executions <id>) for what brings the process down, fix the workflow, then `alloy replay <id>`.',
      });
    } else if ((row.record as { [EVENT_UNREADABLE]?: Error })[EVENT_UNREADABLE]) {
      // Its delivery's body is gone or unreadable: running the steps on `{}` would act on nothing
      // (a createOrder with no fields), so it fails, saying why.
      const err = (row.record as { [EVENT_UNREADABLE]?: Error & { code?: string } })[EVENT_UNREADABLE]!;
      const newer = err.code === 'E_EVENT_LOG_ENCODING';
      final = failedNow({
        code: err.code ?? 'E_EVENT_LOG_DAMAGED',
        message: `its event could not be read: ${err.message}`,
        hint: newer ? 'The event was stored by a newer alloy: run that version (or newer) to run it.' : 'The delivery body is missing or damaged in the event log; send the event again (alloy emit) or start over with alloy dev --fresh.',
      });
    } else if (!routed) {
      final = failedNow({ code: 'E_WORKFLOW_NOT_FOUND', message: `workflow ${row.workflow} is no longer defined in the working tree` });
    } else {
      const checkpoint = async (record: ExecutionRecord, changed?: readonly StepRecord[]) => {
        // After the grace period the runtime stops for good: refuse, so the engine stops here
        // and the execution resumes from the last stored checkpoint on the next start.
        if (abort.signal.aborted) throw new Error('the runtime is stopping');
        const fresh = newlyFinished(record, changed);
        // What a checkpoint must make durable before the engine goes on (docs/runtime.md,
        // "Durable writes"): only a non-idempotent call about to happen (shopify/createOrder),
        // since after a crash that record is what keeps resume from making the call twice.
        // Every other change is written with the next group commit without waiting for it: a
        // pure step (transform, if, branch) gives the same result when run again, and an
        // idempotent call repeated after a crash carries the same idempotency key. Usually the
        // final record, saved moments later, supersedes it before it is written at all.
        // Only the steps that changed are written, so a checkpoint costs what changed.
        if (changed) for (const step of changed) dirty.push(step);
        else dirty = Object.values(record.steps);
        const callInFlight = changed ? changed.some(isCallInFlight) : Object.values(record.steps).some(isCallInFlight);
        // A step waiting to retry is written too: `emit --wait` shows what it waits for.
        const retrying = record.streamRetry !== undefined || (changed ?? []).some((s) => s.retryAt !== undefined);
        if (callInFlight || retrying || fresh.some(hasSideEffects)) {
          const steps = dirty;
          dirty = [];
          const saved = log.saveProgress(record as unknown as StoredRecord, steps);
          if (callInFlight) await saved;
          else saved.catch(() => {}); // a failed write fails the final save too
        }
        for (const step of fresh) emit({ type: 'step', executionId: id, workflow: row.workflow, step });
        last = record;
      };
      // Stopped by close(), not by a crash: that stop does not count towards E_CRASH_LOOP
      // (a long delay across a few `alloy dev` restarts is not a crash loop).
      const stoppedCleanly = () => log.countResume(id, -1).then(
        () => undefined,
        () => undefined, // the log closed first: counted as a death, the safe side
      );
      try {
        final = await options.executor(routed.workflow, last, { checkpoint, signal: abort.signal });
      } catch (err) {
        if (abort.signal.aborted) return stoppedCleanly();
        final = failedNow({ code: 'E_INTERNAL', message: (err as Error).message });
      }
      if (abort.signal.aborted) return stoppedCleanly();
    }
    await log.saveRecord(final as unknown as Parameters<EventLog['saveRecord']>[0], {
      kind: 'execution',
      executionId: id,
      workflow: row.workflow,
      status: final.status,
      message: final.error?.message ?? final.reason ?? final.status,
      data: { durationMs: final.durationMs ?? clock() - started, ...(final.startedAt ? { startedAt: final.startedAt } : {}), ...(final.stream ? { stream: streamNote(final.stream) } : {}) },
    });
    emit({ type: 'execution', record: final, durationMs: final.durationMs ?? clock() - started });
    finished.emit(id);
  }

  return {
    push(id, handed) {
      if (handed && committed.size < COMMITTED_MAX) committed.set(id, handed);
      pool.push(id);
    },
    resumePending() {
      // What the last process left unfinished, oldest first.
      const ids = log.pendingExecutionIds();
      for (const id of ids) {
        resuming.add(id);
        pool.push(id);
      }
      return ids.length;
    },
    get size() {
      return pool.size;
    },
    waitForFinish(id, ms) {
      return new Promise((resolve) => {
        const done = () => {
          clearTimeout(timer);
          finished.off(id, done);
          waiters.delete(done);
          resolve();
        };
        const timer = setTimeout(done, ms);
        waiters.add(done);
        finished.on(id, done);
        // It may have finished between the read and the subscription.
        const row = log.getExecution(id);
        if (!row || isTerminal(row.status)) done();
      });
    },
    endWaits() {
      for (const done of [...waiters]) done();
    },
    async stop(graceMs) {
      pool.stop();
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([pool.idle(), new Promise<void>((r) => (timer = setTimeout(r, graceMs)))]);
      clearTimeout(timer);
      // Whatever still runs is aborted; its last checkpoint is in the log and it resumes on the next start.
      abort.abort();
      await Promise.race([pool.idle(), new Promise<void>((r) => (timer = setTimeout(r, 2000)))]);
      clearTimeout(timer);
    },
  };
}
