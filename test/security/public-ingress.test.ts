/**
 * Public ingress is authenticated: through a tunnel (the ingress listener), events and custom
 * webhooks need a Standard Webhooks signature made with the ingress secret; unsigned or badly
 * signed requests are 401 and never stored. Loopback stays open. Through the tunnel, 404s list
 * no names and unknown names answer exactly like known ones (here and on the relay).
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { RuntimeClient, signIngress } from '../../src/server/client.js';
import { standardWebhookHeaders } from '../../src/engine/standard-webhooks.js';
import { startRelayServer } from '../../src/tunnel/relay-server.js';
import { parseRelayTokens } from '../../src/tunnel/relay-tokens.js';
import { http } from '../server/helpers.js';
import { tempDir } from '../tunnel/helpers.js';
import { INGRESS_SECRET, STD_SECRET, startRuntime } from './helpers.js';

const JSON_TYPE = { 'content-type': 'application/json' };
let rt: Awaited<ReturnType<typeof startRuntime>>;
beforeEach(async () => (rt = await startRuntime()));
afterEach(async () => rt.cleanup());

const event = JSON.stringify({ event: 'acme.order.requested', data: { n: 1 } });

describe('tunnel ingress needs the ingress signature', () => {
  it('refuses unsigned and badly signed events with 401 and stores nothing', async () => {
    const unsigned = await http('POST', `${rt.ingress}/v1/run/event`, event, JSON_TYPE);
    expect([unsigned.status, unsigned.json.error.code]).toEqual([401, 'E_INGRESS_SIGNATURE']);
    const wrongKey = await http('POST', `${rt.ingress}/v1/run/event`, event, signIngress(JSON_TYPE, event, 'whsec_d3Jvbmcta2V5LXdyb25nLWtleS13cm9uZw=='));
    expect(wrongKey.status).toBe(401);
    const otherBody = await http('POST', `${rt.ingress}/v1/run/event`, event.replace('1', '2'), signIngress(JSON_TYPE, event, INGRESS_SECRET));
    expect(otherBody.status).toBe(401);
    const customUnsigned = await http('POST', `${rt.ingress}/v1/webhooks/custom/secret-hook-name`, '{}', JSON_TYPE);
    expect(customUnsigned.status).toBe(401);
    expect(rt.server.log.countDeliveries()).toBe(0);
  });

  it('accepts signed events and webhooks; alloy emit (RuntimeClient) signs by itself', async () => {
    const signed = await http('POST', `${rt.ingress}/v1/run/event`, event, signIngress(JSON_TYPE, event, INGRESS_SECRET));
    expect(signed.status).toBe(202);
    const client = new RuntimeClient(`${rt.ingress}/`, undefined, INGRESS_SECRET);
    expect((await client.emitEvent('acme.order.requested', { n: 2 })).status).toBe(202);
    expect((await client.send('POST', 'v1/webhooks/custom/secret-hook-name', { body: '{"a":1}', headers: JSON_TYPE })).status).toBe(202);
    // A webhook with its own Standard Webhooks secret: both signatures ride in one header.
    const body = '{"b":2}';
    const own = standardWebhookHeaders(STD_SECRET, 'msg_1', Math.floor(Date.now() / 1000), body);
    expect((await client.send('POST', 'v1/webhooks/custom/std-hook', { body, headers: { ...JSON_TYPE, ...own } })).status).toBe(202);
    expect(rt.server.log.countDeliveries()).toBe(4);
  });

  it('lets a third-party sender through with the webhook\'s own verify signature, and answers a bad one like an unknown name', async () => {
    const body = '{"c":3}';
    const own = standardWebhookHeaders(STD_SECRET, 'msg_2', Math.floor(Date.now() / 1000), body);
    expect((await http('POST', `${rt.ingress}/v1/webhooks/custom/std-hook`, body, { ...JSON_TYPE, ...own })).status).toBe(202);
    const forged = standardWebhookHeaders('whsec_Zm9yZ2VkLWZvcmdlZC1mb3JnZWQtZm9yZ2Vk', 'msg_3', Math.floor(Date.now() / 1000), body);
    const bad = await http('POST', `${rt.ingress}/v1/webhooks/custom/std-hook`, body, { ...JSON_TYPE, ...forged });
    const unknown = await http('POST', `${rt.ingress}/v1/webhooks/custom/nope`, body, { ...JSON_TYPE, ...forged });
    expect([bad.status, bad.json]).toEqual([401, unknown.json]);
    // An unsigned request to a webhook without verify is refused too.
    expect((await http('POST', `${rt.ingress}/v1/webhooks/custom/secret-hook-name`, body, JSON_TYPE)).status).toBe(401);
    expect(rt.server.log.countDeliveries()).toBe(1);
  });

  it('keeps loopback open: unsigned events on the API listener are accepted', async () => {
    expect((await http('POST', `${rt.base}/v1/run/event`, event, JSON_TYPE)).status).toBe(202);
  });

  it('answers unknown webhook names exactly like known ones, and its 404s list no names', async () => {
    const known = await http('POST', `${rt.ingress}/v1/webhooks/custom/secret-hook-name`, '{}', JSON_TYPE);
    const unknown = await http('POST', `${rt.ingress}/v1/webhooks/custom/nope`, '{}', JSON_TYPE);
    expect([unknown.status, unknown.json]).toEqual([known.status, known.json]);
    const signedUnknown = await http('POST', `${rt.ingress}/v1/webhooks/custom/nope`, '{}', signIngress(JSON_TYPE, '{}', INGRESS_SECRET));
    expect(signedUnknown.status).toBe(404);
    expect(signedUnknown.text).not.toContain('secret-hook-name');
    expect(signedUnknown.text).not.toContain('std-hook');
    const noRoute = await http('GET', `${rt.ingress}/v1/executions`);
    expect(noRoute.text).not.toContain('/v1/executions');
  });
});

describe('the relay does not tell known tunnel names from unknown ones', () => {
  it('answers GET on a known and an unknown name the same way', async () => {
    const { dir, cleanup } = await tempDir('alloy-sec-relay-');
    const relay = await startRelayServer({ dataDir: dir, tokens: parseRelayTokens('alice:alice-token-0123456789abcdef') });
    try {
      const known = await http('GET', `${relay.url}/t/alice/v1/webhooks/shopify`);
      const unknown = await http('GET', `${relay.url}/t/zed/v1/webhooks/shopify`);
      expect([unknown.status, unknown.text]).toEqual([known.status, known.text]);
    } finally {
      await relay.close();
      await cleanup();
    }
  });
});
