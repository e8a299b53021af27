/**
 * The seed flow against the built binary (`npm run build` first): `alloy serve keys create`
 * and `alloy serve` spawned in a temp project whose config points Shopify at the fake.
 */
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { stringify } from 'yaml';
import { LocalStore } from '../../src/store/lib.js';
import { seedFlow } from './seed-flow.js';
import { REPO_ROOT, tempDir } from './helpers.js';

const BIN = path.join(REPO_ROOT, 'bin', 'alloy.js');

function run(args: string[], cwd: string, env: Record<string, string>): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, ...args], { cwd, env: { PATH: process.env.PATH ?? '', NO_COLOR: '1', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b) => (stdout += b));
    child.stderr.on('data', (b) => (stderr += b));
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

seedFlow('built binary', async ({ settings, env }) => {
  const project = tempDir('alloy-serve-project-');
  writeFileSync(path.join(project, 'alloy.config.yaml'), stringify({ apiVersion: 'alloy/v1', kind: 'Project', name: 'serve-e2e', apps: settings }));
  const data = path.join(project, 'data');
  const storeDir = path.join(project, 'store');
  const fullEnv = { ...env, ALLOY_MASTER_KEY: Buffer.alloc(32, 1).toString('base64') };
  const key = async (role: string) => {
    const r = await run(['serve', 'keys', 'create', '--role', role, '--data', data, '--json'], project, fullEnv);
    if (r.code !== 0) throw new Error(`keys create failed: ${r.stderr}`);
    return JSON.parse(r.stdout).key as string;
  };
  const admin = await key('admin');
  const store = new LocalStore(storeDir);
  await store.init();
  const child = spawn(process.execPath, [BIN, 'serve', '--port', '0', '--data', data, '--store', storeDir, '--json'], { cwd: project, env: { PATH: process.env.PATH ?? '', NO_COLOR: '1', ...fullEnv }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (b) => (stderr += b));
  const url = await new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (b) => {
      out += b;
      if (out.trim().endsWith('}')) resolve(JSON.parse(out).url);
    });
    child.once('exit', () => reject(new Error(`alloy serve exited: ${stderr}`)));
  });
  return {
    url,
    admin,
    store,
    key,
    close: async () => {
      if (child.exitCode === null) {
        child.kill('SIGTERM');
        await new Promise((r) => child.once('exit', r));
      }
    },
  };
}, 90_000);
