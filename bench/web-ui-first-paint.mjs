// First paint of the web UI's executions list with 10,000 stored executions against an empty
// event log (aim: <= 2x). Both runtimes are the built `alloy dev`; Debian's Chromium opens
// each page fresh and reads the UI's `alloy:list-painted` performance mark (set on the frame
// after the first page of the list renders). Runs alternate between the two; medians reported.
// Without Chromium (/usr/bin/chromium or ALLOY_CHROMIUM) it says so and exits 0.
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { spawn } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { fmt, median, printTable, ratio } from './lib.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const bin = path.join(root, 'bin', 'alloy.js');
const CHROMIUM = process.env.ALLOY_CHROMIUM ?? '/usr/bin/chromium';
const COUNT = Number(process.env.BENCH_EXECUTIONS ?? 10_000);
const runs = Number(process.env.BENCH_RUNS ?? 9);

if (!existsSync(CHROMIUM)) {
  console.log(`web-ui-first-paint skipped: no Chromium at ${CHROMIUM} (apt-get install chromium, or set ALLOY_CHROMIUM)`);
  process.exit(0);
}
if (!existsSync(path.join(root, 'dist', 'ui', 'index.html'))) throw new Error('dist/ui is missing: run `npm run build`');

const { openEventLog } = await import(path.join(root, 'dist', 'server', 'event-log.js'));
const { chromium } = await import('playwright-core');

const tmp = mkdtempSync(path.join(os.tmpdir(), 'alloy-bench-ui-'));
const WORKFLOW = `apiVersion: alloy/v1
kind: Workflow
name: sync
trigger:
  event: acme.order.requested
steps:
  - id: map
    uses: transform
    with:
      id: "{{ event.id }}"
`;

function project(name) {
  const dir = path.join(tmp, name);
  mkdirSync(path.join(dir, 'integrations', 'acme', 'workflows'), { recursive: true });
  writeFileSync(path.join(dir, 'alloy.config.yaml'), 'apiVersion: alloy/v1\nkind: Project\nname: bench\n');
  writeFileSync(path.join(dir, 'integrations', 'acme', 'integration.yaml'), 'apiVersion: alloy/v1\nkind: Integration\nname: acme\napp: shopify\n');
  writeFileSync(path.join(dir, 'integrations', 'acme', 'workflows', 'sync.yaml'), WORKFLOW);
  return dir;
}

/** `count` finished executions, each with its delivery and a two-step record, written straight into the log. */
async function fill(dir, count) {
  mkdirSync(path.join(dir, '.alloy'), { recursive: true });
  const log = openEventLog({ file: path.join(dir, '.alloy', 'dev.sqlite'), synchronous: 'normal' });
  const start = Date.now() - count * 1000;
  const writes = [];
  for (let i = 0; i < count; i++) {
    const now = start + i * 1000;
    const id = `ex_bench${String(i).padStart(8, '0')}`;
    const event = { id: i, email: `user${i}@example.com`, lineItems: [{ title: 'Boots', quantity: 1, price: 10 }] };
    const status = i % 10 === 0 ? 'failed' : 'succeeded';
    const step = (sid) => ({ path: sid, id: sid, kind: 'action', uses: 'transform', status: 'succeeded', attempts: 1, inputs: { id: i }, output: { id: i }, startedAt: new Date(now).toISOString(), endedAt: new Date(now + 2).toISOString(), durationMs: 2 });
    const record = {
      id, workflow: 'acme/sync', version: 'wt-bench', event, status, createdAt: new Date(now).toISOString(), startedAt: new Date(now).toISOString(), endedAt: new Date(now + 5).toISOString(), durationMs: 5,
      steps: { map: step('map'), more: step('more') },
      ...(status === 'failed' ? { error: { code: 'E_BENCH', message: 'failed on purpose', step: 'more' } } : {}),
    };
    writes.push(
      log.appendDelivery(
        { id: `dl_bench${String(i).padStart(8, '0')}`, source: 'event', name: 'acme.order.requested', receivedAt: now, headers: { 'content-type': 'application/json' }, body: Buffer.from(JSON.stringify({ event: 'acme.order.requested', data: event })), verification: 'none' },
        [{ id, workflow: 'acme/sync', record, eventRef: 'body.data' }],
      ),
    );
    if (writes.length >= 500) await Promise.all(writes.splice(0));
  }
  await Promise.all(writes);
  log.close();
}

function startDev(dir) {
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, [bin, 'dev', '-p', '0', '--json'], { cwd: dir, env: { ...process.env, NO_COLOR: '1' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    const timer = setTimeout(() => reject(new Error(`alloy dev did not start in ${dir}:\n${out}`)), 20_000);
    proc.stdout.on('data', (d) => {
      out += d;
      for (const line of out.split('\n')) {
        try {
          const v = JSON.parse(line);
          if (v.type === 'ready') {
            clearTimeout(timer);
            resolve({ proc, url: v.url });
          }
        } catch {
          /* partial line */
        }
      }
    });
    proc.on('exit', (code) => reject(new Error(`alloy dev exited ${code}:\n${out}`)));
  });
}

const emptyDir = project('empty');
const fullDir = project('full');
const t0 = Date.now();
await fill(fullDir, COUNT);
console.log(`stored ${COUNT} executions in ${((Date.now() - t0) / 1000).toFixed(1)} s`);

const empty = await startDev(emptyDir);
const full = await startDev(fullDir);
const userDataDir = mkdtempSync(path.join(os.tmpdir(), 'alloy-bench-chromium-'));
const context = await chromium.launchPersistentContext(userDataDir, {
  executablePath: CHROMIUM,
  headless: true,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-quic', '--no-first-run', '--disable-component-update', '--disable-sync'],
});

async function firstPaint(url, expectRows) {
  const page = await context.newPage();
  try {
    await page.goto(`${url}/`);
    await page.waitForFunction(() => performance.getEntriesByName('alloy:list-painted').length > 0, undefined, { timeout: 30_000 });
    const ms = await page.evaluate(() => performance.getEntriesByName('alloy:list-painted')[0].startTime);
    const rows = await page.locator('tbody tr').count();
    if (rows !== expectRows) throw new Error(`expected ${expectRows} rows on the first page, saw ${rows}`);
    return ms;
  } finally {
    await page.close();
  }
}

async function firstPage(url) {
  const t0 = process.hrtime.bigint();
  const res = await fetch(`${url}/v1/executions?limit=50`);
  await res.json();
  return Number(process.hrtime.bigint() - t0) / 1e6;
}

const samples = { empty: [], full: [] };
const api = { empty: [], full: [] };
try {
  for (let i = 0; i < 3 * runs; i++) {
    api.empty.push(await firstPage(empty.url));
    api.full.push(await firstPage(full.url));
  }
  // Warm both (assets, SQLite page cache), then alternate.
  await firstPaint(empty.url, 0);
  await firstPaint(full.url, 50);
  for (let i = 0; i < runs; i++) {
    samples.empty.push(await firstPaint(empty.url, 0));
    samples.full.push(await firstPaint(full.url, 50));
  }
} finally {
  await context.close();
  empty.proc.kill('SIGTERM');
  full.proc.kill('SIGTERM');
  rmSync(userDataDir, { recursive: true, force: true });
}
await new Promise((r) => setTimeout(r, 500));
rmSync(tmp, { recursive: true, force: true });

const base = median(samples.empty);
const big = median(samples.full);
printTable(`Web UI: first paint of the executions list (median of ${runs} page loads, Chromium headless)`, [
  ['event log', 'first paint', 'vs empty log'],
  ['empty (baseline)', fmt(base), '1.00x'],
  [`${COUNT} executions`, fmt(big), ratio(big, base)],
]);
printTable(`GET /v1/executions?limit=50, the list's first request (median of ${3 * runs})`, [
  ['event log', 'answer', 'vs empty log'],
  ['empty (baseline)', fmt(median(api.empty)), '1.00x'],
  [`${COUNT} executions`, fmt(median(api.full)), ratio(median(api.full), median(api.empty))],
]);
if (big / base > 2) {
  console.log(`over the 2x budget: the list must stay paged (first page only)`);
  process.exit(1);
}
