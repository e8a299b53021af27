// Shared helpers for benchmarks: timing, medians, and a table printer. Each bench prints its
// figures next to a baseline measured in the same run, as a ratio (machines are noisy).
import { spawnSync } from 'node:child_process';

export function median(values) {
  const s = [...values].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

export function timeSpawn(cmd, args, options = {}) {
  const t0 = process.hrtime.bigint();
  const r = spawnSync(cmd, args, { stdio: 'ignore', ...options });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (r.status !== (options.expectStatus ?? 0)) throw new Error(`${cmd} ${args.join(' ')} exited ${r.status}`);
  return ms;
}

export async function timeAsync(fn) {
  const t0 = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - t0) / 1e6;
}

export function printTable(title, rows) {
  console.log(`\n${title}`);
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => String(r[i]).length)));
  for (const [n, r] of rows.entries()) {
    console.log('  ' + r.map((c, i) => String(c).padEnd(widths[i])).join('  '));
    if (n === 0) console.log('  ' + widths.map((w) => '-'.repeat(w)).join('  '));
  }
}

export const fmt = (ms) => `${ms.toFixed(1)} ms`;
export const ratio = (a, b) => `${(a / b).toFixed(2)}x`;

/** Engine dependencies with no I/O (no connectors, no HTTP, no persistence) for in-process engine benches. */
export function benchEngineDeps(extra = {}) {
  return {
    connectors: { get: () => undefined, names: () => [] },
    http: async () => {
      throw new Error('no http in this bench');
    },
    // The real clock: record timestamps cost what they cost in production.
    clock: { now: () => Date.now(), sleep: async () => {} },
    random: Math.random,
    checkpoint: async () => {},
    logger: { debug() {}, info() {}, warn() {} },
    resolveConnection: async () => ({}),
    ...extra,
  };
}

/** Warms up two measurements, then alternates them `runs` times (so drift hits both alike); their medians. */
export async function pairedMedians(runs, first, second) {
  await first();
  await second();
  const a = [];
  const b = [];
  for (let i = 0; i < runs; i++) {
    a.push(await first());
    b.push(await second());
  }
  return [median(a), median(b)];
}
