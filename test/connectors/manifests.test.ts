import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { builtinConnectorManifests, shopifyManifest } from '../../src/connectors/builtin-manifests.js';
import { strictAjv } from './helpers.js';
import { thirdPartyJson } from '../helpers/fixtures.js';

const ajv = strictAjv();

describe('built-in manifests', () => {
  it('builtin-manifests.ts is pure data: it imports types only', async () => {
    const { REPO_ROOT } = await import('../fakes/fake-shopify.js');
    const source = readFileSync(`${REPO_ROOT}/src/connectors/builtin-manifests.ts`, 'utf8');
    const imports = source.split('\n').filter((l) => /^import\b/.test(l));
    expect(imports.length).toBeGreaterThan(0);
    for (const line of imports) expect(line).toMatch(/^import type /);
  });

  it('every input and payload schema compiles under ajv strict mode', () => {
    let compiled = 0;
    for (const m of builtinConnectorManifests) {
      for (const a of Object.values(m.actions ?? {})) if (a.input) (ajv.compile(a.input), compiled++);
      for (const t of Object.values(m.triggers ?? {})) if (t.payload) (ajv.compile(t.payload), compiled++);
    }
    expect(compiled).toBe(9);
  });

  it('createOrder input catches mapping typos and accepts numeric-string prices', () => {
    const validate = ajv.compile(shopifyManifest.actions!.createOrder.input!);
    expect(validate({ email: 'a@b.co', currency: 'EUR', lineItems: [{ title: 'x', quantity: 1, price: '9.50' }] })).toBe(true);
    expect(validate({ emial: 'a@b.co', lineItems: [{ title: 'x', quantity: 1 }] })).toBe(false);
    expect(validate.errors?.[0]).toMatchObject({ keyword: 'additionalProperties', params: { additionalProperty: 'emial' } });
    expect(validate({ lineItems: [{ title: 'x', quantity: 1, price: 'ten' }] })).toBe(false);
    expect(validate({ email: 'a@b.co' })).toBe(false);
  });

  it('orders/create payload accepts the real webhook fixture', async () => {
    const payload = thirdPartyJson('shopify/orders-create.json');
    const validate = ajv.compile(shopifyManifest.triggers!['orders/create'].payload!);
    expect(validate(payload)).toBe(true);
    expect(validate({ ...payload, id: 'not-a-number' })).toBe(false);
  });

  it('shopify triggers verify with the app secret and dedupe on the webhook id', () => {
    // orders/updated is polled (GraphQL), not received: it has no signature or delivery id.
    for (const t of Object.values(shopifyManifest.triggers!).filter((t) => !t.poll)) {
      expect(t.verify).toEqual({ scheme: 'hmac-sha256', header: 'X-Shopify-Hmac-Sha256', encoding: 'base64', secret: '{{ connection.apiSecret }}' });
      expect(t.dedupeHeader).toBe('X-Shopify-Webhook-Id');
      expect(t.topicHeader).toBe('X-Shopify-Topic');
    }
    expect(Object.keys(shopifyManifest.triggers!)).toEqual(['orders/create', 'orders/paid', 'customers/create', 'app/uninstalled', 'orders/updated']);
    expect(shopifyManifest.triggers!['app/uninstalled'].uninstalls).toBe(true);
    expect(shopifyManifest.triggers!['orders/create'].accountHeader).toBe('X-Shopify-Shop-Domain');
    expect(shopifyManifest.triggers!['orders/updated'].poll).toMatchObject({ every: '1m', paginate: { style: 'cursor', pageSize: 250, maxPages: 40 } });
  });
});
