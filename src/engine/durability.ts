/**
 * What a host must store of a checkpoint, and when (docs/runtime.md, "Durable writes"): the
 * engine marks the steps whose record protects a promise, hosts (alloy dev's runtime server,
 * alloy serve's runner) decide from these rules alone, so both keep the same promises.
 */
import type { ExecutionRecord, StepRecord } from './types.js';

/** A non-idempotent call about to happen: its record must be durable before the call. */
export function isCallInFlight(step: StepRecord): boolean {
  return step.status === 'running' && step.callInFlight === true;
}

/** Steps whose completion is worth storing when they end: calls to the outside world, and waits. */
export function hasSideEffects(step: StepRecord): boolean {
  if (step.kind === 'delay') return true;
  return step.kind === 'action' && step.uses !== 'transform';
}

/** The execution reached an end: its final record must be durable before it counts as finished. */
export function isFinalRecord(record: ExecutionRecord): boolean {
  return record.status === 'succeeded' || record.status === 'failed' || record.status === 'filtered';
}
