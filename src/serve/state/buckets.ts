/**
 * Cost buckets per (app, account) for the limiter (limiter.ts), as a part of the serve state so
 * that every process of a cluster paces one shop from the same bucket. The model is Shopify's
 * leaky bucket (`extensions.cost.throttleStatus`): `currentlyAvailable` at time `at`, refilled
 * at `restoreRate` per second up to `maximumAvailable`. A call reserves `lastCost` (the cost of
 * the last query, the best guess of the next) before it is sent, so calls from several
 * processes cannot all spend the same points; each answer's report then replaces the bucket.
 */
export interface RateBucket {
  maximumAvailable: number;
  currentlyAvailable: number;
  /** Points per second. */
  restoreRate: number;
  /** When currentlyAvailable was true, ms since the epoch. */
  at: number;
  /** What the next call is expected to cost. */
  lastCost: number;
}

export interface BucketStore {
  /**
   * At `now`: when the bucket (restored since `at`) holds `lastCost`, takes it and answers 0;
   * otherwise takes nothing and answers the milliseconds until it will. Unknown buckets, and
   * buckets that never refill, answer 0.
   */
  take(key: string, now: number): Promise<number>;
  /** Replaces the bucket with an app's latest report. */
  report(key: string, bucket: RateBucket): Promise<void>;
}

/** Points available at `now`. */
export function availableAt(b: RateBucket, now: number): number {
  return Math.min(b.maximumAvailable, b.currentlyAvailable + (Math.max(0, now - b.at) / 1000) * b.restoreRate);
}

/** Milliseconds until `available` reaches `cost` at `rate` per second. */
export function waitFor(available: number, cost: number, rate: number): number {
  return Math.ceil(((cost - available) / rate) * 1000);
}

/** Buckets in this process's memory: the SQLite state's (one process owns the SQLite file). */
export function memoryBucketStore(): BucketStore {
  const buckets = new Map<string, RateBucket>();
  return {
    async take(key, now) {
      const b = buckets.get(key);
      if (!b || b.restoreRate <= 0) return 0;
      const available = availableAt(b, now);
      if (available < b.lastCost) return waitFor(available, b.lastCost, b.restoreRate);
      buckets.set(key, { ...b, currentlyAvailable: available - b.lastCost, at: now });
      return 0;
    },
    async report(key, bucket) {
      buckets.set(key, { ...bucket });
    },
  };
}
