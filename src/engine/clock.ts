/**
 * The real clock: Date.now and an abortable setTimeout sleep. Tests pass their own.
 *
 * Node clamps a setTimeout delay above 2^31-1 ms (~24.8 days) to 1 ms (TimeoutOverflowWarning),
 * so `delay: 600h` would end at once: long waits are armed in chunks of at most that size.
 */
import type { Clock } from './types.js';

/** The longest delay one Node timer takes (2^31-1 ms, about 24.8 days). */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/** Calls `fn` after `ms` (any length, chunked under MAX_TIMER_MS); returns a cancel function. */
export function setLongTimeout(fn: () => void, ms: number): () => void {
  let remaining = Math.max(0, ms);
  let timer: NodeJS.Timeout;
  const arm = () => {
    const step = Math.min(remaining, MAX_TIMER_MS);
    remaining -= step;
    timer = setTimeout(() => (remaining > 0 ? arm() : fn()), step);
  };
  arm();
  return () => clearTimeout(timer);
}

export const realClock: Clock = {
  now: () => Date.now(),
  sleep: (ms, signal) =>
    new Promise<void>((resolve, reject) => {
      if (signal?.aborted) return reject(signal.reason);
      const cancel = setLongTimeout(() => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      }, ms);
      const onAbort = () => {
        cancel();
        reject(signal?.reason);
      };
      signal?.addEventListener('abort', onAbort, { once: true });
    }),
};
