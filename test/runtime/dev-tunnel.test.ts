/**
 * `alloy dev --tunnel relay` against the real relay (src/tunnel) on 127.0.0.1: the public URL
 * carries signed Shopify webhooks into the event log, and never the executions API.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import path from 'node:path';
import { request } from 'undici';
import { startRelayServer, type RelayServer } from '../../src/tunnel/relay-server.js';
import { parseRelayTokens } from '../../src/tunnel/relay-tokens.js';
import { shopifyWebhookHeaders } from '../../src/connectors/shopify/webhooks.js';
import { tempDir } from '../server/helpers.js';
import { requireBuild, startDev, writeTree } from './helpers.js';
import { readThirdPartyFixture } from '../helpers/fixtures.js';

const SECRET = 'shpss_tunnel_secret';
const TOKEN = 'tok_0123456789abcdef0123456789abcdef';

describe('alloy dev --tunnel relay', () => {
  let tmp: ReturnType<typeof tempDir>;
  let relay: RelayServer;
  let dev: Awaited<ReturnType<typeof startDev>>;

  beforeAll(async () => {
    requireBuild();
    tmp = tempDir('alloy-dev-tunnel-');
    relay = await startRelayServer({ dataDir: path.join(tmp.dir, 'relay'), tokens: parseRelayTokens(`alice:${TOKEN}`), port: 0 });
    const root = path.join(tmp.dir, 'p');
    writeTree(root, {
      'alloy.config.yaml': 'apiVersion: alloy/v1\nkind: Project\nname: tunnel\n',
      'integrations/demo/integration.yaml': 'apiVersion: alloy/v1\nkind: Integration\nname: demo\napp: shopify\n',
      'integrations/demo/workflows/orders.yaml':
        'apiVersion: alloy/v1\nkind: Workflow\nname: orders\ntrigger: { app: shopify, event: orders/create }\nsteps:\n  - id: pick\n    uses: transform\n    with: { id: "{{ event.id }}" }\n',
      '.env': `SHOPIFY_API_SECRET=${SECRET}\n`,
    });
    dev = await startDev(root, ['--tunnel', 'relay', '--tunnel-url', relay.url.replace(/^http/, 'ws'), '--tunnel-name', 'alice'], { ALLOY_RELAY_TOKEN: TOKEN });
    const deadline = Date.now() + 10_000;
    while (!/public URL\s+\S+/.test(dev.output())) {
      if (Date.now() > deadline) throw new Error(`no public URL:\n${dev.output()}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  });
  afterAll(async () => {
    dev?.proc.kill('SIGTERM');
    await dev?.proc;
    await relay?.close();
    tmp?.cleanup();
  });

  it('prints the public webhook URL and forwards only ingress routes', async () => {
    const publicUrl = /public URL\s+(\S+)/.exec(dev.output())![1];
    expect(dev.output()).toContain(`POST ${publicUrl}/v1/webhooks/shopify`);
    const body = readThirdPartyFixture('shopify/orders-create.json');
    const headers = shopifyWebhookHeaders({ topic: 'orders/create', shop: 'a.myshopify.com', apiVersion: '2025-10', body, secret: SECRET });
    const res = await request(`${publicUrl}/v1/webhooks/shopify`, { method: 'POST', headers, body });
    expect(res.statusCode).toBe(202);
    const accepted = (await res.body.json()) as any;
    expect(accepted.executions[0].workflow).toBe('demo/orders');
    // The executions API stays local: through the tunnel it is not found.
    const api = await request(`${publicUrl}/v1/executions`);
    await api.body.text();
    expect(api.statusCode).toBe(404);
    // Locally it is there, and the delivery ran.
    const local = await request(`${dev.url}/v1/executions/${accepted.executions[0].id}?wait=5000`);
    expect(((await local.body.json()) as any).execution.status).toBe('succeeded');
  });
});
