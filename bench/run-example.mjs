// Wall time of `alloy run` on the bundled example against the fake Shopify (dist/testing),
// next to `alloy validate` on the same project: what a run adds to loading and checking.
import { cpSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { spawn } from 'node:child_process';
import { fmt, median, printTable, ratio, timeSpawn } from './lib.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const bin = path.join(root, 'bin', 'alloy.js');
const runs = Number(process.env.BENCH_RUNS ?? 11);

// The fake runs in its own process so the timed commands do not compete with it for this
// event loop; it prints its URL, shop and token on stdout.
const child = spawn(process.execPath, ['--input-type=module', '-e', `
  const { startFakeShopify } = await import(${JSON.stringify(path.join(root, 'dist/testing/index.js'))});
  const fake = await startFakeShopify();
  console.log(JSON.stringify({ url: fake.url, shop: fake.shop, accessToken: fake.accessToken }));
`], { stdio: ['ignore', 'pipe', 'inherit'] });
const fake = await new Promise((resolve) => child.stdout.once('data', (b) => resolve(JSON.parse(String(b)))));

const dir = mkdtempSync(path.join(os.tmpdir(), 'alloy-bench-run-'));
cpSync(path.join(root, 'examples', 'shopify-sync'), dir, { recursive: true });
writeFileSync(path.join(dir, 'alloy.config.yaml'), `name: bench\napps:\n  shopify:\n    baseUrl: "${fake.url}"\n`);
writeFileSync(path.join(dir, '.env'), `SHOPIFY_SHOP=${fake.shop}\nSHOPIFY_ACCESS_TOKEN=${fake.accessToken}\n`);

const event = '@integrations/shopify-sync/fixtures/acme-order-requested.json';
const samples = { base: [], validate: [], dry: [], run: [] };
for (let i = 0; i < runs; i++) {
  samples.base.push(timeSpawn(process.execPath, ['-e', '0']));
  samples.validate.push(timeSpawn(process.execPath, [bin, 'validate'], { cwd: dir }));
  samples.dry.push(timeSpawn(process.execPath, [bin, 'run', 'shopify-sync/create-order', '--event', event, '--dry-run'], { cwd: dir }));
  samples.run.push(timeSpawn(process.execPath, [bin, 'run', 'shopify-sync/create-order', '--event', event], { cwd: dir }));
}
child.kill();
rmSync(dir, { recursive: true, force: true });

const v = median(samples.validate);
printTable(`alloy run on examples/shopify-sync against the fake Shopify (median of ${runs} runs)`, [
  ['command', 'median', 'vs alloy validate', 'vs node -e 0'],
  ['node -e 0', fmt(median(samples.base)), ratio(median(samples.base), v), '1.00x'],
  ['alloy validate', fmt(v), '1.00x', ratio(v, median(samples.base))],
  ['alloy run --dry-run create-order', fmt(median(samples.dry)), ratio(median(samples.dry), v), ratio(median(samples.dry), median(samples.base))],
  ['alloy run create-order (creates the order)', fmt(median(samples.run)), ratio(median(samples.run), v), ratio(median(samples.run), median(samples.base))],
]);
