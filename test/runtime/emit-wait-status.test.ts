/**
 * `alloy emit --wait -v` says what it still waits for (issue 10): a step's retry after a
 * 503 with Retry-After, then the stream delivery's retry, each line once, on stderr only.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from '../server/helpers.js';
import { requireBuild, runAlloy, startDev, writeTree } from './helpers.js';

describe('emit --wait status', () => {
  let tmp: ReturnType<typeof tempDir>;
  let server: http.Server;
  let dev: Awaited<ReturnType<typeof startDev>>;
  const hits = { order: 0, stream: 0 };

  beforeAll(async () => {
    requireBuild();
    tmp = tempDir('alloy-emit-wait-');
    // /order answers 503 twice, /stream once, each asking to come back in 2 s; then 200.
    server = http.createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        const key = req.url === '/order' ? 'order' : 'stream';
        hits[key] += 1;
        if (hits[key] <= (key === 'order' ? 2 : 1)) res.writeHead(503, { 'retry-after': '2' }).end('busy');
        else res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}');
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    writeTree(tmp.dir, {
      'alloy.config.yaml': 'apiVersion: alloy/v1\nkind: Project\nname: waits\n',
      '.env': 'STREAM_SECRET=whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\n',
      'integrations/demo/integration.yaml': 'apiVersion: alloy/v1\nkind: Integration\nname: demo\napp: shopify\n',
      'integrations/demo/workflows/forward.yaml': `apiVersion: alloy/v1
kind: Workflow
name: forward
trigger:
  event: wait.item
steps:
  - id: order
    uses: http
    with: { method: POST, url: "${base}/order", body: { n: 1 } }
    retry: { attempts: 3, initialDelay: 50ms, maxDelay: 5s }
stream:
  url: "${base}/stream"
  secret: "{{ secrets.STREAM_SECRET }}"
  retry: { attempts: 2, initialDelay: 50ms, maxDelay: 5s }
`,
    });
    dev = await startDev(tmp.dir);
  }, 60_000);
  afterAll(async () => {
    dev?.proc.kill('SIGTERM');
    await dev?.proc;
    server?.close();
    tmp?.cleanup();
  });

  it('prints each wait once on stderr with -v, and nothing of it into --json stdout', async () => {
    const r = await runAlloy(tmp.dir, ['emit', 'wait.item', '-d', '{}', '--wait', '-v']);
    expect(r.exitCode, r.stderr + r.stdout).toBe(0);
    const lines = r.stderr.split('\n').filter((l) => l.startsWith('waiting:'));
    expect(lines).toEqual([
      expect.stringMatching(/^waiting: step order, retry 1 in [12] s$/),
      expect.stringMatching(/^waiting: step order, retry 2 in [12] s$/),
      expect.stringMatching(/^waiting: stream delivery, retry 1 in [12] s$/),
    ]);
    expect(r.stdout).not.toMatch(/waiting:/);
    expect(hits).toEqual({ order: 3, stream: 2 });

    const json = await runAlloy(tmp.dir, ['emit', 'wait.item', '-d', '{}', '--wait', '--json']);
    expect(json.exitCode).toBe(0);
    expect(JSON.parse(json.stdout).results[0].status).toBe('succeeded');
    expect(json.stderr).not.toMatch(/waiting:/);
  }, 60_000);
});
