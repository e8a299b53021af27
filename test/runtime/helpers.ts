/** Helpers for tests that spawn the built `alloy` binary against real sockets. */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { execa, type ResultPromise } from 'execa';
import { REPO_ROOT } from '../server/helpers.js';

export const BIN = path.join(REPO_ROOT, 'bin', 'alloy.js');

export function requireBuild(): void {
  if (!existsSync(path.join(REPO_ROOT, 'dist', 'cli', 'main.js'))) {
    throw new Error('dist/ is missing: run `npm run build` before the runtime e2e tests');
  }
}

export function writeTree(root: string, files: Record<string, string>): void {
  for (const [rel, text] of Object.entries(files)) {
    const file = path.join(root, rel);
    mkdirSync(path.dirname(file), { recursive: true });
    writeFileSync(file, text);
  }
}

/** A destination that records every request (path, headers, body) and answers 200 after `delayMs`. */
export async function startSink(delayMs = 0) {
  const requests: { path: string; headers: http.IncomingHttpHeaders; body: string }[] = [];
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (d) => (body += d));
    req.on('end', () => {
      requests.push({ path: req.url ?? '', headers: req.headers, body });
      setTimeout(() => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end('{"ok":true}');
      }, delayMs);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return { url, requests, close: () => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); }) };
}

/** Spawns `alloy dev -p 0` in `cwd` and resolves with its URL once .alloy/dev.json names this process. */
export async function startDev(cwd: string, extraArgs: string[] = [], env: Record<string, string> = {}): Promise<{ proc: ResultPromise; url: string; output: () => string }> {
  const proc = execa(process.execPath, [BIN, 'dev', '-p', '0', ...extraArgs], {
    cwd,
    env: { ...env, NO_COLOR: '1' },
    reject: false,
    all: true,
  });
  let output = '';
  proc.all!.on('data', (d: Buffer) => (output += d.toString()));
  const infoFile = path.join(cwd, '.alloy', 'dev.json');
  const deadline = Date.now() + 15_000;
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`alloy dev exited early:\n${output}`);
    if (existsSync(infoFile)) {
      try {
        const info = JSON.parse(readFileSync(infoFile, 'utf8'));
        // Ready once the banner is out (dev.json is written just before it).
        if (info.pid === proc.pid && /Ctrl-C to stop|"type":"ready"/.test(output)) return { proc, url: info.url, output: () => output };
      } catch {
        /* being written */
      }
    }
    if (Date.now() > deadline) {
      proc.kill('SIGKILL');
      throw new Error(`alloy dev did not start:\n${output}`);
    }
    await new Promise((r) => setTimeout(r, 25));
  }
}

export function runAlloy(cwd: string, args: string[], options: { env?: Record<string, string>; input?: string } = {}) {
  return execa(process.execPath, [BIN, ...args], { cwd, env: { NO_COLOR: '1', ...options.env }, reject: false, input: options.input });
}
