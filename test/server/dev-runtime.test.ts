import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { loadProject } from '../../src/core/project.js';
import { builtinConnectorManifests } from '../../src/connectors/builtin-manifests.js';
import { shopifyWebhookHeaders } from '../../src/connectors/shopify/webhooks.js';
import { startDevRuntime, type DevEvent, type DevRuntime } from '../../src/server/dev-runtime.js';
import { readDevInfo } from '../../src/server/dev-state.js';
import { writeTree } from '../runtime/helpers.js';
import { fakeExecutor, http, postJson, tempDir } from './helpers.js';

const files = {
  'alloy.config.yaml': 'apiVersion: alloy/v1\nkind: Project\nname: devrt\n',
  'integrations/demo/integration.yaml': 'apiVersion: alloy/v1\nkind: Integration\nname: demo\napp: shopify\n',
  'integrations/demo/workflows/orders.yaml':
    'apiVersion: alloy/v1\nkind: Workflow\nname: orders\ntrigger: { app: shopify, event: orders/create }\nsteps:\n  - id: pick\n    uses: transform\n    with: { id: "{{ event.id }}" }\n',
  'integrations/demo/workflows/ping.yaml':
    'apiVersion: alloy/v1\nkind: Workflow\nname: ping\ntrigger: { event: ping }\nsteps:\n  - id: pong\n    uses: transform\n    with: { ok: true }\nstream:\n  url: "http://127.0.0.1:9/never"\n  secret: "{{ secrets.PING_STREAM_SECRET }}"\n',
};

describe('startDevRuntime', () => {
  let tmp: ReturnType<typeof tempDir>;
  let rt: DevRuntime | undefined;
  let events: DevEvent[];
  beforeEach(() => {
    tmp = tempDir();
    writeTree(tmp.dir, files);
    events = [];
  });
  afterEach(async () => {
    await rt?.close();
    tmp.cleanup();
  });

  const start = () =>
    startDevRuntime({
      root: tmp.dir,
      loadProject: () => loadProject(tmp.dir, { builtinConnectors: builtinConnectorManifests }),
      processEnv: {},
      port: 0,
      executor: fakeExecutor().executor,
      debounceMs: 30,
      onEvent: (e) => events.push(e),
    });

  it('writes dev.json, keeps one stream secret across restarts, and falls back to it for unset stream secrets', async () => {
    rt = await start();
    expect(readDevInfo(tmp.dir)).toMatchObject({ url: rt.url, pid: process.pid });
    expect(rt.streamSecret).toMatch(/^whsec_/);
    expect(rt.streamSecretNames).toEqual(['PING_STREAM_SECRET']);
    const first = rt.streamSecret;
    await rt.close();
    expect(readDevInfo(tmp.dir)).toBeUndefined();
    rt = await start();
    expect(rt.streamSecret).toBe(first);
  });

  it('reloads .env changes: a Shopify delivery refused for lack of a secret is accepted once .env sets it', async () => {
    rt = await start();
    const payload = Buffer.from('{"id":1}');
    const headers = shopifyWebhookHeaders({ topic: 'orders/create', shop: 'a.myshopify.com', apiVersion: '2025-10', body: payload, secret: 'from-dotenv' });
    const before = await http('POST', `${rt.url}/v1/webhooks/shopify`, payload, headers);
    expect([before.status, before.json.error.code]).toEqual([500, 'E_MISSING_SECRET']);
    writeFileSync(path.join(tmp.dir, '.env'), 'SHOPIFY_API_SECRET=from-dotenv\n');
    await waitFor(() => events.some((e) => e.type === 'reload' && e.files.includes('.env')));
    const after = await http('POST', `${rt.url}/v1/webhooks/shopify`, payload, headers);
    expect(after.status).toBe(202);
  });

  it('keeps serving the last good definitions when a file breaks, and reports the same errors once', async () => {
    rt = await start();
    const file = path.join(tmp.dir, 'integrations/demo/workflows/ping.yaml');
    writeFileSync(file, 'apiVersion: alloy/v1\nkind: Workflow\nname: ping\ntrigger: [\n');
    await waitFor(() => events.some((e) => e.type === 'reload-failed'));
    writeFileSync(file, 'apiVersion: alloy/v1\nkind: Workflow\nname: ping\ntrigger: [\n');
    await new Promise((r) => setTimeout(r, 200));
    expect(events.filter((e) => e.type === 'reload-failed')).toHaveLength(1);
    const res = await postJson(`${rt.url}/v1/run/event`, { event: 'ping', data: {} });
    expect(res.status).toBe(202);
    expect(res.json.executions[0].workflow).toBe('demo/ping');
    writeFileSync(file, files['integrations/demo/workflows/ping.yaml'].replace('event: ping', 'event: ping2'));
    await waitFor(() => events.some((e) => e.type === 'reload' && e.changes.includes('~ demo/ping')));
    expect((await postJson(`${rt.url}/v1/run/event`, { event: 'ping2', data: {} })).json.executions).toHaveLength(1);
  });
});

describe('startDevRuntime with broken files at start', () => {
  it('holds unfinished executions until the definitions are good again, instead of failing them', async () => {
    const tmp = tempDir();
    writeTree(tmp.dir, files);
    const load = () => loadProject(tmp.dir, { builtinConnectors: builtinConnectorManifests });
    const gate = new Promise<void>(() => {});
    let rt = await startDevRuntime({ root: tmp.dir, loadProject: load, processEnv: {}, port: 0, executor: fakeExecutor({ gate }).executor, watch: false, shutdownGraceMs: 20 });
    try {
      const res = await postJson(`${rt.url}/v1/run/event`, { event: 'ping', data: {} });
      const id = res.json.executions[0].id;
      await rt.close();
      const file = path.join(tmp.dir, 'integrations/demo/workflows/ping.yaml');
      writeFileSync(file, 'apiVersion: alloy/v1\nkind: Workflow\nname: ping\ntrigger: [\n');
      const events: DevEvent[] = [];
      rt = await startDevRuntime({ root: tmp.dir, loadProject: load, processEnv: {}, port: 0, executor: fakeExecutor().executor, debounceMs: 30, onEvent: (e) => events.push(e) });
      expect(rt.initialDiagnostics.some((d) => d.severity === 'error')).toBe(true);
      await new Promise((r) => setTimeout(r, 100));
      // Not failed as "workflow not found": still waiting (its last stored state).
      expect((await http('GET', `${rt.url}/v1/executions/${id}`)).json.execution.status).toBe('queued');
      writeFileSync(file, files['integrations/demo/workflows/ping.yaml']);
      const done = await http('GET', `${rt.url}/v1/executions/${id}?wait=5000`);
      expect(done.json.execution.status).toBe('succeeded');
    } finally {
      await rt.close();
      tmp.cleanup();
    }
  });
});

async function waitFor(check: () => boolean, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 20));
  }
}
