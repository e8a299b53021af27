// Cold start of `alloy --version`, `alloy --help` (aim: <= 1.5x) and `alloy validate` on the
// four-file example (aim: <= 5x) against `node -e 0`. Runs are interleaved so drift on a shared
// machine hits all alike; medians reported.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { fmt, median, printTable, ratio, timeSpawn } from './lib.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const bin = path.join(root, 'bin', 'alloy.js');
const runs = Number(process.env.BENCH_RUNS ?? 21);
const example = path.join(root, 'examples', 'shopify-sync');
const samples = { base: [], version: [], help: [], validate: [] };
for (let i = 0; i < 3; i++) timeSpawn(process.execPath, [bin, '--version']); // warm the fs cache
for (let i = 0; i < runs; i++) {
  samples.base.push(timeSpawn(process.execPath, ['-e', '0']));
  samples.version.push(timeSpawn(process.execPath, [bin, '--version']));
  samples.help.push(timeSpawn(process.execPath, [bin, '--help']));
  samples.validate.push(timeSpawn(process.execPath, [bin, 'validate'], { cwd: example }));
}
const base = median(samples.base);
printTable(`CLI cold start (median of ${runs} runs)`, [
  ['command', 'median', 'vs node -e 0'],
  ['node -e 0 (baseline)', fmt(base), '1.00x'],
  ['alloy --version', fmt(median(samples.version)), ratio(median(samples.version), base)],
  ['alloy --help (aim <= 1.5x)', fmt(median(samples.help)), ratio(median(samples.help), base)],
  ['alloy validate, example (aim <= 5x)', fmt(median(samples.validate)), ratio(median(samples.validate), base)],
]);
