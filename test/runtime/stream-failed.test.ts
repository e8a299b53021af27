/**
 * A stream delivery that failed is visible wherever executions are shown: the dev line,
 * `emit --wait`, the `executions` list, `executions <id>` and `logs`, with the reason (here
 * the receiver's HTTP status and the start of its answer). Before, each said `✓ succeeded`.
 */
import { cpSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT, tempDir, waitFor } from '../server/helpers.js';
import { requireBuild, runAlloy, startDev } from './helpers.js';

describe('a failed stream delivery', () => {
  let tmp: ReturnType<typeof tempDir>;
  let root: string;
  let receiver: http.Server;
  let dev: Awaited<ReturnType<typeof startDev>>;
  let id = '';
  const FAILED = /✓ succeeded · stream failed\s+shopify-sync\/order-created/;
  const WHY = /stream receiver answered HTTP 400: unknown field orderId/;

  beforeAll(async () => {
    requireBuild();
    tmp = tempDir('alloy-stream-failed-');
    root = path.join(tmp.dir, 'p');
    cpSync(path.join(REPO_ROOT, 'examples', 'shopify-sync'), root, { recursive: true });
    // A receiver that refuses every delivery with 400 (not retried) and says why.
    receiver = http.createServer((req, res) => {
      req.resume();
      req.on('end', () => res.writeHead(400, { 'content-type': 'text/plain' }).end('unknown field orderId\n'));
    });
    await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
    writeFileSync(path.join(root, '.env'), `ACME_STREAM_URL=http://127.0.0.1:${(receiver.address() as AddressInfo).port}/alloy/stream\n`);
    dev = await startDev(root, ['--fake', 'shopify']);
  }, 60_000);
  afterAll(async () => {
    dev?.proc.kill('SIGTERM');
    await dev?.proc;
    receiver?.close();
    tmp?.cleanup();
  });

  it('shows in emit --wait and on the dev line, with the reason', async () => {
    const r = await runAlloy(root, ['emit', 'shopify:orders/create', '--wait']);
    expect(r.stdout).toMatch(FAILED);
    expect(r.stdout).toMatch(WHY);
    id = /(ex_\w+)/.exec(r.stdout)![1];
    await waitFor(() => FAILED.test(dev.output()), 'the dev line', 10_000);
    expect(dev.output()).toMatch(WHY);
  });

  it('shows in the executions list, executions <id> and logs', async () => {
    const list = await runAlloy(root, ['executions']);
    expect(list.stdout).toMatch(FAILED);
    expect(list.stdout).toMatch(WHY);
    const json = JSON.parse((await runAlloy(root, ['executions', '--json'])).stdout);
    expect(json.executions.find((e: { id: string }) => e.id === id).stream).toMatchObject({ status: 'failed', error: expect.stringMatching(WHY) });
    const one = await runAlloy(root, ['executions', id]);
    expect(one.stdout).toMatch(FAILED);
    expect(one.stdout).toMatch(/↳ stream http:\/\/127\.0\.0\.1:\d+\/alloy\/stream\s+✗ failed\s+1 attempt  HTTP 400\s+stream receiver answered HTTP 400: unknown field orderId/);
    const logs = await runAlloy(root, ['logs']);
    expect(logs.stdout).toMatch(FAILED);
    expect(logs.stdout).toMatch(WHY);
  });
});
