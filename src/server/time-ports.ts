/**
 * The small interfaces the scheduler and the poller run on, so `alloy dev` (one process,
 * the SQLite event log) and a multi-process runtime can share them:
 *
 * - TimerClock: the time and one-shot timers (tests pass a manual clock and advance it).
 * - CursorStore: durable named cursors (last schedule tick, poll position), with an atomic
 *   compare-and-set so two processes never both advance one cursor. Dev keeps them in the
 *   event log; `alloy serve` in its ServeState (SQLite or PostgreSQL).
 * - Claim: an event submitted with a unique dedupe key, e.g. `schedule:<target>:<tick>`;
 *   the store refuses a second one with the same key, so a tick (or a polled item) runs
 *   once however many processes or restarts see it. In dev this is RuntimeServer.submit
 *   over the event log's unique delivery dedupe key; in serve the state's atomic ingest.
 *
 * A target's id is the workflow key in dev (`<integration>/<workflow>`) and
 * `<installation>:<integration>/<workflow>` in serve: cursors and dedupe keys are per id.
 */
import { setLongTimeout } from '../engine/clock.js';
import type { EventLog } from './event-log.js';

export interface TimerClock {
  now(): number;
  /** Calls `fn` after `ms`; returns a cancel function. */
  setTimer(ms: number, fn: () => void): () => void;
}

export const realTimerClock: TimerClock = {
  now: () => Date.now(),
  setTimer: (ms, fn) => setLongTimeout(fn, ms),
};

export interface CursorStore {
  get(key: string): Promise<string | undefined>;
  set(key: string, value: string): Promise<void>;
  /**
   * Writes `next` only while the cursor still holds `expected` (undefined: while it does not
   * exist); false when another writer changed it first. Atomic in every implementation.
   */
  compareAndSet(key: string, expected: string | undefined, next: string): Promise<boolean>;
}

/** Cursors in the dev event log (SQLite, the same file and write queue as executions). */
export function eventLogCursors(log: Pick<EventLog, 'getCursor' | 'setCursor' | 'compareAndSetCursor'>): CursorStore {
  return {
    get: async (key) => log.getCursor(key),
    set: (key, value) => log.setCursor(key, value),
    compareAndSet: (key, expected, next) => log.compareAndSetCursor(key, expected, next),
  };
}

/** In-memory cursors (tests, `alloy run`). */
export function memoryCursors(initial: Record<string, string> = {}): CursorStore & { values: Map<string, string> } {
  const values = new Map(Object.entries(initial));
  return {
    values,
    get: async (key) => values.get(key),
    set: async (key, value) => void values.set(key, value),
    async compareAndSet(key, expected, next) {
      if (values.get(key) !== expected) return false;
      values.set(key, next);
      return true;
    },
  };
}

export interface ClaimInput {
  /** The target's id (see the header). */
  target: string;
  /** `schedule` or `poll:<app>`. */
  source: string;
  name: string;
  /** `<integration>/<workflow>`. */
  workflow: string;
  event: unknown;
  /** Unique per (target, tick) or (target, item version). */
  dedupeKey: string;
}

/** Submits an event under a unique key; `duplicate` when the key was already claimed. */
export type Claim = (input: ClaimInput) => Promise<{ duplicate: boolean }>;

/** A manual clock for tests: timers fire only when `advance` passes their time. */
export function manualTimerClock(start: number): TimerClock & {
  advance(ms: number): Promise<void>;
  set(ms: number): Promise<void>;
  /** Moves time forward without firing anything (a suspended machine); `advance(0)` then fires what is overdue, late. */
  jump(ms: number): void;
  pending(): number;
} {
  let now = start;
  let seq = 0;
  const timers = new Map<number, { at: number; fn: () => void }>();
  const clock = {
    now: () => now,
    setTimer(ms: number, fn: () => void) {
      const id = ++seq;
      timers.set(id, { at: now + Math.max(0, ms), fn });
      return () => void timers.delete(id);
    },
    /** Moves time forward, firing due timers in time order (awaiting what each starts). */
    async advance(ms: number) {
      await clock.set(now + ms);
    },
    async set(target: number) {
      for (;;) {
        let next: [number, { at: number; fn: () => void }] | undefined;
        for (const entry of timers) if (entry[1].at <= target && (!next || entry[1].at < next[1].at)) next = entry;
        if (!next) break;
        timers.delete(next[0]);
        now = Math.max(now, next[1].at);
        next[1].fn();
        // Let the work the timer started (claims, cursor writes) settle before the next one.
        for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
      }
      now = Math.max(now, target);
    },
    jump(ms: number) {
      now += ms;
    },
    pending: () => timers.size,
  };
  return clock;
}
