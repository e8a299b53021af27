/**
 * A local fake of the Shopify Admin API, on 127.0.0.1 with an ephemeral port: for alloy's tests,
 * the bundled example's end-to-end run, and users' own tests (`alloy-integrations/testing`).
 *
 * Faithful where our code depends on it:
 * - `POST /admin/api/<version>/graphql.json` with `orderCreate`, `tagsAdd` and `order(id:)`;
 *   responses are projected onto the client's selection set (unknown fields are GraphQL
 *   errors), inputs are type-checked against OrderCreateOrderInput (unknown keys and
 *   wrong types → top-level "invalid value" errors) and business rules become `userErrors`.
 * - `POST /admin/api/<version>/orders.json` (REST), answering with the order shape of the
 *   real responses in fixtures/third-party/shopify/rest-orders-create-examples.json.
 * - `X-Shopify-Access-Token` checked on every call: 401 with Shopify's error body otherwise.
 * - Every GraphQL answer carries `extensions.cost`; controls make the next calls answer
 *   429 + Retry-After, or GraphQL THROTTLED with the cost report (HTTP 200, as Shopify does).
 * - Every request is recorded (method, path, lower-cased headers, body) for assertions.
 *
 * Simplified: user error messages follow Shopify's wording where known, otherwise they are
 * close paraphrases; the query cost is a fixed estimate; the bucket does not drain.
 */
import { createHmac, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { argValue, parseOperation, project, UndefinedFieldError, type Selection } from './graphql-lite.js';
import { PACKAGE_ROOT } from '../package-paths.js';

/** Real Shopify responses bundled with the package (fixtures/third-party/README.md). */
export const FIXTURES_DIR = path.join(PACKAGE_ROOT, 'fixtures', 'third-party');

export interface FakeVariant {
  /** Numeric id, as in REST `variant_id`. */
  id: number;
  title: string;
  price: string;
  sku: string | null;
}

export interface FakeCustomer {
  id: number;
  email: string | null;
  phone: string | null;
  firstName: string | null;
  lastName: string | null;
  tags: string[];
}

export interface FakeLineItem {
  id: number;
  title: string;
  quantity: number;
  sku: string | null;
  variantId: number | null;
  price: string;
  requiresShipping: boolean;
  taxable: boolean;
  taxLines: { title: string; rate: number; amount: string }[];
}

export interface FakeOrder {
  id: number;
  name: string;
  email: string | null;
  phone: string | null;
  currency: string;
  createdAt: string;
  /** Last change (creation, tagsAdd, updateOrder); what `orders(query: "updated_at:>=...")` filters on. */
  updatedAt: string;
  financialStatus: string | null;
  tags: string[];
  note: string | null;
  customerId: number | null;
  lineItems: FakeLineItem[];
  totalPrice: string;
  sourceIdentifier: string | null;
  /** Which API created it. */
  via: 'graphql' | 'rest';
  /** The Idempotency-Key header of the creating request, if any. */
  idempotencyKey: string | null;
  /** The shop whose access token created it (each token belongs to one shop). */
  shop: string;
}

export interface RecordedRequest {
  method: string;
  path: string;
  /** Lower-cased names. */
  headers: Record<string, string>;
  body: string;
  /** Parsed JSON body, when it was JSON. */
  json?: unknown;
  /** The GraphQL root field (orderCreate, tagsAdd, order) or `rest:orders.create`. */
  operation?: string;
  /** The status the fake answered with. */
  status?: number;
  /** The shop the access token belongs to (authenticated API calls). */
  shop?: string;
}

export interface FakeShopifyOptions {
  /** Token the fake accepts in X-Shopify-Access-Token. Default `shpat_fake_token`. */
  accessToken?: string;
  shop?: string;
  /** Variants orders may reference; default the ones in the REST fixtures. */
  variants?: FakeVariant[];
  customers?: Partial<FakeCustomer>[];
  /** Clock for createdAt; default Date.now. */
  now?: () => number;
  /** Shop currency; default EUR (the fixtures' currency). */
  currency?: string;
  /** Where `shopify/rest-orders-create-examples.json` lives; default the package's fixtures/third-party (FIXTURES_DIR). */
  fixturesDir?: string;
  /** The app's client id and secret for the OAuth endpoints. Defaults `fake_client_id`, `fake_client_secret`. */
  clientId?: string;
  clientSecret?: string;
  /** OAuth tokens that expire after this many seconds, with a rotating refresh token. Default: offline tokens that never expire. */
  tokenTtlSeconds?: number;
  /** Answer each authenticated API call after this delay, so concurrent calls overlap (see maxConcurrent). */
  callDelayMs?: number;
  /** false: no HTTP server (url is ''); requests are answered in process by `handle` (alloy test). */
  listen?: boolean;
}

/** The fake's answer to one request. */
export interface FakeAnswer {
  status: number;
  /** Lower-cased names. */
  headers: Record<string, string>;
  body: string;
}

function lowerKeys(h: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(h)) out[k.toLowerCase()] = v;
  return out;
}

export interface FailureControl {
  /** Default 429. */
  status?: number;
  /** Retry-After header value: delta-seconds ("2.0", "3") or an HTTP-date. */
  retryAfter?: string;
  body?: string;
}

export interface ThrottleControl {
  requestedQueryCost?: number;
  currentlyAvailable?: number;
  restoreRate?: number;
  maximumAvailable?: number;
}

export interface FakeShopify {
  /** http://127.0.0.1:<port>, or '' with `listen: false`. */
  url: string;
  /** Answers one request in process, exactly as the server would (recorded in `requests` too). */
  handle(req: { method: string; url: string; headers?: Record<string, string>; body?: string }): FakeAnswer;
  shop: string;
  accessToken: string;
  orders: FakeOrder[];
  customers: FakeCustomer[];
  requests: RecordedRequest[];
  /** Answer the next `count` authenticated calls with an HTTP error (429 + Retry-After by default). */
  failNext(count: number, control?: FailureControl): void;
  /** Answer the next `count` GraphQL calls with THROTTLED and this cost report. */
  throttleNext(count: number, control?: ThrottleControl): void;
  addCustomer(customer: Partial<FakeCustomer>): FakeCustomer;
  /** The orders of one shop. */
  ordersFor(shop: string): FakeOrder[];
  /** The most API calls of one shop that were in flight at the same time. */
  maxConcurrent(shop: string): number;
  /** Adds a shop with its own access token (as if the app were installed there). */
  addShop(shop: string, accessToken: string): void;
  /** OAuth: the app's client id and secret, and how many times each refresh token was used. */
  clientId: string;
  clientSecret: string;
  refreshes: number;
  /** Adds an order directly (seeding a shop for polling tests and benches). */
  addOrder(order?: Partial<FakeOrder>): FakeOrder;
  /** Changes an order and bumps its updatedAt to now (or `at`), as an edit in the admin would. */
  updateOrder(id: number, changes?: Partial<FakeOrder>, at?: string): FakeOrder;
  /** Orders, customers (back to the seeded ones), requests and controls cleared. */
  reset(): void;
  close(): Promise<void>;
}

// Shopify's REST/GraphQL body for a bad or missing access token.
const INVALID_TOKEN_BODY = { errors: '[API] Invalid API key or access token (unrecognized login or wrong password)' };
const REST_RATE_LIMIT_BODY = {
  errors: 'Exceeded 2 calls per second for api client. Reduce request rates to resume uninterrupted service.',
};
const THROTTLE_BUCKET = { maximumAvailable: 2000, restoreRate: 100 };

interface RestFixture {
  request: { body: { order: Record<string, unknown> } };
  mock_response: { order: Record<string, unknown> & { line_items: Record<string, unknown>[] } };
}

const fixtureCache = new Map<string, RestFixture[]>();
function restFixtures(dir = FIXTURES_DIR): RestFixture[] {
  let fixtures = fixtureCache.get(dir);
  if (!fixtures) {
    const file = path.join(dir, 'shopify', 'rest-orders-create-examples.json');
    fixtures = (JSON.parse(readFileSync(file, 'utf8')) as { fixtures: RestFixture[] }).fixtures;
    fixtureCache.set(dir, fixtures);
  }
  return fixtures;
}

/** Variants seen in the real REST responses (e.g. 447654529 "IPod Touch 8GB"). */
export function fixtureVariants(dir = FIXTURES_DIR): FakeVariant[] {
  const seen = new Map<number, FakeVariant>();
  for (const f of restFixtures(dir)) {
    for (const li of f.mock_response.order.line_items) {
      if (typeof li.variant_id === 'number' && !seen.has(li.variant_id)) {
        seen.set(li.variant_id, {
          id: li.variant_id,
          title: String(li.title),
          price: String(li.price),
          sku: (li.sku as string | null) ?? null,
        });
      }
    }
  }
  return [...seen.values()];
}

const GID = /^gid:\/\/shopify\/([A-Za-z]+)\/(\d+)$/;
function parseGid(id: unknown): { type: string; id: number } | undefined {
  const m = typeof id === 'string' ? GID.exec(id) : null;
  return m ? { type: m[1], id: Number(m[2]) } : undefined;
}

const EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;

// ---------------------------------------------------------------- input type checks

/** The OrderCreate* input types' fields (shopify.dev Admin GraphQL 2025-10), with a checker per leaf. */
type Check = (v: unknown) => string | undefined;
const isString: Check = (v) => (typeof v === 'string' ? undefined : 'Could not coerce value to String');
const isBool: Check = (v) => (typeof v === 'boolean' ? undefined : 'Could not coerce value to Boolean');
const isInt: Check = (v) => (Number.isInteger(v) ? undefined : 'Could not coerce value to Int');
const isDecimal: Check = (v) =>
  typeof v === 'number' || (typeof v === 'string' && /^-?\d+(\.\d+)?$/.test(v)) ? undefined : 'invalid Decimal';
const isEnum =
  (...values: string[]): Check =>
  (v) =>
    typeof v === 'string' && values.includes(v) ? undefined : `Expected "${String(v)}" to be one of: ${values.join(', ')}`;
const isStringList: Check = (v) => (Array.isArray(v) && v.every((s) => typeof s === 'string') ? undefined : 'Could not coerce value to [String!]');
type Shape = { [field: string]: Check | Shape | [Shape] };

const MONEY: Shape = { amount: isDecimal, currencyCode: (v) => (typeof v === 'string' && /^[A-Z]{3}$/.test(v) ? undefined : 'invalid CurrencyCode') };
const MAILING_ADDRESS: Shape = Object.fromEntries(
  ['address1', 'address2', 'city', 'company', 'countryCode', 'firstName', 'lastName', 'phone', 'provinceCode', 'zip'].map((k) => [k, isString]),
);
const TAX_LINE: Shape = { title: isString, rate: isDecimal, priceSet: { shopMoney: MONEY, presentmentMoney: MONEY }, channelLiable: isBool };
const ORDER_CREATE_ORDER_INPUT: Shape = {
  billingAddress: MAILING_ADDRESS,
  buyerAcceptsMarketing: isBool,
  closedAt: isString,
  currency: isString,
  customer: {
    toAssociate: { id: isString },
    toUpsert: { email: isString, phone: isString, firstName: isString, lastName: isString, note: isString, tags: isStringList, addresses: [MAILING_ADDRESS] },
  },
  email: isString,
  financialStatus: isEnum('AUTHORIZED', 'EXPIRED', 'PAID', 'PARTIALLY_PAID', 'PARTIALLY_REFUNDED', 'PENDING', 'REFUNDED', 'VOIDED'),
  fulfillmentStatus: isEnum('FULFILLED', 'PARTIAL', 'RESTOCKED'),
  lineItems: [
    {
      title: isString,
      quantity: isInt,
      priceSet: { shopMoney: MONEY, presentmentMoney: MONEY },
      variantId: isString,
      productId: isString,
      sku: isString,
      requiresShipping: isBool,
      taxable: isBool,
      vendor: isString,
      variantTitle: isString,
      giftCard: isBool,
      taxLines: [TAX_LINE],
    },
  ],
  name: isString,
  note: isString,
  phone: isString,
  poNumber: isString,
  presentmentCurrency: isString,
  processedAt: isString,
  shippingAddress: MAILING_ADDRESS,
  sourceIdentifier: isString,
  sourceName: isString,
  tags: isStringList,
  taxesIncluded: isBool,
  taxLines: [TAX_LINE],
  test: isBool,
  transactions: [{ kind: isEnum('AUTHORIZATION', 'CAPTURE', 'CHANGE', 'EMV_AUTHORIZATION', 'REFUND', 'SALE', 'SUGGESTED_REFUND', 'VOID'), status: isEnum('AWAITING_RESPONSE', 'ERROR', 'FAILURE', 'PENDING', 'SUCCESS', 'UNKNOWN'), amountSet: { shopMoney: MONEY, presentmentMoney: MONEY }, gateway: isString }],
};
const ORDER_CREATE_OPTIONS_INPUT: Shape = {
  sendReceipt: isBool,
  sendFulfillmentReceipt: isBool,
  inventoryBehaviour: isEnum('BYPASS', 'DECREMENT_IGNORING_POLICY', 'DECREMENT_OBEYING_POLICY'),
};

interface Problem {
  path: (string | number)[];
  explanation: string;
}

function checkShape(value: unknown, shape: Shape, at: (string | number)[], problems: Problem[]): void {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    problems.push({ path: at, explanation: 'Expected value to be an object' });
    return;
  }
  for (const [key, v] of Object.entries(value)) {
    const spec = shape[key];
    if (!spec) {
      problems.push({ path: [...at, key], explanation: 'Field is not defined on the input type' });
      continue;
    }
    if (v === null) continue;
    if (typeof spec === 'function') {
      const problem = spec(v);
      if (problem) problems.push({ path: [...at, key], explanation: problem });
    } else if (Array.isArray(spec)) {
      if (!Array.isArray(v)) problems.push({ path: [...at, key], explanation: 'Expected a list' });
      else v.forEach((item, i) => checkShape(item, spec[0], [...at, key, i], problems));
    } else {
      checkShape(v, spec, [...at, key], problems);
    }
  }
}

// ---------------------------------------------------------------- the server

export async function startFakeShopify(options: FakeShopifyOptions = {}): Promise<FakeShopify> {
  const accessToken = options.accessToken ?? 'shpat_fake_token';
  const shop = options.shop ?? 'acme-test.myshopify.com';
  const now = options.now ?? Date.now;
  const shopCurrency = options.currency ?? 'EUR';
  const fixturesDir = options.fixturesDir ?? FIXTURES_DIR;
  const variants = new Map((options.variants ?? fixtureVariants(fixturesDir)).map((v) => [v.id, v]));
  const orders: FakeOrder[] = [];
  const customers: FakeCustomer[] = [];
  const requests: RecordedRequest[] = [];
  let failures: { remaining: number; control: FailureControl } | undefined;
  let throttles: { remaining: number; control: ThrottleControl } | undefined;
  let nextOrderId = 1073460000;
  let nextLineItemId = 1071830000;
  let nextCustomerId = 1073340000;
  let orderNumber = 1001;
  const clientId = options.clientId ?? 'fake_client_id';
  const clientSecret = options.clientSecret ?? 'fake_client_secret';
  /** Access token -> shop; OAuth adds one per installed shop. */
  const tokens = new Map<string, string>([[accessToken, shop]]);
  const codes = new Map<string, string>();
  const refreshTokens = new Map<string, string>();
  const inFlight = new Map<string, number>();
  const maxInFlight = new Map<string, number>();

  const addCustomer = (c: Partial<FakeCustomer>): FakeCustomer => {
    const customer: FakeCustomer = {
      id: c.id ?? nextCustomerId++,
      email: c.email ?? null,
      phone: c.phone ?? null,
      firstName: c.firstName ?? null,
      lastName: c.lastName ?? null,
      tags: [...(c.tags ?? [])],
    };
    customers.push(customer);
    return customer;
  };
  const seedCustomers = () => (options.customers ?? []).forEach(addCustomer);
  seedCustomers();

  /** One request, answered in process (the HTTP server and `handle` both come here). */
  function answer(method: string, reqPath: string, headers: Record<string, string>, body: string): FakeAnswer {
    const record: RecordedRequest = { method, path: reqPath, headers, body };
    try {
      record.json = body ? JSON.parse(body) : undefined;
    } catch {
      /* not JSON: left undefined */
    }
    requests.push(record);
    let out: FakeAnswer = { status: 500, headers: {}, body: '' };
    const send = (status: number, payload: unknown, extra: Record<string, string> = {}) => {
      record.status = status;
      const text = typeof payload === 'string' ? payload : JSON.stringify(payload);
      out = { status, headers: { 'content-type': 'application/json; charset=utf-8', ...lowerKeys(extra) }, body: text };
    };
    try {
      route(record, send);
    } catch (err) {
      send(500, { errors: `fake shopify: ${(err as Error).message}` });
    }
    return out;
  }

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const headers: Record<string, string> = {};
      for (const [k, v] of Object.entries(req.headers)) if (v !== undefined) headers[k] = Array.isArray(v) ? v.join(', ') : v;
      const body = Buffer.concat(chunks).toString('utf8');
      const reply = () => {
        const out = answer(req.method ?? 'GET', req.url ?? '/', headers, body);
        res.writeHead(out.status, out.headers);
        res.end(out.body);
      };
      const callShop = tokens.get(headers['x-shopify-access-token'] ?? '');
      if (!callShop || !options.callDelayMs) return reply();
      // Count calls in flight per shop (the limiter tests read maxConcurrent).
      const n = (inFlight.get(callShop) ?? 0) + 1;
      inFlight.set(callShop, n);
      maxInFlight.set(callShop, Math.max(n, maxInFlight.get(callShop) ?? 0));
      setTimeout(() => {
        inFlight.set(callShop, (inFlight.get(callShop) ?? 1) - 1);
        reply();
      }, options.callDelayMs);
    });
  });

  type Send = (status: number, payload: unknown, extra?: Record<string, string>) => void;

  function route(record: RecordedRequest, send: Send): void {
    const url = new URL(record.path, 'http://fake');
    if (url.pathname === '/admin/oauth/authorize') return oauthAuthorize(url, send);
    if (url.pathname === '/admin/oauth/access_token') return oauthToken(record, send);
    const m = /^\/admin\/api\/([^/]+)\/(graphql|orders)\.json$/.exec(url.pathname);
    if (!m) return send(404, { errors: 'Not Found' });
    const [, version, resource] = m;
    // Unknown version formats are 404 on Shopify; valid ones are echoed back.
    if (!/^(\d{4}-(01|04|07|10)|unstable)$/.test(version)) return send(404, { errors: 'Not Found' });
    const versionHeader = { 'X-Shopify-API-Version': version };
    if (record.method !== 'POST') return send(406, { errors: 'Not Acceptable' }, versionHeader);
    const tokenShop = tokens.get(record.headers['x-shopify-access-token'] ?? '');
    if (!tokenShop) return send(401, INVALID_TOKEN_BODY, versionHeader);
    record.shop = tokenShop;
    if (failures && failures.remaining > 0) {
      failures.remaining--;
      const status = failures.control.status ?? 429;
      const extra: Record<string, string> = { ...versionHeader };
      const retryAfter = failures.control.retryAfter ?? (status === 429 ? '2.0' : undefined);
      if (retryAfter !== undefined) extra['Retry-After'] = retryAfter;
      const body = failures.control.body ?? (status === 429 ? REST_RATE_LIMIT_BODY : { errors: 'Internal Server Error' });
      return send(status, body, extra);
    }
    if (resource === 'orders') return restCreateOrder(record, send, versionHeader);
    return graphql(record, send, versionHeader);
  }

  // ------------------------------------------------------------ GraphQL

  function cost(requested: number) {
    return {
      cost: {
        requestedQueryCost: requested,
        actualQueryCost: requested,
        throttleStatus: { ...THROTTLE_BUCKET, currentlyAvailable: THROTTLE_BUCKET.maximumAvailable - requested },
      },
    };
  }

  function graphql(record: RecordedRequest, send: Send, extra: Record<string, string>): void {
    const body = record.json as { query?: unknown; variables?: Record<string, unknown> } | undefined;
    if (!body || typeof body.query !== 'string') {
      return send(400, { errors: { query: 'Required parameter missing or invalid' } }, extra);
    }
    if (throttles && throttles.remaining > 0) {
      throttles.remaining--;
      const t = throttles.control;
      record.operation = 'THROTTLED';
      return send(
        200,
        {
          errors: [{ message: 'Throttled', extensions: { code: 'THROTTLED', documentation: 'https://shopify.dev/api/usage/rate-limits' } }],
          extensions: {
            cost: {
              requestedQueryCost: t.requestedQueryCost ?? 112,
              actualQueryCost: null,
              throttleStatus: {
                maximumAvailable: t.maximumAvailable ?? THROTTLE_BUCKET.maximumAvailable,
                currentlyAvailable: t.currentlyAvailable ?? 12,
                restoreRate: t.restoreRate ?? THROTTLE_BUCKET.restoreRate,
              },
            },
          },
        },
        extra,
      );
    }
    let op;
    try {
      op = parseOperation(body.query);
    } catch (err) {
      return send(200, { errors: [{ message: (err as Error).message, extensions: { code: 'parseError' } }] }, extra);
    }
    const variables = body.variables ?? {};
    const data: Record<string, unknown> = {};
    let requested = 1;
    for (const sel of op.selections) {
      record.operation = sel.name;
      let result: unknown;
      try {
        if (op.type === 'mutation' && sel.name === 'orderCreate') {
          requested += 10;
          const r = orderCreate(sel, variables, record);
          if ('errors' in r) return send(200, { errors: r.errors }, extra);
          result = r.value;
        } else if (op.type === 'mutation' && sel.name === 'tagsAdd') {
          requested += 10;
          result = tagsAdd(sel, variables);
        } else if (op.type === 'query' && sel.name === 'order') {
          const ref = parseGid(argValue(sel.args.id, variables));
          const order = ref?.type === 'Order' ? orders.find((o) => o.id === ref.id) : undefined;
          result = order ? gqlOrder(order) : null;
        } else if (op.type === 'query' && sel.name === 'orders') {
          const r = ordersConnection(sel, variables);
          if ('errors' in r) return send(200, { errors: r.errors }, extra);
          requested += r.cost;
          result = r.value;
        } else {
          throw new UndefinedFieldError(sel.name, op.type === 'mutation' ? 'Mutation' : 'QueryRoot');
        }
        data[sel.alias ?? sel.name] = project(result, sel.selections, sel.name);
      } catch (err) {
        if (err instanceof UndefinedFieldError) {
          return send(200, { errors: [{ message: err.message, extensions: { code: 'undefinedField', typeName: err.typeName, fieldName: err.field } }] }, extra);
        }
        throw err;
      }
    }
    send(200, { data, extensions: cost(requested) }, extra);
  }

  function gqlOrder(order: FakeOrder) {
    return {
      __typename: 'Order',
      id: `gid://shopify/Order/${order.id}`,
      legacyResourceId: String(order.id),
      name: order.name,
      email: order.email,
      phone: order.phone,
      createdAt: order.createdAt,
      updatedAt: order.updatedAt,
      displayFinancialStatus: order.financialStatus,
      tags: order.tags,
      note: order.note,
      sourceIdentifier: order.sourceIdentifier,
      currencyCode: order.currency,
      customer: order.customerId ? { __typename: 'Customer', id: `gid://shopify/Customer/${order.customerId}` } : null,
      totalPriceSet: { shopMoney: { amount: order.totalPrice, currencyCode: order.currency } },
      totalTaxSet: { shopMoney: { amount: totalTax(order), currencyCode: order.currency } },
      lineItems: {
        nodes: order.lineItems.map((li) => ({
          __typename: 'LineItem',
          id: `gid://shopify/LineItem/${li.id}`,
          title: li.title,
          quantity: li.quantity,
          sku: li.sku,
          variant: li.variantId ? { __typename: 'ProductVariant', id: `gid://shopify/ProductVariant/${li.variantId}` } : null,
          originalUnitPriceSet: { shopMoney: { amount: li.price, currencyCode: order.currency } },
          taxLines: li.taxLines.map((t) => ({
            __typename: 'TaxLine',
            title: t.title,
            rate: t.rate,
            priceSet: { shopMoney: { amount: t.amount, currencyCode: order.currency } },
          })),
        })),
      },
    };
  }

  function totalTax(order: FakeOrder): string {
    return order.lineItems.reduce((sum, li) => sum + li.taxLines.reduce((s, t) => s + Number(t.amount), 0), 0).toFixed(2);
  }

  type UserError = { field: string[] | null; message: string; code?: string | null };

  function orderCreate(
    sel: Selection,
    variables: Record<string, unknown>,
    record: RecordedRequest,
  ): { value: unknown } | { errors: unknown[] } {
    const input = argValue(sel.args.order, variables);
    const options = argValue(sel.args.options, variables);
    const variableName = sel.args.order && 'variable' in sel.args.order ? sel.args.order.variable : 'order';
    const problems: Problem[] = [];
    if (input === undefined || input === null) problems.push({ path: [], explanation: 'Expected value to not be null' });
    else checkShape(input, ORDER_CREATE_ORDER_INPUT, [], problems);
    (((input as Record<string, unknown>)?.lineItems as unknown[]) ?? []).forEach((li, i) => {
      if (li && typeof li === 'object' && !('quantity' in li)) {
        problems.push({ path: ['lineItems', i, 'quantity'], explanation: 'Expected value to not be null' });
      }
    });
    if (problems.length > 0) {
      return {
        errors: [
          {
            message: `Variable $${variableName} of type OrderCreateOrderInput! was provided invalid value${problems.length === 1 && problems[0].path.length ? ` for ${problems[0].path.join('.')}` : ''}`,
            extensions: { value: input ?? null, problems },
          },
        ],
      };
    }
    if (options !== undefined && options !== null) {
      const optionProblems: Problem[] = [];
      checkShape(options, ORDER_CREATE_OPTIONS_INPUT, [], optionProblems);
      if (optionProblems.length > 0) {
        return {
          errors: [{ message: 'Variable $options of type OrderCreateOptionsInput was provided invalid value', extensions: { value: options, problems: optionProblems } }],
        };
      }
    }
    const order = input as Record<string, unknown>;
    const userErrors: UserError[] = [];
    const items = (order.lineItems as Record<string, unknown>[] | undefined) ?? [];
    if (items.length === 0) {
      userErrors.push({ field: ['order', 'lineItems'], message: 'Line items must have at least one line item', code: 'INVALID' });
    }
    const currency = (order.currency as string | undefined) ?? shopCurrency;
    const lineItems: FakeLineItem[] = [];
    items.forEach((li, i) => {
      const at = ['order', 'lineItems', String(i)];
      const quantity = li.quantity as number;
      if (quantity < 1) userErrors.push({ field: [...at, 'quantity'], message: 'Quantity must be greater than or equal to 1', code: 'INVALID' });
      let variant: FakeVariant | undefined;
      if (li.variantId !== undefined) {
        const ref = parseGid(li.variantId);
        variant = ref?.type === 'ProductVariant' ? variants.get(ref.id) : undefined;
        if (!variant) userErrors.push({ field: [...at, 'variantId'], message: 'Variant does not exist', code: 'INVALID' });
      } else if (!li.title) {
        userErrors.push({ field: [...at, 'title'], message: "Title can't be blank", code: 'INVALID' });
      }
      const shopMoney = (li.priceSet as { shopMoney?: { amount: number | string; currencyCode: string } } | undefined)?.shopMoney;
      if (shopMoney && shopMoney.currencyCode !== currency) {
        userErrors.push({ field: [...at, 'priceSet'], message: 'Currency code must match the order currency', code: 'INVALID' });
      }
      lineItems.push({
        id: nextLineItemId++,
        title: (li.title as string | undefined) ?? variant?.title ?? '',
        quantity,
        sku: (li.sku as string | undefined) ?? variant?.sku ?? null,
        variantId: variant?.id ?? null,
        price: Number(shopMoney?.amount ?? variant?.price ?? 0).toFixed(2),
        requiresShipping: (li.requiresShipping as boolean | undefined) ?? true,
        taxable: (li.taxable as boolean | undefined) ?? true,
        taxLines: ((li.taxLines as { title?: string; rate?: number | string; priceSet?: { shopMoney?: { amount: number | string } } }[] | undefined) ?? []).map(
          (t) => ({ title: t.title ?? '', rate: Number(t.rate ?? 0), amount: Number(t.priceSet?.shopMoney?.amount ?? 0).toFixed(2) }),
        ),
      });
    });
    if (typeof order.email === 'string' && !EMAIL.test(order.email)) {
      userErrors.push({ field: ['order', 'email'], message: 'Email is invalid', code: 'INVALID' });
    }
    const customerInput = order.customer as { toAssociate?: { id: string }; toUpsert?: Partial<FakeCustomer> } | undefined;
    let customerId: number | null = null;
    if (customerInput?.toAssociate && customerInput.toUpsert) {
      userErrors.push({ field: ['order', 'customer'], message: 'Only one of toAssociate or toUpsert may be provided', code: 'REDUNDANT_CUSTOMER_FIELDS' });
    } else if (customerInput?.toAssociate) {
      const ref = parseGid(customerInput.toAssociate.id);
      const found = ref?.type === 'Customer' ? customers.find((c) => c.id === ref.id) : undefined;
      if (!found) userErrors.push({ field: ['order', 'customer', 'toAssociate', 'id'], message: 'Customer does not exist', code: 'INVALID' });
      else customerId = found.id;
    }
    if (userErrors.length > 0) return { value: { __typename: 'OrderCreatePayload', userErrors, order: null } };
    if (customerInput?.toUpsert) {
      const up = customerInput.toUpsert;
      const existing = up.email ? customers.find((c) => c.email === up.email) : undefined;
      customerId = (existing ?? addCustomer(up)).id;
    }
    const total = lineItems.reduce((sum, li) => sum + Number(li.price) * li.quantity, 0);
    const created: FakeOrder = {
      id: nextOrderId++,
      name: `#${orderNumber++}`,
      email: (order.email as string | undefined) ?? null,
      phone: (order.phone as string | undefined) ?? null,
      currency,
      createdAt: new Date(now()).toISOString().replace(/\.\d{3}Z$/, 'Z'),
      updatedAt: new Date(now()).toISOString().replace(/\.\d{3}Z$/, 'Z'),
      financialStatus: (order.financialStatus as string | undefined) ?? 'PAID',
      tags: [...((order.tags as string[] | undefined) ?? [])],
      note: (order.note as string | undefined) ?? null,
      customerId,
      lineItems,
      totalPrice: total.toFixed(2),
      sourceIdentifier: (order.sourceIdentifier as string | undefined) ?? null,
      via: 'graphql',
      idempotencyKey: record.headers['idempotency-key'] ?? null,
      shop: record.shop ?? shop,
    };
    orders.push(created);
    return { value: { __typename: 'OrderCreatePayload', userErrors: [], order: gqlOrder(created) } };
  }

  function tagsAdd(sel: Selection, variables: Record<string, unknown>): unknown {
    const id = argValue(sel.args.id, variables);
    const tags = argValue(sel.args.tags, variables);
    const list = Array.isArray(tags) ? tags.map(String) : String(tags ?? '').split(',');
    const clean = list.map((t) => t.trim()).filter(Boolean);
    const ref = parseGid(id);
    let target: { tags: string[] } | undefined;
    if (ref?.type === 'Order') target = orders.find((o) => o.id === ref.id);
    else if (ref?.type === 'Customer') target = customers.find((c) => c.id === ref.id);
    if (!target) {
      return { __typename: 'TagsAddPayload', node: null, userErrors: [{ field: ['id'], message: 'Resource not found' }] };
    }
    if (clean.length === 0) {
      return { __typename: 'TagsAddPayload', node: null, userErrors: [{ field: ['tags'], message: "Tags can't be blank" }] };
    }
    for (const t of clean) if (!target.tags.includes(t)) target.tags.push(t);
    if (ref!.type === 'Order') (target as FakeOrder).updatedAt = new Date(now()).toISOString();
    return { __typename: 'TagsAddPayload', node: { __typename: ref!.type, id }, userErrors: [] };
  }

  /**
   * `orders(first|last, after|before, query, sortKey, reverse)` as Shopify pages it
   * (shopify.dev: Admin GraphQL queries/orders, "Paginating results with GraphQL"): at most
   * 250 a page, opaque cursors, `pageInfo { hasNextPage hasPreviousPage startCursor endCursor }`,
   * `nodes` and `edges { cursor node }`. The search syntax understood here is the part
   * polling uses: `updated_at` / `created_at` with `:>=`, `:>`, `:<=`, `:<`, `:` and a
   * (quoted) ISO time, several terms joined by spaces or AND.
   */
  function ordersConnection(sel: Selection, variables: Record<string, unknown>): { value: unknown; cost: number } | { errors: unknown[] } {
    const first = argValue(sel.args.first, variables) as number | undefined;
    const after = argValue(sel.args.after, variables) as string | undefined | null;
    const query = argValue(sel.args.query, variables) as string | undefined | null;
    const sortKey = String(argValue(sel.args.sortKey, variables) ?? 'ID');
    const reverse = argValue(sel.args.reverse, variables) === true;
    if (typeof first !== 'number' || !Number.isInteger(first) || first < 1) {
      return { errors: [{ message: 'you must provide one of first or last', extensions: { code: 'argumentLiteralsIncompatible' } }] };
    }
    if (first > 250) {
      return { errors: [{ message: 'The page size of the connection is limited to 250 records', extensions: { code: 'MAX_PAGE_SIZE_EXCEEDED' } }] };
    }
    const fields: Record<string, (o: FakeOrder) => string | number> = {
      ID: (o) => o.id,
      UPDATED_AT: (o) => Date.parse(o.updatedAt),
      CREATED_AT: (o) => Date.parse(o.createdAt),
    };
    const key = fields[sortKey];
    if (!key) return { errors: [{ message: `Argument 'sortKey' on Field 'orders' has an invalid value (${sortKey}).`, extensions: { code: 'argumentLiteralsIncompatible' } }] };
    let list = orders.filter(searchFilter(query ?? ''));
    const cmp = (a: FakeOrder, b: FakeOrder) => {
      const ka = key(a);
      const kb = key(b);
      return ka < kb ? -1 : ka > kb ? 1 : a.id - b.id;
    };
    list.sort((a, b) => (reverse ? -cmp(a, b) : cmp(a, b)));
    if (after) {
      let pos: { k: string | number; id: number };
      try {
        pos = JSON.parse(Buffer.from(after, 'base64url').toString('utf8')) as { k: string | number; id: number };
      } catch {
        return { errors: [{ message: 'Invalid cursor for current pagination sort.', extensions: { code: 'BAD_REQUEST' } }] };
      }
      const cmpPos = (o: FakeOrder) => {
        const k = key(o);
        const c = k < pos.k ? -1 : k > pos.k ? 1 : o.id - pos.id;
        return reverse ? -c : c;
      };
      list = list.filter((o) => cmpPos(o) > 0);
    }
    const page = list.slice(0, first);
    const cursorOf = (o: FakeOrder) => Buffer.from(JSON.stringify({ k: key(o), id: o.id })).toString('base64url');
    const nodes = page.map(gqlOrder);
    return {
      cost: 2 + Math.ceil(page.length / 10),
      value: {
        __typename: 'OrderConnection',
        nodes,
        edges: page.map((o, i) => ({ __typename: 'OrderEdge', cursor: cursorOf(o), node: nodes[i] })),
        pageInfo: {
          __typename: 'PageInfo',
          hasNextPage: list.length > page.length,
          hasPreviousPage: Boolean(after),
          startCursor: page.length ? cursorOf(page[0]) : null,
          endCursor: page.length ? cursorOf(page[page.length - 1]) : null,
        },
      },
    };
  }

  function searchFilter(query: string): (o: FakeOrder) => boolean {
    const terms = query
      .split(/\s+(?:AND\s+)?/)
      .map((t) => t.trim())
      .filter((t) => t && t !== 'AND');
    const tests = terms.map((term) => {
      const m = /^(updated_at|created_at):(>=|<=|>|<)?['"]?([^'"]+)['"]?$/.exec(term);
      if (!m) return () => true; // Shopify ignores search terms it does not know
      const at = Date.parse(m[3]);
      const get = (o: FakeOrder) => Date.parse(m[1] === 'updated_at' ? o.updatedAt : o.createdAt);
      switch (m[2]) {
        case '>=':
          return (o: FakeOrder) => get(o) >= at;
        case '>':
          return (o: FakeOrder) => get(o) > at;
        case '<=':
          return (o: FakeOrder) => get(o) <= at;
        case '<':
          return (o: FakeOrder) => get(o) < at;
        default:
          return (o: FakeOrder) => get(o) === at;
      }
    });
    return (o) => tests.every((t) => t(o));
  }

  /** Adds an order directly (tests and benches seeding a shop). */
  function addOrder(partial: Partial<FakeOrder> = {}): FakeOrder {
    const at = new Date(now()).toISOString();
    const order: FakeOrder = {
      id: nextOrderId++,
      name: `#${orderNumber++}`,
      email: null,
      phone: null,
      currency: shopCurrency,
      createdAt: at,
      updatedAt: partial.createdAt ?? at,
      financialStatus: 'PAID',
      tags: [],
      note: null,
      customerId: null,
      lineItems: [],
      totalPrice: '0.00',
      sourceIdentifier: null,
      via: 'graphql',
      idempotencyKey: null,
      ...partial,
      shop: partial.shop ?? shop,
    };
    orders.push(order);
    return order;
  }

  // ------------------------------------------------------------ REST

  function restCreateOrder(record: RecordedRequest, send: Send, extra: Record<string, string>): void {
    record.operation = 'rest:orders.create';
    const order = (record.json as { order?: Record<string, unknown> } | undefined)?.order;
    if (!order || typeof order !== 'object') return send(400, { errors: { order: 'Required parameter missing or invalid' } }, extra);
    const items = (order.line_items as Record<string, unknown>[] | undefined) ?? [];
    const errors: Record<string, string[]> = {};
    if (items.length === 0) errors.line_items = ['must have at least one line item'];
    if (typeof order.email === 'string' && order.email !== '' && !EMAIL.test(order.email)) errors.email = ['is invalid'];
    const currency = (order.currency as string | undefined) ?? shopCurrency;
    const lineItems: FakeLineItem[] = [];
    items.forEach((li) => {
      const variant = typeof li.variant_id === 'number' ? variants.get(li.variant_id) : undefined;
      if (li.variant_id !== undefined && !variant) (errors.line_items ??= []).push('variant does not exist');
      if (li.variant_id === undefined && !li.title) (errors.line_items ??= []).push("title can't be blank");
      lineItems.push({
        id: nextLineItemId++,
        title: (li.title as string | undefined) ?? variant?.title ?? '',
        quantity: Number(li.quantity ?? 1),
        sku: (li.sku as string | undefined) ?? variant?.sku ?? null,
        variantId: variant?.id ?? null,
        price: Number(li.price ?? variant?.price ?? 0).toFixed(2),
        requiresShipping: (li.requires_shipping as boolean | undefined) ?? true,
        taxable: (li.taxable as boolean | undefined) ?? true,
        taxLines: ((li.tax_lines as { title?: string; rate?: number; price?: number | string }[] | undefined) ?? []).map((t) => ({
          title: t.title ?? '',
          rate: Number(t.rate ?? 0),
          amount: Number(t.price ?? 0).toFixed(2),
        })),
      });
    });
    if (Object.keys(errors).length > 0) return send(422, { errors }, extra);
    const total = lineItems.reduce((sum, li) => sum + Number(li.price) * li.quantity, 0);
    const created: FakeOrder = {
      id: nextOrderId++,
      name: `#${orderNumber++}`,
      email: (order.email as string | undefined) ?? null,
      phone: (order.phone as string | undefined) ?? null,
      currency,
      createdAt: new Date(now()).toISOString(),
      updatedAt: new Date(now()).toISOString(),
      financialStatus: (order.financial_status as string | undefined)?.toUpperCase() ?? 'PAID',
      tags: typeof order.tags === 'string' ? order.tags.split(',').map((t) => t.trim()).filter(Boolean) : [],
      note: (order.note as string | undefined) ?? null,
      customerId: null,
      lineItems,
      totalPrice: total.toFixed(2),
      sourceIdentifier: (order.source_identifier as string | undefined) ?? null,
      via: 'rest',
      idempotencyKey: record.headers['idempotency-key'] ?? null,
      shop: record.shop ?? shop,
    };
    orders.push(created);
    send(201, { order: restOrder(created) }, extra);
  }

  /** The real REST order shape (fixture test_16's response), with this order's values. */
  function restOrder(order: FakeOrder): Record<string, unknown> {
    const template = structuredClone(restFixtures(fixturesDir)[0].mock_response.order);
    const lineTemplate = template.line_items[0];
    const money = (amount: string) => ({
      shop_money: { amount, currency_code: order.currency },
      presentment_money: { amount, currency_code: order.currency },
    });
    return {
      ...template,
      id: order.id,
      admin_graphql_api_id: `gid://shopify/Order/${order.id}`,
      name: order.name,
      number: Number(order.name.slice(1)) - 1000,
      order_number: Number(order.name.slice(1)),
      email: order.email ?? '',
      contact_email: order.email,
      phone: order.phone,
      currency: order.currency,
      presentment_currency: order.currency,
      created_at: order.createdAt,
      updated_at: order.createdAt,
      processed_at: order.createdAt,
      financial_status: order.financialStatus?.toLowerCase() ?? null,
      tags: order.tags.join(', '),
      note: order.note,
      source_identifier: order.sourceIdentifier,
      total_price: order.totalPrice,
      total_price_set: money(order.totalPrice),
      current_total_price: order.totalPrice,
      current_total_price_set: money(order.totalPrice),
      subtotal_price: order.totalPrice,
      subtotal_price_set: money(order.totalPrice),
      total_line_items_price: order.totalPrice,
      total_line_items_price_set: money(order.totalPrice),
      total_tax: totalTax(order),
      total_tax_set: money(totalTax(order)),
      current_total_tax: totalTax(order),
      current_total_tax_set: money(totalTax(order)),
      tax_lines: order.lineItems
        .flatMap((li) => li.taxLines)
        .map((t) => ({ price: t.amount, rate: t.rate, title: t.title, price_set: money(t.amount), channel_liable: false })),
      customer: null,
      line_items: order.lineItems.map((li) => ({
        ...structuredClone(lineTemplate),
        id: li.id,
        admin_graphql_api_id: `gid://shopify/LineItem/${li.id}`,
        name: li.title,
        title: li.title,
        quantity: li.quantity,
        current_quantity: li.quantity,
        fulfillable_quantity: li.quantity,
        price: li.price,
        price_set: money(li.price),
        sku: li.sku,
        variant_id: li.variantId,
        product_exists: li.variantId !== null,
        requires_shipping: li.requiresShipping,
        taxable: li.taxable,
        tax_lines: li.taxLines.map((t) => ({ channel_liable: false, price: t.amount, price_set: money(t.amount), rate: t.rate, title: t.title })),
      })),
    };
  }

  // ------------------------------------------------------------ OAuth (authorization code grant)

  /**
   * Shopify's authorize page, minus the merchant's click: redirects at once to redirect_uri
   * with code, shop, state, timestamp and `hmac` (hex HMAC-SHA256 of the other parameters
   * sorted by name, keyed with the client secret). The shop comes from the `shop` query
   * parameter (on Shopify it is the host).
   */
  function oauthAuthorize(url: URL, send: Send): void {
    const q = url.searchParams;
    const target = q.get('shop') ?? shop;
    if (q.get('client_id') !== clientId) return send(400, { errors: 'Oauth error invalid_request: The client_id is invalid' });
    const redirect = q.get('redirect_uri');
    if (!redirect) return send(400, { errors: 'Oauth error invalid_request: The redirect_uri is missing' });
    const code = randomBytes(16).toString('hex');
    codes.set(code, target);
    const params = new URLSearchParams({ code, shop: target, state: q.get('state') ?? '', timestamp: String(Math.floor(now() / 1000)) });
    const sorted = [...params.entries()].sort(([a], [b]) => (a < b ? -1 : 1)).map(([k, v]) => `${k}=${v}`).join('&');
    params.set('hmac', createHmac('sha256', clientSecret).update(sorted).digest('hex'));
    const to = new URL(redirect);
    for (const [k, v] of params) to.searchParams.set(k, v);
    send(302, '', { Location: to.toString() });
  }

  function issue(target: string): Record<string, unknown> {
    const token = `shpat_${randomBytes(16).toString('hex')}`;
    tokens.set(token, target);
    const out: Record<string, unknown> = { access_token: token, scope: 'write_orders,read_orders' };
    if (options.tokenTtlSeconds) {
      const refresh = `shprt_${randomBytes(16).toString('hex')}`;
      refreshTokens.set(refresh, target);
      out.expires_in = options.tokenTtlSeconds;
      out.refresh_token = refresh;
    }
    return out;
  }

  function oauthToken(record: RecordedRequest, send: Send): void {
    const b = (record.json ?? {}) as Record<string, string>;
    if (record.method !== 'POST') return send(406, { errors: 'Not Acceptable' });
    if (b.client_id !== clientId || b.client_secret !== clientSecret) return send(400, { error: 'invalid_client', error_description: 'Client credentials are invalid' });
    if (b.grant_type === 'refresh_token') {
      const target = refreshTokens.get(b.refresh_token ?? '');
      // Refresh tokens rotate: each is good once.
      if (!target) return send(400, { error: 'invalid_grant', error_description: 'The refresh token is invalid or was already used' });
      refreshTokens.delete(b.refresh_token);
      api.refreshes++;
      return send(200, issue(target));
    }
    const target = codes.get(b.code ?? '');
    if (!target) return send(400, { error: 'invalid_request', error_description: 'The authorization code was not found or was already used' });
    codes.delete(b.code);
    send(200, issue(target));
  }

  let url = '';
  if (options.listen !== false) {
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  }

  const api: FakeShopify = {
    url,
    handle: (req) => {
      const u = new URL(req.url);
      const headers = lowerKeys(req.headers ?? {});
      return answer(req.method.toUpperCase(), u.pathname + u.search, headers, req.body ?? '');
    },
    shop,
    accessToken,
    clientId,
    clientSecret,
    refreshes: 0,
    ordersFor: (s) => orders.filter((o) => o.shop === s),
    maxConcurrent: (s) => maxInFlight.get(s) ?? 0,
    addShop: (s, token) => void tokens.set(token, s),
    orders,
    customers,
    requests,
    failNext(count, control = {}) {
      failures = { remaining: count, control };
    },
    throttleNext(count, control = {}) {
      throttles = { remaining: count, control };
    },
    addCustomer,
    addOrder,
    updateOrder(id, changes = {}, at) {
      const order = orders.find((o) => o.id === id);
      if (!order) throw new Error(`fake Shopify: no order ${id}`);
      Object.assign(order, changes, { updatedAt: at ?? new Date(now()).toISOString() });
      return order;
    },
    reset() {
      orders.length = 0;
      customers.length = 0;
      requests.length = 0;
      failures = undefined;
      throttles = undefined;
      seedCustomers();
    },
    close: () =>
      new Promise<void>((resolve, reject) => {
        if (!server.listening) return resolve();
        server.closeAllConnections();
        server.close((err) => (err ? reject(err) : resolve()));
      }),
  };
  return api;
}
