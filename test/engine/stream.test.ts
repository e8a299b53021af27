import { afterEach, describe, expect, it } from 'vitest';
import { compileWorkflow, createExecutionRecord, executeWorkflow, ExecutionInterruptedError, realClock, verifyStandardWebhook } from '../../src/engine/index.js';
import { fakeClock, json, makeDeps, startServer, workflow, type RecordedRequest, type TestServer } from './helpers.js';

let servers: TestServer[] = [];
afterEach(async () => {
  await Promise.all(servers.map((s) => s.close()));
  servers = [];
});

const SECRET = 'whsec_' + Buffer.from('a stream signing key for tests!').toString('base64');

/** A receiver that verifies every delivery with verifyStandardWebhook and answers the scripted statuses. */
async function receiver(statuses: number[], nowSeconds: () => number) {
  const verified: { ok: boolean; reason?: string; req: RecordedRequest }[] = [];
  const server = await startServer((req, res) => {
    const check = verifyStandardWebhook(SECRET, req.headers as Record<string, string>, req.body, { nowSeconds: nowSeconds() });
    verified.push({ ...check, req });
    if (!check.ok) return json(res, 401, { error: check.reason });
    json(res, statuses.shift() ?? 200, {});
  });
  servers.push(server);
  return { server, verified };
}

const flow = (extra = {}) =>
  workflow(
    [
      { id: 'summary', uses: 'transform', with: { orderId: '{{ event.id }}', total: '{{ $number(event.total_price) }}' } },
    ],
    { stream: { url: '{{ env.ACME_STREAM_URL }}/hook', secret: '{{ secrets.ACME_STREAM_SECRET }}', ...extra } },
  );

describe('streaming execution data', () => {
  it('POSTs a signed payload the receiver verifies, retrying a 5xx with the same message id', async () => {
    const clock = fakeClock(Date.parse('2026-03-01T12:00:00Z'));
    const { server, verified } = await receiver([503], () => Math.floor(clock.now() / 1000));
    const deps = makeDeps({ clock, env: { ACME_STREAM_URL: server.url }, secrets: { ACME_STREAM_SECRET: SECRET } });
    const record = createExecutionRecord({ id: 'exec_s1', workflow: 'acme/order-created', userId: 'u1', event: { id: 42, total_price: '9.50' } }, clock.now());
    const r = await executeWorkflow(compileWorkflow(flow()), record, deps);

    expect(r.status).toBe('succeeded');
    expect(verified.map((v) => v.ok)).toEqual([true, true]);
    expect(r.stream).toMatchObject({ status: 'delivered', attempts: 2, statusCode: 200, messageId: 'msg_exec_s1', url: `${server.url}/hook` });
    const ids = verified.map((v) => v.req.headers['webhook-id']);
    expect(ids).toEqual(['msg_exec_s1', 'msg_exec_s1']);
    expect(verified[0].req.url).toBe('/hook');
    const body = JSON.parse(verified[1].req.body);
    expect(body).toMatchObject({
      type: 'execution.completed',
      data: { id: 'exec_s1', workflow: 'acme/order-created', status: 'succeeded', event: { id: 42 }, steps: { summary: { status: 'succeeded', output: { orderId: 42, total: 9.5 } } } },
    });
    expect(typeof body.data.durationMs).toBe('number');
    expect(verified[1].req.body).not.toContain(SECRET.slice(6));
    expect(deps.checkpoints.at(-1)?.stream?.status).toBe('delivered');
  });

  it('alloy\'s own settings (ALLOY_*), the database\'s (PG*, DATABASE_URL) and connection variables are not readable by stream expressions, as env or secrets; other variables are', async () => {
    const clock = fakeClock(Date.parse('2026-03-01T12:00:00Z'));
    const { server, verified } = await receiver([], () => Math.floor(clock.now() / 1000));
    const env = {
      ACME_STREAM_URL: server.url,
      ALLOY_MASTER_KEY: 'master-key-value',
      PGPASSWORD: 'pg-password-value',
      ALLOY_SERVE_DATABASE: 'postgres://u:db-url-password@db/alloy',
      DATABASE_URL: 'postgres://u:db-url-password@db/alloy',
      PGUSER: 'pg-user-value',
      // The acme connector's connection variable (an app's API key).
      ACME_API_KEY: 'app-secret-value',
      // Its OAuth client's secret, read by serve under this name too.
      ACME_CLIENT_SECRET: 'oauth-client-secret',
      ACME_REGION: 'eu',
    };
    const read = ['ALLOY_MASTER_KEY', 'PGPASSWORD', 'ALLOY_SERVE_DATABASE', 'DATABASE_URL', 'PGUSER', 'ACME_API_KEY', 'ACME_CLIENT_SECRET'].map((n) => `'&${n}=' & env.${n}`).join(' & ');
    const leak = workflow([{ id: 'summary', uses: 'transform', with: { orderId: '{{ event.id }}' } }], {
      stream: { url: `{{ env.ACME_STREAM_URL & '/hook?r=' & env.ACME_REGION & ${read} & '&s=' & secrets.ALLOY_MASTER_KEY & '&a=' & secrets.ACME_API_KEY }}`, secret: '{{ secrets.ACME_STREAM_SECRET }}' },
    });
    const deps = makeDeps({ clock, env, secrets: { ACME_STREAM_SECRET: SECRET, ALLOY_MASTER_KEY: 'master-key-value', ACME_API_KEY: 'app-secret-value' } });
    const record = createExecutionRecord({ id: 'exec_env', workflow: 'acme/order-created', userId: 'u1', event: { id: 1 } }, clock.now());
    const r = await executeWorkflow(compileWorkflow(leak), record, deps);
    expect(r.stream?.status).toBe('delivered');
    expect(verified[0].req.url).toBe('/hook?r=eu&ALLOY_MASTER_KEY=&PGPASSWORD=&ALLOY_SERVE_DATABASE=&DATABASE_URL=&PGUSER=&ACME_API_KEY=&ACME_CLIENT_SECRET=&s=&a=');
    expect(JSON.stringify(r)).not.toMatch(/master-key-value|pg-password-value|db-url-password|pg-user-value|app-secret-value|oauth-client-secret/);
    // The same variables with a registry that lacks acme (its variables are then not app
    // variables), then again with acme's: what is hidden follows the registry of each run.
    const without = makeDeps({ clock, env, secrets: { ACME_STREAM_SECRET: SECRET }, connectors: { get: () => undefined, names: () => [] } });
    await executeWorkflow(compileWorkflow(leak), createExecutionRecord({ id: 'exec_env2', workflow: 'acme/order-created', userId: 'u1', event: { id: 2 } }, clock.now()), without);
    expect(verified[1].req.url).toContain('&ACME_API_KEY=app-secret-value');
    await executeWorkflow(compileWorkflow(leak), createExecutionRecord({ id: 'exec_env3', workflow: 'acme/order-created', userId: 'u1', event: { id: 3 } }, clock.now()), makeDeps({ clock, env, secrets: { ACME_STREAM_SECRET: SECRET } }));
    expect(verified[2].req.url).toContain('&ACME_API_KEY=&');
  });

  it('a delivery the engine sent verifies; the same delivery replayed with its body changed does not', async () => {
    const clock = fakeClock(Date.parse('2026-03-01T12:00:00Z'));
    const { server, verified } = await receiver([], () => Math.floor(clock.now() / 1000));
    const deps = makeDeps({ clock, env: { ACME_STREAM_URL: server.url }, secrets: { ACME_STREAM_SECRET: SECRET } });
    const r = await executeWorkflow(compileWorkflow(flow()), createExecutionRecord({ id: 'exec_t1', workflow: 'a/b', event: { id: 7, total_price: '1.00' } }, clock.now()), deps);
    expect(r.stream).toMatchObject({ status: 'delivered', attempts: 1 });
    expect(verified).toHaveLength(1);
    expect(verified[0].ok).toBe(true);
    const sent = verified[0].req;
    const replay = (body: string) =>
      fetch(`${server.url}/hook`, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'webhook-id': String(sent.headers['webhook-id']),
          'webhook-timestamp': String(sent.headers['webhook-timestamp']),
          'webhook-signature': String(sent.headers['webhook-signature']),
        },
        body,
      });
    // The untouched replay still verifies (so the headers are the engine's real signature)...
    expect((await replay(sent.body)).status).toBe(200);
    // ...and the same headers over a changed body do not.
    const tampered = sent.body.replace('"status":"succeeded"', '"status":"failed"');
    expect(tampered).not.toBe(sent.body);
    const res = await replay(tampered);
    expect(res.status).toBe(401);
    expect(verified[2]).toMatchObject({ ok: false, reason: 'no webhook-signature matches' });
  });

  it('shutdown (deps.signal) aborts a delivery in flight and leaves it to the resumed run', async () => {
    const hanging = await startServer(() => {
      /* never answers */
    });
    servers.push(hanging);
    const controller = new AbortController();
    const deps = makeDeps({ env: { ACME_STREAM_URL: hanging.url }, secrets: { ACME_STREAM_SECRET: SECRET }, signal: controller.signal });
    const started = Date.now();
    const run = executeWorkflow(compileWorkflow(flow({ timeout: '5s' })), createExecutionRecord({ id: 'exec_t2', workflow: 'a/b', event: {} }, 0), deps);
    for (let i = 0; i < 200 && hanging.requests.length === 0; i++) await new Promise((r) => setTimeout(r, 5));
    expect(hanging.requests).toHaveLength(1);
    controller.abort();
    await expect(run).rejects.toBeInstanceOf(ExecutionInterruptedError);
    expect(Date.now() - started).toBeLessThan(2000);
    const last = deps.checkpoints.at(-1)!;
    expect(last.status).toBe('succeeded');
    expect(last.stream).toBeUndefined();
  });

  it('shutdown (deps.signal) interrupts the wait between delivery attempts', async () => {
    const { server, verified } = await receiver([503, 503], () => Math.floor(Date.now() / 1000));
    const controller = new AbortController();
    const deps = makeDeps({ clock: realClock, env: { ACME_STREAM_URL: server.url }, secrets: { ACME_STREAM_SECRET: SECRET }, signal: controller.signal, random: () => 0.999 });
    const started = Date.now();
    const run = executeWorkflow(
      compileWorkflow(flow({ retry: { attempts: 3, initialDelay: '20s', maxDelay: '20s' } })),
      createExecutionRecord({ id: 'exec_t3', workflow: 'a/b', event: {} }, Date.now()),
      deps,
    );
    for (let i = 0; i < 200 && verified.length === 0; i++) await new Promise((r) => setTimeout(r, 5));
    await new Promise((r) => setTimeout(r, 20));
    controller.abort();
    await expect(run).rejects.toBeInstanceOf(ExecutionInterruptedError);
    expect(Date.now() - started).toBeLessThan(2000);
    expect(verified).toHaveLength(1);
  });

  it('a Retry-After of a day is cut to the stream retry maxDelay', async () => {
    const clock = fakeClock();
    const hits: number[] = [];
    const server = await startServer((_req, res) => {
      hits.push(1);
      if (hits.length === 1) return json(res, 429, {}, { 'retry-after': '86400' });
      json(res, 200, {});
    });
    servers.push(server);
    const deps = makeDeps({ clock, env: { ACME_STREAM_URL: server.url }, secrets: { ACME_STREAM_SECRET: SECRET } });
    const r = await executeWorkflow(compileWorkflow(flow()), createExecutionRecord({ id: 'exec_t4', workflow: 'a/b', event: {} }, 0), deps);
    expect(r.stream).toMatchObject({ status: 'delivered', attempts: 2 });
    expect(clock.sleeps).toEqual([30_000]);
  });

  it('a failed stream is recorded without failing the execution; 4xx is not retried', async () => {
    const clock = fakeClock();
    const { server, verified } = await receiver([400, 400], () => Math.floor(clock.now() / 1000));
    const deps = makeDeps({ clock, env: { ACME_STREAM_URL: server.url }, secrets: { ACME_STREAM_SECRET: SECRET } });
    const r = await executeWorkflow(compileWorkflow(flow()), createExecutionRecord({ id: 'exec_s2', workflow: 'a/b', event: { id: 1, total_price: '1' } }, 0), deps);
    expect(r.status).toBe('succeeded');
    expect(verified).toHaveLength(1);
    expect(r.stream).toMatchObject({ status: 'failed', attempts: 1, statusCode: 400, error: { code: 'E_STREAM_HTTP' } });
  });

  it('retries up to 5 attempts by default with backoff', async () => {
    const clock = fakeClock();
    const { server, verified } = await receiver([500, 500, 500, 500, 500, 500], () => Math.floor(clock.now() / 1000));
    const deps = makeDeps({ clock, env: { ACME_STREAM_URL: server.url }, secrets: { ACME_STREAM_SECRET: SECRET }, random: () => 0.999 });
    const r = await executeWorkflow(compileWorkflow(flow()), createExecutionRecord({ id: 'exec_s3', workflow: 'a/b', event: {} }, 0), deps);
    expect(verified).toHaveLength(5);
    expect(r.stream).toMatchObject({ status: 'failed', attempts: 5 });
    expect(clock.sleeps).toEqual([499, 999, 1998, 3996]);
  });

  it('a missing secret is a clear failure naming what to set', async () => {
    const deps = makeDeps({ env: { ACME_STREAM_URL: 'http://127.0.0.1:9' }, secrets: {} });
    const r = await executeWorkflow(compileWorkflow(flow()), createExecutionRecord({ id: 'exec_s4', workflow: 'a/b', event: {} }, 0), deps);
    expect(r.stream).toMatchObject({ status: 'failed', attempts: 0, error: { code: 'E_STREAM_SECRET' } });
  });
});
