// Actions declared `idempotent: false` (shopify/createOrder) must never be called twice for
// one step: a step caught `running` on resume, or one whose call timed out, may have taken
// effect already, so it fails with E_OUTCOME_UNKNOWN instead of being called again.
import { afterEach, describe, expect, it } from 'vitest';
import type { ConnectorRuntime } from '../../src/connectors/types.js';
import type { Step } from '../../src/core/model.js';
import {
  compileWorkflow,
  createExecutionRecord,
  executeWorkflow,
  ExecutionInterruptedError,
  type ExecutionRecord,
} from '../../src/engine/index.js';
import { StepError } from '../../src/errors.js';
import { fetchHttp, json, makeDeps, registry, startServer, workflow, type TestServer } from './helpers.js';

let servers: TestServer[] = [];
afterEach(async () => {
  await Promise.all(servers.map((s) => s.close()));
  servers = [];
});

/** A connector whose `create` is declared not idempotent and `upsert` is left undeclared (idempotent). */
function mintRuntime(): ConnectorRuntime {
  const call = async (input: Record<string, unknown>, ctx: Parameters<ConnectorRuntime['actions'][string]>[1]) => {
    const res = await ctx.http({
      method: 'POST',
      url: `${ctx.settings.baseUrl}/${String(input.path ?? 'create')}`,
      headers: { 'idempotency-key': ctx.idempotencyKey },
      body: '{}',
      signal: ctx.signal,
    });
    if (res.status >= 400) throw new StepError(`HTTP ${res.status}`, { status: res.status, retryable: res.status >= 500 });
    return JSON.parse(res.text);
  };
  return {
    manifest: {
      apiVersion: 'alloy/v1',
      kind: 'Connector',
      name: 'mint',
      baseUrl: '',
      auth: { type: 'none' },
      actions: { create: { idempotent: false }, upsert: {} },
    },
    actions: { create: call, upsert: (input, ctx) => call({ ...input, path: 'upsert' }, ctx) },
  };
}

const clone = <T>(v: T): T => JSON.parse(JSON.stringify(v));

async function countingServer(hang = false) {
  const server = await startServer((req, res) => {
    if (hang) return; // never answers
    json(res, 200, { path: req.url, key: req.headers['idempotency-key'] });
  });
  servers.push(server);
  return server;
}

const depsFor = (server: TestServer, extra: Parameters<typeof makeDeps>[0] = {}) =>
  makeDeps({ connectors: registry(mintRuntime()), http: fetchHttp, settings: { mint: { baseUrl: server.url } }, ...extra });

/** A record checkpointed while `order` (uses mint/<action>) was in flight. */
function caughtRunning(action: string, id: string): ExecutionRecord {
  const record = createExecutionRecord({ id, workflow: 'acme/mint', event: {} }, 0);
  record.status = 'running';
  record.startedAt = new Date(0).toISOString();
  record.steps.order = {
    path: 'order',
    id: 'order',
    kind: 'action',
    uses: `mint/${action}`,
    status: 'running',
    attempts: 1,
    inputs: {},
    startedAt: new Date(0).toISOString(),
  };
  return record;
}

describe('non-idempotent actions on resume', () => {
  it('a step caught running is not called again: it fails with E_OUTCOME_UNKNOWN through onError', async () => {
    const server = await countingServer();
    const steps: Step[] = [
      { id: 'order', uses: 'mint/create', with: {}, onError: 'continue' },
      { id: 'after', uses: 'transform', with: { code: '{{ steps.order.error.code }}' } },
    ];
    const r = await executeWorkflow(compileWorkflow(workflow(steps)), caughtRunning('create', 'exec_u1'), depsFor(server));
    expect(server.requests).toHaveLength(0);
    expect(r.status).toBe('succeeded');
    expect(r.steps.order).toMatchObject({ status: 'failed', handled: true, error: { code: 'E_OUTCOME_UNKNOWN', retryable: false } });
    expect(r.steps.order.error!.hint).toMatch(/check/i);
    expect(r.steps.after.output).toEqual({ code: 'E_OUTCOME_UNKNOWN' });
  });

  it('without onError the execution fails with E_OUTCOME_UNKNOWN', async () => {
    const server = await countingServer();
    const steps: Step[] = [{ id: 'order', uses: 'mint/create', with: {} }];
    const r = await executeWorkflow(compileWorkflow(workflow(steps)), caughtRunning('create', 'exec_u2'), depsFor(server));
    expect(server.requests).toHaveLength(0);
    expect(r.status).toBe('failed');
    expect(r.error).toMatchObject({ code: 'E_OUTCOME_UNKNOWN', step: 'order' });
  });

  it('an idempotent (undeclared) action caught running is called again with the same idempotency key', async () => {
    const server = await countingServer();
    const steps: Step[] = [{ id: 'order', uses: 'mint/upsert', with: {} }];
    const r = await executeWorkflow(compileWorkflow(workflow(steps)), caughtRunning('upsert', 'exec_u3'), depsFor(server));
    expect(r.status).toBe('succeeded');
    expect(server.requests.map((q) => q.headers['idempotency-key'])).toEqual(['exec_u3:order']);
  });

  it('interrupted during the call (the record has the step running), the resumed run does not call it again', async () => {
    const server = await countingServer(true);
    const controller = new AbortController();
    let saved: ExecutionRecord | undefined;
    const deps = depsFor(server, {
      signal: controller.signal,
      checkpoint: async (rec) => {
        saved = clone(rec);
      },
    });
    const steps: Step[] = [{ id: 'order', uses: 'mint/create', with: {}, onError: 'continue' }];
    const compiled = compileWorkflow(workflow(steps));
    const running = executeWorkflow(compiled, createExecutionRecord({ id: 'exec_u4', workflow: 'acme/mint', event: {} }, 0), deps);
    // wait until the request reached the server, then shut down
    for (let i = 0; i < 200 && server.requests.length === 0; i++) await new Promise((r) => setTimeout(r, 5));
    expect(server.requests).toHaveLength(1);
    controller.abort();
    await expect(running).rejects.toBeInstanceOf(ExecutionInterruptedError);
    // The engine checkpointed the step as running before it called the action.
    expect(saved?.steps.order?.status).toBe('running');

    const r = await executeWorkflow(compiled, clone(saved!), depsFor(server));
    expect(server.requests).toHaveLength(1);
    expect(r.steps.order).toMatchObject({ status: 'failed', error: { code: 'E_OUTCOME_UNKNOWN' } });
  });

  it('a step timeout on a non-idempotent action is not retried', async () => {
    const server = await countingServer(true);
    // The server never answers: the timeout is long enough for the request to arrive on a loaded machine.
    const steps: Step[] = [{ id: 'order', uses: 'mint/create', with: {}, timeout: '500ms', retry: { attempts: 3, initialDelay: 1 } }];
    const r = await executeWorkflow(
      compileWorkflow(workflow(steps)),
      createExecutionRecord({ id: 'exec_u5', workflow: 'acme/mint', event: {} }, 0),
      depsFor(server),
    );
    expect(server.requests).toHaveLength(1);
    expect(r.steps.order).toMatchObject({ status: 'failed', attempts: 1, error: { code: 'E_OUTCOME_UNKNOWN', retryable: false } });
  });
});
