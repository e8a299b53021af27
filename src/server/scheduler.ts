/**
 * Fires schedule triggers. For each target (a workflow with `trigger.schedule`; in serve, one
 * per installation of it) it keeps one timer armed for the next tick; at a tick it claims
 * `schedule:<target id>:<tick ISO>` (so a tick runs once however many schedulers see it),
 * then moves the target's cursor forward to the tick (compare-and-set: never backwards when
 * processes sharing it store ticks out of order). On start (and when a target appears) it reads the cursor and applies
 * the `missed` policy to the ticks that passed while nothing ran (core/schedule.ts):
 * `latest` (default) runs the newest missed tick once, `skip` none, `all` each (capped).
 * A target seen for the first time has no missed ticks: its cursor starts at "now".
 *
 * The event an execution sees: `{ scheduledAt, firedAt, schedule, missed }`.
 */
import { missedTicks, nextTick, type ScheduleSpec } from '../core/schedule.js';
import type { Claim, CursorStore, TimerClock } from './time-ports.js';

export interface ScheduleTarget {
  /** Cursor and dedupe keys are per id; default the workflow (dev). */
  id?: string;
  /** `<integration>/<workflow>`. */
  workflow: string;
  spec: ScheduleSpec;
}

export type SchedulerEvent =
  | { type: 'tick'; workflow: string; target: string; scheduledAt: string; missed: boolean; duplicate: boolean }
  | { type: 'error'; workflow: string; target?: string; message: string; executionId?: string };

export interface SchedulerOptions {
  clock: TimerClock;
  cursors: CursorStore;
  claim: Claim;
  onEvent?(event: SchedulerEvent): void;
}

export interface Scheduler {
  /** Replaces the targets (hot reload): unchanged ones keep their timers. */
  setTargets(targets: ScheduleTarget[]): Promise<void>;
  /** The next fire time of each target, for the banner. */
  next(): { target: string; workflow: string; label: string; nextAt?: string }[];
  close(): void;
}

const idOf = (t: ScheduleTarget) => t.id ?? t.workflow;
const cursorKey = (t: ScheduleTarget) => `schedule:${idOf(t)}`;

export function createScheduler(options: SchedulerOptions): Scheduler {
  const { clock, cursors, claim } = options;
  const emit = (e: SchedulerEvent) => options.onEvent?.(e);
  interface Armed {
    target: ScheduleTarget;
    signature: string;
    nextAt?: number;
    cancel?: () => void;
    /** Serializes this target's work: a tick never overlaps the catch-up before it. */
    chain: Promise<void>;
  }
  const armed = new Map<string, Armed>();
  let closed = false;

  // The cursor only moves forward: processes sharing it may store their ticks out of order.
  const advance = async (t: ScheduleTarget, tick: number) => {
    for (let attempt = 0; attempt < 5; attempt++) {
      const prev = await cursors.get(cursorKey(t));
      if (prev !== undefined && Number(prev) >= tick) return;
      if (await cursors.compareAndSet(cursorKey(t), prev, String(tick))) return;
    }
  };

  const fire = async (a: Armed, tick: number, missed: boolean) => {
    const scheduledAt = new Date(tick).toISOString();
    try {
      const r = await claim({
        target: idOf(a.target),
        source: 'schedule',
        name: a.target.spec.label,
        workflow: a.target.workflow,
        event: { scheduledAt, firedAt: new Date(clock.now()).toISOString(), schedule: a.target.spec.label, missed },
        dedupeKey: `schedule:${idOf(a.target)}:${scheduledAt}`,
      });
      await advance(a.target, tick);
      emit({ type: 'tick', workflow: a.target.workflow, target: idOf(a.target), scheduledAt, missed, duplicate: r.duplicate });
    } catch (err) {
      emit({ type: 'error', workflow: a.target.workflow, target: idOf(a.target), message: `schedule tick ${scheduledAt} failed: ${(err as Error).message}` });
    }
  };

  const arm = (a: Armed, after: number) => {
    a.cancel?.();
    a.nextAt = nextTick(a.target.spec, after);
    if (a.nextAt === undefined || closed) return;
    const at = a.nextAt;
    a.cancel = clock.setTimer(at - clock.now(), () => {
      a.chain = a.chain.then(async () => {
        if (closed || armed.get(idOf(a.target)) !== a) return;
        const now = clock.now();
        const following = nextTick(a.target.spec, at);
        if (following === undefined || following > now) {
          await fire(a, at, false);
          // From this tick, not from now: a tick that passed while this one was being stored
          // (a slow state) fires at once, or goes to the missed policy below, never lost.
          arm(a, at);
        } else {
          // Fired so late that later ticks have passed too (a suspended laptop, a blocked
          // process): these are missed ticks, and the `missed` policy decides, as after a stop.
          for (const t of missedTicks(a.target.spec, at - 1, now)) await fire(a, t, true);
          arm(a, Math.max(at, now));
        }
      });
    });
  };

  const start = async (a: Armed) => {
    const now = clock.now();
    const stored = await cursors.get(cursorKey(a.target));
    const last = stored === undefined ? undefined : Number(stored);
    if (last === undefined || !Number.isFinite(last)) {
      // First sight: nothing before now counts as missed (unless another process got here first).
      await cursors.compareAndSet(cursorKey(a.target), stored, String(now));
    } else {
      for (const t of missedTicks(a.target.spec, last, now)) await fire(a, t, true);
    }
    arm(a, now);
  };

  return {
    async setTargets(targets) {
      const wanted = new Map(targets.map((t) => [idOf(t), t]));
      for (const [key, a] of armed) {
        if (!wanted.has(key)) {
          a.cancel?.();
          armed.delete(key);
        }
      }
      const starts: Promise<void>[] = [];
      for (const t of targets) {
        const signature = JSON.stringify(t.spec);
        const current = armed.get(idOf(t));
        if (current && current.signature === signature) continue;
        current?.cancel?.();
        const a: Armed = { target: t, signature, chain: Promise.resolve() };
        armed.set(idOf(t), a);
        a.chain = (current?.chain ?? Promise.resolve()).then(() => start(a));
        starts.push(a.chain);
      }
      await Promise.all(starts);
    },
    next() {
      return [...armed.values()].map((a) => ({
        target: idOf(a.target),
        workflow: a.target.workflow,
        label: a.target.spec.label,
        ...(a.nextAt !== undefined ? { nextAt: new Date(a.nextAt).toISOString() } : {}),
      }));
    },
    close() {
      closed = true;
      for (const a of armed.values()) a.cancel?.();
      armed.clear();
    },
  };
}

/** The schedule targets of a set of workflows (those whose trigger parses). */
export function scheduleTargets(
  workflows: Iterable<{ key: string; trigger: unknown }>,
  parse: (value: unknown) => { spec?: ScheduleSpec },
): ScheduleTarget[] {
  const out: ScheduleTarget[] = [];
  for (const w of workflows) {
    const t = w.trigger as { schedule?: unknown } | undefined;
    if (!t || typeof t !== 'object' || !('schedule' in t)) continue;
    const { spec } = parse(t.schedule);
    if (spec) out.push({ workflow: w.key, spec });
  }
  return out;
}
