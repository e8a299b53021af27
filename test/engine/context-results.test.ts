/**
 * An expression returning the whole context (`{{ $ }}`) or the steps map (`{{ steps }}`) gets a
 * copy as of its evaluation: it returned the engine's live objects, so the step's output held
 * the steps map that then held that output, a cycle that no record could store (alloy run:
 * E_INTERNAL "Converting circular structure to JSON"; alloy dev: the execution stayed queued).
 */
import { describe, expect, it } from 'vitest';
import { compileWorkflow, createExecutionRecord, executeWorkflow } from '../../src/engine/index.js';
import { makeDeps, workflow } from './helpers.js';

describe('results that are the evaluation context', () => {
  it('{{ $ }}, {{ $$ }} and {{ steps }} are snapshots: the record stays JSON, later steps see earlier ones', async () => {
    const flow = workflow([
      { id: 'a', uses: 'transform', with: { n: '{{ event.n }}' } },
      { id: 'b', uses: 'transform', with: { all: '{{ $ }}', root: '{{ $$ }}', steps: '{{ steps }}', wrapped: "{{ { 's': steps } }}" } },
      { id: 'c', uses: 'transform', with: { seen: '{{ $keys(steps) }}', fromB: '{{ steps.b.output.steps.a.output.n }}' } },
      {
        id: 'loop',
        each: '{{ [1, 2] }}',
        as: 'item',
        steps: [{ id: 'inner', uses: 'transform', with: { ctx: '{{ $ }}' } }],
      },
    ]);
    const deps = makeDeps();
    const record = createExecutionRecord({ id: 'exec_ctx', workflow: 'acme/ctx', userId: 'u1', event: { n: 7 } }, Date.now());
    const r = await executeWorkflow(compileWorkflow(flow), record, deps);
    expect(r.status, JSON.stringify(r.error)).toBe('succeeded');
    expect(() => JSON.stringify(r)).not.toThrow();
    const b = r.steps.b.output as Record<string, any>;
    expect(b.all.event).toEqual({ n: 7 });
    expect(Object.keys(b.all.steps)).toEqual(['a']);
    expect(b.steps).toEqual({ a: { output: { n: 7 } } });
    expect(b.wrapped).toEqual({ s: { a: { output: { n: 7 } } } });
    expect(r.steps.c.output).toEqual({ seen: ['a', 'b'], fromB: 7 });
    expect(() => JSON.stringify(deps.checkpoints)).not.toThrow();
  });
});
