// The durable part of serve's ingest (issue 11 (a)) without HTTP: `executions.ingest` of the
// SQLite state (dist/), one execution and an Idempotency-Key per call, C callers at once (the
// group commit then makes transactions of C rows, as wrk's 50 connections make about 25 in
// bench/serve-bench.mjs (a)). Each configuration runs in a child process of its own, alternated,
// medians of RUNS. Per row: the process's CPU (all threads, kernel included: the WAL pwrites and
// the fdatasync's write-back are most of it) and the bytes it wrote (/proc/self/io wchar: WAL
// frames and checkpoints).
//   keys "bench": `<run>-<n>` as serve-bench's wrk script sends (nearly in order: each
//     transaction appends to the same few leaves of the dedupe b-tree);
//   keys "uuid": random, as most clients send (each row's key lands on a leaf of its own).
// Usage: npm run build && node bench/serve-state-ingest.mjs [--runs N] [--rows N]
import { fork } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { median, printTable } from './lib.mjs';

const argValue = (name) => {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
};

const wchar = () => Number(/wchar:\s*(\d+)/.exec(readFileSync('/proc/self/io', 'utf8'))?.[1] ?? NaN);

async function child(keys, callers, rows) {
  const dist = new URL('../dist/', import.meta.url).href;
  const { openSqliteState } = await import(`${dist}serve/state/sqlite-state.js`);
  const { executionRowFor } = await import(`${dist}serve/ingest.js`);
  const dir = mkdtempSync(path.join(os.tmpdir(), 'alloy-state-ingest-'));
  const state = openSqliteState(path.join(dir, 'serve.db'));
  const at = new Date().toISOString();
  const inst = { id: 'inst_0000', userId: 'u1', integration: 'bench', version: 1, status: 'active', credentials: {}, config: {}, createdAt: at, updatedAt: at };
  const run = `${Date.now()}-${Math.floor(Math.random() * 1e9)}`;
  let n = 0;
  const one = async (limit) => {
    while (n < limit) {
      const k = ++n;
      const row = executionRowFor(inst, 'bench/ingest', { n: k, sku: `SKU-${k}`, qty: (k % 5) + 1 }, Date.now());
      const key = keys === 'uuid' ? randomUUID() : `${run}-${k}`;
      await state.executions.ingest({ dedupeKey: `event:u1:${key}`, executions: [row] });
    }
  };
  const go = (limit) => Promise.all(Array.from({ length: callers }, () => one(limit)));
  await go(Math.min(5000, rows / 4)); // warm-up (JIT, a first checkpoint)
  const first = n;
  const cpu0 = process.cpuUsage();
  const w0 = wchar();
  await go(first + rows);
  const cpu = process.cpuUsage(cpu0);
  const written = wchar() - w0;
  const count = n - first;
  await state.close();
  rmSync(dir, { recursive: true, force: true });
  process.send({ cpuUs: (cpu.user + cpu.system) / count, kbWritten: written / count / 1024 });
}

function runChild(keys, callers, rows) {
  return new Promise((resolve, reject) => {
    const c = fork(fileURLToPath(import.meta.url), ['--child', keys, String(callers), String(rows)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    let result;
    c.once('message', (m) => (result = m));
    c.once('error', reject);
    c.once('exit', (code) => (code === 0 && result ? resolve(result) : reject(new Error(`child exited ${code}`))));
  });
}

if (process.argv[2] === '--child') {
  await child(process.argv[3], Number(process.argv[4]), Number(process.argv[5]));
} else {
  const RUNS = Number(argValue('--runs') ?? 3);
  const ROWS = Number(argValue('--rows') ?? 40000);
  const configs = [
    ['bench keys, 25 per transaction', 'bench', 25],
    ['uuid keys, 25 per transaction', 'uuid', 25],
    ['bench keys, 50 per transaction', 'bench', 50],
    ['uuid keys, 50 per transaction', 'uuid', 50],
  ];
  const results = configs.map(() => []);
  for (let r = 0; r < RUNS; r++) for (const [i, [, keys, callers]] of configs.entries()) results[i].push(await runChild(keys, callers, ROWS));
  const base = median(results[0].map((x) => x.cpuUs));
  console.log(`SQLite state ingest in-process (dist/), ${ROWS} rows per run, ${RUNS} runs alternated, medians; load average ${os.loadavg()[0].toFixed(1)}`);
  printTable(
    'executions.ingest, one execution and one Idempotency-Key per call (durable: group commit + WAL fdatasync)',
    [
      ['configuration', 'CPU/row', 'KB written/row', 'CPU vs first'],
      ...configs.map(([label], i) => {
        const cpu = median(results[i].map((x) => x.cpuUs));
        return [label, `${cpu.toFixed(1)} µs`, median(results[i].map((x) => x.kbWritten)).toFixed(1), `${(cpu / base).toFixed(2)}x`];
      }),
    ],
  );
}
