// A benchmark target, run as a child process (so its CPU and peak RSS are its own, read by
// the bench from /proc/<pid>/stat):
//   alloy-ingest   createRuntimeServer (dist/) verifying and persisting Shopify webhooks
//   raw-ingest     node:http that parses the JSON, maps 3 fields and answers 202
//   alloy-exec     createRuntimeServer + the real engine: a workflow mapping 3 fields and POSTing to DEST
//   raw-forward    node:http that answers 202, maps the same 3 fields and POSTs to DEST (no persistence)
// Prints {"url": ...} on IPC when listening; answers {"type":"stats"} with its peak RSS, CPU
// and the longest event-loop delay since the last {"type":"reset"} (monitorEventLoopDelay).
import http from 'node:http';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import os from 'node:os';
import path from 'node:path';
import { mkdtempSync, rmSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { request } from 'undici';

if (!process.send) {
  // Run directly (e.g. by bench/run-all.mjs): this is a helper of runtime-bench.mjs, not a benchmark.
  console.log('bench/runtime-target.mjs is started by bench/runtime-bench.mjs');
  process.exit(0);
}
const [mode, dest, sync = 'full'] = process.argv.slice(2);
/** Executions run at once by the alloy target (`--concurrency`); the raw forwarder has no limit. */
export const EXEC_CONCURRENCY = 64;
const SECRET = 'bench_shopify_secret';
let closeTarget = async () => {};
let queueSize;

async function listen(server) {
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return `http://127.0.0.1:${server.address().port}`;
}

function readBody(req) {
  return new Promise((resolve) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks)));
  });
}

async function alloyTarget(kind) {
  // ALLOY_BENCH_DIST=<dir> measures another build (e.g. the one before a change) with the same bench.
  const dist = process.env.ALLOY_BENCH_DIST ? pathToFileURL(path.resolve(process.env.ALLOY_BENCH_DIST)).href : new URL('../dist', import.meta.url).href;
  const { openEventLog } = await import(`${dist}/server/event-log.js`);
  const { indexDefinitions } = await import(`${dist}/server/definitions.js`);
  const { createRuntimeServer } = await import(`${dist}/server/runtime-server.js`);
  const { createEngineExecutor } = await import(`${dist}/server/engine-executor.js`);
  const dir = mkdtempSync(path.join(os.tmpdir(), 'alloy-bench-'));
  const wf = (name, trigger, steps) => ({ apiVersion: 'alloy/v1', kind: 'Workflow', name, trigger, steps });
  const workflows =
    kind === 'ingest'
      ? [wf('order-created', { app: 'shopify', event: 'orders/create' }, [{ id: 'noop', uses: 'transform', with: { id: '{{ event.id }}' } }])]
      : [
          wf('forward', { event: 'bench.item' }, [
            { id: 'map', uses: 'transform', with: { item: '{{ event.n }}', sku: '{{ event.sku }}', qty: '{{ event.qty }}' } },
            { id: 'post', uses: 'http', with: { method: 'POST', url: `${dest}/sink`, body: '{{ steps.map.output }}' } },
          ]),
        ];
  const project = {
    root: dir,
    config: { name: 'bench' },
    integrations: [{ name: 'bench', dir: 'integrations/bench', file: 'x', def: { apiVersion: 'alloy/v1', kind: 'Integration', name: 'bench', app: 'shopify' }, workflows: workflows.map((def) => ({ integration: 'bench', name: def.name, file: 'x', def })) }],
    connectors: [],
    diagnostics: [],
  };
  // Ingest measures verify + persist + 202 only: executions are queued but not run.
  const executor = kind === 'ingest' ? () => new Promise(() => {}) : createEngineExecutor({ project: () => project, env: {} });
  const server = createRuntimeServer({
    log: openEventLog({ file: path.join(dir, 'dev.sqlite'), synchronous: sync, compressBodies: process.env.BENCH_COMPRESS === '1' }),
    definitions: indexDefinitions(project),
    executor,
    secrets: { SHOPIFY_API_SECRET: SECRET },
    concurrency: EXEC_CONCURRENCY,
    // Ingest never runs what it queues: no queue limit there (it measures accepting only).
    ...(kind === 'ingest' ? { maxQueued: Number.MAX_SAFE_INTEGER } : process.env.BENCH_MAX_QUEUED ? { maxQueued: Number(process.env.BENCH_MAX_QUEUED) } : {}),
    shutdownGraceMs: 10,
  });
  const url = await server.listen();
  queueSize = () => server.queueSize();
  closeTarget = async () => {
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  };
  return url;
}

async function rawIngest() {
  const server = http.createServer(async (req, res) => {
    const body = await readBody(req);
    const order = JSON.parse(body.toString('utf8'));
    // The same mapping as the alloy workflow's first step would do.
    globalThis.mapped = { id: order.id, email: order.email, total: order.total_price };
    res.writeHead(202, { 'content-type': 'application/json' });
    res.end('{"ok":true}');
  });
  return listen(server);
}

async function rawForward() {
  const server = http.createServer(async (req, res) => {
    const body = await readBody(req);
    const { data } = JSON.parse(body.toString('utf8'));
    res.writeHead(202, { 'content-type': 'application/json' });
    res.end('{"ok":true}');
    const mapped = { item: data.n, sku: data.sku, qty: data.qty };
    const r = await request(`${dest}/sink`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(mapped) });
    await r.body.text();
  });
  return listen(server);
}

const loopDelay = monitorEventLoopDelay({ resolution: 10 });
loopDelay.enable();
const url =
  mode === 'alloy-ingest' ? await alloyTarget('ingest') : mode === 'alloy-exec' ? await alloyTarget('exec') : mode === 'raw-ingest' ? await rawIngest() : await rawForward();
process.send({ type: 'ready', url });
process.on('message', async (m) => {
  if (m.type === 'reset') {
    loopDelay.reset();
    process.send({ type: 'reset' });
  }
  if (m.type === 'stats') {
    const ru = process.resourceUsage();
    process.send({
      type: 'stats',
      maxRssKb: ru.maxRSS,
      cpuMs: (ru.userCPUTime + ru.systemCPUTime) / 1000,
      elu: performance.eventLoopUtilization(),
      maxLoopDelayMs: loopDelay.max / 1e6,
      queue: queueSize?.(),
    });
  }
  if (m.type === 'stop') {
    await closeTarget();
    process.exit(0);
  }
});
