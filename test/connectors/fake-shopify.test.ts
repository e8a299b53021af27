import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startFakeShopify, type FakeShopify } from '../fakes/fake-shopify.js';
import { thirdPartyJson } from '../helpers/fixtures.js';

let fake: FakeShopify;
beforeAll(async () => {
  fake = await startFakeShopify({ accessToken: 'this_is_a_test_token' });
});
afterAll(() => fake.close());
beforeEach(() => fake.reset());

const rest = thirdPartyJson('shopify/rest-orders-create-examples.json') as {
  fixtures: { test: string; request: { path: string; headers: Record<string, string>; body: unknown }; mock_response: { order: Record<string, any> } }[];
};

async function post(p: string, body: unknown, headers: Record<string, string> = { 'X-Shopify-Access-Token': 'this_is_a_test_token' }) {
  const res = await fetch(`${fake.url}${p}`, { method: 'POST', headers: { 'Content-Type': 'application/json', ...headers }, body: JSON.stringify(body) });
  return { status: res.status, headers: res.headers, json: (await res.json()) as any };
}

describe('fake Shopify REST orders.json', () => {
  it.each(rest.fixtures.map((f) => [f.test, f]))('answers the real request %s with the real response shape', async (_name, fixture) => {
    const res = await post(fixture.request.path, fixture.request.body, fixture.request.headers);
    expect(res.status).toBe(201);
    const expected = fixture.mock_response.order;
    // same keys as Shopify's response, at the top level and per line item
    expect(Object.keys(res.json.order).sort()).toEqual(Object.keys(expected).sort());
    expect(Object.keys(res.json.order.line_items[0]).sort()).toEqual(Object.keys(expected.line_items[0]).sort());
    expect(res.json.order.line_items).toHaveLength(expected.line_items.length);
    expect(res.json.order.line_items.map((li: any) => li.title)).toEqual(expected.line_items.map((li: any) => li.title));
    expect(res.json.order.line_items.map((li: any) => li.quantity)).toEqual(expected.line_items.map((li: any) => li.quantity));
    expect(res.json.order.admin_graphql_api_id).toBe(`gid://shopify/Order/${res.json.order.id}`);
    expect(res.headers.get('x-shopify-api-version')).toBe('2025-07');
  });

  it('a missing order or empty line_items is rejected like Shopify', async () => {
    expect((await post('/admin/api/2025-07/orders.json', {})).status).toBe(400);
    const res = await post('/admin/api/2025-07/orders.json', { order: { line_items: [] } });
    expect(res.status).toBe(422);
    expect(res.json.errors.line_items).toBeDefined();
  });

  it('checks X-Shopify-Access-Token with Shopify’s 401 body', async () => {
    const res = await post('/admin/api/2025-07/orders.json', rest.fixtures[0].request.body, { 'X-Shopify-Access-Token': 'nope' });
    expect(res.status).toBe(401);
    expect(res.json).toEqual({ errors: '[API] Invalid API key or access token (unrecognized login or wrong password)' });
    const none = await post('/admin/api/2025-07/graphql.json', { query: '{ order(id: "x") { id } }' }, {});
    expect(none.status).toBe(401);
  });

  it('answers 429 with Retry-After while failNext is armed, then recovers', async () => {
    fake.failNext(2, { retryAfter: '3' });
    const a = await post('/admin/api/2025-07/orders.json', rest.fixtures[4].request.body);
    const b = await post('/admin/api/2025-07/orders.json', rest.fixtures[4].request.body);
    const c = await post('/admin/api/2025-07/orders.json', rest.fixtures[4].request.body);
    expect([a.status, b.status, c.status]).toEqual([429, 429, 201]);
    expect(a.headers.get('retry-after')).toBe('3');
    expect(fake.orders).toHaveLength(1);
  });

  it('unknown API versions are 404', async () => {
    expect((await post('/admin/api/2025-13/orders.json', rest.fixtures[0].request.body)).status).toBe(404);
  });
});

describe('fake Shopify GraphQL', () => {
  const token = { 'X-Shopify-Access-Token': 'this_is_a_test_token' };

  it('runs the shopify.dev orderCreate example and returns only the selected fields', async () => {
    const example = thirdPartyJson('shopify/graphql-orderCreate-example.json');
    const full = await post('/admin/api/2024-10/graphql.json', { query: example.query, variables: example.variables }, token);
    expect(full.status).toBe(200);
    expect(full.json.data.orderCreate.userErrors).toEqual([]);
    const fullOrder = full.json.data.orderCreate.order;
    expect(Object.keys(fullOrder)).toEqual(['id', 'totalTaxSet', 'lineItems']);
    expect(fullOrder.totalTaxSet).toEqual({ shopMoney: { amount: '13.50', currencyCode: 'EUR' } });
    expect(fullOrder.lineItems.nodes).toEqual([
      {
        variant: null,
        id: expect.stringMatching(/^gid:\/\/shopify\/LineItem\//),
        title: 'Big Brown Bear Boots',
        quantity: 3,
        taxLines: [{ title: 'State tax', rate: 0.06, priceSet: { shopMoney: { amount: '13.50', currencyCode: 'EUR' } } }],
      },
    ]);
    expect(full.json.extensions.cost.throttleStatus).toMatchObject({ maximumAvailable: 2000, restoreRate: 100 });
    // A field the fake (and Shopify) does not have is a GraphQL error, not silently ignored.
    const typo = await post('/admin/api/2024-10/graphql.json', { query: example.query.replace('totalTaxSet', 'totalTaxes'), variables: example.variables }, token);
    expect(typo.json.errors[0].message).toBe("Field 'totalTaxes' doesn't exist on type 'Order'");
    expect(fake.orders[0].totalPrice).toBe('224.97');
  });

  it('rejects unknown input fields and wrong types like GraphQL variable coercion', async () => {
    const query = 'mutation orderCreate($order: OrderCreateOrderInput!) { orderCreate(order: $order) { order { id } } }';
    const res = await post('/admin/api/2025-10/graphql.json', { query, variables: { order: { emial: 'x@example.com', lineItems: [{ title: 'a', quantity: '2' }] } } }, token);
    expect(res.json.data).toBeUndefined();
    expect(res.json.errors[0].message).toContain('Variable $order of type OrderCreateOrderInput! was provided invalid value');
    expect(res.json.errors[0].extensions.problems).toEqual([
      { path: ['emial'], explanation: 'Field is not defined on the input type' },
      { path: ['lineItems', 0, 'quantity'], explanation: 'Could not coerce value to Int' },
    ]);
    expect(fake.orders).toHaveLength(0);
  });

  it('answers THROTTLED with HTTP 200 and the cost report while throttleNext is armed', async () => {
    fake.throttleNext(1, { requestedQueryCost: 752, currentlyAvailable: 666, restoreRate: 50 });
    const res = await post('/admin/api/2025-10/graphql.json', { query: '{ order(id: "gid://shopify/Order/1") { id } }' }, token);
    expect(res.status).toBe(200);
    expect(res.json.errors[0].extensions.code).toBe('THROTTLED');
    expect(res.json.extensions.cost).toEqual({
      requestedQueryCost: 752,
      actualQueryCost: null,
      throttleStatus: { maximumAvailable: 2000, currentlyAvailable: 666, restoreRate: 50 },
    });
    const after = await post('/admin/api/2025-10/graphql.json', { query: '{ order(id: "gid://shopify/Order/1") { id } }' }, token);
    expect(after.json).toMatchObject({ data: { order: null } });
  });

  it('an unknown root field is a GraphQL error', async () => {
    const res = await post('/admin/api/2025-10/graphql.json', { query: 'mutation { productDelete(input: $i) { deletedProductId } }' }, token);
    expect(res.json.errors[0].message).toBe("Field 'productDelete' doesn't exist on type 'Mutation'");
  });
});
