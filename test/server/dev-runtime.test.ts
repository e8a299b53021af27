import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mkdirSync, renameSync, watch, writeFileSync, type FSWatcher } from 'node:fs';
import path from 'node:path';
import { loadProject } from '../../src/core/project.js';
import { builtinConnectorManifests } from '../../src/connectors/builtin-manifests.js';
import { shopifyWebhookHeaders } from '../../src/connectors/shopify/webhooks.js';
import { startDevRuntime, type DevEvent, type DevRuntime, type WatchFn } from '../../src/server/dev-runtime.js';
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
  let loads = 0;
  beforeEach(() => {
    loads = 0;
    tmp = tempDir();
    writeTree(tmp.dir, files);
    events = [];
  });
  afterEach(async () => {
    await rt?.close();
    tmp.cleanup();
  });

  const start = (extra: { watchFn?: WatchFn } = {}) =>
    startDevRuntime({
      ...extra,
      root: tmp.dir,
      loadProject: () => {
        loads++;
        return loadProject(tmp.dir, { builtinConnectors: builtinConnectorManifests });
      },
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
    await rt.reload([]);
    const loadsAfterFirst = loads;
    writeFileSync(file, 'apiVersion: alloy/v1\nkind: Workflow\nname: ping\ntrigger: [\n');
    // Wait for the watcher to read the second write (a new load), then for that reload to end
    // (reloads run one after another, so an explicit one queued now ends after it).
    await waitFor(() => loads > loadsAfterFirst);
    await rt.reload(['integrations/demo/workflows/ping.yaml']);
    expect(loads).toBeGreaterThan(loadsAfterFirst + 1);
    expect(events.filter((e) => e.type === 'reload-failed')).toHaveLength(1);
    const res = await postJson(`${rt.url}/v1/run/event`, { event: 'ping', data: {} });
    expect(res.status).toBe(202);
    expect(res.json.executions[0].workflow).toBe('demo/ping');
    writeFileSync(file, files['integrations/demo/workflows/ping.yaml'].replace('event: ping', 'event: ping2'));
    await waitFor(() => events.some((e) => e.type === 'reload' && e.changes.includes('~ demo/ping')));
    expect((await postJson(`${rt.url}/v1/run/event`, { event: 'ping2', data: {} })).json.executions).toHaveLength(1);
  });
});

describe('startDevRuntime file watching', () => {
  let tmp: ReturnType<typeof tempDir>;
  let rt: DevRuntime | undefined;
  let events: DevEvent[];
  let watched: { dir: string; recursive: boolean; watcher: FSWatcher }[];
  beforeEach(() => {
    tmp = tempDir();
    writeTree(tmp.dir, files);
    events = [];
    watched = [];
  });
  afterEach(async () => {
    await rt?.close();
    tmp.cleanup();
  });
  const recordingWatch: WatchFn = (dir, options, listener) => {
    const watcher = watch(dir, options, listener);
    watched.push({ dir: path.relative(tmp.dir, dir).split(path.sep).join('/') || '.', recursive: options.recursive, watcher });
    return watcher;
  };
  const start = () =>
    startDevRuntime({
      root: tmp.dir,
      loadProject: () => loadProject(tmp.dir, { builtinConnectors: builtinConnectorManifests }),
      processEnv: {},
      port: 0,
      executor: fakeExecutor().executor,
      debounceMs: 30,
      watchFn: recordingWatch,
      onEvent: (e) => events.push(e),
    });
  const reloadedWith = (file: string) => events.some((e) => (e.type === 'reload' || e.type === 'reload-failed') && e.files.includes(file));

  it('watches the root (not recursively) and the definition folders, never node_modules, .git or .alloy', async () => {
    // A dependency tree: a recursive watch of the root would put a watch on each of these folders.
    for (let i = 0; i < 200; i++) mkdirSync(path.join(tmp.dir, 'node_modules', `pkg-${i}`, 'lib'), { recursive: true });
    mkdirSync(path.join(tmp.dir, '.git', 'objects'), { recursive: true });
    rt = await start();
    // One plain watcher per definition folder (a recursive one loses files saved by rename).
    expect(watched.map((w) => `${w.dir}${w.recursive ? ' (recursive)' : ''}`).sort()).toEqual(['.', 'integrations', 'integrations/demo', 'integrations/demo/workflows']);
    // A change in node_modules reaches no watcher; a workflow edit still reloads.
    writeFileSync(path.join(tmp.dir, 'node_modules', 'pkg-1', 'package.json'), '{}');
    writeFileSync(path.join(tmp.dir, 'node_modules', 'pkg-1', 'lib', 'x.yaml'), 'a: 1\n');
    const wf = 'integrations/demo/workflows/ping.yaml';
    writeFileSync(path.join(tmp.dir, wf), files[wf].replace('event: ping', 'event: pinged'));
    await waitFor(() => events.some((e) => e.type === 'reload' && e.changes.includes('~ demo/ping')));
    const reloadFiles = events.flatMap((e) => (e.type === 'reload' || e.type === 'reload-failed' ? e.files : []));
    expect(reloadFiles).toContain(wf);
    expect(reloadFiles.filter((f) => f.includes('node_modules'))).toEqual([]);
  });

  it('hot-reloads a workflow edit, a new workflow file, a connectors folder made later, and .env', async () => {
    rt = await start();
    const wf = 'integrations/demo/workflows/ping.yaml';
    writeFileSync(path.join(tmp.dir, wf), files[wf].replace('event: ping', 'event: ping2'));
    await waitFor(() => events.some((e) => e.type === 'reload' && e.changes.includes('~ demo/ping')));
    expect((await postJson(`${rt.url}/v1/run/event`, { event: 'ping2', data: {} })).json.executions).toHaveLength(1);

    const added = 'integrations/demo/workflows/added.yaml';
    writeFileSync(path.join(tmp.dir, added), files[wf].replace('name: ping', 'name: added').replace('event: ping', 'event: added'));
    await waitFor(() => events.some((e) => e.type === 'reload' && e.changes.includes('+ demo/added')));
    expect((await postJson(`${rt.url}/v1/run/event`, { event: 'added', data: {} })).json.executions[0].workflow).toBe('demo/added');

    // connectors/ does not exist at start: its appearance is noticed and then its files are watched.
    mkdirSync(path.join(tmp.dir, 'connectors'));
    await waitFor(() => watched.some((w) => w.dir === 'connectors'));
    const connector = 'connectors/acme.yaml';
    writeFileSync(path.join(tmp.dir, connector), 'apiVersion: alloy/v1\nkind: Connector\nname: acme\nbaseUrl: https://api.acme.test\nauth: { type: none }\n');
    await waitFor(() => reloadedWith(connector));
    await waitFor(() => rt!.project.connectors.some((c) => c.def.name === 'acme'));
    writeFileSync(path.join(tmp.dir, connector), 'apiVersion: alloy/v1\nkind: Connector\nname: acme\nbaseUrl: https://api2.acme.test\nauth: { type: none }\n');
    await waitFor(() => rt!.project.connectors.some((c) => c.def.baseUrl === 'https://api2.acme.test'));

    writeFileSync(path.join(tmp.dir, '.env'), 'PING_STREAM_SECRET=set-in-dotenv\n');
    await waitFor(() => reloadedWith('.env'));
    expect(rt.env.PING_STREAM_SECRET).toBe('set-in-dotenv');
    expect(rt.streamSecretNames).toEqual([]);
  });

  it('keeps reloading a file saved atomically (temp file renamed over it), as vim, sed -i and VS Code save', async () => {
    rt = await start();
    const wf = 'integrations/demo/workflows/ping.yaml';
    const abs = path.join(tmp.dir, wf);
    for (const [i, name] of ['ping-a', 'ping-b', 'ping-c'].entries()) {
      const temp = path.join(tmp.dir, 'integrations/demo/workflows', `.ping.yaml.tmp${i}`);
      writeFileSync(temp, files[wf].replace('event: ping', `event: ${name}`));
      renameSync(temp, abs);
      await waitFor(() => JSON.stringify(rt!.project.integrations).includes(name), `reload ${i + 1} after an atomic save`, 5000);
      expect((await postJson(`${rt.url}/v1/run/event`, { event: name, data: {} })).json.executions).toHaveLength(1);
    }
    // A plain write after the atomic saves still reloads too.
    writeFileSync(abs, files[wf].replace('event: ping', 'event: ping-d'));
    await waitFor(() => JSON.stringify(rt!.project.integrations).includes('ping-d'), 'reload after a plain write', 5000);
  });

  it('reports a watcher error and keeps serving', async () => {
    rt = await start();
    const root = watched.find((w) => w.dir === '.')!;
    root.watcher.emit('error', Object.assign(new Error('ENOSPC: System limit for number of file watchers reached'), { code: 'ENOSPC' }));
    const error = events.find((e) => e.type === 'error');
    expect(error && 'message' in error ? error.message : '').toMatch(/file watcher on \. failed: ENOSPC.*max_user_watches/);
    const res = await postJson(`${rt.url}/v1/run/event`, { event: 'ping', data: {} });
    expect(res.status).toBe(202);
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
      // A reload of the still-broken files has been processed (and must not resume anything)...
      await rt.reload(['integrations/demo/workflows/ping.yaml']);
      expect(events.some((e) => e.type === 'reload-failed')).toBe(true);
      // ...and nothing was handed to the pool at listen(): resuming pushes synchronously, so a
      // resumed execution would be queued, running, or already failed as "workflow not found".
      expect(rt.server.queueSize()).toEqual({ queued: 0, running: 0 });
      // Not failed: still waiting (its last stored state).
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
