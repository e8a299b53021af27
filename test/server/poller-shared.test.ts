/**
 * Pollers of several processes sharing one cursor store (manual clock, in-memory source):
 * one process polls a target per interval slot, and when two runs overlap the cursor is
 * advanced by compare-and-set, so the one that fell behind stops instead of moving it.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { PollCursor, PolledItem } from '../../src/connectors/poll.js';
import { createPoller, type Poller, type PollerEvent, type PollSource, type PollTarget } from '../../src/server/poller.js';
import { manualTimerClock, memoryCursors, type Claim, type CursorStore } from '../../src/server/time-ports.js';

const T0 = Date.parse('2026-03-02T08:00:00Z');
const target: PollTarget = { id: 'in_1:acme/changed', workflow: 'acme/changed', app: 'shop', topic: 'orders/updated', everyMs: 60_000 };

function claimStore() {
  const keys = new Set<string>();
  const stored: string[] = [];
  const claim: Claim = async (input) => {
    if (keys.has(input.dedupeKey)) return { duplicate: true };
    keys.add(input.dedupeKey);
    stored.push(input.dedupeKey);
    return { duplicate: false };
  };
  return { claim, stored };
}

/** The items changed by `now()` since the cursor, two per page; `gate` holds a page until released. */
function itemSource(items: { id: string; updatedAt: string }[], gate?: () => Promise<void>, now = () => Infinity) {
  let runs = 0;
  const source: PollSource = async (_t, cursor, onItems) => {
    runs++;
    const fresh = items.filter((i) => Date.parse(i.updatedAt) <= now() && i.updatedAt >= cursor.since && !cursor.seen.includes(`${i.id}@${i.updatedAt}`));
    let since = cursor.since;
    let pages = 0;
    for (let n = 0; n < fresh.length; n += 2) {
      const page: PolledItem[] = fresh.slice(n, n + 2).map((i) => ({ key: `${i.id}@${i.updatedAt}`, id: i.id, updatedAt: i.updatedAt, item: i }));
      since = page[page.length - 1].updatedAt;
      const next: PollCursor = { since, seen: page.filter((p) => p.updatedAt === since).map((p) => p.key) };
      if (gate) await gate();
      pages++;
      await onItems(page, next);
    }
    const c: PollCursor = { since, seen: fresh.filter((i) => i.updatedAt === since).map((i) => `${i.id}@${i.updatedAt}`) };
    return { cursor: c, pages, truncated: false, emitted: fresh.length };
  };
  return { source, runs: () => runs };
}

let pollers: Poller[] = [];
afterEach(() => {
  for (const p of pollers) p.close();
  pollers = [];
});

function make(clock: ReturnType<typeof manualTimerClock>, cursors: CursorStore, claim: Claim, source: PollSource, events: PollerEvent[] = []) {
  const p = createPoller({ clock, cursors, claim, source, onEvent: (e) => events.push(e) });
  pollers.push(p);
  return p;
}

describe('pollers sharing a cursor store', () => {
  it('three processes poll a target once per interval slot', async () => {
    const clock = manualTimerClock(T0 + 5000);
    const cursors = memoryCursors();
    const claims = claimStore();
    const items = Array.from({ length: 6 }, (_, n) => ({ id: `o${n}`, updatedAt: new Date(T0 + 10_000 + n * 60_000).toISOString() }));
    const src = itemSource(items, undefined, () => clock.now());
    for (let i = 0; i < 3; i++) await make(clock, cursors, claims.claim, src.source).setTargets([target]);
    // The first slot (08:00) was claimed by one of the three starts.
    expect(src.runs()).toBe(1);
    for (let m = 1; m <= 5; m++) {
      await clock.advance(60_000);
      expect(src.runs()).toBe(1 + m);
    }
    // Each item stored once, in order; the cursor at the newest.
    expect(claims.stored).toEqual(items.slice(0, 5).map((i) => `poll:in_1:acme/changed:${i.id}@${i.updatedAt}`));
    expect(JSON.parse((await cursors.get('poll:in_1:acme/changed'))!).since).toBe(items[4].updatedAt);
  });

  it('of two overlapping runs, the one that fell behind stops at its next page and never moves the cursor back', async () => {
    const clock = manualTimerClock(T0);
    const cursors = memoryCursors({ 'poll:in_1:acme/changed': JSON.stringify({ since: new Date(T0).toISOString(), seen: [] }) });
    const claims = claimStore();
    const items = Array.from({ length: 6 }, (_, n) => ({ id: `o${n}`, updatedAt: new Date(T0 + 1000 + n * 1000).toISOString() }));
    // Process A's pages wait until released; B runs freely.
    const held: (() => void)[] = [];
    const slow = itemSource(items, () => new Promise<void>((r) => held.push(r)));
    const fast = itemSource(items);
    const eventsA: PollerEvent[] = [];
    const a = make(clock, cursors, claims.claim, slow.source, eventsA);
    const b = make(clock, cursors, claims.claim, fast.source);
    const tick = () => new Promise((r) => setImmediate(r));
    // A's first run claims the 08:00 slot and stops at its first page.
    const runA = a.setTargets([target]);
    while (held.length === 0) await tick();
    // A is holding its first page. B (its first run finds the slot taken) is made to poll
    // everything now and advances the cursor to the end.
    await b.setTargets([{ ...target }]);
    expect(fast.runs()).toBe(0);
    await b.runNow(target.id!);
    const end = (await cursors.get('poll:in_1:acme/changed'))!;
    expect(JSON.parse(end).since).toBe(items[5].updatedAt);
    // A resumes: its first page's claims are duplicates and its cursor write is refused.
    while (held.length) {
      held.shift()!();
      await tick();
    }
    await runA;
    expect(await cursors.get('poll:in_1:acme/changed')).toBe(end);
    expect(eventsA.find((e) => e.type === 'poll')).toMatchObject({ superseded: true, pages: 1, emitted: 0, duplicates: 2 });
    expect(claims.stored).toHaveLength(6);
  });
});
