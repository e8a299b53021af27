#!/usr/bin/env node
// `npm test`: build (e2e tests spawn the built binary), run vitest, and end with the plain
// "N passed, N failed, N skipped" line that CI reads. Exit code is vitest's.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const run = (cmd, args) => spawnSync(cmd, args, { stdio: 'inherit', shell: false });
const bin = (name) => path.join('node_modules', '.bin', name);

const build = run(bin('tsc'), ['-p', 'tsconfig.build.json']);
if (build.status === 0) Object.assign(build, run(process.execPath, ['scripts/build-validators.mjs']));
// The web UI (ui/ → dist/ui/), which the runtime serves and the browser tests open.
if (build.status === 0) Object.assign(build, run(bin('vite'), ['build', '--config', 'ui/vite.config.mjs']));
if (build.status !== 0) {
  console.error('build failed');
  process.exit(build.status ?? 1);
}

const dir = mkdtempSync(path.join(os.tmpdir(), 'alloy-vitest-'));
const report = path.join(dir, 'report.json');
const vitest = run(bin('vitest'), ['run', '--reporter=default', '--reporter=json', `--outputFile.json=${report}`, ...process.argv.slice(2)]);
let summary = '';
try {
  const r = JSON.parse(readFileSync(report, 'utf8'));
  summary = `${r.numPassedTests} passed, ${r.numFailedTests} failed, ${r.numPendingTests + (r.numTodoTests ?? 0)} skipped`;
} catch {
  summary = 'tests: no report (vitest did not finish)';
}
rmSync(dir, { recursive: true, force: true });
console.log(summary);
process.exit(vitest.status ?? 1);
