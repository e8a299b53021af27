/**
 * Issue 9 item 8: outbound requests have an egress policy, checked on the address actually
 * connected (a host name resolving to a refused address is caught; so is an IP literal).
 * Host names resolve through a lookup the test passes in (no system files touched).
 */
import dns from 'node:dns';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHttpClient } from '../../src/connectors/http-client.js';
import { createConnectorRegistry } from '../../src/connectors/registry.js';
import type { EgressPolicy } from '../../src/connectors/egress.js';
import { compileWorkflow, createExecutionRecord, executeWorkflow } from '../../src/engine/index.js';
import { realClock } from '../../src/engine/clock.js';
import type { EngineDeps } from '../../src/engine/types.js';
import type { WorkflowDef } from '../../src/core/model.js';

/** A resolver for made-up names: anything.test → the address in its first label (dashes for dots). */
const NAMES: Record<string, string> = {
  'metadata.test': '169.254.169.254',
  'rebind.test': '127.0.0.1',
  'zero.test': '0.0.0.0',
  'multicast.test': '224.0.0.1',
  'v6-link-local.test': 'fe80::1',
};
const testLookup = ((hostname: string, options: dns.LookupOptions, callback: (...a: unknown[]) => void) => {
  const address = NAMES[hostname];
  if (!address) return dns.lookup(hostname, options, callback as never);
  const family = address.includes(':') ? 6 : 4;
  if (options.all) callback(null, [{ address, family }]);
  else callback(null, address, family);
}) as unknown as typeof dns.lookup;

let server: http.Server;
let port = 0;
let hits = 0;
beforeAll(async () => {
  server = http.createServer((_req, res) => {
    hits++;
    res.setHeader('content-type', 'application/json');
    res.end('{"ok":true}');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  port = (server.address() as AddressInfo).port;
});
afterAll(() => new Promise<void>((r) => server.close(() => r())));

async function call(url: string, egress: EgressPolicy) {
  const registry = createConnectorRegistry({ userConnectors: [] });
  const def = {
    apiVersion: 'alloy/v1',
    kind: 'Workflow',
    name: 'egress',
    trigger: { event: 'x' },
    steps: [{ id: 'call', uses: 'http/request', with: { method: 'GET', url }, retry: { attempts: 1 } }],
  } as unknown as WorkflowDef;
  const deps: EngineDeps = {
    connectors: registry,
    http: createHttpClient({ egress: { lookup: testLookup, ...egress } }),
    clock: realClock,
    random: Math.random,
    checkpoint: async () => {},
    logger: { debug() {}, info() {}, warn() {} },
    resolveConnection: async () => ({}),
  };
  return executeWorkflow(compileWorkflow(def), createExecutionRecord({ workflow: 'sec/egress', event: {} }, Date.now()), deps);
}

describe('egress policy', () => {
  for (const url of [
    'http://169.254.169.254/latest/meta-data/',
    'http://metadata.test/latest/meta-data/',
    'http://zero.test/',
    'http://0.0.0.0/',
    'http://multicast.test/',
    'http://[fe80::1]/',
    'http://v6-link-local.test/',
    'http://[::ffff:169.254.169.254]/',
    'http://100.100.100.200/',
    'http://[64:ff9b::a9fe:a9fe]/',
  ]) {
    it(`refuses ${url} with E_EGRESS_DENIED (dev policy, loopback allowed)`, async () => {
      const r = await call(url, { loopback: true });
      expect(r.status).toBe('failed');
      expect(r.error?.code).toBe('E_EGRESS_DENIED');
      expect(r.steps.call.attempts).toBe(1);
    });
  }

  it('allows loopback in dev and run (the customer’s local server), by literal and by name', async () => {
    const before = hits;
    expect((await call(`http://127.0.0.1:${port}/`, { loopback: true })).status).toBe('succeeded');
    expect((await call(`http://rebind.test:${port}/`, { loopback: true })).status).toBe('succeeded');
    expect(hits).toBe(before + 2);
  });

  it('refuses loopback under serve’s policy, even through a name that resolves to it (rebinding)', async () => {
    const before = hits;
    for (const url of [`http://127.0.0.1:${port}/`, `http://rebind.test:${port}/`, `http://[::1]:${port}/`]) {
      const r = await call(url, { loopback: false });
      expect(r.error?.code, url).toBe('E_EGRESS_DENIED');
      expect(r.error?.message).toMatch(/loopback/);
    }
    expect(hits).toBe(before);
  });

  it('egress.allow lets a listed address through under serve’s policy', async () => {
    expect((await call(`http://rebind.test:${port}/`, { loopback: false, allow: ['127.0.0.1'] })).status).toBe('succeeded');
    expect((await call(`http://127.0.0.1:${port}/`, { loopback: false, allow: ['127.0.0.0/8'] })).status).toBe('succeeded');
  });

  it('a bad egress.allow entry is a clear error', () => {
    expect(() => createHttpClient({ egress: { loopback: false, allow: ['not-an-ip'] } })).toThrow(/egress\.allow: "not-an-ip"/);
  });
});
