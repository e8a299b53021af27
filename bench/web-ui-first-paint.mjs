// First paint of the web UI's executions list with 10,000 stored executions against an empty
// store of executions (aim: <= 2x), for `alloy dev` (the event log) and `alloy serve` (its
// SQLite state, signed in with an admin key). Each pair is two built binaries, one empty,
// one full; Debian's Chromium opens each page fresh and reads the UI's `alloy:list-painted`
// performance mark (set on the frame after the first page of the list renders). Runs
// alternate between the two; medians reported. BENCH_UI=dev|serve runs one pair only.
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
const which = process.env.BENCH_UI ?? 'dev,serve';
const MASTER_KEY = Buffer.alloc(32, 3).toString('base64');

if (!existsSync(CHROMIUM)) {
  console.log(`web-ui-first-paint skipped: no Chromium at ${CHROMIUM} (apt-get install chromium, or set ALLOY_CHROMIUM)`);
  process.exit(0);
}
if (!existsSync(path.join(root, 'dist', 'ui', 'index.html'))) throw new Error('dist/ui is missing: run `npm run build`');

const { openEventLog } = await import(path.join(root, 'dist', 'server', 'event-log.js'));
const { openSqliteState } = await import(path.join(root, 'dist', 'serve', 'state', 'sqlite-state.js'));
const { createApiKey } = await import(path.join(root, 'dist', 'serve', 'admin.js'));
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

/**
 * `alloy serve`'s data folder with `count` finished executions (the same records as dev's),
 * written through the state's ingest as the runtime would; returns an admin key.
 */
async function fillServe(dir, count) {
  const state = openSqliteState(path.join(dir, 'data', 'serve.db'));
  const start = Date.now() - count * 1000;
  let batch = [];
  for (let i = 0; i < count; i++) {
    const now = start + i * 1000;
    const id = `ex_${now.toString(36).padStart(9, '0')}${String(i).padStart(12, '0')}`;
    const at = new Date(now).toISOString();
    const status = i % 10 === 0 ? 'failed' : 'succeeded';
    const step = (sid) => ({ path: sid, id: sid, kind: 'action', uses: 'transform', status: 'succeeded', attempts: 1, inputs: { id: i }, output: { id: i }, startedAt: at, endedAt: at, durationMs: 2 });
    const record = {
      id, workflow: 'acme/sync', version: 'v1', userId: `user-${i % 100}`, event: { id: i, email: `user${i}@example.com` }, status, createdAt: at, startedAt: at, endedAt: at, durationMs: 5,
      steps: { map: step('map'), more: step('more') },
      ...(status === 'failed' ? { error: { code: 'E_BENCH', message: 'failed on purpose', step: 'more' } } : {}),
    };
    batch.push({ id, installationId: `inst_${i % 100}`, userId: `user-${i % 100}`, integration: 'acme', version: 1, workflow: 'acme/sync', status, record, createdAt: at, updatedAt: at });
    if (batch.length >= 500) {
      await state.executions.ingest({ executions: batch });
      batch = [];
    }
  }
  if (batch.length) await state.executions.ingest({ executions: batch });
  const { key } = await createApiKey(state, 'admin', 'bench', Date.now());
  await state.close();
  return key;
}

function startServe(dir) {
  return new Promise((resolve, reject) => {
    mkdirSync(path.join(dir, 'store'), { recursive: true });
    const proc = spawn(process.execPath, [bin, 'serve', '--port', '0', '--json', '--data', path.join(dir, 'data'), '--store', path.join(dir, 'store')], { cwd: dir, env: { ...process.env, NO_COLOR: '1', ALLOY_MASTER_KEY: MASTER_KEY }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    const timer = setTimeout(() => reject(new Error(`alloy serve did not start in ${dir}:\n${out}${err}`)), 20_000);
    proc.stderr.on('data', (d) => (err += d));
    proc.stdout.on('data', (d) => {
      out += d;
      if (out.trim().endsWith('}')) {
        clearTimeout(timer);
        resolve({ proc, url: JSON.parse(out).url });
      }
    });
    proc.on('exit', (code) => reject(new Error(`alloy serve exited ${code}:\n${out}${err}`)));
  });
}

const userDataDir = mkdtempSync(path.join(os.tmpdir(), 'alloy-bench-chromium-'));
const context = await chromium.launchPersistentContext(userDataDir, {
  executablePath: CHROMIUM,
  headless: true,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-quic', '--no-first-run', '--disable-component-update', '--disable-sync'],
});

/** `token`: serve's admin key, put where the UI keeps a signed-in session before the page loads. */
async function firstPaint(url, expectRows, token) {
  const page = await context.newPage();
  try {
    if (token) await page.addInitScript((t) => sessionStorage.setItem('alloy.serve.session', JSON.stringify({ token: t, kind: 'admin' })), token);
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

async function firstPage(url, token, query) {
  const t0 = process.hrtime.bigint();
  const res = await fetch(`${url}/v1/executions?limit=50${query}`, token ? { headers: { authorization: `Bearer ${token}` } } : {});
  if (!res.ok) throw new Error(`GET /v1/executions answered ${res.status}`);
  await res.json();
  return Number(process.hrtime.bigint() - t0) / 1e6;
}

/** One runtime: an empty and a full one side by side; returns the first-paint ratio. */
async function measure(label, empty, full, tokens = {}, query = '') {
  const samples = { empty: [], full: [] };
  const api = { empty: [], full: [] };
  for (let i = 0; i < 3 * runs; i++) {
    api.empty.push(await firstPage(empty.url, tokens.empty, query));
    api.full.push(await firstPage(full.url, tokens.full, query));
  }
  // Warm both (assets, SQLite page cache), then alternate.
  await firstPaint(empty.url, 0, tokens.empty);
  await firstPaint(full.url, 50, tokens.full);
  for (let i = 0; i < runs; i++) {
    samples.empty.push(await firstPaint(empty.url, 0, tokens.empty));
    samples.full.push(await firstPaint(full.url, 50, tokens.full));
  }
  const base = median(samples.empty);
  const big = median(samples.full);
  printTable(`Web UI in ${label}: first paint of the executions list (median of ${runs} page loads, Chromium headless)`, [
    ['executions stored', 'first paint', 'vs empty'],
    ['none (baseline)', fmt(base), '1.00x'],
    [`${COUNT}`, fmt(big), ratio(big, base)],
  ]);
  printTable(`${label}: GET /v1/executions?limit=50${query}, the list's first request (median of ${3 * runs})`, [
    ['executions stored', 'answer', 'vs empty'],
    ['none (baseline)', fmt(median(api.empty)), '1.00x'],
    [`${COUNT}`, fmt(median(api.full)), ratio(median(api.full), median(api.empty))],
  ]);
  return big / base;
}

const over = [];
const procs = [];
try {
  if (which.includes('dev')) {
    const emptyDir = project('empty');
    const fullDir = project('full');
    const t0 = Date.now();
    await fill(fullDir, COUNT);
    console.log(`dev: stored ${COUNT} executions in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    const empty = await startDev(emptyDir);
    const full = await startDev(fullDir);
    procs.push(empty.proc, full.proc);
    if ((await measure('alloy dev', empty, full)) > 2) over.push('alloy dev');
  }
  if (which.includes('serve')) {
    const emptyDir = path.join(tmp, 'serve-empty');
    const fullDir = path.join(tmp, 'serve-full');
    const t0 = Date.now();
    const tokens = { empty: await fillServe(emptyDir, 0), full: await fillServe(fullDir, COUNT) };
    console.log(`serve: stored ${COUNT} executions in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    const empty = await startServe(emptyDir);
    const full = await startServe(fullDir);
    procs.push(empty.proc, full.proc);
    if ((await measure('alloy serve', empty, full, tokens, '&order=desc')) > 2) over.push('alloy serve');
  }
} finally {
  await context.close();
  for (const p of procs) p.kill('SIGTERM');
  rmSync(userDataDir, { recursive: true, force: true });
}
await new Promise((r) => setTimeout(r, 500));
rmSync(tmp, { recursive: true, force: true });

if (over.length) {
  console.log(`over the 2x budget (${over.join(', ')}): the list must stay paged (first page only)`);
  process.exit(1);
}
