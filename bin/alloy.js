#!/usr/bin/env node
// Thin launcher: all logic lives in dist/cli/main.js; this is the one place the process exits.
import { readFileSync } from 'node:fs';

const argv = process.argv.slice(2);
// `alloy --version` is run by scripts and CI often: answer it without loading the CLI.
if (argv.length === 1 && (argv[0] === '--version' || argv[0] === '-V')) {
  const { version } = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
  process.stdout.write(`${version}\n`);
  process.exit(0);
}

// `alloy --help` too, from the text the build wrote (scripts/build-help.mjs); without it, the CLI answers.
if (argv.length === 1 && (argv[0] === '--help' || argv[0] === '-h')) {
  let help;
  try {
    help = readFileSync(new URL('../dist/cli/help.txt', import.meta.url), 'utf8');
  } catch {
    help = undefined;
  }
  if (help !== undefined) {
    process.stdout.write(help);
    process.exit(0);
  }
}

// `alloy ... | head` closes the pipe early: that is not an error worth a stack trace.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (err) => {
    if (err && err.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw err;
  });
}

const { runCli } = await import('../dist/cli/main.js');
const code = await runCli(argv, {
  stdout: process.stdout,
  stderr: process.stderr,
  stdin: process.stdin,
  env: process.env,
  cwd: process.cwd(),
});
process.exitCode = code;
