// (A helper of runtime-bench.mjs: running it alone does nothing.)
// The one load tool for every runtime benchmark target: undici Pool with a fixed number of
// connections and a fixed number of requests in flight; per-request latency recorded.
import { Pool } from 'undici';

/**
 * Sends `total` requests, `concurrency` at a time. `makeRequest(i)` returns
 * { path, method, headers, body }. Resolves with statuses, latencies (ms) and wall time.
 */
export async function runLoad({ url, total, concurrency, makeRequest, onResponse }) {
  const pool = new Pool(url, { connections: concurrency, pipelining: 1 });
  const latencies = new Float64Array(total);
  const statuses = new Map();
  let next = 0;
  const started = performance.now();
  async function worker() {
    while (next < total) {
      const i = next++;
      const req = makeRequest(i);
      const t0 = performance.now();
      const res = await pool.request({ path: req.path, method: req.method ?? 'POST', headers: req.headers, body: req.body });
      const text = await res.body.text();
      latencies[i] = performance.now() - t0;
      statuses.set(res.statusCode, (statuses.get(res.statusCode) ?? 0) + 1);
      onResponse?.(i, res.statusCode, text);
    }
  }
  await Promise.all(Array.from({ length: concurrency }, worker));
  const wallMs = performance.now() - started;
  await pool.close();
  return { wallMs, latencies: [...latencies], statuses: Object.fromEntries(statuses) };
}

export function percentile(values, p) {
  const sorted = [...values].sort((a, b) => a - b);
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

export function median(values) {
  return percentile(values, 50);
}
