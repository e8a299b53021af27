/** Helpers for the store tests: temp dirs, fixture projects as inline file trees, in-process CLI runs. */
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { runCli } from '../../src/cli/main.js';
import type { IntegrationDef, WorkflowDef, Step } from '../../src/core/model.js';
import type { IntegrationSource } from '../../src/store/index.js';

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const binPath = path.join(repoRoot, 'bin', 'alloy.js');
export const distStore = path.join(repoRoot, 'dist', 'store', 'index.js');

const dirs: string[] = [];
export async function tempDir(prefix = 'alloy-store-'): Promise<string> {
  const d = await mkdtemp(path.join(os.tmpdir(), prefix));
  dirs.push(d);
  return d;
}
export async function cleanupTempDirs(): Promise<void> {
  await Promise.all(dirs.splice(0).map((d) => rm(d, { recursive: true, force: true })));
}

export function workflow(name: string, steps?: Step[], trigger: WorkflowDef['trigger'] = { event: `acme.${name}` }): WorkflowDef {
  return {
    apiVersion: 'alloy/v1',
    kind: 'Workflow',
    name,
    trigger,
    steps: steps ?? [{ id: 'map', uses: 'transform', with: { email: '{{ event.email }}' } }],
  };
}

export function integration(name: string, workflows: WorkflowDef[], extra: Partial<IntegrationDef> = {}): IntegrationSource {
  return {
    name,
    file: `integrations/${name}/integration.yaml`,
    def: { apiVersion: 'alloy/v1', kind: 'Integration', name, app: 'shopify', ...extra },
    workflows: workflows.map((w) => ({ name: w.name, file: `integrations/${name}/workflows/${w.name}.yaml`, def: w })),
  };
}

/** Writes a project: alloy.config.yaml plus integrations/<name>/{integration.yaml,workflows/*.yaml}. */
export async function writeProject(root: string, sources: IntegrationSource[], config: Record<string, unknown> = {}): Promise<void> {
  await mkdir(root, { recursive: true });
  await writeFile(path.join(root, 'alloy.config.yaml'), stringify({ apiVersion: 'alloy/v1', kind: 'Project', name: 'store-test', ...config }));
  for (const s of sources) {
    const dir = path.join(root, 'integrations', s.name);
    await rm(path.join(dir, 'workflows'), { recursive: true, force: true });
    await mkdir(path.join(dir, 'workflows'), { recursive: true });
    await writeFile(path.join(dir, 'integration.yaml'), stringify(s.def));
    for (const w of s.workflows) await writeFile(path.join(dir, 'workflows', `${w.name}.yaml`), stringify(w.def));
  }
}

export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
  json(): any;
}

/** Runs the CLI in-process (no build needed) with captured streams and a fixed env. */
export async function cli(cwd: string, args: string[], env: Record<string, string> = {}): Promise<CliRun> {
  let stdout = '';
  let stderr = '';
  const code = await runCli(args, {
    stdout: { write: (s: string) => (stdout += s) },
    stderr: { write: (s: string) => (stderr += s) },
    env: { ALLOY_AUTHOR: 'Test Author <test@example.com>', NO_COLOR: '1', PATH: process.env.PATH, ...env },
    cwd,
  });
  return { code, stdout, stderr, json: () => JSON.parse(stdout) };
}

export const fixedClock = (iso = '2026-01-02T03:04:05.000Z') => () => new Date(iso);

/** Rewrites one workflow file in place (keeps the config as it is). */
export async function writeWorkflow(root: string, integrationName: string, def: WorkflowDef): Promise<void> {
  await writeFile(path.join(root, 'integrations', integrationName, 'workflows', `${def.name}.yaml`), stringify(def));
}
