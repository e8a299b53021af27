/**
 * Issue 6's "done when", with both real binaries: `alloy dev --tunnel relay` against
 * `alloy relay`. Signed Shopify webhooks arrive while the developer's dev server is away,
 * the relay itself is killed (SIGKILL) and restarted with its queue on disk, and once dev
 * comes back every queued webhook is delivered byte for byte: dev accepts it only if the
 * HMAC over the bytes it got verifies, and runs it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { execa, type ResultPromise } from 'execa';
import { request } from 'undici';
import { shopifyWebhookHeaders } from '../../src/connectors/shopify/webhooks.js';
import { FIXTURES_DIR, tempDir } from '../server/helpers.js';
import { freePort, waitFor } from '../tunnel/helpers.js';
import { BIN, requireBuild, startDev, writeTree } from './helpers.js';

const SECRET = 'shpss_tunnel_restart_secret';
const TOKEN = 'tok_restart_0123456789abcdef0123';

describe('alloy dev --tunnel relay across a relay restart and a dev restart (built binaries)', () => {
  let tmp: ReturnType<typeof tempDir>;
  let root: string;
  const children: ResultPromise[] = [];

  async function startRelay(port: number): Promise<{ child: ResultPromise; publicUrl: string }> {
    const child = execa(process.execPath, [BIN, 'relay', '--json', '--port', String(port), '--data', path.join(tmp.dir, 'relay-data')], {
      env: { ALLOY_RELAY_TOKENS: `alice:${TOKEN}`, NO_COLOR: '1' },
      reject: false,
      buffer: false,
    });
    children.push(child);
    let out = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    let info: { publicUrls: Record<string, string> } | undefined;
    await waitFor(() => {
      try {
        info = JSON.parse(out);
        return true;
      } catch {
        return false;
      }
    }, 'alloy relay to start', 15_000);
    return { child, publicUrl: info!.publicUrls.alice };
  }

  const body = readFileSync(path.join(FIXTURES_DIR, 'shopify', 'orders-create.json'));
  async function sendWebhook(publicUrl: string, n: number) {
    // A distinct order each time: through a tunnel dev de-duplicates on the signed body, and
    // distinct Shopify events always differ in their body.
    const order = Buffer.from(JSON.stringify({ ...JSON.parse(body.toString('utf8')), id: 450789469 + n }));
    const headers = shopifyWebhookHeaders({ topic: 'orders/create', shop: 'a.myshopify.com', apiVersion: '2025-10', body: order, secret: SECRET, webhookId: `restart-${n}` });
    const res = await request(`${publicUrl}/v1/webhooks/shopify`, { method: 'POST', headers, body: order });
    await res.body.text();
    return res.statusCode;
  }

  beforeAll(() => {
    requireBuild();
    tmp = tempDir('alloy-dev-tunnel-restart-');
    root = path.join(tmp.dir, 'p');
    writeTree(root, {
      'alloy.config.yaml': 'apiVersion: alloy/v1\nkind: Project\nname: tunnel\n',
      'integrations/demo/integration.yaml': 'apiVersion: alloy/v1\nkind: Integration\nname: demo\napp: shopify\n',
      'integrations/demo/workflows/orders.yaml':
        'apiVersion: alloy/v1\nkind: Workflow\nname: orders\ntrigger: { app: shopify, event: orders/create }\nsteps:\n  - id: pick\n    uses: transform\n    with: { id: "{{ event.id }}" }\n',
      '.env': `SHOPIFY_API_SECRET=${SECRET}\n`,
    });
  });
  afterAll(async () => {
    for (const c of children) {
      c.kill('SIGKILL');
      await c.catch(() => {});
    }
    tmp?.cleanup();
  });

  it('loses no webhook queued while dev was away, across a relay SIGKILL and restart', async () => {
    const port = await freePort();
    let relay = await startRelay(port);
    const tunnelArgs = ['--tunnel', 'relay', '--tunnel-url', `ws://127.0.0.1:${port}`, '--tunnel-name', 'alice'];
    let dev = await startDev(root, tunnelArgs, { ALLOY_RELAY_TOKEN: TOKEN });
    children.push(dev.proc);
    await waitFor(() => /public URL\s+\S+/.test(dev.output()), 'the tunnel to connect', 15_000);

    // 1. Live: through the relay to dev, verified and run.
    expect(await sendWebhook(relay.publicUrl, 1)).toBe(202);

    // 2. Dev goes away; two webhooks arrive and are queued by the relay (accepted for the app).
    dev.proc.kill('SIGTERM');
    await dev.proc;
    expect(await sendWebhook(relay.publicUrl, 2)).toBe(202);
    expect(await sendWebhook(relay.publicUrl, 3)).toBe(202);

    // 3. The relay is killed outright and restarted on the same data folder.
    relay.child.kill('SIGKILL');
    await relay.child.catch(() => {});
    relay = await startRelay(port);

    // 4. Dev comes back: the queued webhooks are delivered, verified and run.
    dev = await startDev(root, tunnelArgs, { ALLOY_RELAY_TOKEN: TOKEN });
    children.push(dev.proc);
    const executions = async () => {
      const res = await request(`${dev.url}/v1/executions?limit=50`);
      const list = (await res.body.json()) as { executions: { status: string; workflow: string }[] };
      return list.executions.filter((e) => e.workflow === 'demo/orders');
    };
    let all = await executions();
    const done = () => all.filter((e) => e.status === 'succeeded').length === 3;
    for (const deadline = Date.now() + 20_000; !done() && Date.now() < deadline; all = await executions()) {
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(all).toHaveLength(3);
    expect(all.map((e) => e.status)).toEqual(['succeeded', 'succeeded', 'succeeded']);
    // Nothing was refused for a bad signature on the way.
    expect(dev.output()).not.toMatch(/\b401\b/);
  }, 90_000);
});
