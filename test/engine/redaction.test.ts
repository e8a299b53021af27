import { afterEach, describe, expect, it } from 'vitest';
import { compileWorkflow, createExecutionRecord, createRedactor, executeWorkflow, REDACTED } from '../../src/engine/index.js';
import { createConnectorRegistry, createHttpClient } from '../../src/connectors/index.js';
import { json, makeDeps, startServer, workflow, type TestServer } from './helpers.js';

let servers: TestServer[] = [];
afterEach(async () => {
  await Promise.all(servers.map((s) => s.close()));
  servers = [];
});

const API_KEY = 'sk_live_SECRET123';
const PASSWORD = 'hunter2-password';
const SHARED = 'shared-secret-value-9';

describe('redaction', () => {
  it('redactor replaces known values anywhere and secret-looking keys whole', () => {
    const r = createRedactor([API_KEY, 'ab', undefined]);
    expect(r.value({ a: `x ${API_KEY} y`, list: [API_KEY], token: 'plain', Authorization: 'Basic zzz', ab: 'ab', n: 3 })).toEqual({
      a: `x ${REDACTED} y`,
      list: [REDACTED],
      token: REDACTED,
      Authorization: REDACTED,
      ab: 'ab', // too short to be searched for
      n: 3,
    });
    expect(r.value({ token: 'kept' }, { byKey: false })).toEqual({ token: 'kept' });
  });

  it('a `__proto__` key beside a redacted one stays a key of the copy, not its prototype', () => {
    const out = createRedactor([]).value(JSON.parse('{"__proto__": {"a": 1}, "password": "hunter2", "x": 1}')) as Record<string, unknown>;
    expect(Object.getPrototypeOf(out)).toBe(Object.prototype);
    expect(Object.keys(out)).toEqual(['__proto__', 'password', 'x']);
    expect(out.password).toBe(REDACTED);
    expect(JSON.stringify(out)).toBe('{"__proto__":{"a":1},"password":"[redacted]","x":1}');
  });

  it('keeps secrets out of the record and checkpoints while the calls still use them', async () => {
    const server = await startServer((req, res) => {
      if (req.url === '/ping' && JSON.parse(req.body).fail) return json(res, 403, {});
      json(res, 200, { received: JSON.parse(req.body), auth: req.headers.authorization });
    });
    servers.push(server);
    const deps = makeDeps({
      settings: { acme: { baseUrl: server.url } },
      secrets: { SHARED },
      resolveConnection: async (app, userId) => {
        expect([app, userId]).toEqual(['acme', 'user-9']);
        return { apiKey: API_KEY, account: 'acct-1' };
      },
    });
    const def = workflow([
      {
        id: 'ping',
        uses: 'acme/ping',
        with: { password: '{{ event.password }}', echo: '{{ event.echo }}', nested: { authorization: 'Basic abc' }, shared: '{{ event.shared }}', account: 'acct-1' },
      },
      { id: 'denied', uses: 'acme/ping', onError: 'continue', with: { fail: true } },
    ]);
    const event = { password: PASSWORD, echo: `key ${API_KEY}`, shared: SHARED };
    const record = createExecutionRecord({ id: 'exec_red', workflow: 'acme/red', userId: 'user-9', event }, 0);
    const r = await executeWorkflow(compileWorkflow(def), record, deps);

    expect(r.status).toBe('succeeded');
    // The service got the real credential.
    expect(server.requests[0].headers.authorization).toBe(`Bearer ${API_KEY}`);
    expect(JSON.parse(server.requests[0].body).password).toBe(PASSWORD);
    // The record did not keep it: inputs, outputs, errors.
    expect(r.steps.ping.inputs).toEqual({ password: REDACTED, echo: `key ${REDACTED}`, nested: { authorization: REDACTED }, shared: REDACTED, account: 'acct-1' });
    expect((r.steps.ping.output as { auth: string }).auth).toBe(`Bearer ${REDACTED}`);
    expect(r.steps.denied.error?.message).toBe(`acme answered 403 for key ${REDACTED}`);
    const steps = JSON.stringify(r.steps) + JSON.stringify(deps.checkpoints.map((c) => c.steps));
    expect(steps).not.toContain(API_KEY);
    expect(steps).not.toContain(SHARED);
    expect(JSON.stringify(r.steps)).not.toContain(PASSWORD);
  });

  it('every string in an action input `auth` object is secret: http header auth never reaches the record', async () => {
    const VALUE = 'pk_live_partner_7731';
    const USER = 'svc-user-4411';
    const server = await startServer((req, res) =>
      json(res, 200, { youSent: req.headers['x-partner-key'] ?? req.headers.authorization, note: `hello ${VALUE}` }),
    );
    servers.push(server);
    const deps = makeDeps({ connectors: createConnectorRegistry(), http: createHttpClient({ timeoutMs: 5000 }) });
    const def = workflow([
      { id: 'call', uses: 'http', with: { url: `${server.url}/x`, auth: { type: 'header', name: 'X-Partner-Key', value: VALUE } } },
      { id: 'basic', uses: 'http', with: { url: `${server.url}/y`, auth: { type: 'basic', username: USER, password: 'pw-9911' } } },
      { id: 'fail', uses: 'http', onError: 'continue', with: { url: `http://127.0.0.1:1/${VALUE}`, auth: { type: 'header', name: 'X-Partner-Key', value: VALUE } } },
    ]);
    const r = await executeWorkflow(compileWorkflow(def), createExecutionRecord({ id: 'exec_auth', workflow: 'a/b', event: {} }, 0), deps);
    expect(r.status).toBe('succeeded');
    // The service got the real value.
    expect(server.requests[0].headers['x-partner-key']).toBe(VALUE);
    expect((r.steps.call.inputs as any).auth).toEqual({ type: 'header', name: REDACTED, value: REDACTED });
    const all = JSON.stringify(r) + JSON.stringify(deps.checkpoints);
    expect(all).not.toContain(VALUE);
    expect(all).not.toContain(USER);
    expect(all).not.toContain('pw-9911');
    expect((r.steps.call.output as any).body.note).toBe(`hello ${REDACTED}`);
  });
});
