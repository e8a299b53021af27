// Store benchmark: `npm run build && node bench/store-bench.mjs`
//
// 1. Release of 200 workflows into an empty store, against a baseline measured in the same
//    run: writing the same 200 payloads as plain files with fsync (what durability costs anyway).
// 2. A no-op release of the same tree (hash + compare with the latest; writes nothing).
// 3. With 10 / 100 / 1,000 versions of history: no-op release, reading one version, `versions`
//    (all of them), and a diff of two versions. Each figure is the median of several runs and
//    is printed with its ratio to the 10-version case: a no-op release and reading one version
//    should stay ~1x, listing all versions grows with their count by design.
import { mkdtemp, rm, open, mkdir } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const lib = await import(path.join(here, '..', 'dist', 'store', 'index.js'));
const { LocalStore, releaseIntegration, planRelease, loadRelease, listVersionInfo, diffDefinitions, encodeObject } = lib;

const RUNS = Number(process.env.BENCH_RUNS ?? 5);
// Reads are sub-millisecond: more runs so one disk hiccup (a shared machine) does not move the median.
const READ_RUNS = Math.max(RUNS, 15);
const opts = { author: 'bench', now: () => new Date('2026-01-01T00:00:00Z') };
const tmp = [];
const tempDir = async () => {
  const d = await mkdtemp(path.join(os.tmpdir(), 'alloy-store-bench-'));
  tmp.push(d);
  return d;
};

function wf(name, variant = 0) {
  return {
    apiVersion: 'alloy/v1',
    kind: 'Workflow',
    name,
    trigger: { event: `acme.${name}` },
    steps: [
      { id: 'order', uses: 'shopify/createOrder', with: { email: '{{ event.email }}', phone: '{{ event.phone }}', note: `v${variant}` }, retry: { attempts: 5 } },
      { id: 'check', if: '{{ steps.order.output.id }}', then: [{ id: 'notify', uses: 'http', with: { url: 'https://acme.example/n', body: { id: '{{ steps.order.output.id }}' } } }] },
      { id: 'summary', uses: 'transform', with: { orderId: '{{ event.id }}', total: '{{ $number(event.total_price) }}' } },
    ],
  };
}
function source(count, variants = {}) {
  return {
    name: 'bench',
    def: { apiVersion: 'alloy/v1', kind: 'Integration', name: 'bench', app: 'shopify' },
    workflows: Array.from({ length: count }, (_, i) => ({ name: `w${String(i).padStart(3, '0')}`, def: wf(`w${String(i).padStart(3, '0')}`, variants[i] ?? 0) })),
  };
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
};
async function time(fn) {
  const t0 = performance.now();
  await fn();
  return performance.now() - t0;
}
async function medianOf(runs, fn) {
  const xs = [];
  for (let i = 0; i < runs; i++) xs.push(await time(fn));
  return median(xs);
}
const ms = (x) => `${x.toFixed(2)} ms`;
const ratio = (x, base) => `${(x / base).toFixed(2)}x`;

// ---------------------------------------------------------------- 1 + 2: 200 workflows
const big = source(200);
const baseline = await medianOf(RUNS, async () => {
  const dir = await tempDir();
  for (const w of big.workflows) {
    const o = encodeObject({ type: 'workflow', def: w.def });
    const d = path.join(dir, o.id.slice(0, 2));
    await mkdir(d, { recursive: true });
    const fh = await open(path.join(d, o.id.slice(2)), 'wx');
    await fh.writeFile(o.bytes);
    await fh.sync();
    await fh.close();
  }
});
let storeFor200;
const release200 = await medianOf(RUNS, async () => {
  storeFor200 = new LocalStore(await tempDir());
  const r = await releaseIntegration(storeFor200, big, opts);
  if (r.status !== 'released' || r.objectsWritten !== 202) throw new Error('unexpected release result');
});
const noop200 = await medianOf(RUNS, async () => {
  const r = await releaseIntegration(storeFor200, big, opts);
  if (r.status !== 'up-to-date') throw new Error('expected up to date');
});

console.log('\nRelease of 200 workflows (median of %d runs)', RUNS);
console.log('| case | time | vs baseline |');
console.log('|---|---:|---:|');
console.log(`| baseline: write 200 files + fsync each | ${ms(baseline)} | 1.00x |`);
console.log(`| release 200 workflows into an empty store | ${ms(release200)} | ${ratio(release200, baseline)} |`);
console.log(`| no-op release of the same tree | ${ms(noop200)} | ${ratio(noop200, baseline)} |`);

// ---------------------------------------------------------------- 3: history length
const SIZES = [10, 100, 1000];
const TREE = 20;
const rows = [];
for (const size of SIZES) {
  const store = new LocalStore(await tempDir());
  const variants = {};
  const t0 = performance.now();
  for (let v = 1; v <= size; v++) {
    variants[v % TREE] = v; // each release changes one workflow
    await releaseIntegration(store, source(TREE, variants), opts);
  }
  const buildMs = performance.now() - t0;
  const latestSource = source(TREE, variants);
  const noop = await medianOf(READ_RUNS, async () => {
    const p = await planRelease(store, latestSource);
    if (!p.upToDate) throw new Error('expected up to date');
  });
  const readOne = await medianOf(READ_RUNS, async () => {
    const ref = await store.readVersion('bench', Math.ceil(size / 2));
    await loadRelease(store, 'bench', ref);
  });
  const readLatest = await medianOf(READ_RUNS, async () => {
    const ref = await store.latestVersion('bench');
    await loadRelease(store, 'bench', ref);
  });
  const versions = await medianOf(RUNS, async () => {
    const list = await listVersionInfo(store, 'bench');
    if (list.length !== size) throw new Error('bad count');
  });
  const diff = await medianOf(READ_RUNS, async () => {
    const a = await loadRelease(store, 'bench', await store.readVersion('bench', 1));
    const b = await loadRelease(store, 'bench', await store.readVersion('bench', size));
    diffDefinitions('bench', { label: 'a', defs: { integration: a.integration, workflows: a.workflows } }, { label: 'b', defs: { integration: b.integration, workflows: b.workflows } });
  });
  rows.push({ size, buildMs, noop, readOne, readLatest, versions, diff, dir: store.dir });
}
const base = rows[0];
console.log(`\nStore size vs time (median of ${READ_RUNS} runs, ${RUNS} for \`versions\`; ${TREE}-workflow integration; ratio vs the 10-version store)`);
console.log('| versions | no-op release | read one version | read latest | `versions` (list all) | diff v1..vN |');
console.log('|---:|---:|---:|---:|---:|---:|');
for (const r of rows) {
  const cell = (k) => `${ms(r[k])} (${ratio(r[k], base[k])})`;
  console.log(`| ${r.size} | ${cell('noop')} | ${cell('readOne')} | ${cell('readLatest')} | ${cell('versions')} | ${cell('diff')} |`);
}
console.log(`\n(building the 1,000-version store took ${(rows[rows.length - 1].buildMs / 1000).toFixed(1)} s: ${(rows[rows.length - 1].buildMs / 1000).toFixed(2)} ms per release)`);

// The same through the CLI on the 1,000-version store (process start included), against
// `alloy --version` as the baseline (what any command costs to start).
const { spawnSync } = await import('node:child_process');
const bin = path.join(here, '..', 'bin', 'alloy.js');
const cliTime = (args) =>
  medianOf(RUNS, async () => {
    const r = spawnSync(process.execPath, [bin, ...args], { stdio: 'ignore' });
    if (r.status !== 0) throw new Error(`alloy ${args.join(' ')} exited ${r.status}`);
  });
const last = rows[rows.length - 1];
const startup = await cliTime(['--version']);
const cliVersions = await cliTime(['versions', 'bench', '--store', last.dir, '--json']);
const cliDiff = await cliTime(['diff', 'bench@1', `bench@${last.size}`, '--store', last.dir, '--json']);
const cliShow = await cliTime(['show', `bench@${last.size}`, '--store', last.dir]);
console.log(`\nCLI on the ${last.size}-version store (median of ${RUNS} runs)`);
console.log('| command | time | vs `alloy --version` |');
console.log('|---|---:|---:|');
console.log(`| alloy --version (baseline) | ${ms(startup)} | 1.00x |`);
console.log(`| alloy versions bench --json (${last.size} versions) | ${ms(cliVersions)} | ${ratio(cliVersions, startup)} |`);
console.log(`| alloy diff bench@1 bench@${last.size} | ${ms(cliDiff)} | ${ratio(cliDiff, startup)} |`);
console.log(`| alloy show bench@${last.size} | ${ms(cliShow)} | ${ratio(cliShow, startup)} |`);

await Promise.all(tmp.map((d) => rm(d, { recursive: true, force: true })));
