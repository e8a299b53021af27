import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compileWorkflow, plan } from '../../src/engine/index.js';
import { json, startServer, workflow, type TestServer } from './helpers.js';

let server: TestServer;
beforeAll(async () => {
  server = await startServer((_q, res) => json(res, 200, {}));
});
afterAll(() => server.close());

describe('plan (pure)', () => {
  it('resolves inputs, computes transforms, follows known conditions and calls nothing', async () => {
    const def = workflow([
      { id: 'map', uses: 'transform', with: { email: '{{ event.email }}', big: '{{ event.total > 100 }}' } },
      { id: 'gate', if: '{{ steps.map.output.big }}', then: [{ id: 'order', uses: 'acme/ping', with: { email: '{{ steps.map.output.email }}', url: server.url } }] },
      { id: 'skipme', uses: 'http', when: '{{ event.total < 0 }}', with: { url: server.url } },
      { id: 'lines', each: '{{ event.lines }}', steps: [{ id: 'tag', uses: 'http', with: { url: '{{ $string(item) }}', token: 'abc123456' } }] },
      { id: 'later', uses: 'http', with: { body: '{{ steps.order.output.id }}', url: server.url }, onError: { steps: [{ id: 'alert', uses: 'transform', with: { why: '{{ error.message }}' } }] } },
      { id: 'check', if: '{{ steps.order.output.ok }}', then: [{ id: 'yes', uses: 'transform', with: {} }], else: [{ id: 'no', uses: 'transform', with: {} }] },
    ]);
    const p = await plan(compileWorkflow(def), { email: 'a@b.co', total: 500, lines: ['x', 'y'] }, { userId: 'u1' });
    expect(server.requests).toHaveLength(0);
    expect(p.outcome).toBe('run');
    const by = Object.fromEntries(p.steps.map((s) => [s.path, s]));
    expect(p.steps.map((s) => s.path)).toEqual(['map', 'gate', 'order', 'skipme', 'lines', 'lines[0].tag', 'lines[1].tag', 'later', 'alert', 'check', 'yes', 'no']);
    expect(by.map.output).toEqual({ email: 'a@b.co', big: true });
    expect(by.gate.decision).toBe('then');
    expect(by.order).toMatchObject({ will: 'run', depth: 1, inputs: { email: 'a@b.co', url: server.url } });
    expect(by.skipme.will).toBe('skip');
    expect(by['lines[1].tag'].inputs).toEqual({ url: 'y', token: '[redacted]' });
    expect(by.later).toMatchObject({ will: 'run', dependsOn: ['order'], inputs: { url: server.url } });
    expect(by.alert).toMatchObject({ will: 'maybe', depth: 1 });
    expect(by.check.decision).toMatch(/run time/);
    expect(by.yes.will).toBe('maybe');
  });

  it('a certain stop makes the plan filtered; an expression error is reported on its step', async () => {
    const p = await plan(
      compileWorkflow(workflow([
        { id: 'bad', uses: 'transform', with: { v: '{{ $number("nope") }}' } },
        { id: 'halt', stop: 'no email on {{ event.id }}', when: '{{ $not($exists(event.email)) }}' },
        { id: 'never', uses: 'transform', with: {} },
      ])),
      { id: 5 },
    );
    expect(p.outcome).toBe('filtered');
    expect(p.reason).toBe('no email on 5');
    expect(p.steps.map((s) => s.id)).toEqual(['bad', 'halt']);
    expect(p.steps[0].error).toContain('field /with/v');
  });
});
