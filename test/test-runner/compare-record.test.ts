/**
 * From the event log: `alloy compare` (one execution, two versions; --all --since),
 * `alloy replay --version` and `alloy test --record`, on a real SQLite event log holding
 * executions the engine really ran (create-order against the in-process fake Shopify).
 */
import { execFileSync } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { copyExample, EXAMPLE_DIR, REPO_ROOT, runInProcess } from '../helpers/cli.js';
import { openEventLog } from '../../src/server/event-log.js';
import { createConnectorRegistry } from '../../src/connectors/registry.js';
import { compiledFor, runHarness, streamPlaceholders } from '../../src/test-runner/index.js';
import type { WorkflowDef } from '../../src/core/model.js';
import type { ExecutionRecord } from '../../src/engine/types.js';
import { parse } from 'yaml';

const EXAMPLE = EXAMPLE_DIR;
const WF = 'integrations/shopify-sync/workflows';
const DAY = 86_400_000;

let dir: string;
let cleanup: () => Promise<void>;

async function def(name: string): Promise<WorkflowDef> {
  return parse(await readFile(path.join(dir, WF, `${name}.yaml`), 'utf8')) as WorkflowDef;
}

async function edit(rel: string, from: string, to: string): Promise<void> {
  const file = path.join(dir, rel);
  const text = await readFile(file, 'utf8');
  expect(text).toContain(from);
  await writeFile(file, text.replace(from, to));
}

/** Runs the example's workflows for real (fake Shopify in process) and stores the executions in .alloy/dev.sqlite. */
async function seedEventLog(): Promise<{ orders: ExecutionRecord[]; created: ExecutionRecord }> {
  const connectors = createConnectorRegistry();
  let now = Date.now() - 10 * DAY;
  const log = openEventLog({ file: path.join(dir, '.alloy', 'dev.sqlite'), clock: () => now });
  const store = async (record: ExecutionRecord, at: number) => {
    now = at;
    await log.appendDelivery(
      { id: `dl_${record.id}`, source: 'event', name: 'x', receivedAt: at, headers: {}, body: Buffer.from(JSON.stringify(record.event)), verification: 'none' },
      [{ id: record.id, workflow: record.workflow, record: { id: record.id, status: 'queued', steps: {} } }],
    );
    await log.saveRecord(record as never);
  };
  const orders: ExecutionRecord[] = [];
  const createOrder = await def('create-order');
  for (const [i, age] of [10 * DAY, 2 * DAY, 1 * DAY].entries()) {
    const event = { orderId: `acme-${i}`, email: `c${i}@example.com`, currency: 'EUR', apiToken: 'tok_live_abcdef123456', lineItems: [{ title: 'Boots', quantity: 1 + i, price: 74.99 }] };
    const { record } = await runHarness({ compiled: compiledFor(createOrder), workflow: 'shopify-sync/create-order', executionId: `ex_order${i}`, version: 'wt-1', event, setup: { fake: { app: 'shopify' } }, connectors });
    expect(record.status).toBe('succeeded');
    await store(record, Date.now() - age);
    orders.push(record);
  }
  const orderCreated = await def('order-created');
  const shopifyOrder = JSON.parse(await readFile(path.join(dir, 'integrations/shopify-sync/fixtures/orders-create.json'), 'utf8'));
  const { record: created } = await runHarness({ compiled: compiledFor(orderCreated), workflow: 'shopify-sync/order-created', executionId: 'ex_created', event: shopifyOrder, setup: { ...streamPlaceholders(orderCreated) }, connectors });
  expect(created.stream?.status).toBe('delivered');
  await store(created, Date.now() - DAY);
  log.close();
  return { orders, created };
}

let seeded: { orders: ExecutionRecord[]; created: ExecutionRecord };
beforeEach(async () => {
  ({ dir, cleanup } = await copyExample());
  seeded = await seedEventLog();
  const released = await runInProcess(['release', '-m', 'v1'], { cwd: dir });
  expect(released.code, released.stderr).toBe(0);
  expect((await runInProcess(['publish', 'shopify-sync@1'], { cwd: dir })).code).toBe(0);
});
afterEach(async () => cleanup());

describe('alloy compare', () => {
  it('shows the step-level change between the published version and the working tree on a recorded execution', async () => {
    expect(JSON.parse((await runInProcess(['compare', 'ex_created', '--json'], { cwd: dir })).stdout)).toMatchObject({ verdict: 'unchanged', a: 'v1 (published)', b: 'working tree' });
    await edit(`${WF}/order-created.yaml`, 'total: "{{ $number(event.total_price) }}"', 'total: "{{ event.total_price }}"');
    const r = await runInProcess(['compare', 'ex_created'], { cwd: dir });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('shopify-sync/order-created: v1 (published) → working tree  (ex_created)');
    expect(r.stdout).toContain('~ step summary transform');
    expect(r.stdout).toMatch(/output:\n[\s\S]*-\s+"total": 598\.94\n\s+\+\s+"total": "598\.94"/);
    expect(r.stdout).toContain('~ stream payload:');
    expect(r.stdout).toContain('changed: succeeded');

    const j = JSON.parse((await runInProcess(['compare', 'ex_created', '1', 'working', '--json'], { cwd: dir })).stdout);
    expect(j.verdict).toBe('changed');
    expect(j.steps).toEqual([expect.objectContaining({ path: 'summary', change: 'changed', fields: [expect.objectContaining({ field: 'inputs' }), expect.objectContaining({ field: 'output', a: expect.objectContaining({ total: 598.94 }), b: expect.objectContaining({ total: '598.94' }) })] })]);
    expect(j.stream.diff).toContain('+         "total": "598.94"');
  });

  it('--all --since summarises every stored execution of a workflow: unchanged, changed, would fail', async () => {
    const same = JSON.parse((await runInProcess(['compare', '--all', 'shopify-sync/create-order', '--json'], { cwd: dir })).stdout);
    expect(same.summary).toEqual({ unchanged: 3, changed: 0, fails: 0 });

    // The working tree calls Acme's API first: nothing recorded answers it, so every execution would fail.
    await edit(
      `${WF}/create-order.yaml`,
      'steps:\n',
      'steps:\n  - id: check\n    uses: http/request\n    with: { method: GET, url: "https://api.acme.example/orders/{{ event.orderId }}" }\n',
    );
    const r = await runInProcess(['compare', '--all', 'shopify-sync/create-order', '--since', '3d', '--json'], { cwd: dir });
    expect(r.code).toBe(1);
    const j = JSON.parse(r.stdout);
    expect(j.summary).toEqual({ unchanged: 0, changed: 0, fails: 2 });
    expect(j.executions.map((e: { id: string }) => e.id).sort()).toEqual(['ex_order1', 'ex_order2']);
    const human = await runInProcess(['compare', '--all', 'create-order', '--since', '3d'], { cwd: dir });
    expect(human.stdout).toContain('0 unchanged, 0 changed, 2 would fail');
    expect(human.stdout).toContain('✖ would fail ex_order2');
  });

  it('runs a fixture through the in-process fake, and says what to add when the workflow is not named', async () => {
    const fixture = 'integrations/shopify-sync/fixtures/acme-order-requested.json';
    const missing = await runInProcess(['compare', fixture], { cwd: dir });
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('--workflow');
    const r = await runInProcess(['compare', fixture, '--workflow', 'shopify-sync/create-order', '--json'], { cwd: dir });
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ verdict: 'unchanged', status: { a: 'succeeded', b: 'succeeded' } });
  });

  it('refuses a fixture that is a named pipe at once (exit 2, naming it); it blocked for ever', async () => {
    execFileSync('mkfifo', [path.join(dir, 'pipe.json')]);
    const started = Date.now();
    const r = await runInProcess(['compare', 'pipe.json', '--workflow', 'shopify-sync/create-order', '--json'], { cwd: dir });
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(r.code, r.stdout).toBe(2);
    expect(JSON.parse(r.stdout).error).toMatchObject({ code: 'E_EVENT_FILE', message: expect.stringMatching(/pipe\.json: not a regular file/) });
    // A .json name that is no file is still taken as an execution id.
    expect(JSON.parse((await runInProcess(['compare', 'gone.json', '--json'], { cwd: dir })).stdout).error.code).toBe('E_EXECUTION_NOT_FOUND');
  }, 15_000);
});

describe('alloy replay --version', () => {
  it('runs the stored event on a released version, in process, with the recorded answers', async () => {
    await edit(`${WF}/create-order.yaml`, 'acmeOrderId: "{{ event.orderId }}"', 'acmeOrderId: "{{ event.orderId }}-v2"');
    const r = await runInProcess(['replay', 'ex_order1', '--version', '1', '--json'], { cwd: dir });
    expect(r.code, r.stderr).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j.version).toBe('v1');
    expect(j.execution.steps.result.output).toEqual(seeded.orders[1].steps.result.output);
    expect(j.requests).toEqual([]);
    const wt = JSON.parse((await runInProcess(['replay', 'ex_order1', '--version', 'working', '--json'], { cwd: dir })).stdout);
    expect(wt.execution.steps.result.output.acmeOrderId).toBe('acme-1-v2');
    // The root --version still prints alloy's version before a command.
    expect((await runInProcess(['--version'], { cwd: dir })).stdout.trim()).toMatch(/^\d+\.\d+\.\d+/);
    expect((await runInProcess(['-C', dir, '-V'], { cwd: REPO_ROOT })).stdout.trim()).toMatch(/^\d+\.\d+\.\d+/);
  });
});

describe('alloy test --record', () => {
  it('refuses an execution whose test file would be over the 8 MiB test files are read up to (E_FILE_TOO_LARGE, exit 2), writing nothing', async () => {
    // Before, it wrote the file, and every later load of the project refused it.
    const big = structuredClone(seeded.orders[0]);
    big.id = 'ex_big';
    big.steps.result.output = { blob: 'x'.repeat(9 * 1024 * 1024) };
    const log = openEventLog({ file: path.join(dir, '.alloy', 'dev.sqlite') });
    await log.appendDelivery(
      { id: 'dl_big', source: 'event', name: 'x', receivedAt: Date.now(), headers: {}, body: Buffer.from(JSON.stringify(big.event)), verification: 'none' },
      [{ id: big.id, workflow: big.workflow, record: { id: big.id, status: 'queued', steps: {} } }],
    );
    await log.saveRecord(big as never);
    log.close();
    const r = await runInProcess(['test', '--record', 'ex_big', '--json'], { cwd: dir });
    expect(r.code, r.stdout).toBe(2);
    expect(JSON.parse(r.stdout).error).toMatchObject({ code: 'E_FILE_TOO_LARGE', message: expect.stringContaining('test files are limited to 8.0 MiB') });
    await expect(readFile(path.join(dir, 'integrations/shopify-sync/tests/create-order.big.test.yaml'))).rejects.toMatchObject({ code: 'ENOENT' });
    expect((await runInProcess(['validate'], { cwd: dir })).code).toBe(0);
  });

  it('writes a passing test from an execution, secrets redacted, never overwriting', async () => {
    const r = await runInProcess(['test', '--record', 'ex_order0', '--json'], { cwd: dir });
    expect(r.code, r.stderr).toBe(0);
    const { file } = JSON.parse(r.stdout);
    expect(file).toBe('integrations/shopify-sync/tests/create-order.order0.test.yaml');
    const text = await readFile(path.join(dir, file), 'utf8');
    expect(text.startsWith('# yaml-language-server: $schema=../../../schemas/test.schema.json\n')).toBe(true);
    expect(text).not.toContain('tok_live_abcdef123456');
    expect(text).toContain('apiToken: "[redacted]"');
    const recorded = parse(text);
    expect(recorded.tests[0].answers.order.returns.name).toBe(seeded.orders[0].steps.order.output && (seeded.orders[0].steps.order.output as { name: string }).name);
    expect(recorded.tests[0].expect.steps.result).toEqual({ status: 'succeeded', output: seeded.orders[0].steps.result.output });

    const run = await runInProcess(['test', file, '--json'], { cwd: dir });
    expect(run.code, run.stdout).toBe(0);
    expect(JSON.parse(run.stdout).passed).toBe(1);
    expect((await runInProcess(['validate'], { cwd: dir })).code).toBe(0);

    const again = await runInProcess(['test', '--record', 'ex_order0'], { cwd: dir });
    expect(again.code).toBe(2);
    expect(again.stderr).toContain('already exists');

    const streamed = await runInProcess(['test', '--record', 'ex_created', '--json'], { cwd: dir });
    expect(streamed.code, streamed.stderr).toBe(0);
    const sfile = JSON.parse(streamed.stdout).file;
    expect((await runInProcess(['test', sfile], { cwd: dir })).code).toBe(0);
    expect((await runInProcess(['test', '--record', 'ex_nope'], { cwd: dir })).stderr).toContain('no execution ex_nope');
  });
});
