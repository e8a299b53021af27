/**
 * Running the CLI in tests: in-process through runCli (fast, same code path minus the
 * launcher), or the built binary through execa (end to end).
 */
import path from 'node:path';
import { cp, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { runCli } from '../../src/cli/main.js';

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const BIN = path.join(REPO_ROOT, 'bin', 'alloy.js');

export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

class Capture {
  chunks: string[] = [];
  constructor(readonly isTTY = false) {}
  write(chunk: string) {
    this.chunks.push(chunk);
    return true;
  }
  get text() {
    return this.chunks.join('');
  }
}

export async function runInProcess(args: string[], options: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Promise<CliRun> {
  const stdout = new Capture();
  const stderr = new Capture();
  const code = await runCli(args, {
    stdout,
    stderr,
    env: { NO_COLOR: '1', ...options.env },
    cwd: options.cwd ?? REPO_ROOT,
  });
  return { code, stdout: stdout.text, stderr: stderr.text };
}

/** Spawns the built binary (run `npm run build` first; `npm test` does). */
export async function runBin(args: string[], options: { cwd?: string; env?: NodeJS.ProcessEnv; input?: string; timeout?: number } = {}): Promise<CliRun> {
  const r = await execa('node', [BIN, ...args], {
    cwd: options.cwd ?? REPO_ROOT,
    env: { NO_COLOR: '1', CI: 'true', ...options.env },
    extendEnv: true,
    reject: false,
    input: options.input,
    timeout: options.timeout ?? 30_000,
  });
  return { code: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr) };
}

export async function tempDir(prefix = 'alloy-test-'): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(path.join(os.tmpdir(), prefix));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

/** The bundled example project. */
export const EXAMPLE_DIR = path.join(REPO_ROOT, 'examples', 'shopify-sync');

/** A temporary copy of the bundled example, to change freely. */
export async function copyExample(): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const t = await tempDir();
  await cp(EXAMPLE_DIR, t.dir, { recursive: true });
  return t;
}

/** A stack trace line, as Node prints them. */
export const STACK_LINE = /^\s+at .+\(.+:\d+:\d+\)$|^\s+at .+:\d+:\d+$/m;
