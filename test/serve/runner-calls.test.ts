/**
 * The runner's outbound calls: a call in flight is cut as soon as its execution is cancelled
 * (the engine's signal reaches the HTTP client without a link of the runner's own), and a
 * call that completes is made once with the execution's idempotency key.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, describe, expect, it } from 'vitest';
import { call, cleanup, releaseAndPublish, startTestServe, waitFor } from './helpers.js';

afterAll(cleanup);

describe('serve runner: outbound calls', () => {
  it('cancelling an execution closes its call in flight at once; a finished call was made once', async () => {
    const seen: { url: string; key?: string; closedAt?: number }[] = [];
    const dest = http.createServer((req, res) => {
      const entry: (typeof seen)[number] = { url: req.url ?? '', key: req.headers['idempotency-key'] as string | undefined };
      seen.push(entry);
      req.resume();
      res.on('close', () => (entry.closedAt = Date.now()));
      if (req.url === '/slow') return void setTimeout(() => res.end('{"late":true}'), 5000).unref();
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}');
    });
    await new Promise<void>((r) => dest.listen(0, '127.0.0.1', r));
    const base = `http://127.0.0.1:${(dest.address() as AddressInfo).port}`;
    const serve = await startTestServe();
    try {
      const wf = (name: string, url: string) => ({
        name,
        def: { apiVersion: 'alloy/v1', kind: 'Workflow', name, trigger: { event: `t.${name}` }, steps: [{ id: 'post', uses: 'http', with: { method: 'POST', url, body: { n: '{{ event.n }}' } } }] },
      });
      await releaseAndPublish(serve.store, {
        name: 'calls',
        def: { apiVersion: 'alloy/v1', kind: 'Integration', name: 'calls' },
        workflows: [wf('slow', `${base}/slow`), wf('fast', `${base}/fast`)],
      } as never);
      const admin = serve.admin;
      await call(serve.url, 'POST', '/v1/users', { token: admin, body: { id: 'u1' } });
      await call(serve.url, 'POST', '/v1/installations', { token: admin, body: { userId: 'u1', integration: 'calls' } });
      const status = async (id: string) => (await call(serve.url, 'GET', `/v1/executions/${id}`, { token: admin })).body;

      const slow = (await call(serve.url, 'POST', '/v1/run/event', { token: admin, body: { event: 't.slow', userId: 'u1', data: { n: 1 } } })).body.executionIds[0];
      const inFlight = await waitFor(() => seen.find((s) => s.url === '/slow'), 'the slow call');
      const cancelledAt = Date.now();
      expect((await call(serve.url, 'POST', `/v1/executions/${slow}/cancel`, { token: admin })).body.status).toBe('cancelled');
      await waitFor(() => inFlight.closedAt !== undefined, 'the call closed', 3000);
      expect(inFlight.closedAt! - cancelledAt).toBeLessThan(2000);
      expect((await status(slow)).status).toBe('cancelled');

      const fast = (await call(serve.url, 'POST', '/v1/run/event', { token: admin, body: { event: 't.fast', userId: 'u1', data: { n: 2 } } })).body.executionIds[0];
      await waitFor(async () => (await status(fast)).status === 'succeeded', 'the fast execution');
      const calls = seen.filter((s) => s.url === '/fast');
      expect(calls).toHaveLength(1);
      expect(calls[0].key).toBe(`${fast}:post`);
      expect((await status(fast)).steps.find((s: { id: string }) => s.id === 'post').output).toMatchObject({ status: 200, body: { ok: true } });
      // Ended executions are counted (handed to prom-client when scraped, and once only).
      const scrape = async () => (await fetch(`${serve.url}/metrics`, { headers: { authorization: `Bearer ${admin}` } })).text();
      expect(await scrape()).toMatch(/^alloy_executions_finished_total\{status="succeeded"\} 1$/m);
      expect(await scrape()).toMatch(/^alloy_executions_finished_total\{status="succeeded"\} 1$/m);
    } finally {
      await serve.close();
      dest.closeAllConnections();
      await new Promise((r) => dest.close(r));
    }
  });
});
