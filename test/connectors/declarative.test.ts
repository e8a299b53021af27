import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createConnectorRegistry, createDeclarativeConnector } from '../../src/connectors/index.js';
import type { ConnectorManifest } from '../../src/core/model.js';
import { UsageError } from '../../src/errors.js';
import { makeContext, thrown } from './helpers.js';
import { startServer } from './local-server.js';

let server: Awaited<ReturnType<typeof startServer>>;
beforeAll(async () => {
  server = await startServer((req, res) => {
    if (req.headers.authorization !== 'Bearer acme-token-1') {
      res.writeHead(401, { 'Content-Type': 'application/json' }).end('{"error":"invalid token"}');
      return;
    }
    if (req.url.startsWith('/v2/customers/404')) {
      res.writeHead(404, { 'Content-Type': 'application/json' }).end('{"error":"not found"}');
      return;
    }
    res.writeHead(req.method === 'POST' ? 201 : 200, { 'Content-Type': 'application/json', 'X-Request-Id': 'r-1' });
    res.end(JSON.stringify({ id: 'c_1', received: req.body ? JSON.parse(req.body) : null, url: req.url }));
  });
});
afterAll(() => server.close());

const acme = (baseUrl: string): ConnectorManifest => ({
  apiVersion: 'alloy/v1',
  kind: 'Connector',
  name: 'acme',
  baseUrl: `${baseUrl}/{{ connection.apiPath }}`,
  auth: { type: 'bearer', value: '{{ connection.token }}' },
  connection: { token: { env: 'ACME_TOKEN', secret: true, required: true }, apiPath: { default: 'v2' } },
  actions: {
    createCustomer: {
      input: { type: 'object', properties: { email: { type: 'string' } } },
      request: {
        method: 'POST',
        path: '/customers',
        headers: { 'X-Source': 'alloy-{{ input.source }}' },
        query: { notify: '{{ input.notify }}', skip: '{{ input.missing }}' },
        body: { email: '{{ input.email }}', tags: '{{ input.tags }}', plan: 'pro' },
      },
      output: { customerId: '{{ response.body.id }}', status: '{{ response.status }}', requestId: "{{ response.headers.`x-request-id` }}", email: '{{ input.email }}' },
    },
    getCustomer: {
      request: { method: 'GET', path: '/customers/{{ $string(input.id) }}' },
    },
  },
});

describe('declarative connector', () => {
  it('renders path, query, headers and JSON body over input and connection, with bearer auth', async () => {
    const runtime = createDeclarativeConnector(acme(server.url));
    const ctx = makeContext({ connection: { token: 'acme-token-1', apiPath: 'v2' }, idempotencyKey: 'exec-3:customer' });
    const out = await runtime.actions.createCustomer({ email: 'jane@example.com', tags: ['a', 'b'], notify: true, source: 'shop' }, ctx);
    expect(out).toEqual({ customerId: 'c_1', status: 201, requestId: 'r-1', email: 'jane@example.com' });
    const seen = server.seen.at(-1)!;
    expect(seen.method).toBe('POST');
    expect(seen.url).toBe('/v2/customers?notify=true');
    expect(seen.headers.authorization).toBe('Bearer acme-token-1');
    expect(seen.headers['x-source']).toBe('alloy-shop');
    expect(seen.headers['content-type']).toBe('application/json');
    expect(seen.headers['idempotency-key']).toBe('exec-3:customer');
    expect(JSON.parse(seen.body)).toEqual({ email: 'jane@example.com', tags: ['a', 'b'], plan: 'pro' });
  });

  it('without an output template the step output is the decoded body', async () => {
    const runtime = createDeclarativeConnector(acme(server.url));
    const out = await runtime.actions.getCustomer({ id: 7 }, makeContext({ connection: { token: 'acme-token-1', apiPath: 'v2' } }));
    expect(out).toEqual({ id: 'c_1', received: null, url: '/v2/customers/7' });
  });

  it('a wrong token is a final 401 StepError; a 404 is final too', async () => {
    const runtime = createDeclarativeConnector(acme(server.url));
    const denied = await thrown(() => runtime.actions.getCustomer({ id: 1 }, makeContext({ connection: { token: 'wrong', apiPath: 'v2' } })));
    expect(denied).toMatchObject({ status: 401, retryable: false });
    expect(denied.message).toContain('acme getCustomer');
    expect(denied.message).not.toContain('wrong');
    const missing = await thrown(() => runtime.actions.getCustomer({ id: 404 }, makeContext({ connection: { token: 'acme-token-1', apiPath: 'v2' } })));
    expect(missing).toMatchObject({ status: 404, retryable: false });
  });

  it('settings.baseUrl overrides the manifest base URL', async () => {
    const runtime = createDeclarativeConnector(acme('http://127.0.0.1:1'));
    const out = (await runtime.actions.getCustomer({ id: 5 }, makeContext({ connection: { token: 'acme-token-1' }, settings: { baseUrl: `${server.url}/v2` } }))) as any;
    expect(out.url).toBe('/v2/customers/5');
  });

  it('a base URL that renders to nothing is a final input error, not a retryable network error', async () => {
    const runtime = createDeclarativeConnector({ ...acme(server.url), baseUrl: '{{ connection.host }}' });
    const err = await thrown(() => runtime.actions.getCustomer({ id: 1 }, makeContext({ connection: { token: 'acme-token-1' } })));
    expect(err).toMatchObject({ code: 'E_INPUT', retryable: false });
  });

  it('basic and header auth', async () => {
    const seenAuth: (string | undefined)[] = [];
    const s = await startServer((req, res) => {
      seenAuth.push((req.headers.authorization as string | undefined) ?? (req.headers['x-api-key'] as string | undefined));
      res.writeHead(200, { 'Content-Type': 'text/plain' }).end('ok');
    });
    try {
      const base = { apiVersion: 'alloy/v1', kind: 'Connector', name: 'x', baseUrl: s.url, actions: { ping: { request: { method: 'GET', path: '/ping' } } } } as const;
      const basic = createDeclarativeConnector({ ...base, auth: { type: 'basic', username: '{{ connection.user }}', password: '{{ connection.pass }}' } });
      expect(await basic.actions.ping({}, makeContext({ connection: { user: 'ann', pass: 's3cret' } }))).toBe('ok');
      const header = createDeclarativeConnector({ ...base, auth: { type: 'header', header: 'X-Api-Key', value: 'key-{{ connection.key }}' } });
      await header.actions.ping({}, makeContext({ connection: { key: '42' } }));
      expect(seenAuth).toEqual([`Basic ${Buffer.from('ann:s3cret').toString('base64')}`, 'key-42']);
    } finally {
      await s.close();
    }
  });

  it('a template that does not compile is a UsageError naming the connector and action', () => {
    const bad = { ...acme(server.url), actions: { broken: { request: { method: 'GET' as const, path: '/x/{{ input.( }}' } } } };
    let error: unknown;
    try {
      createDeclarativeConnector(bad);
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(UsageError);
    expect((error as Error).message).toContain('connector acme action broken request.path');
  });

  it('the registry serves built-ins and user connectors, and refuses a user connector named like a built-in', () => {
    const registry = createConnectorRegistry({ userConnectors: [acme(server.url)] });
    expect(registry.names()).toEqual(['acme', 'http', 'shopify']);
    expect(Object.keys(registry.get('acme')!.actions)).toEqual(['createCustomer', 'getCustomer']);
    expect(Object.keys(registry.get('shopify')!.actions).sort()).toEqual(['addTags', 'createOrder', 'getOrder']);
    expect(registry.get('nope')).toBeUndefined();
    expect(() => createConnectorRegistry({ userConnectors: [{ ...acme(server.url), name: 'shopify' }] })).toThrow(/built in/);
  });

  it('encodes rendered values in the path: an id cannot change the endpoint', async () => {
    const runtime = createDeclarativeConnector(acme(server.url));
    const ctx = () => makeContext({ connection: { token: 'acme-token-1', apiPath: 'v2' } });
    const a = (await runtime.actions.getCustomer({ id: '../admin/x' }, ctx())) as any;
    expect(a.url).toBe('/v2/customers/..%2Fadmin%2Fx');
    const b = (await runtime.actions.getCustomer({ id: '1?delete=1#' }, ctx())) as any;
    expect(b.url).toBe('/v2/customers/1%3Fdelete%3D1%23');
    // literal text of the path stays as written
    const c = (await runtime.actions.getCustomer({ id: 'a b' }, ctx())) as any;
    expect(c.url).toBe('/v2/customers/a%20b');
  });

  it('refuses to send credentials to another origin than the base URL', async () => {
    const other = await startServer((req, res) => res.writeHead(200, { 'Content-Type': 'text/plain' }).end('leaked'));
    try {
      const manifest: ConnectorManifest = {
        ...acme(server.url),
        actions: {
          fetchAbs: { request: { method: 'GET', path: `${other.url}/steal` } },
          fetchTpl: { request: { method: 'GET', path: '{{ input.url }}' } },
        },
      };
      const runtime = createDeclarativeConnector(manifest);
      const err = await thrown(() => runtime.actions.fetchAbs({}, makeContext({ connection: { token: 'acme-token-1', apiPath: 'v2' } })));
      expect(err).toMatchObject({ code: 'E_CONNECTOR_ORIGIN', retryable: false });
      expect(err.message).not.toContain('acme-token-1');
      expect(other.seen).toHaveLength(0);
      // A rendered absolute URL is encoded into a path under the base, never followed.
      const out = (await runtime.actions.fetchTpl({ url: `${other.url}/steal` }, makeContext({ connection: { token: 'acme-token-1', apiPath: 'v2' } }))) as any;
      expect(out.url.startsWith('/v2/http%3A%2F%2F127.0.0.1')).toBe(true);
      expect(other.seen).toHaveLength(0);
      // Without auth an absolute path is allowed (nothing to leak).
      const open = createDeclarativeConnector({ ...manifest, auth: { type: 'none' } });
      expect(await open.actions.fetchAbs({}, makeContext())).toBe('leaked');
    } finally {
      await other.close();
    }
  });
});
