/** Durations as the workflow schema writes them: "250ms", "5s", "2m", "1h", or milliseconds. */
import { AlloyError } from '../errors.js';

const UNIT_MS = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 } as const;
const DURATION_RE = /^\s*([0-9]+(?:\.[0-9]+)?)\s*(ms|s|m|h)?\s*$/;

/** Milliseconds for a duration, or undefined when it is not one. */
export function tryParseDuration(value: unknown): number | undefined {
  if (typeof value === 'number') return Number.isFinite(value) && value >= 0 ? value : undefined;
  if (typeof value !== 'string') return undefined;
  const m = DURATION_RE.exec(value);
  if (!m) return undefined;
  const ms = Math.round(Number(m[1]) * UNIT_MS[(m[2] ?? 'ms') as keyof typeof UNIT_MS]);
  // A digit string too long for a double reads as Infinity: not a duration anyone meant.
  return Number.isFinite(ms) ? ms : undefined;
}

/** Milliseconds for a duration; throws naming `where` when it is not one. */
export function parseDuration(value: unknown, where: string): number {
  const ms = tryParseDuration(value);
  if (ms === undefined) {
    throw new AlloyError('E_DURATION', `${where}: ${JSON.stringify(value)} is not a duration`, {
      hint: 'Write a duration like 250ms, 5s, 2m or 1h, or a number of milliseconds.',
    });
  }
  return ms;
}
