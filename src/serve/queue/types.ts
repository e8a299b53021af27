/**
 * The execution queue of `alloy serve`: which process runs which execution, when, and how
 * many at once. Two implementations behind one seam:
 * - local-queue.ts: one process over SQLite (an in-memory schedule seeded from the state's
 *   unfinished executions at start), the default;
 * - pg-queue.ts: any number of processes over PostgreSQL, on pg-boss
 *   (docs/decisions/0003-execution-engine.md).
 * The runner (../runner.ts) owns what running an execution means; the queue owns ordering,
 * the bounds (per process, per installation, per shop) and handing work to another process.
 * Finished steps are never repeated by either: the runner checkpoints every step into the
 * state and a resumed execution starts from its last checkpoint.
 */
import type { IngestInput, IngestResult, ServeState } from '../state/types.js';

/** An execution loaded and ready to run, with the keys its bounds apply to. */
export interface PreparedExecution {
  installationId: string;
  /** `<app>:<account>` of the shop the execution calls (its installation's first account), if any. */
  shop?: string;
  /**
   * Runs to the end or to the signal. Resolves true when the execution ended (completed,
   * failed, cancelled), false when it was interrupted and must be resumed later. A queue that
   * owns the signal's controller for this execution alone passes `abort` (aborts it): the
   * runner then interrupts through it instead of making a controller of its own.
   */
  run(signal: AbortSignal, abort?: (reason: unknown) => void): Promise<boolean>;
}

export interface QueueWork {
  /** Loads an execution; undefined when there is nothing left to run (ended, deleted). */
  prepare(id: string): Promise<PreparedExecution | undefined>;
  onError?(id: string, err: unknown): void;
}

export interface QueueLimits {
  /** Executions running at once in this process. */
  concurrency: number;
  /** Executions of one installation running at once (across processes on PostgreSQL). */
  perInstallation: number;
  /** Executions calling one shop running at once (across processes on PostgreSQL). */
  perShop: number;
}

export const DEFAULT_LIMITS: QueueLimits = { concurrency: 64, perInstallation: 4, perShop: 4 };

export interface EnqueueOptions {
  /** Reruns go before new work. */
  rerun?: boolean;
}

export interface ExecutionQueue {
  /**
   * Stores the executions (state.executions.ingest) and queues the new ones: on PostgreSQL
   * in the same transaction, so an acknowledged execution always has its job.
   */
  ingest(input: IngestInput, options?: EnqueueOptions): Promise<IngestResult>;
  /** Starts taking work (roles `worker` and `all`). */
  start(work: QueueWork): Promise<void>;
  /** Aborts a running execution wherever it runs (its status is already `cancelled`). */
  abort(id: string): void;
  /** Resolves when this process runs nothing and has nothing queued locally. */
  idle(): Promise<void>;
  /** Stops taking work, lets running executions finish for `graceMs`, then interrupts them. */
  stop(graceMs: number): Promise<void>;
}

export type QueueFactory = (state: ServeState, limits: QueueLimits) => ExecutionQueue;
