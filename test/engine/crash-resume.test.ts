import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CheckpointError, compileWorkflow, createExecutionRecord, executeWorkflow, ExecutionInterruptedError, type ExecutionRecord } from '../../src/engine/index.js';
import { json, makeDeps, startServer, workflow, type TestServer } from './helpers.js';

let server: TestServer;
beforeAll(async () => {
  server = await startServer((req, res) => json(res, 200, { path: req.url, n: JSON.parse(req.body || '{}').n ?? null }));
});
afterAll(() => server.close());

const def = () =>
  workflow([
    { id: 'a', uses: 'http', with: { method: 'POST', url: `${server.url}/a`, body: { n: 1 } } },
    { id: 'b', uses: 'http', with: { method: 'POST', url: `${server.url}/b`, body: { n: '{{ steps.a.output.body.n + 1 }}' } } },
    {
      id: 'lines',
      each: '{{ event.lines }}',
      steps: [{ id: 'tag', uses: 'http', with: { method: 'POST', url: `${server.url}/tag/{{ item }}`, body: { n: '{{ index }}' } } }],
    },
    { id: 'wait', delay: '1s' },
    {
      id: 'gate',
      if: '{{ steps.b.output.body.n = 2 }}',
      then: [{ id: 'c', uses: 'http', with: { method: 'POST', url: `${server.url}/c`, body: { n: 3 } } }],
    },
    { id: 'summary', uses: 'transform', with: { b: '{{ steps.b.output.body.n }}', tags: '{{ $count(steps.lines.output) }}', c: '{{ steps.c.output.body.n }}' } },
  ]);

const event = { lines: ['x', 'y'] };
const clone = <T>(v: T): T => JSON.parse(JSON.stringify(v));

/** Calls to the server by path, with the idempotency keys used. */
function calls(from: number) {
  return server.requests.slice(from).map((q) => ({ path: q.url, key: String(q.headers['idempotency-key']) }));
}

describe('crash and resume', () => {
  it('a clean run checkpoints after every step', async () => {
    const before = server.requests.length;
    const deps = makeDeps();
    const r = await executeWorkflow(compileWorkflow(def()), createExecutionRecord({ id: 'exec_clean', workflow: 'acme/x', event }, 0), deps);
    expect(r.status).toBe('succeeded');
    expect(calls(before).map((c) => c.path)).toEqual(['/a', '/b', '/tag/x', '/tag/y', '/c']);
    // start + 9 step records (a, b, lines, 2 tags, wait, gate, c, summary) + end
    expect(Object.keys(r.steps)).toHaveLength(9);
    expect(deps.checkpoints).toHaveLength(11);
    expect(r.steps.summary.output).toEqual({ b: 2, tags: 2, c: 3 });
  });

  for (let k = 1; k <= 11; k++) {
    it(`crash at checkpoint ${k}: resume calls no completed step again`, async () => {
      const compiled = compileWorkflow(def());
      const id = `exec_crash_${k}`;
      let saved: ExecutionRecord | undefined;
      let n = 0;
      const crashing = makeDeps({
        checkpoint: async (r) => {
          n++;
          if (n === k) throw new Error('disk gone');
          saved = clone(r);
        },
      });
      const start = server.requests.length;
      await expect(executeWorkflow(compiled, createExecutionRecord({ id, workflow: 'acme/x', event }, 0), crashing)).rejects.toBeInstanceOf(CheckpointError);
      const firstRun = calls(start);

      // What the last good checkpoint says was completed.
      const base = saved ?? createExecutionRecord({ id, workflow: 'acme/x', event }, 0);
      const completedCalls = Object.values(base.steps)
        .filter((s) => s.uses === 'http' && s.status === 'succeeded')
        .map((s) => `${id}:${s.path}`);

      const resumeStart = server.requests.length;
      const resumed = await executeWorkflow(compiled, clone(base), makeDeps());
      const secondRun = calls(resumeStart);

      expect(resumed.status).toBe('succeeded');
      expect(resumed.steps.summary.output).toEqual({ b: 2, tags: 2, c: 3 });
      // Completed steps were not called again...
      for (const key of completedCalls) expect(secondRun.map((c) => c.key)).not.toContain(key);
      // ...every step ran at least once overall, and at most one (the unsaved one) twice, with the same key.
      const all = [...firstRun, ...secondRun].map((c) => c.key);
      for (const p of ['a', 'b', 'lines[0].tag', 'lines[1].tag', 'c']) expect(all).toContain(`${id}:${p}`);
      expect(all.length - new Set(all).size).toBeLessThanOrEqual(1);
      expect(secondRun.length).toBe(5 - completedCalls.length);
    });
  }

  for (const k of [3, 5, 7]) {
    it(`concurrent each, crash at checkpoint ${k}: resumes without repeating saved items`, async () => {
      const compiled = compileWorkflow(
        workflow([
          {
            id: 'items',
            each: '{{ event.n }}',
            concurrency: 3,
            steps: [{ id: 'call', uses: 'http', with: { method: 'POST', url: `${server.url}/item/{{ item }}`, body: { n: '{{ item }}' } } }],
          },
        ]),
      );
      const id = `exec_conc_${k}`;
      const ev = { n: [0, 1, 2, 3, 4, 5] };
      let saved: ExecutionRecord | undefined;
      let n = 0;
      const crashing = makeDeps({
        checkpoint: async (r) => {
          if (++n === k) throw new Error('power cut');
          saved = clone(r);
        },
      });
      await expect(executeWorkflow(compiled, createExecutionRecord({ id, workflow: 'acme/c', event: ev }, 0), crashing)).rejects.toBeInstanceOf(CheckpointError);
      const done = Object.values(saved!.steps).filter((s) => s.status === 'succeeded' && s.uses === 'http').map((s) => `${id}:${s.path}`);
      expect(done.length).toBeGreaterThan(0);
      const resumeStart = server.requests.length;
      const r = await executeWorkflow(compiled, clone(saved!), makeDeps());
      const again = calls(resumeStart).map((c) => c.key);
      expect(r.status).toBe('succeeded');
      for (const key of done) expect(again).not.toContain(key);
      expect(again.length).toBe(6 - done.length);
      expect((r.steps.items.output as { call: { body: { n: number } } }[]).map((o) => o.call.body.n)).toEqual([0, 1, 2, 3, 4, 5]);
    });
  }

  it('a step caught running is called again with the same idempotency key', async () => {
    const compiled = compileWorkflow(def());
    const full = await executeWorkflow(compiled, createExecutionRecord({ id: 'exec_run', workflow: 'acme/x', event }, 0), makeDeps());
    // Rebuild the record as it would be mid-call of `b`: a done, b running.
    const partial: ExecutionRecord = { ...clone(full), status: 'running', steps: { a: clone(full.steps.a), b: { ...clone(full.steps.b), status: 'running', output: undefined } } };
    delete partial.endedAt;
    const start = server.requests.length;
    const r = await executeWorkflow(compiled, partial, makeDeps());
    expect(r.status).toBe('succeeded');
    expect(calls(start).map((c) => c.key)).toEqual(['exec_run:b', 'exec_run:lines[0].tag', 'exec_run:lines[1].tag', 'exec_run:c']);
    expect(r.steps.b.attempts).toBe(2);
  });

  it('an interrupt (deps.signal) aborts the call in flight and leaves the record resumable', async () => {
    let arrived: () => void = () => {};
    const slowArrived = new Promise<void>((r) => (arrived = r));
    const slow = await startServer(async (req, res) => {
      if (req.url === '/slow') {
        arrived();
        await new Promise((r) => setTimeout(r, 300));
      }
      json(res, 200, { path: req.url });
    });
    try {
      const compiled = compileWorkflow(
        workflow([
          { id: 'a', uses: 'http', with: { url: `${slow.url}/a` } },
          { id: 'b', uses: 'http', onError: 'continue', with: { url: `${slow.url}/slow` } },
          { id: 'c', uses: 'http', with: { url: `${slow.url}/c` } },
        ]),
      );
      const controller = new AbortController();
      const first = makeDeps({ signal: controller.signal });
      const running = executeWorkflow(compiled, createExecutionRecord({ id: 'exec_int', workflow: 'acme/i', event: {} }, 0), first);
      await slowArrived;
      controller.abort();
      await expect(running).rejects.toBeInstanceOf(ExecutionInterruptedError);
      const saved = first.checkpoints.at(-1)!;
      expect(saved.status).toBe('running');
      expect(Object.keys(saved.steps)).toEqual(['a']);

      const r = await executeWorkflow(compiled, clone(saved), makeDeps());
      expect(r.status).toBe('succeeded');
      expect(r.steps.b.status).toBe('succeeded'); // not recorded as a failure handled by onError
      expect(slow.requests.map((q) => q.url)).toEqual(['/a', '/slow', '/slow', '/c']);
    } finally {
      await slow.close();
    }
  });

  it('an ended execution is returned as is, calling nothing', async () => {
    const compiled = compileWorkflow(def());
    const done = await executeWorkflow(compiled, createExecutionRecord({ id: 'exec_done', workflow: 'acme/x', event }, 0), makeDeps());
    const start = server.requests.length;
    const again = await executeWorkflow(compiled, clone(done), makeDeps());
    expect(server.requests.length).toBe(start);
    expect(again).toEqual(done);
  });
});
