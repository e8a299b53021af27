// Cold start of `alloy --version` and `alloy --help` against `node -e 0` (aim: <= 1.5x).
// Runs are interleaved so drift on a shared machine hits all three alike; medians reported.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { fmt, median, printTable, ratio, timeSpawn } from './lib.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const bin = path.join(root, 'bin', 'alloy.js');
const runs = Number(process.env.BENCH_RUNS ?? 21);
const samples = { base: [], version: [], help: [] };
for (let i = 0; i < 3; i++) timeSpawn(process.execPath, [bin, '--version']); // warm the fs cache
for (let i = 0; i < runs; i++) {
  samples.base.push(timeSpawn(process.execPath, ['-e', '0']));
  samples.version.push(timeSpawn(process.execPath, [bin, '--version']));
  samples.help.push(timeSpawn(process.execPath, [bin, '--help']));
}
const base = median(samples.base);
printTable(`CLI cold start (median of ${runs} runs)`, [
  ['command', 'median', 'vs node -e 0'],
  ['node -e 0 (baseline)', fmt(base), '1.00x'],
  ['alloy --version', fmt(median(samples.version)), ratio(median(samples.version), base)],
  ['alloy --help', fmt(median(samples.help)), ratio(median(samples.help), base)],
]);
