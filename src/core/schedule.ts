/**
 * Schedule triggers: parsing (cron through croner, intervals through the one duration
 * parser) and tick arithmetic. Pure: no timers, no clock; `alloy validate` reports
 * problems from here and the scheduler (src/server/scheduler.ts) computes fire times.
 *
 * Forms accepted in `trigger.schedule`:
 *   "0 9 * * 1-5"                                 five-field cron (minute precision), UTC
 *   "*\/30 * * * * *"                             six fields: seconds first
 *   { cron: "0 9 * * 1-5", timezone: "Europe/Paris", missed: latest }
 *   { every: 15m }                                an interval, aligned to the epoch (00:00, 00:15 UTC, ...)
 *
 * `missed` says what happens to ticks that passed while nothing was running:
 *   latest (default): run the most recent missed tick once; skip: run none; all: run each
 *   (at most MAX_CATCH_UP, oldest first).
 */
import { createRequire } from 'node:module';
import type { Cron as CronClass } from 'croner';

// croner is loaded on first use (synchronously, its CommonJS build): projects without a
// schedule never pay for it when they validate or start.
let CronCtor: typeof CronClass | undefined;
function Cron(...args: ConstructorParameters<typeof CronClass>): CronClass<unknown> {
  CronCtor ??= (createRequire(import.meta.url)('croner') as { Cron: typeof CronClass }).Cron;
  return new CronCtor(...args);
}
type Cron = CronClass<unknown>;

export type MissedPolicy = 'latest' | 'skip' | 'all';

export interface ScheduleSpec {
  /** A short text for banners and inspect: the cron expression (and zone) or `every 15m`. */
  label: string;
  cron?: string;
  timezone?: string;
  everyMs?: number;
  missed: MissedPolicy;
}

export interface ScheduleProblem {
  /** JSON pointer suffix under `/trigger/schedule` ('' for the string form). */
  at: string;
  message: string;
  hint: string;
}

/** The most ticks `missed: all` runs after a long stop. */
export const MAX_CATCH_UP = 100;
/** An interval below this would flood the event log. */
export const MIN_INTERVAL_MS = 1000;

const DURATION_RE = /^\s*([0-9]+(?:\.[0-9]+)?)\s*(ms|s|m|h|d)\s*$/;
const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

function intervalMs(value: unknown): number | undefined {
  if (typeof value === 'number') return Number.isFinite(value) && value > 0 ? value : undefined;
  if (typeof value !== 'string') return undefined;
  const m = DURATION_RE.exec(value);
  if (!m) return undefined;
  const ms = Math.round(Number(m[1]) * UNIT_MS[m[2]]);
  return Number.isFinite(ms) ? ms : undefined;
}

/**
 * Canonical IANA zone names, listed once (about 4 ms); the first Intl.DateTimeFormat built for a
 * zone costs about 25 ms of ICU set-up, which every `alloy validate` and `alloy test` of a project
 * with a schedule used to pay. Names not listed (aliases such as `US/Eastern`, other spellings)
 * are still decided by Intl.DateTimeFormat, once per name.
 */
let canonicalZones: Set<string> | undefined;
const timezoneValidity = new Map<string, boolean>();
function validTimezone(tz: string): boolean {
  canonicalZones ??= new Set(typeof Intl.supportedValuesOf === 'function' ? Intl.supportedValuesOf('timeZone') : []);
  if (canonicalZones.has(tz)) return true;
  let ok = timezoneValidity.get(tz);
  if (ok === undefined) {
    try {
      new Intl.DateTimeFormat('en-US', { timeZone: tz });
      ok = true;
    } catch {
      ok = false;
    }
    if (timezoneValidity.size < 1000) timezoneValidity.set(tz, ok);
  }
  return ok;
}

const cronCache = new Map<string, Cron>();
function cronOf(expr: string, timezone: string | undefined): Cron {
  const key = `${timezone ?? ''}\u0000${expr}`;
  let c = cronCache.get(key);
  if (!c) {
    c = Cron(expr, { timezone, paused: true, mode: '5-or-6-parts' });
    if (cronCache.size > 1000) cronCache.clear();
    cronCache.set(key, c);
  }
  return c;
}

/** Parses a `trigger.schedule` value; either a spec or the first problem found. */
export function parseSchedule(value: unknown): { spec?: ScheduleSpec; problem?: ScheduleProblem } {
  const obj = typeof value === 'string' ? { cron: value } : value;
  if (!obj || typeof obj !== 'object' || Array.isArray(obj)) {
    return { problem: { at: '', message: 'a schedule is a cron string or {cron, timezone} or {every}', hint: 'write schedule: "0 9 * * 1-5" or schedule: { every: 15m }' } };
  }
  const o = obj as Record<string, unknown>;
  const prefix = typeof value === 'string' ? '' : '/cron';
  const missed = (o.missed ?? 'latest') as MissedPolicy;
  if (!['latest', 'skip', 'all'].includes(missed)) {
    return { problem: { at: '/missed', message: `missed: ${JSON.stringify(o.missed)} is not a policy`, hint: 'use latest (default: run the last missed tick once), skip, or all' } };
  }
  if ('cron' in o && 'every' in o) {
    return { problem: { at: '', message: 'a schedule has either cron or every, not both', hint: 'split it into two workflows' } };
  }
  if ('every' in o) {
    const ms = intervalMs(o.every);
    if (ms === undefined) {
      return { problem: { at: '/every', message: `every: ${JSON.stringify(o.every)} is not an interval`, hint: 'write an interval like 30s, 15m, 1h or 1d' } };
    }
    if (ms < MIN_INTERVAL_MS) {
      return { problem: { at: '/every', message: `every: ${JSON.stringify(o.every)} is shorter than 1s`, hint: 'use an interval of at least 1s' } };
    }
    if ('timezone' in o) {
      return { problem: { at: '/timezone', message: 'an interval has no time zone (it is aligned to UTC)', hint: 'remove timezone, or use cron for wall-clock times' } };
    }
    return { spec: { label: `every ${String(o.every)}`, everyMs: ms, missed } };
  }
  if (typeof o.cron !== 'string') {
    return { problem: { at: prefix, message: 'the schedule names no cron expression or interval', hint: 'add cron: "0 9 * * 1-5" or every: 15m' } };
  }
  const timezone = o.timezone === undefined ? undefined : String(o.timezone);
  if (timezone !== undefined && !validTimezone(timezone)) {
    return { problem: { at: '/timezone', message: `unknown time zone ${JSON.stringify(timezone)}`, hint: 'use an IANA zone name such as Europe/Paris or America/New_York' } };
  }
  const expr = o.cron.trim();
  const fields = expr.split(/\s+/).length;
  if (expr.startsWith('every') || expr.startsWith('@every')) {
    return { problem: { at: prefix, message: `${JSON.stringify(o.cron)} is not a cron expression`, hint: 'for an interval write schedule: { every: 15m }' } };
  }
  if (!expr.startsWith('@') && fields !== 5 && fields !== 6) {
    return {
      problem: { at: prefix, message: `${JSON.stringify(o.cron)} has ${fields} field(s); cron has 5 (minute hour day month weekday) or 6 (seconds first)`, hint: 'e.g. "0 9 * * 1-5" for 09:00 on weekdays, or schedule: { every: 15m }' },
    };
  }
  try {
    const c = cronOf(expr, timezone);
    if (c.nextRun(new Date(0)) === null && c.nextRun() === null) {
      return { problem: { at: prefix, message: `${JSON.stringify(o.cron)} never fires`, hint: 'check the day and month fields (e.g. 31 February)' } };
    }
  } catch (err) {
    const detail = (err as Error).message.replace(/^CronPattern: /, '');
    return { problem: { at: prefix, message: `${JSON.stringify(o.cron)} is not a valid cron expression: ${detail}`, hint: 'fields are minute (0-59) hour (0-23) day (1-31) month (1-12) weekday (0-7); e.g. "*/15 * * * *"' } };
  }
  return { spec: { label: timezone ? `${expr} (${timezone})` : expr, cron: expr, timezone, missed } };
}

/** The first tick strictly after `afterMs`, or undefined when there is none. */
export function nextTick(spec: ScheduleSpec, afterMs: number): number | undefined {
  if (spec.everyMs !== undefined) return (Math.floor(afterMs / spec.everyMs) + 1) * spec.everyMs;
  const next = cronOf(spec.cron!, spec.timezone).nextRun(new Date(afterMs));
  return next ? next.getTime() : undefined;
}

/**
 * The ticks in (fromMs, toMs] that a scheduler coming back at `toMs` should run, per the
 * spec's `missed` policy. `fromMs` is the last tick that ran (or the start time when none
 * ever ran: nothing before it counts as missed).
 */
export function missedTicks(spec: ScheduleSpec, fromMs: number, toMs: number): number[] {
  if (spec.missed === 'skip' || toMs <= fromMs) return [];
  if (spec.missed === 'latest') {
    const last = latestTickAtOrBefore(spec, toMs);
    return last !== undefined && last > fromMs ? [last] : [];
  }
  // The newest MAX_CATCH_UP at most, oldest first: a long stop must not flood the log.
  if (spec.everyMs !== undefined) {
    const last = Math.floor(toMs / spec.everyMs) * spec.everyMs;
    const out: number[] = [];
    for (let t = last; t > fromMs && out.length < MAX_CATCH_UP; t -= spec.everyMs) out.unshift(t);
    return out;
  }
  return cronOf(spec.cron!, spec.timezone)
    .previousRuns(MAX_CATCH_UP, new Date(toMs + 1))
    .map((d) => d.getTime())
    .filter((t) => t > fromMs)
    .sort((a, b) => a - b);
}

function latestTickAtOrBefore(spec: ScheduleSpec, atMs: number): number | undefined {
  if (spec.everyMs !== undefined) return Math.floor(atMs / spec.everyMs) * spec.everyMs;
  // previousRuns is strictly before its reference: look from just after `atMs`.
  const prev = cronOf(spec.cron!, spec.timezone).previousRuns(1, new Date(atMs + 1));
  return prev[0]?.getTime();
}
