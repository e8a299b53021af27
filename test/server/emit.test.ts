import { describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { buildShopifyDelivery, readDataArg, readFixture, resignFixture, type DeliveryFixture } from '../../src/server/emit.js';
import { verifyShopifyWebhook } from '../../src/connectors/shopify/webhooks.js';
import { verifyStandardWebhook } from '../../src/engine/standard-webhooks.js';
import { tempDir } from './helpers.js';
import { thirdPartyJson } from '../helpers/fixtures.js';

const vector = thirdPartyJson('shopify/webhook-hmac-vector.json');

describe('emit helpers', () => {
  it('signs a Shopify delivery exactly like the shopify-app-js vector, with every header and fresh ids', () => {
    const body = Buffer.from(vector.raw_body);
    const a = buildShopifyDelivery({ topic: 'products/create', body, secret: vector.secret, shop: 'shop1.myshopify.io', apiVersion: '2023-01', now: new Date('2026-01-01T00:00:00Z') });
    const b = buildShopifyDelivery({ topic: 'products/create', body, secret: vector.secret, shop: 'shop1.myshopify.io', apiVersion: '2023-01' });
    expect(a.headers['X-Shopify-Hmac-Sha256']).toBe(vector.expected_hmac_header);
    expect(Object.keys(a.headers).sort()).toEqual(
      ['Content-Type', 'X-Shopify-API-Version', 'X-Shopify-Event-Id', 'X-Shopify-Hmac-Sha256', 'X-Shopify-Shop-Domain', 'X-Shopify-Topic', 'X-Shopify-Triggered-At', 'X-Shopify-Webhook-Id'].sort(),
    );
    expect(a.headers['X-Shopify-Triggered-At']).toBe('2026-01-01T00:00:00.000Z');
    expect(a.headers['X-Shopify-Webhook-Id']).not.toBe(b.headers['X-Shopify-Webhook-Id']);
    const lower = Object.fromEntries(Object.entries(a.headers).map(([k, v]) => [k.toLowerCase(), v]));
    expect(verifyShopifyWebhook({ rawBody: body, headers: lower }, vector.secret)).toMatchObject({ ok: true, topic: 'products/create' });
  });

  it('reads -d as inline JSON, @file (bytes unchanged) or @- (stdin), and refuses bad JSON with a usage error', async () => {
    const tmp = tempDir();
    try {
      const file = path.join(tmp.dir, 'e.json');
      writeFileSync(file, '{ "a" : 1 }\n');
      expect((await readDataArg('{"x":[1]}', tmp.dir)).value).toEqual({ x: [1] });
      const fromFile = await readDataArg('@e.json', tmp.dir);
      expect(fromFile.bytes.toString()).toBe('{ "a" : 1 }\n');
      expect((await readDataArg('@-', tmp.dir, Readable.from([Buffer.from('{"s":true}')]))).value).toEqual({ s: true });
      await expect(readDataArg('{nope', tmp.dir)).rejects.toMatchObject({ code: 'E_DATA_JSON', exitCode: 2 });
      await expect(readDataArg('@missing.json', tmp.dir)).rejects.toMatchObject({ code: 'E_DATA_FILE', exitCode: 2 });
    } finally {
      tmp.cleanup();
    }
  });

  it('refuses a data file that is a pipe, a device or a folder at once (a cloned fixture linked to /dev/zero grew without end; a pipe blocked for ever)', async () => {
    const tmp = tempDir();
    try {
      execFileSync('mkfifo', [path.join(tmp.dir, 'pipe.json')]);
      symlinkSync('/dev/zero', path.join(tmp.dir, 'zero.json'));
      mkdirSync(path.join(tmp.dir, 'dir.json'));
      for (const name of ['pipe.json', 'zero.json', 'dir.json']) {
        const started = Date.now();
        await expect(readDataArg(`@${name}`, tmp.dir), name).rejects.toMatchObject({ code: 'E_DATA_FILE', exitCode: 2, message: expect.stringContaining('not a regular file') });
        expect(Date.now() - started, name).toBeLessThan(2000);
      }
    } finally {
      tmp.cleanup();
    }
  });

  it('re-signs recorded fixtures with the local secrets', async () => {
    const shopifyFx: DeliveryFixture = {
      alloyFixture: 1,
      source: 'shopify',
      name: 'orders/create',
      method: 'POST',
      path: '/v1/webhooks/shopify',
      headers: { 'x-shopify-topic': 'orders/create', 'x-shopify-shop-domain': 'a.myshopify.com', 'x-shopify-hmac-sha256': 'old', 'x-shopify-webhook-id': 'w1' },
      body: '{"id":1}',
    };
    const req = await resignFixture(shopifyFx, { shopifyApiSecret: 'local', lookup: () => undefined });
    const lower = Object.fromEntries(Object.entries(req.headers).map(([k, v]) => [k.toLowerCase(), v]));
    expect(verifyShopifyWebhook({ rawBody: req.body, headers: lower }, 'local').ok).toBe(true);
    expect(lower['x-shopify-webhook-id']).not.toBe('w1');
    expect(lower['x-shopify-shop-domain']).toBe('a.myshopify.com');
    await expect(resignFixture(shopifyFx, { lookup: () => undefined })).rejects.toMatchObject({ code: 'E_MISSING_SECRET' });

    const std = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';
    const hookFx: DeliveryFixture = { ...shopifyFx, source: 'webhook:acme', name: 'acme', path: '/v1/webhooks/custom/acme', headers: { 'content-type': 'application/json' } };
    const signed = await resignFixture(hookFx, { lookup: (n) => (n === 'ACME' ? std : undefined), webhookVerify: { scheme: 'standard-webhooks', secretName: 'ACME' } });
    expect(verifyStandardWebhook(std, signed.headers, hookFx.body, { nowSeconds: Math.floor(Date.now() / 1000) })).toEqual({ ok: true });
  });

  it('checks the header values a resend copies from a fixture, whoever built it', async () => {
    const fx: DeliveryFixture = { alloyFixture: 1, source: 'shopify', name: 'orders/create', method: 'POST', path: '/v1/webhooks/shopify', headers: { 'x-shopify-shop-domain': 'a\r\nX-Injected: 1' }, body: '{}' };
    await expect(resignFixture(fx, { shopifyApiSecret: 'local', lookup: () => undefined })).rejects.toMatchObject({ code: 'E_FIXTURE', exitCode: 2, message: expect.stringContaining('x-shopify-shop-domain') });
    const custom: DeliveryFixture = { ...fx, source: 'webhook:acme', name: 'acme', path: '/v1/webhooks/custom/acme', headers: { 'content-type': 'text/plain\u0000' } };
    await expect(resignFixture(custom, { lookup: () => undefined })).rejects.toMatchObject({ code: 'E_FIXTURE', message: expect.stringContaining('for webhook:acme acme has content-type') });
    expect((await resignFixture({ ...custom, headers: { 'content-type': 'application/json; charset=utf-8' } }, { lookup: () => undefined })).headers['content-type']).toBe('application/json; charset=utf-8');
    // As `alloy dev --record` saved them: an empty content-type is none, a Latin-1 one is sent as it was.
    expect((await resignFixture({ ...custom, headers: { 'content-type': '' } }, { lookup: () => undefined })).headers['content-type']).toBe('application/json');
    expect((await resignFixture({ ...custom, headers: { 'content-type': 'text/plain; name=caf\u00e9' } }, { lookup: () => undefined })).headers['content-type']).toBe('text/plain; name=caf\u00e9');
    await expect(resignFixture({ ...custom, headers: { 'content-type': 'text/plain; name=\u20ac' } }, { lookup: () => undefined })).rejects.toMatchObject({ code: 'E_FIXTURE' });
  });

  it('accepts only fixture paths that are runtime ingress routes, and names the fixture file otherwise', async () => {
    const tmp = tempDir();
    try {
      const write = (name: string, p: unknown) => {
        writeFileSync(path.join(tmp.dir, name), JSON.stringify({ alloyFixture: 1, source: 'webhook:acme', name: 'acme', method: 'POST', path: p, headers: {}, body: '{}' }));
        return path.join(tmp.dir, name);
      };
      for (const good of ['/v1/run/event', '/v1/webhooks/shopify', '/v1/webhooks/custom/acme', '/v1/webhooks/custom/order-paid-2']) {
        expect((await readFixture(write('ok.json', good))).path).toBe(good);
      }
      const bad = [
        'https://evil.example/collect',
        '//evil.example/collect',
        'http:/evil.example/collect',
        'v1/run/event',
        '/v1/executions',
        '/v1/webhooks/custom/../../collect',
        '/v1/webhooks/custom/a/b',
        '/v1/run/event?x=1',
        '/v1/webhooks/custom/%2e%2e',
        '\\\\evil.example\\collect',
      ];
      for (const p of bad) {
        const file = write('evil.json', p);
        await expect(readFixture(file, 'fixtures/evil.json'), p).rejects.toMatchObject({ code: 'E_FIXTURE_PATH', exitCode: 2, message: expect.stringContaining('fixtures/evil.json') });
        await expect(resignFixture({ alloyFixture: 1, source: 'event', name: 'x', method: 'POST', path: p, headers: {}, body: '{}' }, { lookup: () => 'secret' }), p).rejects.toMatchObject({ code: 'E_FIXTURE_PATH' });
      }
    } finally {
      tmp.cleanup();
    }
  });
});
