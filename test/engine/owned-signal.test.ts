/**
 * `deps.signalOwned` (serve's runner): a workflow without a timeout runs under `deps.signal`
 * itself, with no controller of the engine's linked to it; interruptions, calls that ignore
 * their signal and the workflow timeout behave as under a linked controller.
 */
import { getEventListeners } from 'node:events';
import { describe, expect, it } from 'vitest';
import { compileWorkflow, createExecutionRecord, executeWorkflow, ExecutionInterruptedError } from '../../src/engine/index.js';
import type { WorkflowDef } from '../../src/core/model.js';
import type { ConnectorRuntime } from '../../src/connectors/types.js';
import { acmeRuntime, httpRuntime, makeDeps, registry, workflow } from './helpers.js';

function probe() {
  const seen: AbortSignal[] = [];
  let arrived: () => void = () => {};
  const hanging = new Promise<void>((r) => (arrived = r));
  const runtime: ConnectorRuntime = {
    manifest: { apiVersion: 'alloy/v1', kind: 'Connector', name: 'probe' } as ConnectorRuntime['manifest'],
    actions: {
      see: async (_input, ctx) => {
        seen.push(ctx.signal);
        return { ok: true };
      },
      hang: (_input, ctx) => {
        seen.push(ctx.signal);
        arrived();
        return new Promise(() => {}); // never settles, never looks at ctx.signal
      },
    },
  };
  return { seen, hanging, runtime };
}

const start = (def: WorkflowDef, deps: ReturnType<typeof makeDeps>) =>
  executeWorkflow(compileWorkflow(def), createExecutionRecord({ id: 'exec_o', workflow: `acme/${def.name}`, event: {} }, deps.clock.now()), deps);

describe('an owned signal (deps.signalOwned)', () => {
  it('without a workflow timeout, the calls run under deps.signal itself; without signalOwned, under a signal of the engine linked to it', async () => {
    for (const owned of [true, false]) {
      const p = probe();
      const controller = new AbortController();
      const deps = makeDeps({ connectors: registry(httpRuntime, acmeRuntime, p.runtime), signal: controller.signal, signalOwned: owned });
      const r = await start(workflow([{ id: 'a', uses: 'probe/see', with: {} }]), deps);
      expect(r.status).toBe('succeeded');
      expect(p.seen[0] === controller.signal).toBe(owned);
      expect(getEventListeners(controller.signal, 'abort')).toHaveLength(0);
    }
  });

  it('an abort of it interrupts the run, a call that ignores its signal included: ExecutionInterruptedError, the record left as last checkpointed', async () => {
    const p = probe();
    const controller = new AbortController();
    const deps = makeDeps({ connectors: registry(httpRuntime, acmeRuntime, p.runtime), signal: controller.signal, signalOwned: true });
    const running = start(workflow([{ id: 'a', uses: 'probe/see', with: {} }, { id: 'b', uses: 'probe/hang', onError: 'continue', with: {} }]), deps);
    await p.hanging;
    controller.abort(new Error('cancelled'));
    await expect(running).rejects.toBeInstanceOf(ExecutionInterruptedError);
    const saved = deps.checkpoints.at(-1)!;
    expect(saved.status).toBe('running');
    expect(saved.steps.b).toBeUndefined();
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(0);
  });

  it('with a workflow timeout, the engine times out under a controller of its own and leaves deps.signal alone', async () => {
    const p = probe();
    const controller = new AbortController();
    const deps = makeDeps({ connectors: registry(httpRuntime, acmeRuntime, p.runtime), signal: controller.signal, signalOwned: true });
    const r = await start(workflow([{ id: 'b', uses: 'probe/hang', with: {} }], { timeout: '50ms' }), deps);
    expect(r.status).toBe('failed');
    expect(r.error?.code).toBe('E_EXECUTION_TIMEOUT');
    expect(p.seen[0]).not.toBe(controller.signal);
    expect(controller.signal.aborted).toBe(false);
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(0);
  });
});
