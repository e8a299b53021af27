/**
 * The whole attack list against ONE `alloy dev` process (the built binary), connected through
 * its relay client to a hostile relay played by this test. At the end the same process is
 * still up and serving. Startup refusals (a committed symlink, a committed dev.host 0.0.0.0)
 * need their own short-lived processes and come last.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, lstatSync, readFileSync, readdirSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { WebSocketServer, WebSocket } from 'ws';
import { shopifyWebhookHeaders } from '../../src/connectors/shopify/webhooks.js';
import { signIngress } from '../../src/server/client.js';
import { FIXTURES_DIR, http, tempDir } from '../server/helpers.js';
import { requireBuild, runAlloy, startDev, writeTree } from '../runtime/helpers.js';

const SECRET = 'shpss_attack_suite_secret';
const JSON_TYPE = { 'content-type': 'application/json' };
const order = readFileSync(path.join(FIXTURES_DIR, 'shopify', 'orders-create.json'));

const project = {
  // The Triggered-At window is configurable (default 24h).
  'alloy.config.yaml': 'apiVersion: alloy/v1\nkind: Project\nname: attacked\ndev:\n  shopifyMaxAge: 30h\n',
  'integrations/demo/integration.yaml': 'apiVersion: alloy/v1\nkind: Integration\nname: demo\napp: shopify\n',
  'integrations/demo/workflows/orders.yaml':
    'apiVersion: alloy/v1\nkind: Workflow\nname: orders\ntrigger: { app: shopify, event: orders/create }\nsteps:\n  - id: pick\n    uses: transform\n    with: { id: "{{ event.id }}" }\n',
  'integrations/demo/workflows/custom.yaml':
    'apiVersion: alloy/v1\nkind: Workflow\nname: custom\ntrigger: { webhook: private-hook }\nsteps:\n  - id: pick\n    uses: transform\n    with: { a: "{{ event.a }}" }\n',
  'integrations/demo/workflows/events.yaml':
    'apiVersion: alloy/v1\nkind: Workflow\nname: events\ntrigger: { event: acme.ping }\nsteps:\n  - id: pick\n    uses: transform\n    with: { n: "{{ event.n }}" }\n',
  '.env': `SHOPIFY_API_SECRET=${SECRET}\n`,
};

/** A relay that speaks the protocol when told to, and anything at all otherwise. */
async function startHostileRelay() {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await new Promise<void>((r) => wss.once('listening', () => r()));
  const url = `ws://127.0.0.1:${(wss.address() as AddressInfo).port}`;
  const waiting = new Map<string, (frame: any) => void>();
  const closeCodes: number[] = [];
  let connections = 0;
  wss.on('connection', (ws) => {
    connections++;
    ws.on('close', (code) => closeCodes.push(code));
    ws.on('message', (data) => {
      const frame = JSON.parse(data.toString());
      waiting.get(frame.id)?.(frame);
    });
    ws.send(JSON.stringify({ type: 'hello', name: 'alice', publicUrl: 'http://relay.test/t/alice', queued: 0, dropped: { overflow: 0, expired: 0 } }));
  });
  const live = async (): Promise<WebSocket> => {
    const deadline = Date.now() + 15_000;
    for (;;) {
      const ws = [...wss.clients].find((c) => c.readyState === WebSocket.OPEN);
      if (ws) return ws;
      if (Date.now() > deadline) throw new Error('alloy dev did not reconnect to the relay');
      await new Promise((r) => setTimeout(r, 20));
    }
  };
  let n = 0;
  return {
    url,
    closeCodes,
    connections: () => connections,
    live,
    /** Relays one request through the tunnel and resolves with alloy dev's answer. */
    async relay(pathname: string, body: string | Buffer, headers: Record<string, string>): Promise<{ status: number; json: any }> {
      const id = `req-${++n}`;
      const answered = new Promise<any>((r) => waiting.set(id, r));
      (await live()).send(
        JSON.stringify({
          type: 'request',
          id,
          method: 'POST',
          path: pathname,
          headers: Object.entries(headers).map(([k, v]) => [k.toLowerCase(), v]),
          body: Buffer.from(body).toString('base64'),
          queued: false,
          receivedAt: new Date().toISOString(),
        }),
      );
      const frame = await answered;
      const text = Buffer.from(frame.body, 'base64').toString('utf8');
      let json: any;
      try {
        json = JSON.parse(text);
      } catch {
        json = text;
      }
      return { status: frame.status, json };
    },
    close: () => new Promise<void>((r) => wss.close(() => r())),
  };
}

const get = (url: string, headers: Record<string, string> = {}) => http('GET', url, undefined, headers);
const post = (url: string, body: string | Buffer, headers: Record<string, string>) => http('POST', url, body, headers);

describe('one alloy dev survives the whole attack list', () => {
  let tmp: ReturnType<typeof tempDir>;
  let relay: Awaited<ReturnType<typeof startHostileRelay>>;
  let dev: Awaited<ReturnType<typeof startDev>>;
  let root: string;

  beforeAll(async () => {
    requireBuild();
    tmp = tempDir('alloy-attack-');
    relay = await startHostileRelay();
    root = path.join(tmp.dir, 'p');
    writeTree(root, project);
    dev = await startDev(root, ['--tunnel', 'relay', '--tunnel-url', relay.url, '--tunnel-name', 'alice'], { ALLOY_RELAY_TOKEN: 'tok_0123456789abcdef0123456789abcdef' });
  }, 30_000);
  afterAll(async () => {
    dev?.proc.kill('SIGTERM');
    await dev?.proc;
    await relay?.close();
    tmp?.cleanup();
  });

  it('takes every attack and is still up and serving at the end', async () => {
    const ingressSecret = readFileSync(path.join(root, '.alloy', 'ingress-secret'), 'utf8').trim();
    expect(dev.output()).toContain(ingressSecret); // printed, as the stream secret is

    // 3. hostile relay frames: the crash from the issue, then bursts of garbage.
    const hostile = [
      JSON.stringify({ type: 'request', id: 'x', method: { toString: 1 }, path: '/v1/run/event', headers: [], body: '', queued: false, receivedAt: '' }),
      '{"type":"request","id":{"toString":0}}',
      `${'['.repeat(100_000)}${']'.repeat(100_000)}`,
      '{"type":"hello","name":{"toString":1}}',
      'not json',
      JSON.stringify({ type: 'request', id: 'y', method: 'POST', path: '/v1/run/event', headers: 'nope', body: 1, queued: 'yes', receivedAt: 0 }),
    ];
    for (let burst = 0; burst < 20; burst++) {
      const ws = await relay.live();
      const before = relay.closeCodes.length;
      for (let i = 0; i < 25; i++) ws.send(hostile[(burst + i) % hostile.length]);
      const deadline = Date.now() + 10_000;
      while (relay.closeCodes.length === before && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    }
    expect(relay.closeCodes.filter((c) => c === 1008).length).toBeGreaterThanOrEqual(20);

    // 4. public ingress: unsigned events and webhooks through the tunnel are 401 and not stored.
    const event = JSON.stringify({ event: 'acme.ping', data: { n: 1 } });
    expect((await relay.relay('/v1/run/event', event, JSON_TYPE)).status).toBe(401);
    const known = await relay.relay('/v1/webhooks/custom/private-hook', '{"a":1}', JSON_TYPE);
    const unknown = await relay.relay('/v1/webhooks/custom/nope', '{"a":1}', JSON_TYPE);
    expect([unknown.status, unknown.json]).toEqual([known.status, known.json]);
    const signedUnknown = await relay.relay('/v1/webhooks/custom/nope', '{"a":1}', signIngress(JSON_TYPE, '{"a":1}', ingressSecret));
    expect(signedUnknown.status).toBe(404);
    expect(JSON.stringify(signedUnknown.json)).not.toContain('private-hook');
    const signed = await relay.relay('/v1/run/event', event, signIngress(JSON_TYPE, event, ingressSecret));
    expect(signed.status).toBe(202);

    // 5. the local API: DNS rebinding and cross-site form posts.
    const rebinding = await get(`${dev.url}/v1/executions`, { host: 'attacker.example' });
    expect(rebinding.status).toBe(403);
    const execId = signed.json.executions[0].id;
    expect((await post(`${dev.url}/v1/executions/${execId}/replay`, 'a=1', { 'content-type': 'application/x-www-form-urlencoded' })).status).toBe(415);

    // 7. a captured Shopify delivery resent with a new webhook id; a stale one.
    const first = await relay.relay('/v1/webhooks/shopify', order, shopifyWebhookHeaders({ topic: 'orders/create', shop: 'a.myshopify.com', apiVersion: '2025-10', body: order, secret: SECRET, webhookId: 'w1' }));
    expect(first.status).toBe(202);
    const again = await relay.relay('/v1/webhooks/shopify', order, shopifyWebhookHeaders({ topic: 'orders/create', shop: 'a.myshopify.com', apiVersion: '2025-10', body: order, secret: SECRET, webhookId: 'w2', eventId: 'e2' }));
    expect([again.status, again.json.duplicate]).toEqual([200, true]);
    const stale = await post(`${dev.url}/v1/webhooks/shopify`, order, shopifyWebhookHeaders({ topic: 'orders/create', shop: 'a.myshopify.com', apiVersion: '2025-10', body: order, secret: SECRET, triggeredAt: new Date(Date.now() - 48 * 3600_000).toISOString() }));
    expect(stale.status).toBe(401);
    const other = Buffer.from(order.toString().replace('450789469', '450789471'));
    const withinWindow = await post(`${dev.url}/v1/webhooks/shopify`, other, shopifyWebhookHeaders({ topic: 'orders/create', shop: 'a.myshopify.com', apiVersion: '2025-10', body: other, secret: SECRET, triggeredAt: new Date(Date.now() - 26 * 3600_000).toISOString() }));
    expect(withinWindow.status).toBe(202);

    // 10. an event nested 500,000 levels deep.
    const deep = `{"event":"acme.ping","data":{"n":${'['.repeat(500_000)}${']'.repeat(500_000)}}}`;
    const deepRes = await post(`${dev.url}/v1/run/event`, deep, JSON_TYPE);
    expect([deepRes.status, deepRes.json?.error?.code]).toEqual([400, 'E_JSON_TOO_DEEP']);

    // `alloy emit --to <the ingress listener>` signs by itself.
    const info = JSON.parse(readFileSync(path.join(root, '.alloy', 'dev.json'), 'utf8'));
    const emitted = await runAlloy(root, ['emit', 'acme.ping', '-d', '{"n":3}', '--to', info.ingressUrl, '--json']);
    expect([emitted.exitCode, emitted.stderr]).toEqual([0, '']);

    // Still up and serving: the same process answers, runs an event, and listed executions read back.
    expect(dev.proc.exitCode).toBeNull();
    expect((await get(`${dev.url}/healthz`)).status).toBe(200);
    const ok = await post(`${dev.url}/v1/run/event`, JSON.stringify({ event: 'acme.ping', data: { n: 9 } }), JSON_TYPE);
    expect(ok.status).toBe(202);
    const done = await get(`${dev.url}/v1/executions/${ok.json.executions[0].id}?wait=5000`);
    expect(JSON.parse(done.text).execution.status).toBe('succeeded');
    expect((await get(`${dev.url}/v1/executions?limit=1000`)).status).toBe(200);
    expect(JSON.parse(readFileSync(path.join(root, '.alloy', 'dev.json'), 'utf8')).pid).toBe(dev.proc.pid);
    expect((await relay.relay('/v1/run/event', event, signIngress(JSON_TYPE, event, ingressSecret))).status).toBe(202);

    // 5. .alloy is private.
    const dir = path.join(root, '.alloy');
    expect(statSync(dir).mode & 0o777).toBe(0o700);
    for (const f of readdirSync(dir)) {
      if (lstatSync(path.join(dir, f)).isFile()) expect([f, statSync(path.join(dir, f)).mode & 0o777]).toEqual([f, 0o600]);
    }
  }, 120_000);

  it('refuses to start on a committed symlink or a committed non-loopback dev.host', async () => {
    const victim = path.join(tmp.dir, 'victim');
    writeFileSync(victim, 'precious\n');
    const linked = path.join(tmp.dir, 'linked');
    writeTree(linked, { ...project, '.alloy/.keep': '' });
    symlinkSync(victim, path.join(linked, '.alloy', 'stream-secret'));
    const r1 = await runAlloy(linked, ['dev', '-p', '0']);
    expect(r1.exitCode).toBe(1);
    expect(r1.stderr).toContain('E_SYMLINK');
    expect(r1.stderr).toContain('stream-secret');
    expect(r1.stderr).not.toMatch(/\n\s+at /);
    expect(readFileSync(victim, 'utf8')).toBe('precious\n');

    const exposed = path.join(tmp.dir, 'exposed');
    writeTree(exposed, { ...project, 'alloy.config.yaml': 'apiVersion: alloy/v1\nkind: Project\nname: attacked\ndev:\n  host: 0.0.0.0\n' });
    const r2 = await runAlloy(exposed, ['dev', '-p', '0']);
    expect(r2.exitCode).toBe(2);
    expect(r2.stderr).toContain('--host 0.0.0.0');
    expect(existsSync(path.join(exposed, '.alloy', 'dev.json'))).toBe(false);
  }, 60_000);
});
