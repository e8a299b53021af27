#!/usr/bin/env node
// Generates dist/cli/help.txt: the text of `alloy --help`, which bin/alloy.js prints without
// loading the CLI (commander and the command registry), like --version. The help is the same
// on every terminal (src/cli/main.ts fixes its width), so one file serves every run.
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const { runCli } = await import(pathToFileURL(path.join(root, 'dist', 'cli', 'main.js')).href);
let text = '';
const sink = { write: (s) => ((text += s), true) };
const code = await runCli(['--help'], { stdout: sink, stderr: sink, stdin: process.stdin, env: {}, cwd: root });
if (code !== 0 || !text.startsWith('Usage: alloy')) throw new Error(`alloy --help exited ${code}:\n${text}`);
writeFileSync(path.join(root, 'dist', 'cli', 'help.txt'), text);
console.log('wrote dist/cli/help.txt');
