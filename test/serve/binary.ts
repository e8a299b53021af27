/** Spawning the built `alloy` binary for the serve end-to-end tests (`npm run build` first). */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { REPO_ROOT } from './helpers.js';

export const BIN = path.join(REPO_ROOT, 'bin', 'alloy.js');

const baseEnv = (env: Record<string, string>) => ({ PATH: process.env.PATH ?? '', NO_COLOR: '1', ...env });

export function runAlloy(args: string[], cwd: string, env: Record<string, string>): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, ...args], { cwd, env: baseEnv(env), stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b) => (stdout += b));
    child.stderr.on('data', (b) => (stderr += b));
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** `alloy serve --port 0 --json …` in the background; resolves once it printed its URL. */
export async function spawnServe(args: string[], cwd: string, env: Record<string, string>): Promise<{ child: ChildProcess; url: string; first: string; stop(signal?: NodeJS.Signals): Promise<void> }> {
  const child = spawn(process.execPath, [BIN, 'serve', '--port', '0', '--json', ...args], { cwd, env: baseEnv(env), stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (b) => (stderr += b));
  let first = '';
  const url = await new Promise<string>((resolve, reject) => {
    // The banner is the JSON object that names the url (or, for a failed start, the error);
    // anything printed before it (a library's notice) is skipped rather than taken for the banner.
    child.stdout!.on('data', (b) => {
      first += b;
      const at = Math.max(first.indexOf('"url":'), first.indexOf('"ok": false'));
      const start = at < 0 ? -1 : first.lastIndexOf('{', at);
      const end = start < 0 ? -1 : first.indexOf('\n}', at);
      if (end < 0) return;
      first = first.slice(start, end + 2);
      const banner = JSON.parse(first) as { ok: boolean; url?: string };
      // A failed start is reported at once, not after the test's timeout (and the process is not left running).
      if (!banner.ok) {
        child.kill('SIGKILL');
        reject(new Error(`alloy serve failed to start: ${first}\n${stderr}`));
      } else resolve(banner.url!);
    });
    child.once('exit', () => reject(new Error(`alloy serve exited: ${stderr}`)));
  });
  return {
    child,
    url,
    first,
    stop: async (signal = 'SIGTERM') => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((r) => child.once('exit', r));
      child.kill(signal);
      await exited;
    },
  };
}
