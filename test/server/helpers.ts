/** Shared helpers for the runtime tests: temp dirs, in-memory projects, a fake executor, HTTP. */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { request } from 'undici';
import type { LoadedProject } from '../../src/core/project-types.js';
import type { WorkflowDef } from '../../src/core/model.js';
import type { ExecutionRecord } from '../../src/engine/types.js';
import type { WorkflowExecutor } from '../../src/server/executor.js';

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

export function tempDir(prefix = 'alloy-rt-'): { dir: string; cleanup(): void } {
  const dir = mkdtempSync(path.join(os.tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** A LoadedProject made of workflow definitions (no files): the runtime only reads defs. */
export function projectOf(root: string, workflows: WorkflowDef[], integration = 'demo'): LoadedProject {
  return {
    root,
    config: { name: 'test' },
    integrations: [
      {
        name: integration,
        dir: `integrations/${integration}`,
        file: `integrations/${integration}/integration.yaml`,
        def: { apiVersion: 'alloy/v1', kind: 'Integration', name: integration, app: 'shopify' },
        workflows: workflows.map((def) => ({ integration, name: def.name, file: `integrations/${integration}/workflows/${def.name}.yaml`, def })),
      },
    ],
    connectors: [],
    diagnostics: [],
  };
}

export function workflow(name: string, trigger: WorkflowDef['trigger'], steps: WorkflowDef['steps'] = [{ id: 'noop', uses: 'transform', with: { a: 1 } }]): WorkflowDef {
  return { apiVersion: 'alloy/v1', kind: 'Workflow', name, trigger, steps };
}

/**
 * A stand-in for the engine with the same contract: one checkpoint per step, a resumed
 * record skips steps already succeeded. `gate` lets a test hold executions mid-flight.
 */
export function fakeExecutor(options: { gate?: Promise<void>; fail?: (record: ExecutionRecord) => boolean } = {}) {
  const calls: { id: string; step: string }[] = [];
  const executor: WorkflowExecutor = async (wf, record, { checkpoint, signal }) => {
    record.status = 'running';
    record.startedAt ??= new Date().toISOString();
    await checkpoint(record);
    for (const step of wf.def.steps) {
      if (record.steps[step.id]?.status === 'succeeded') continue;
      calls.push({ id: record.id, step: step.id });
      if (options.gate) {
        await Promise.race([
          options.gate,
          new Promise((_, reject) => signal.addEventListener('abort', () => reject(new Error('aborted')), { once: true })),
        ]);
      }
      record.steps[step.id] = {
        path: step.id,
        id: step.id,
        kind: 'action',
        status: 'succeeded',
        attempts: 1,
        output: { seen: record.event },
        startedAt: new Date().toISOString(),
        endedAt: new Date().toISOString(),
      };
      await checkpoint(record);
    }
    const failed = options.fail?.(record) ?? false;
    record.status = failed ? 'failed' : 'succeeded';
    if (failed) record.error = { code: 'E_TEST', message: 'told to fail' };
    record.endedAt = new Date().toISOString();
    record.durationMs = 1;
    return record;
  };
  return { executor, calls };
}

export async function http(method: string, url: string, body?: string | Buffer, headers: Record<string, string> = {}) {
  const res = await request(url, { method: method as 'GET', body, headers });
  const text = await res.body.text();
  let json: any;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.statusCode, headers: res.headers, text, json };
}

export function postJson(url: string, value: unknown, headers: Record<string, string> = {}) {
  return http('POST', url, JSON.stringify(value), { 'content-type': 'application/json', ...headers });
}

/** Polls `check` until it returns a value other than undefined/false (bounded), and returns it. */
export async function waitFor<T>(check: () => T | undefined | false, what = 'the condition', ms = 5000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = check();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
