/**
 * The scheduler on a manual clock (no sleeps): ticks fire on time, the missed-tick policy
 * applies after a stop, a first start has nothing missed, two schedulers sharing a claim
 * store run each tick once, and cursors kept in a real event log survive a restart.
 */
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { parseSchedule, type ScheduleSpec } from '../../src/core/schedule.js';
import { openEventLog } from '../../src/server/event-log.js';
import { createScheduler, type Scheduler } from '../../src/server/scheduler.js';
import { eventLogCursors, manualTimerClock, memoryCursors, type Claim, type ClaimInput } from '../../src/server/time-ports.js';
import { tempDir } from '../helpers/cli.js';

const T0 = Date.parse('2026-03-02T08:00:00Z'); // a Monday
const spec = (value: unknown): ScheduleSpec => {
  const r = parseSchedule(value);
  if (!r.spec) throw new Error(r.problem?.message);
  return r.spec;
};

function claimStore() {
  const keys = new Set<string>();
  const fired: ClaimInput[] = [];
  const claim: Claim = async (input) => {
    if (keys.has(input.dedupeKey)) return { duplicate: true };
    keys.add(input.dedupeKey);
    fired.push(input);
    return { duplicate: false };
  };
  return { claim, fired };
}

let schedulers: Scheduler[] = [];
afterEach(() => {
  for (const s of schedulers) s.close();
  schedulers = [];
});

function make(clock: ReturnType<typeof manualTimerClock>, cursors = memoryCursors(), claims = claimStore()) {
  const s = createScheduler({ clock, cursors, claim: claims.claim });
  schedulers.push(s);
  return { s, cursors, claims };
}

describe('parseSchedule', () => {
  it('takes 5 and 6 field cron, time zones and intervals', () => {
    expect(spec('*/15 * * * *').cron).toBe('*/15 * * * *');
    expect(spec('*/30 * * * * *').cron).toBe('*/30 * * * * *');
    expect(spec({ cron: '0 9 * * 1-5', timezone: 'Europe/Paris' }).label).toBe('0 9 * * 1-5 (Europe/Paris)');
    expect(spec({ every: '15m' }).everyMs).toBe(900_000);
    expect(spec({ every: '15m' }).missed).toBe('latest');
  });
  it.each([
    ['every banana', '', /not a cron expression/, /every: 15m/],
    ['61 * * * *', '', /not a valid cron expression.*minute/i, /minute \(0-59\)/],
    ['* * *', '', /3 field/, /0 9 \* \* 1-5/],
    ['* * * * * * *', '', /7 field/, /0 9/],
    [{ every: 'banana' }, '/every', /not an interval/, /15m/],
    [{ every: '10ms' }, '/every', /shorter than 1s/, /1s/],
    [{ cron: '0 9 * * *', timezone: 'Mars/Base' }, '/timezone', /unknown time zone/, /IANA/],
    [{ cron: '0 9 * * *', missed: 'some' }, '/missed', /not a policy/, /latest/],
    [{ cron: '0 0 31 2 *' }, '/cron', /never fires/, /February/],
  ])('%j is refused with a hint', (value, at, message, hint) => {
    const { problem } = parseSchedule(value);
    expect(problem?.at).toBe(at);
    expect(problem?.message).toMatch(message);
    expect(problem?.hint).toMatch(hint);
  });
});

describe('scheduler', () => {
  it('fires every tick on time and reports the next one', async () => {
    const clock = manualTimerClock(T0 + 1000);
    const { s, claims } = make(clock);
    await s.setTargets([{ workflow: 'acme/sweep', spec: spec({ every: '15m' }) }]);
    expect(s.next()).toEqual([{ target: 'acme/sweep', workflow: 'acme/sweep', label: 'every 15m', nextAt: '2026-03-02T08:15:00.000Z' }]);
    await clock.advance(15 * 60_000 - 1001);
    expect(claims.fired).toHaveLength(0);
    await clock.advance(1);
    expect(claims.fired.map((f) => (f.event as { scheduledAt: string }).scheduledAt)).toEqual(['2026-03-02T08:15:00.000Z']);
    await clock.advance(30 * 60_000);
    expect(claims.fired.map((f) => (f.event as { scheduledAt: string }).scheduledAt)).toEqual([
      '2026-03-02T08:15:00.000Z',
      '2026-03-02T08:30:00.000Z',
      '2026-03-02T08:45:00.000Z',
    ]);
    expect(claims.fired[0]).toMatchObject({ source: 'schedule', workflow: 'acme/sweep', dedupeKey: 'schedule:acme/sweep:2026-03-02T08:15:00.000Z', event: { missed: false } });
  });

  it('honours a named time zone (09:00 Paris is 08:00 UTC in winter)', async () => {
    const clock = manualTimerClock(Date.parse('2026-03-02T07:00:00Z'));
    const { s, claims } = make(clock);
    await s.setTargets([{ workflow: 'acme/report', spec: spec({ cron: '0 9 * * 1-5', timezone: 'Europe/Paris' }) }]);
    expect(s.next()[0].nextAt).toBe('2026-03-02T08:00:00.000Z');
    await clock.advance(60 * 60_000);
    expect(claims.fired).toHaveLength(1);
    // Next: Tuesday 09:00 Paris.
    expect(s.next()[0].nextAt).toBe('2026-03-03T08:00:00.000Z');
  });

  it('a first start has nothing missed; the cursor starts now', async () => {
    const clock = manualTimerClock(T0);
    const { s, claims, cursors } = make(clock);
    await s.setTargets([{ workflow: 'acme/sweep', spec: spec({ every: '1m' }) }]);
    expect(claims.fired).toHaveLength(0);
    expect(cursors.values.get('schedule:acme/sweep')).toBe(String(T0));
  });

  it.each([
    ['latest', ['2026-03-02T09:00:00.000Z']],
    ['skip', []],
    ['all', ['2026-03-02T08:15:00.000Z', '2026-03-02T08:30:00.000Z', '2026-03-02T08:45:00.000Z', '2026-03-02T09:00:00.000Z']],
  ])('missed: %s after an hour down', async (missed, expected) => {
    const cursors = memoryCursors({ 'schedule:acme/sweep': String(T0) });
    const clock = manualTimerClock(T0 + 60 * 60_000 + 5000);
    const { s, claims } = make(clock, cursors);
    await s.setTargets([{ workflow: 'acme/sweep', spec: spec({ every: '15m', missed }) }]);
    expect(claims.fired.map((f) => (f.event as { scheduledAt: string }).scheduledAt)).toEqual(expected);
    expect(claims.fired.every((f) => (f.event as { missed: boolean }).missed)).toBe(true);
    // Then on time again.
    await clock.advance(15 * 60_000);
    expect(claims.fired.at(-1)?.event).toMatchObject({ scheduledAt: '2026-03-02T09:15:00.000Z', missed: false });
  });

  it.each([
    ['latest', ['2026-03-02T09:00:00.000Z']],
    ['skip', []],
    ['all', ['2026-03-02T08:15:00.000Z', '2026-03-02T08:30:00.000Z', '2026-03-02T08:45:00.000Z', '2026-03-02T09:00:00.000Z']],
  ])('a timer that fires an hour late (suspended machine) follows missed: %s', async (missed, expected) => {
    const clock = manualTimerClock(T0 + 1000);
    const { s, claims } = make(clock);
    await s.setTargets([{ workflow: 'acme/sweep', spec: spec({ every: '15m', missed }) }]);
    clock.jump(60 * 60_000 + 5000);
    await clock.advance(0);
    expect(claims.fired.map((f) => (f.event as { scheduledAt: string }).scheduledAt)).toEqual(expected);
    expect(s.next()[0].nextAt).toBe('2026-03-02T09:15:00.000Z');
  });

  it('a tick that passes while the previous one is being stored is not lost', async () => {
    const clock = manualTimerClock(T0 + 1000);
    const claims = claimStore();
    let slowOnce = true;
    const claim: Claim = async (input) => {
      // The 08:01 claim takes 90 s (a stalled state): 08:02 passes meanwhile.
      if (slowOnce) {
        slowOnce = false;
        clock.jump(90_000);
      }
      return claims.claim(input);
    };
    const s = createScheduler({ clock, cursors: memoryCursors(), claim });
    schedulers.push(s);
    await s.setTargets([{ workflow: 'acme/sweep', spec: spec({ every: '1m' }) }]);
    await clock.advance(60_000);
    await clock.advance(0);
    expect(claims.fired.map((f) => (f.event as { scheduledAt: string }).scheduledAt)).toEqual(['2026-03-02T08:01:00.000Z', '2026-03-02T08:02:00.000Z']);
    expect(s.next()[0].nextAt).toBe('2026-03-02T08:03:00.000Z');
  });

  it('three schedulers sharing a claim store and cursors run each tick once', async () => {
    const clock = manualTimerClock(T0);
    const cursors = memoryCursors();
    const claims = claimStore();
    const target = [{ workflow: 'acme/sweep', spec: spec('*/5 * * * *') }];
    for (let i = 0; i < 3; i++) await make(clock, cursors, claims).s.setTargets(target);
    await clock.advance(60 * 60_000);
    const ticks = claims.fired.map((f) => f.dedupeKey);
    expect(ticks).toHaveLength(12);
    expect(new Set(ticks).size).toBe(12);
  });

  it('a reload with the same schedule keeps the timer; a changed one re-arms', async () => {
    const clock = manualTimerClock(T0);
    const { s, claims } = make(clock);
    await s.setTargets([{ workflow: 'acme/a', spec: spec({ every: '10m' }) }]);
    await s.setTargets([{ workflow: 'acme/a', spec: spec({ every: '10m' }) }]);
    expect(clock.pending()).toBe(1);
    await s.setTargets([{ workflow: 'acme/a', spec: spec({ every: '30m' }) }]);
    expect(clock.pending()).toBe(1);
    await clock.advance(30 * 60_000);
    expect(claims.fired.map((f) => (f.event as { scheduledAt: string }).scheduledAt)).toEqual(['2026-03-02T08:30:00.000Z']);
    await s.setTargets([]);
    expect(clock.pending()).toBe(0);
  });

  it('the cursor survives a restart in the event log (SQLite)', async () => {
    const { dir, cleanup } = await tempDir('alloy-sched-');
    try {
      const file = path.join(dir, 'events.db');
      const claims = claimStore();
      let log = openEventLog({ file });
      let clock = manualTimerClock(T0);
      let s = createScheduler({ clock, cursors: eventLogCursors(log), claim: claims.claim });
      await s.setTargets([{ workflow: 'acme/sweep', spec: spec({ every: '15m' }) }]);
      await clock.advance(15 * 60_000);
      expect(claims.fired).toHaveLength(1);
      s.close();
      log.close();
      // Down for 50 minutes: 08:30, 08:45 and 09:00 were missed; latest runs once.
      log = openEventLog({ file });
      clock = manualTimerClock(T0 + 65 * 60_000);
      s = createScheduler({ clock, cursors: eventLogCursors(log), claim: claims.claim });
      await s.setTargets([{ workflow: 'acme/sweep', spec: spec({ every: '15m' }) }]);
      expect(claims.fired.map((f) => (f.event as { scheduledAt: string }).scheduledAt)).toEqual(['2026-03-02T08:15:00.000Z', '2026-03-02T09:00:00.000Z']);
      s.close();
      log.close();
    } finally {
      await cleanup();
    }
  });
});
