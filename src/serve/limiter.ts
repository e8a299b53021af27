/**
 * Fairness toward shops (issue 11, item 6):
 * - KeyedSemaphore bounds how many executions of one installation run at once, so one busy
 *   installation cannot take every worker while others wait (waiters are served FIFO per key,
 *   and keys do not share a queue).
 * - CostLimiter paces calls per (app, shop) from Shopify's GraphQL cost report
 *   (`extensions.cost.throttleStatus`: currentlyAvailable, maximumAvailable, restoreRate per
 *   second; shopify.dev/docs/api/usage/limits): before a call, when the bucket last reported
 *   holds less than the last requested cost (after restoring since), the call waits for it to
 *   refill rather than collect THROTTLED answers; when it holds enough, the call reserves
 *   that cost. The buckets live in the serve state (state/buckets.ts), so on PostgreSQL every
 *   process paces a shop from one bucket. One CostLimiter per process serves the executions'
 *   calls and the polls' (pacedHttp), so a poll waits for the same bucket.
 */
import type { HttpClient, HttpRequest, HttpResponse } from '../connectors/types.js';
import { memoryBucketStore, type BucketStore } from './state/buckets.js';

export class KeyedSemaphore {
  private readonly active = new Map<string, number>();
  private readonly waiting = new Map<string, (() => void)[]>();

  constructor(private readonly limit: number) {
    if (!(limit >= 1)) throw new RangeError('limit must be at least 1');
  }

  async acquire(key: string): Promise<() => void> {
    const n = this.active.get(key) ?? 0;
    if (n < this.limit) this.active.set(key, n + 1);
    else await new Promise<void>((resolve) => {
      const q = this.waiting.get(key) ?? [];
      q.push(resolve);
      this.waiting.set(key, q);
    });
    return this.releaser(key);
  }

  /** A slot now, or undefined when the key is at its limit (the caller parks the work instead of waiting). */
  tryAcquire(key: string): (() => void) | undefined {
    const n = this.active.get(key) ?? 0;
    if (n >= this.limit) return undefined;
    this.active.set(key, n + 1);
    return this.releaser(key);
  }

  /** Releases once: the slot passes to the next waiter of this key, else frees up. */
  private releaser(key: string): () => void {
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const q = this.waiting.get(key);
      const next = q?.shift();
      if (q && q.length === 0) this.waiting.delete(key);
      if (next) next();
      else {
        const left = (this.active.get(key) ?? 1) - 1;
        if (left <= 0) this.active.delete(key);
        else this.active.set(key, left);
      }
    };
  }

  running(key: string): number {
    return this.active.get(key) ?? 0;
  }
}

export interface ThrottleStatus {
  maximumAvailable: number;
  currentlyAvailable: number;
  restoreRate: number;
}

/**
 * Paces calls per key from the buckets in `store` (the serve state's, shared by every
 * process on PostgreSQL): `before` reserves the expected cost, waiting while the bucket is
 * short; `after` records the answer's cost report.
 */
export class CostLimiter {
  constructor(
    private readonly clock: { now(): number; sleep(ms: number, signal?: AbortSignal): Promise<void> },
    private readonly store: BucketStore = memoryBucketStore(),
  ) {}

  /** Waits until the bucket holds the expected cost, and takes it. */
  async before(key: string, signal?: AbortSignal): Promise<void> {
    for (;;) {
      const ms = await this.store.take(key, this.clock.now());
      if (ms <= 0) return;
      // Another process may take the points first: sleep, then try again.
      await this.clock.sleep(ms, signal);
    }
  }

  /** Records a response body's cost report, when it has one. */
  async after(key: string, responseText: string): Promise<void> {
    if (!responseText.includes('throttleStatus')) return;
    let cost: { requestedQueryCost?: number; throttleStatus?: Partial<ThrottleStatus> } | undefined;
    try {
      cost = (JSON.parse(responseText) as { extensions?: { cost?: typeof cost } }).extensions?.cost;
    } catch {
      return; // not JSON: nothing to learn
    }
    const t = cost?.throttleStatus;
    if (!t || typeof t.currentlyAvailable !== 'number' || typeof t.restoreRate !== 'number') return;
    await this.store.report(key, {
      maximumAvailable: t.maximumAvailable ?? t.currentlyAvailable,
      currentlyAvailable: t.currentlyAvailable,
      restoreRate: t.restoreRate,
      at: this.clock.now(),
      lastCost: typeof cost?.requestedQueryCost === 'number' ? cost.requestedQueryCost : 10,
    });
  }
}

/**
 * `http` paced by `costs`: a call whose `key(req)` names a bucket (`<app>:<account>`) waits
 * for it before sending and feeds it the answer's cost report; other calls pass straight on.
 */
export function pacedHttp(http: HttpClient, costs: CostLimiter, key: (req: HttpRequest) => string | undefined): HttpClient {
  const paced = pacedCall(http, costs);
  // A call with no bucket is handed on as is (no async frame of its own), its errors still as rejections.
  return (req) => {
    try {
      const k = key(req);
      return k ? paced(k, req) : http(req);
    } catch (err) {
      return Promise.reject(err);
    }
  };
}

/** A call through `http` that waits for bucket `key` first and feeds it the answer's cost report. */
export function pacedCall(http: HttpClient, costs: CostLimiter): (key: string, req: HttpRequest) => Promise<HttpResponse> {
  return async (key, req) => {
    await costs.before(key, req.signal);
    const res = await http(req);
    await costs.after(key, res.text);
    return res;
  };
}
