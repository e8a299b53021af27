/**
 * The example project's create-order step, rendered from its real fixture event, must pass
 * the shopify/createOrder input schema and create the order in the fake Shopify.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parse } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createShopifyConnector, shopifyManifest } from '../../src/connectors/index.js';
import { compileValue, renderValue } from '../../src/core/expressions.js';
import { REPO_ROOT, startFakeShopify, type FakeShopify } from '../fakes/fake-shopify.js';
import { makeContext, strictAjv } from './helpers.js';

const exampleDir = path.join(REPO_ROOT, 'examples', 'shopify-sync', 'integrations', 'shopify-sync');
let fake: FakeShopify;
beforeAll(async () => {
  fake = await startFakeShopify();
});
afterAll(() => fake.close());

describe('example create-order against the fake', () => {
  it('maps the fixture event into a valid createOrder input and creates the order', async () => {
    const workflow = parse(readFileSync(path.join(exampleDir, 'workflows', 'create-order.yaml'), 'utf8'));
    const event = JSON.parse(readFileSync(path.join(exampleDir, 'fixtures', 'acme-order-requested.json'), 'utf8'));
    const step = workflow.steps.find((s: { uses?: string }) => s.uses === 'shopify/createOrder');
    const input = (await renderValue(compileValue(step.with), { event })) as Record<string, unknown>;
    const validate = strictAjv().compile(shopifyManifest.actions!.createOrder.input!);
    expect(validate(input), JSON.stringify(validate.errors)).toBe(true);

    const ctx = makeContext({ connection: { shop: fake.shop, accessToken: fake.accessToken }, settings: { baseUrl: fake.url } });
    const out = (await createShopifyConnector().actions.createOrder(input, ctx)) as Record<string, any>;
    expect(fake.orders).toHaveLength(1);
    expect(fake.orders[0]).toMatchObject({ email: event.email, phone: event.phone, sourceIdentifier: event.orderId, tags: ['acme'] });
    expect(out.lineItems[0]).toMatchObject({ title: event.lineItems[0].title, sku: event.lineItems[0].sku, quantity: event.lineItems[0].quantity });
    expect(out.totalPrice).toEqual({ amount: (event.lineItems[0].price * event.lineItems[0].quantity).toFixed(2), currencyCode: event.currency });
  });
});
