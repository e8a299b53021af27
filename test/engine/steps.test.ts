import { afterEach, describe, expect, it } from 'vitest';
import { compileWorkflow, createExecutionRecord, executeWorkflow } from '../../src/engine/index.js';
import type { Step, WorkflowDef } from '../../src/core/model.js';
import type { ConnectorRuntime } from '../../src/connectors/types.js';
import { acmeRuntime, fakeClock, httpRuntime, json, makeDeps, registry, startServer, workflow, type TestServer } from './helpers.js';

let servers: TestServer[] = [];
afterEach(async () => {
  await Promise.all(servers.map((s) => s.close()));
  servers = [];
});

async function run(def: WorkflowDef, event: unknown, deps = makeDeps()) {
  const record = createExecutionRecord({ id: 'exec_1', workflow: `acme/${def.name}`, userId: 'u1', event }, deps.clock.now());
  return executeWorkflow(compileWorkflow(def), record, deps);
}

describe('transform and expressions', () => {
  it('maps fields, keeping types for single expressions and interpolating mixed text', async () => {
    const r = await run(
      workflow([
        { id: 'map', uses: 'transform', with: { email: '{{ event.email }}', total: '{{ $number(event.total) }}', label: 'Order {{ event.id }} for {{ user.id }}', lit: 7 } },
        { id: 'next', uses: 'transform', with: { again: '{{ steps.map.output.total * 2 }}', exec: '{{ execution.id }}' } },
      ]),
      { email: 'a@b.co', total: '12.50', id: 1001 },
    );
    expect(r.status).toBe('succeeded');
    expect(r.steps.map.output).toEqual({ email: 'a@b.co', total: 12.5, label: 'Order 1001 for u1', lit: 7 });
    expect(r.steps.next.output).toEqual({ again: 25, exec: 'exec_1' });
    expect(r.steps.map.inputs).toEqual(r.steps.map.output);
  });

  it('an evaluation error names the step, the field and the expression', async () => {
    const r = await run(workflow([{ id: 'bad', uses: 'transform', with: { a: { b: '{{ $number("x1") }}' } } }]), {});
    expect(r.status).toBe('failed');
    expect(r.error).toMatchObject({ code: 'E_EXPRESSION', step: 'bad', field: '/with/a/b', expression: ' $number("x1") ' });
    expect(r.error?.message).toContain('step "bad", field /with/a/b');
  });

  it('a runaway expression fails its step, not the process', async () => {
    const started = Date.now();
    const r = await run(
      workflow([
        { id: 'loop', uses: 'transform', with: { v: '{{ ($f := function($n){ $n + $f($n + 1) }; $f(0)) }}' } },
        { id: 'after', uses: 'transform', with: { v: 1 } },
      ]),
      {},
    );
    expect(r.status).toBe('failed');
    expect(r.steps.loop.status).toBe('failed');
    expect(r.steps.loop.error?.message).toMatch(/nested deeper than 500|longer than 1000 ms/);
    expect(r.steps.after).toBeUndefined();
    expect(Date.now() - started).toBeLessThan(5000);
  });
});

describe('expression time bound', () => {
  it('a long-running (tail-recursive) expression is stopped by the time guardrail', async () => {
    const started = Date.now();
    const r = await run(workflow([{ id: 'spin', uses: 'transform', with: { v: '{{ ($f := function($n){ $n > 0 ? $f($n - 1) : 0 }; $f(1000000000)) }}' } }]), {});
    expect(r.steps.spin.error).toMatchObject({ code: 'E_EXPRESSION_LIMIT', field: '/with/v' });
    expect(r.steps.spin.error?.message).toContain('longer than its time limit of 1000 ms');
    expect(Date.now() - started).toBeLessThan(5000);
  });
});

describe('control flow', () => {
  const flow = (steps: Step[]) => workflow(steps);

  it('if runs then or else', async () => {
    const def = flow([
      { id: 'check', if: '{{ event.total > 100 }}', then: [{ id: 'big', uses: 'transform', with: { v: 'big' } }], else: [{ id: 'small', uses: 'transform', with: { v: 'small' } }] },
      { id: 'after', uses: 'transform', with: { big: '{{ steps.big.output.v }}', small: '{{ steps.small.output.v }}' } },
    ]);
    const big = await run(def, { total: 150 });
    expect(Object.keys(big.steps)).toEqual(['check', 'big', 'after']);
    expect(big.steps.after.output).toEqual({ big: 'big' });
    expect(big.steps.check.output).toEqual({ condition: true, branch: 'then' });
    const small = await run(def, { total: 5 });
    expect(Object.keys(small.steps)).toEqual(['check', 'small', 'after']);
    expect(small.steps.after.output).toEqual({ small: 'small' });
  });

  it('when skips a step', async () => {
    const r = await run(
      flow([
        { id: 'a', uses: 'transform', when: '{{ event.flag }}', with: { v: 1 } },
        { id: 'b', uses: 'transform', with: { seen: '{{ $exists(steps.a.output) }}' } },
      ]),
      { flag: false },
    );
    expect(r.steps.a.status).toBe('skipped');
    expect(r.steps.b.output).toEqual({ seen: false });
  });

  it('branch: first, all, default', async () => {
    const cases = (mode: 'first' | 'all') =>
      flow([
        {
          id: 'route',
          branch: {
            mode,
            cases: [
              { name: 'vip', when: '{{ event.total > 1000 }}', steps: [{ id: 'vip', uses: 'transform', with: { v: 1 } }] },
              { name: 'big', when: '{{ event.total > 100 }}', steps: [{ id: 'big', uses: 'transform', with: { v: 2 } }] },
            ],
            default: [{ id: 'normal', uses: 'transform', with: { v: 3 } }],
          },
        },
      ]);
    const first = await run(cases('first'), { total: 5000 });
    expect(Object.keys(first.steps)).toEqual(['route', 'vip']);
    expect(first.steps.route.output).toEqual({ matched: ['vip'], default: false });
    const all = await run(cases('all'), { total: 5000 });
    expect(Object.keys(all.steps)).toEqual(['route', 'vip', 'big']);
    const none = await run(cases('all'), { total: 5 });
    expect(Object.keys(none.steps)).toEqual(['route', 'normal']);
    expect(none.steps.route.output).toEqual({ matched: [], default: true });
  });

  it('each runs in order with item/index (or `as`), keys step paths per item, and stops on `stop`', async () => {
    const r = await run(
      flow([
        {
          id: 'lines',
          each: '{{ event.lines }}',
          as: 'line',
          stop: '{{ line.sku = "STOP" }}',
          steps: [{ id: 'tag', uses: 'transform', with: { sku: '{{ line.sku }}', at: '{{ index }}' } }],
        },
        { id: 'count', uses: 'transform', with: { n: '{{ $count(steps.lines.output) }}', tags: '{{ steps.lines.output.tag.sku }}' } },
      ]),
      { lines: [{ sku: 'A' }, { sku: 'B' }, { sku: 'STOP' }, { sku: 'C' }] },
    );
    expect(r.status).toBe('succeeded');
    expect(Object.keys(r.steps)).toEqual(['lines', 'lines[0].tag', 'lines[1].tag', 'count']);
    expect(r.steps['lines[1].tag'].output).toEqual({ sku: 'B', at: 1 });
    expect(r.steps.lines.output).toEqual([{ tag: { sku: 'A', at: 0 } }, { tag: { sku: 'B', at: 1 } }]);
    expect(r.steps.count.output).toEqual({ n: 2, tags: ['A', 'B'] });
  });

  it('each with concurrency runs items in parallel, bounded, outputs in item order', async () => {
    let inFlight = 0;
    let maxInFlight = 0;
    const server = await startServer(async (req, res) => {
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      const n = JSON.parse(req.body).n as number;
      await new Promise((r) => setTimeout(r, n % 2 === 0 ? 30 : 5));
      inFlight--;
      json(res, 200, { n });
    });
    servers.push(server);
    const r = await run(
      flow([
        {
          id: 'calls',
          each: '{{ event.items }}',
          concurrency: 3,
          steps: [{ id: 'call', uses: 'http', with: { method: 'POST', url: `${server.url}/x`, body: { n: '{{ item }}' } } }],
        },
      ]),
      { items: [0, 1, 2, 3, 4, 5, 6, 7] },
    );
    expect(r.status).toBe('succeeded');
    expect(server.requests).toHaveLength(8);
    expect(maxInFlight).toBe(3);
    expect((r.steps.calls.output as { call: { body: { n: number } } }[]).map((o) => o.call.body.n)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    expect(server.requests.map((q) => q.headers['idempotency-key']).sort()).toContain('exec_1:calls[7].call');
  });

  it('inside an each that runs items side by side, a step may hang many listeners on its signal without a leak warning', async () => {
    // Each item's calls listen on the execution's signal: at an each's concurrency that is more
    // than the leak warning's default of 10.
    const probe: ConnectorRuntime = {
      manifest: { apiVersion: 'alloy/v1', kind: 'Connector', name: 'probe' } as ConnectorRuntime['manifest'],
      actions: {
        listen: async (_input, ctx) => {
          // Distinct functions: an EventTarget keeps one entry for a listener added twice.
          const listeners = Array.from({ length: 12 }, () => () => {});
          for (const l of listeners) ctx.signal.addEventListener('abort', l);
          for (const l of listeners) ctx.signal.removeEventListener('abort', l);
          return {};
        },
      },
    };
    const warnings: string[] = [];
    const onWarning = (w: Error) => warnings.push(w.name);
    process.on('warning', onWarning);
    try {
      const r = await run(flow([{ id: 'wide', each: '{{ event.items }}', concurrency: 4, steps: [{ id: 'in', uses: 'probe/listen', with: {} }] }]), { items: [1, 2] }, makeDeps({ connectors: registry(httpRuntime, acmeRuntime, probe) }));
      expect(r.status).toBe('succeeded');
      await new Promise((resolve) => setTimeout(resolve, 10)); // warnings are emitted on a later tick
    } finally {
      process.off('warning', onWarning);
    }
    expect(warnings).not.toContain('MaxListenersExceededWarning');
  });

  it('stop ends the execution as filtered with the reason', async () => {
    const r = await run(
      flow([
        { id: 'gate', if: '{{ event.test }}', then: [{ id: 'halt', stop: 'test order {{ event.id }}' }] },
        { id: 'never', uses: 'transform', with: { v: 1 } },
      ]),
      { test: true, id: 7 },
    );
    expect(r.status).toBe('filtered');
    expect(r.reason).toBe('test order 7');
    expect(r.steps.halt.status).toBe('succeeded');
    expect(r.steps.never).toBeUndefined();
  });

  it('delay sleeps through the injected clock', async () => {
    const clock = fakeClock();
    const deps = makeDeps({ clock });
    const r = await run(
      flow([
        { id: 'wait', delay: '2m' },
        { id: 'wait2', delay: '{{ event.ms }}' },
        { id: 'wait3', delay: 250 },
      ]),
      { ms: '5s' },
      deps,
    );
    expect(r.status).toBe('succeeded');
    expect(clock.sleeps).toEqual([120_000, 5000, 250]);
    expect(r.durationMs).toBe(125_250);
  });
});

describe('onError', () => {
  it('routes a 401 one way and a 5xx another with `error` in context', async () => {
    const server = await startServer((req, res) => json(res, Number(req.url.slice(1)), { err: true }));
    servers.push(server);
    const def = workflow([
      {
        id: 'call',
        uses: 'http',
        with: { url: `${server.url}/{{ event.status }}` },
        onError: {
          steps: [
            {
              id: 'triage',
              branch: {
                cases: [
                  { name: 'auth', when: '{{ error.status = 401 }}', steps: [{ id: 'reauth', uses: 'transform', with: { why: '{{ error.message }}', step: '{{ error.step }}' } }] },
                  { name: 'server', when: '{{ error.status >= 500 }}', steps: [{ id: 'later', uses: 'transform', with: { status: '{{ error.status }}' } }] },
                ],
              },
            },
          ],
        },
      },
      { id: 'after', uses: 'transform', with: { failed: '{{ steps.call.error.code }}' } },
    ]);
    const r401 = await run(def, { status: 401 });
    expect(r401.status).toBe('succeeded');
    expect(r401.steps.call).toMatchObject({ status: 'failed', handled: true, error: { status: 401 } });
    expect(r401.steps.reauth.output).toEqual({ why: 'HTTP 401', step: 'call' });
    expect(r401.steps.later).toBeUndefined();
    expect(r401.steps.after.output).toEqual({ failed: 'E_HTTP' });
    const r503 = await run(def, { status: 503 });
    expect(r503.steps.later.output).toEqual({ status: 503 });
    expect(r503.steps.reauth).toBeUndefined();
  });

  it('continue goes on; fail (default) fails the execution', async () => {
    const server = await startServer((_req, res) => json(res, 404, {}));
    servers.push(server);
    const steps = (onError?: 'continue' | 'fail'): Step[] => [
      { id: 'call', uses: 'http', with: { url: server.url }, ...(onError ? { onError } : {}) },
      { id: 'after', uses: 'transform', with: { v: 1 } },
    ];
    const cont = await run(workflow(steps('continue')), {});
    expect(cont.status).toBe('succeeded');
    expect(cont.steps.after.status).toBe('succeeded');
    const fail = await run(workflow(steps()), {});
    expect(fail.status).toBe('failed');
    expect(fail.error).toMatchObject({ code: 'E_HTTP', status: 404, step: 'call' });
    expect(fail.steps.after).toBeUndefined();
  });

  it('a failure inside each is handled by the each step onError', async () => {
    const r = await run(
      workflow([
        { id: 'loop', each: '{{ [1, 2] }}', onError: 'continue', steps: [{ id: 'x', uses: 'transform', with: { v: '{{ $error("boom") }}' } }] },
        { id: 'after', uses: 'transform', with: { v: '{{ steps.loop.error.step }}' } },
      ]),
      {},
    );
    expect(r.status).toBe('succeeded');
    expect(r.steps.loop).toMatchObject({ status: 'failed', handled: true });
    expect(r.steps.after.output).toEqual({ v: 'loop[0].x' });
  });
});

describe('timeouts', () => {
  it('a step timeout aborts the call and fails the step', async () => {
    const server = await startServer(async (_req, res) => {
      await new Promise((r) => setTimeout(r, 2000));
      json(res, 200, {});
    });
    servers.push(server);
    const r = await run(workflow([{ id: 'slow', uses: 'http', timeout: '50ms', with: { url: server.url } }]), {});
    expect(r.status).toBe('failed');
    expect(r.steps.slow.error).toMatchObject({ code: 'E_STEP_TIMEOUT' });
  });

  it('a call that ignores its signal still ends when the execution times out, side by side in an each too; one that throws at once fails its step', async () => {
    let started = 0;
    const stubborn: ConnectorRuntime = {
      manifest: { apiVersion: 'alloy/v1', kind: 'Connector', name: 'stubborn' } as ConnectorRuntime['manifest'],
      actions: {
        hang: () => {
          started += 1;
          return new Promise(() => {}); // never settles, never looks at ctx.signal
        },
        sync: () => {
          throw new Error('thrown before any promise');
        },
      },
    };
    const deps = () => makeDeps({ connectors: registry(httpRuntime, acmeRuntime, stubborn) });
    const t0 = Date.now();
    const r = await run(
      workflow([{ id: 'wide', each: '{{ event.items }}', concurrency: 3, steps: [{ id: 'h', uses: 'stubborn/hang', with: {} }] }], { timeout: '80ms' }),
      { items: [1, 2, 3] },
      deps(),
    );
    expect(Date.now() - t0).toBeLessThan(2000);
    expect(started).toBe(3);
    expect(r.status).toBe('failed');
    expect(r.error?.code).toBe('E_EXECUTION_TIMEOUT');
    const s = await run(workflow([{ id: 'boom', uses: 'stubborn/sync', onError: 'continue', with: {} }, { id: 'after', uses: 'transform', with: { ok: true } }]), {}, deps());
    expect(s.status).toBe('succeeded');
    expect(s.steps.boom).toMatchObject({ status: 'failed', handled: true });
    expect(s.steps.boom.error?.message).toContain('thrown before any promise');
    expect(s.steps.after.output).toEqual({ ok: true });
  });

  it('the execution timeout ends the run even through onError', async () => {
    const server = await startServer(async (_req, res) => {
      await new Promise((r) => setTimeout(r, 2000));
      json(res, 200, {});
    });
    servers.push(server);
    const r = await run(
      workflow([{ id: 'slow', uses: 'http', onError: 'continue', with: { url: server.url } }, { id: 'after', uses: 'transform', with: {} }], { timeout: '80ms' }),
      {},
    );
    expect(r.status).toBe('failed');
    expect(r.error?.code).toBe('E_EXECUTION_TIMEOUT');
    expect(r.steps.after).toBeUndefined();
  });
});

describe('scope and dispatch errors', () => {
  it('steps cannot read env or secrets (only the stream can)', async () => {
    const deps = makeDeps({ env: { HOME_DIR: '/home/x' }, secrets: { API: 'top-secret-value' } });
    const r = await run(
      workflow([{ id: 'peek', uses: 'transform', with: { env: '{{ env.HOME_DIR }}', secret: '{{ secrets.API }}', both: '{{ $exists(env) or $exists(secrets) }}' } }]),
      {},
      deps,
    );
    expect(r.status).toBe('succeeded');
    expect(r.steps.peek.output).toEqual({ both: false });
  });

  it('an unknown connector or action fails the step with a hint listing what exists', async () => {
    const r = await run(workflow([{ id: 'x', uses: 'nope/doIt', with: {} }]), {});
    expect(r.error).toMatchObject({ code: 'E_UNKNOWN_CONNECTOR', step: 'x' });
    expect(r.error?.hint).toContain('transform, http, acme');
    const r2 = await run(workflow([{ id: 'y', uses: 'acme/missing', with: {} }]), {});
    expect(r2.error).toMatchObject({ code: 'E_UNKNOWN_ACTION' });
    expect(r2.error?.hint).toBe('Actions of acme: ping.');
  });

  it('a stop inside a concurrent each filters the whole execution', async () => {
    const r = await run(
      workflow([
        { id: 'loop', each: '{{ [1, 2, 3, 4] }}', concurrency: 2, steps: [{ id: 'halt', when: '{{ item = 2 }}', stop: 'item {{ item }}' }] },
        { id: 'after', uses: 'transform', with: {} },
      ]),
      {},
    );
    expect(r.status).toBe('filtered');
    expect(r.reason).toBe('item 2');
    expect(r.steps.after).toBeUndefined();
  });

  it('a computed delay that is not a duration fails with E_DURATION', async () => {
    const r = await run(workflow([{ id: 'wait', delay: '{{ event.wait }}' }]), { wait: 'soon' });
    expect(r.steps.wait.error).toMatchObject({ code: 'E_DURATION' });
  });
});
