/**
 * Files `alloy dev` keeps under `.alloy/` (gitignored):
 *   dev.sqlite       the event log (see event-log.ts), dev.sqlite.pid beside it while open
 *   dev.json         the running server's address, so `emit`, `executions`, `replay`, `logs` find it
 *   stream-secret    the Standard Webhooks secret (`whsec_…`) generated once, stable across restarts
 *   recordings/      fixtures written by `alloy dev --record`
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { parseEnv } from 'node:util';

export interface DevInfo {
  url: string;
  pid: number;
  startedAt: string;
  /** The ingress-only listener, when a tunnel is open. */
  ingressUrl?: string;
  /** The tunnel's public URL. */
  publicUrl?: string;
  /** Apps faked for this run (`alloy dev --fake`): `alloy emit` signs as the fake. */
  fakes?: string[];
}

export function alloyDir(root: string): string {
  return path.join(root, '.alloy');
}

export function devLogFile(root: string): string {
  return path.join(alloyDir(root), 'dev.sqlite');
}

export function devInfoFile(root: string): string {
  return path.join(alloyDir(root), 'dev.json');
}

export function recordingsDir(root: string): string {
  return path.join(alloyDir(root), 'recordings');
}

export function writeDevInfo(root: string, info: DevInfo): void {
  mkdirSync(alloyDir(root), { recursive: true });
  const file = devInfoFile(root);
  // Write then rename, so a reader never sees half a file.
  writeFileSync(`${file}.${process.pid}.tmp`, `${JSON.stringify(info, null, 2)}\n`);
  renameSync(`${file}.${process.pid}.tmp`, file);
}

export function readDevInfo(root: string): DevInfo | undefined {
  try {
    const v = JSON.parse(readFileSync(devInfoFile(root), 'utf8')) as DevInfo;
    return typeof v.url === 'string' ? v : undefined;
  } catch {
    return undefined;
  }
}

/** Removes dev.json when it is ours (a newer server may have replaced it). */
export function removeDevInfo(root: string, pid: number): void {
  const info = readDevInfo(root);
  if (info && info.pid === pid) rmSync(devInfoFile(root), { force: true });
}

/** The stream signing secret: created once (0600), then the same on every start. */
export function loadOrCreateStreamSecret(root: string): { secret: string; created: boolean } {
  const file = path.join(alloyDir(root), 'stream-secret');
  try {
    const existing = readFileSync(file, 'utf8').trim();
    if (/^whsec_[A-Za-z0-9+/=]{20,}$/.test(existing)) return { secret: existing, created: false };
  } catch {
    /* create below */
  }
  mkdirSync(alloyDir(root), { recursive: true });
  // Standard Webhooks secrets are `whsec_` + base64 of 24 to 64 random bytes.
  const secret = `whsec_${randomBytes(32).toString('base64')}`;
  writeFileSync(file, `${secret}\n`, { mode: 0o600 });
  return { secret, created: true };
}

/**
 * The environment a local runtime sees: the project's `.env` under the process environment
 * (the process wins, as in connectors/credentials.ts). Parsed by node:util parseEnv, never executed.
 */
export async function loadProjectEnv(root: string, processEnv: NodeJS.ProcessEnv): Promise<Record<string, string | undefined>> {
  let dotenv: Record<string, string> = {};
  try {
    dotenv = parseEnv(await readFile(path.join(root, '.env'), 'utf8')) as Record<string, string>;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  const out: Record<string, string | undefined> = { ...dotenv };
  for (const [k, v] of Object.entries(processEnv)) if (v !== undefined && v !== '') out[k] = v;
  return out;
}
