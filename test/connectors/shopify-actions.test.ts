import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createShopifyConnector, toOrderCreateVariables } from '../../src/connectors/index.js';
import { MAX_THROTTLE_WAITS } from '../../src/connectors/shopify/graphql.js';
import { StepError } from '../../src/errors.js';
import { startFakeShopify, type FakeShopify } from '../fakes/fake-shopify.js';
import { makeContext, thrown } from './helpers.js';
import { thirdPartyJson } from '../helpers/fixtures.js';

const shopify = createShopifyConnector();
let fake: FakeShopify;

beforeAll(async () => {
  fake = await startFakeShopify({ customers: [{ id: 207119551, email: 'bob.norman@mail.example.com' }] });
});
afterAll(() => fake.close());
beforeEach(() => fake.reset());

const ctxFor = (overrides: { token?: string; idempotencyKey?: string; nowMs?: number } = {}) =>
  makeContext({
    connection: { shop: fake.shop, accessToken: overrides.token ?? fake.accessToken, apiVersion: '2025-10' },
    settings: { baseUrl: fake.url },
    idempotencyKey: overrides.idempotencyKey,
    nowMs: overrides.nowMs,
  });

const orderInput = {
  email: 'jane@example.com',
  phone: '+15555550123',
  currency: 'EUR',
  lineItems: [{ title: 'Big Brown Bear Boots', quantity: 3, price: '74.99' }],
  tags: ['acme'],
  sourceIdentifier: 'acme-42',
};

describe('shopify createOrder against the fake', () => {
  it('creates the order through GraphQL orderCreate and returns it', async () => {
    const ctx = ctxFor({ idempotencyKey: 'exec-7:order' });
    const out = (await shopify.actions.createOrder(orderInput, ctx)) as Record<string, any>;
    expect(fake.orders).toHaveLength(1);
    const stored = fake.orders[0];
    expect(out.id).toBe(`gid://shopify/Order/${stored.id}`);
    expect(out).toMatchObject({
      email: 'jane@example.com',
      phone: '+15555550123',
      name: stored.name,
      tags: ['acme'],
      totalPrice: { amount: '224.97', currencyCode: 'EUR' },
    });
    expect(out.lineItems).toEqual([
      { id: expect.stringMatching(/^gid:\/\/shopify\/LineItem\/\d+$/), title: 'Big Brown Bear Boots', quantity: 3, sku: null, variantId: null },
    ]);
    const req = fake.requests[0];
    expect(req.path).toBe('/admin/api/2025-10/graphql.json');
    expect(req.headers['x-shopify-access-token']).toBe(fake.accessToken);
    expect(req.headers['idempotency-key']).toBe('exec-7:order');
    expect(req.operation).toBe('orderCreate');
    expect((req.json as any).variables.order.lineItems[0].priceSet).toEqual({ shopMoney: { amount: '74.99', currencyCode: 'EUR' } });
  });

  it('sends the orderCreate variables of the shopify.dev example unchanged in shape', () => {
    const example = thirdPartyJson('shopify/graphql-orderCreate-example.json');
    const { order } = toOrderCreateVariables({
      currency: 'EUR',
      lineItems: [{ title: 'Big Brown Bear Boots', price: 74.99, quantity: 3 }],
    });
    const exampleItem = example.variables.order.lineItems[0];
    expect(order.currency).toBe(example.variables.order.currency);
    expect((order.lineItems as any[])[0]).toEqual({ title: exampleItem.title, quantity: exampleItem.quantity, priceSet: exampleItem.priceSet });
  });

  it('maps customerId and options, and associates the existing customer', async () => {
    const out = (await shopify.actions.createOrder(
      { ...orderInput, customerId: 'gid://shopify/Customer/207119551', sendReceipt: true, inventoryBehaviour: 'BYPASS' },
      ctxFor(),
    )) as Record<string, any>;
    expect(out.id).toMatch(/^gid:\/\/shopify\/Order\//);
    expect(fake.orders[0].customerId).toBe(207119551);
    const vars = (fake.requests[0].json as any).variables;
    expect(vars.order.customer).toEqual({ toAssociate: { id: 'gid://shopify/Customer/207119551' } });
    expect(vars.options).toEqual({ sendReceipt: true, inventoryBehaviour: 'BYPASS' });
  });

  it('turns userErrors into a non-retryable StepError listing each field and message', async () => {
    const err = await thrown(() =>
      shopify.actions.createOrder(
        { email: 'not-an-email', lineItems: [{ quantity: 1 }, { quantity: 2, variantId: 'gid://shopify/ProductVariant/1' }] },
        ctxFor(),
      ),
    );
    expect(err).toBeInstanceOf(StepError);
    expect(err.retryable).toBe(false);
    expect(err.code).toBe('E_SHOPIFY_USER_ERRORS');
    expect(err.message).toContain("order.lineItems.0.title: Title can't be blank");
    expect(err.message).toContain('order.lineItems.1.variantId: Variant does not exist');
    expect(err.message).toContain('order.email: Email is invalid');
    expect(err.details.userErrors).toHaveLength(3);
    expect(fake.orders).toHaveLength(0);
  });

  it('an order without line items fails with Shopify’s user error', async () => {
    const err = await thrown(() => shopify.actions.createOrder({ email: 'a@example.com', lineItems: [] }, ctxFor()));
    expect(err.message).toContain('order.lineItems: Line items must have at least one line item');
  });

  it('a wrong access token is a non-retryable 401 naming SHOPIFY_ACCESS_TOKEN', async () => {
    const err = await thrown(() => shopify.actions.createOrder(orderInput, ctxFor({ token: 'shpat_wrong' })));
    expect(err).toBeInstanceOf(StepError);
    expect(err).toMatchObject({ status: 401, retryable: false, code: 'E_UNAUTHORIZED' });
    expect(err.hint).toContain('SHOPIFY_ACCESS_TOKEN');
    expect(err.message).not.toContain('shpat_wrong');
    expect(fake.requests[0].status).toBe(401);
  });

  it('HTTP 429 with Retry-After in seconds is retryable with retryAfterMs', async () => {
    fake.failNext(1, { retryAfter: '2.0' });
    const err = await thrown(() => shopify.actions.createOrder(orderInput, ctxFor()));
    expect(err).toMatchObject({ status: 429, retryable: true, retryAfterMs: 2000, code: 'E_RATE_LIMITED' });
    // the next call goes through: the engine's retry would succeed
    await shopify.actions.createOrder(orderInput, ctxFor());
    expect(fake.orders).toHaveLength(1);
  });

  it('HTTP 429 with Retry-After as an HTTP-date is measured from the injected clock', async () => {
    const nowMs = Date.parse('2026-01-15T10:00:00Z');
    fake.failNext(1, { retryAfter: new Date(nowMs + 7000).toUTCString() });
    const err = await thrown(() => shopify.actions.createOrder(orderInput, ctxFor({ nowMs })));
    expect(err).toMatchObject({ status: 429, retryable: true, retryAfterMs: 7000 });
  });

  it('a 503 on createOrder is a final E_OUTCOME_UNKNOWN (the order may exist; see shopify-outcome.test.ts)', async () => {
    fake.failNext(1, { status: 503 });
    const err = await thrown(() => shopify.actions.createOrder(orderInput, ctxFor()));
    expect(err).toMatchObject({ status: 503, retryable: false, code: 'E_OUTCOME_UNKNOWN' });
    expect(err.retryAfterMs).toBeUndefined();
  });

  it('waits out GraphQL THROTTLED from the cost report, then succeeds', async () => {
    fake.throttleNext(2, { requestedQueryCost: 112, currentlyAvailable: 12, restoreRate: 30 });
    const ctx = ctxFor();
    const out = (await shopify.actions.createOrder(orderInput, ctx)) as Record<string, any>;
    expect(out.id).toMatch(/^gid:\/\/shopify\/Order\//);
    // ceil((112 - 12) / 30) = 4 s, twice
    expect(ctx.sleeps).toEqual([4000, 4000]);
    expect(fake.requests.map((r) => r.operation)).toEqual(['THROTTLED', 'THROTTLED', 'orderCreate']);
    expect(fake.orders).toHaveLength(1);
  });

  it('gives up after a bounded number of THROTTLED waits with a retryable error', async () => {
    fake.throttleNext(10, { requestedQueryCost: 250, currentlyAvailable: 0, restoreRate: 100 });
    const ctx = ctxFor();
    const err = await thrown(() => shopify.actions.createOrder(orderInput, ctx));
    expect(err).toMatchObject({ code: 'E_THROTTLED', retryable: true, retryAfterMs: 3000 });
    expect(ctx.sleeps).toEqual(Array(MAX_THROTTLE_WAITS).fill(3000));
    expect(fake.requests).toHaveLength(MAX_THROTTLE_WAITS + 1);
    expect(fake.orders).toHaveLength(0);
  });

  it('a price without currency is a clear input error before any call', async () => {
    const err = await thrown(() => shopify.actions.createOrder({ lineItems: [{ title: 'x', quantity: 1, price: 5 }] }, ctxFor()));
    expect(err).toMatchObject({ code: 'E_INPUT', retryable: false });
    expect(err.hint).toContain('currency');
    expect(fake.requests).toHaveLength(0);
  });

  it('a network failure is retryable', async () => {
    const ctx = makeContext({ connection: { accessToken: 't' }, settings: { baseUrl: 'http://127.0.0.1:1' } });
    const err = await thrown(() => shopify.actions.createOrder(orderInput, ctx));
    expect(err).toMatchObject({ code: 'E_NETWORK', retryable: true });
  });
});

describe('shopify addTags and getOrder against the fake', () => {
  it('adds tags to a customer (tagsAdd), accepting a comma-separated string', async () => {
    const out = await shopify.actions.addTags({ id: 'gid://shopify/Customer/207119551', tags: 'vip, wholesale' }, ctxFor());
    expect(out).toEqual({ id: 'gid://shopify/Customer/207119551', tags: ['vip', 'wholesale'] });
    expect(fake.customers[0].tags).toEqual(['vip', 'wholesale']);
    expect(fake.requests[0].operation).toBe('tagsAdd');
  });

  it('tagging an unknown resource fails with the user error', async () => {
    const err = await thrown(() => shopify.actions.addTags({ id: 'gid://shopify/Customer/1', tags: ['x'] }, ctxFor()));
    expect(err).toMatchObject({ code: 'E_SHOPIFY_USER_ERRORS', retryable: false });
    expect(err.message).toContain('id: Resource not found');
  });

  it('gets an order by gid or by the numeric id from a webhook', async () => {
    const created = (await shopify.actions.createOrder(orderInput, ctxFor())) as Record<string, any>;
    const byGid = (await shopify.actions.getOrder({ id: created.id }, ctxFor())) as Record<string, any>;
    expect(byGid).toEqual(created);
    const byNumber = (await shopify.actions.getOrder({ id: Number(created.legacyResourceId) }, ctxFor())) as Record<string, any>;
    expect(byNumber.id).toBe(created.id);
  });

  it('a missing order is a non-retryable not-found', async () => {
    const err = await thrown(() => shopify.actions.getOrder({ id: 'gid://shopify/Order/999' }, ctxFor()));
    expect(err).toMatchObject({ code: 'E_NOT_FOUND', status: 404, retryable: false });
  });

  it('uses https://<shop> and the connection API version when no baseUrl is set', async () => {
    const { shopifyGraphqlEndpoint } = await import('../../src/connectors/shopify/graphql.js');
    expect(shopifyGraphqlEndpoint({ connection: { shop: 'acme.myshopify.com', apiVersion: '2025-07' }, settings: {} })).toEqual({
      url: 'https://acme.myshopify.com/admin/api/2025-07/graphql.json',
      apiVersion: '2025-07',
    });
    expect(shopifyGraphqlEndpoint({ connection: { shop: 'acme.myshopify.com', apiVersion: '2025-07' }, settings: { apiVersion: '2026-01' } }).apiVersion).toBe('2026-01');
    expect(shopifyGraphqlEndpoint({ connection: { shop: 'acme' }, settings: {} }).url).toBe('https://acme.myshopify.com/admin/api/2025-10/graphql.json');
  });
});
