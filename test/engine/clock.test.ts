// Node clamps setTimeout delays above 2^31-1 ms (~24.8 days) to 1 ms: a `delay: 600h` would
// fire at once. The real clock sleeps in chunks; fake timers reproduce Node's clamping.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { compileWorkflow, createExecutionRecord, executeWorkflow, realClock } from '../../src/engine/index.js';
import { MAX_TIMER_MS } from '../../src/engine/clock.js';
import { makeDeps, workflow } from './helpers.js';

afterEach(() => {
  vi.useRealTimers();
});

const HOUR = 3_600_000;

describe('realClock.sleep beyond the Node timer limit', () => {
  it('a 600 h sleep does not end after 1 ms, nor before 600 h, and ends at 600 h', async () => {
    vi.useFakeTimers();
    let done = false;
    const p = realClock.sleep(600 * HOUR).then(() => {
      done = true;
    });
    await vi.advanceTimersByTimeAsync(5);
    expect(done).toBe(false);
    await vi.advanceTimersByTimeAsync(600 * HOUR - 10);
    expect(done).toBe(false);
    await vi.advanceTimersByTimeAsync(10);
    expect(done).toBe(true);
    await p;
  });

  it('never arms a timer above 2^31-1 ms', async () => {
    vi.useFakeTimers();
    const spy = vi.spyOn(globalThis, 'setTimeout');
    const p = realClock.sleep(3 * MAX_TIMER_MS + 7);
    await vi.advanceTimersByTimeAsync(3 * MAX_TIMER_MS + 7);
    await p;
    const delays = spy.mock.calls.map((c) => Number(c[1]));
    expect(MAX_TIMER_MS).toBe(2 ** 31 - 1);
    expect(delays.length).toBeGreaterThanOrEqual(4);
    expect(Math.max(...delays)).toBeLessThanOrEqual(MAX_TIMER_MS);
    spy.mockRestore();
  });

  it('an abort during a chunked sleep rejects with the reason and clears the timer', async () => {
    vi.useFakeTimers();
    const controller = new AbortController();
    const p = realClock.sleep(2 * MAX_TIMER_MS, controller.signal);
    await vi.advanceTimersByTimeAsync(MAX_TIMER_MS + 5);
    controller.abort(new Error('shutdown'));
    await expect(p).rejects.toThrow('shutdown');
    expect(vi.getTimerCount()).toBe(0);
  });

  it('a workflow timeout longer than the limit does not fire at once', async () => {
    const deps = makeDeps({ clock: realClock });
    const def = workflow([{ id: 'wait', delay: '30ms' }], { timeout: '600h' });
    const r = await executeWorkflow(compileWorkflow(def), createExecutionRecord({ id: 'exec_c1', workflow: 'a/b', event: {} }, Date.now()), deps);
    // with the overflow the timer fired after 1 ms, racing the run; now it cannot
    expect(r.status).toBe('succeeded');
  });

  it('a duration too large to be a number is not a duration', async () => {
    const { tryParseDuration, parseDuration } = await import('../../src/engine/index.js');
    expect(tryParseDuration(`${'9'.repeat(400)}h`)).toBeUndefined();
    expect(() => parseDuration(`${'9'.repeat(400)}`, '/timeout')).toThrow(/not a duration/);
  });
});
