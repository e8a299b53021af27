/**
 * Shopify actions over the Admin GraphQL API: createOrder (orderCreate, 2024-10+),
 * addTags (tagsAdd) and getOrder (order(id:)). Inputs are the flat shapes in
 * builtin-manifests.ts; `toOrderCreateVariables` builds the nested GraphQL input.
 */
import { StepError } from '../../errors.js';
import type { ActionContext, ActionHandler } from '../types.js';
import { shopifyGraphql, throwOnUserErrors, type ShopifyUserError } from './graphql.js';

const ORDER_FIELDS = `id legacyResourceId name email phone createdAt displayFinancialStatus tags note
  totalPriceSet { shopMoney { amount currencyCode } }
  lineItems(first: 100) { nodes { id title quantity sku variant { id } } }`;

export const ORDER_CREATE_MUTATION = `mutation orderCreate($order: OrderCreateOrderInput!, $options: OrderCreateOptionsInput) {
  orderCreate(order: $order, options: $options) {
    userErrors { field message code }
    order { ${ORDER_FIELDS} }
  }
}`;

export const TAGS_ADD_MUTATION = `mutation tagsAdd($id: ID!, $tags: [String!]!) {
  tagsAdd(id: $id, tags: $tags) {
    node { id }
    userErrors { field message }
  }
}`;

export const ORDER_QUERY = `query order($id: ID!) {
  order(id: $id) { ${ORDER_FIELDS} }
}`;

interface LineItemInput {
  title?: string;
  quantity: number;
  price?: number | string;
  variantId?: string;
  sku?: string;
  requiresShipping?: boolean;
  taxable?: boolean;
  vendor?: string;
}

export interface CreateOrderInput {
  email?: string;
  phone?: string;
  currency?: string;
  lineItems?: LineItemInput[];
  customerId?: string;
  customer?: { email?: string; phone?: string; firstName?: string; lastName?: string };
  shippingAddress?: Record<string, unknown>;
  billingAddress?: Record<string, unknown>;
  note?: string;
  tags?: string[];
  sourceIdentifier?: string;
  poNumber?: string;
  financialStatus?: string;
  test?: boolean;
  sendReceipt?: boolean;
  sendFulfillmentReceipt?: boolean;
  inventoryBehaviour?: string;
}

function defined<T extends Record<string, unknown>>(obj: T): Partial<T> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(obj)) if (v !== undefined && v !== null && v !== '') out[k] = v;
  return out as Partial<T>;
}

/** Pure: the flat createOrder input → orderCreate's `$order` and `$options` variables. */
export function toOrderCreateVariables(input: CreateOrderInput): { order: Record<string, unknown>; options?: Record<string, unknown> } {
  const lineItems = (input.lineItems ?? []).map((li, i) => {
    let priceSet: unknown;
    if (li.price !== undefined && li.price !== null && li.price !== '') {
      if (!input.currency) {
        throw new StepError(`shopify createOrder: lineItems[${i}].price needs the order's currency`, {
          code: 'E_INPUT',
          retryable: false,
          hint: 'Add `currency: EUR` (the shop currency code) to the step input.',
        });
      }
      // MoneyInput {amount: Decimal!, currencyCode: CurrencyCode!}; Decimal takes a number or a string.
      priceSet = { shopMoney: { amount: li.price, currencyCode: input.currency } };
    }
    return defined({
      title: li.title,
      quantity: li.quantity,
      variantId: li.variantId,
      sku: li.sku,
      requiresShipping: li.requiresShipping,
      taxable: li.taxable,
      vendor: li.vendor,
      priceSet,
    });
  });
  let customer: unknown;
  if (input.customerId) customer = { toAssociate: { id: input.customerId } };
  else if (input.customer && Object.keys(defined(input.customer)).length > 0) customer = { toUpsert: defined(input.customer) };
  const order = defined({
    email: input.email,
    phone: input.phone,
    currency: input.currency,
    lineItems,
    customer,
    shippingAddress: input.shippingAddress,
    billingAddress: input.billingAddress,
    note: input.note,
    tags: input.tags,
    sourceIdentifier: input.sourceIdentifier,
    poNumber: input.poNumber,
    financialStatus: input.financialStatus,
    test: input.test,
  });
  const options = defined({
    sendReceipt: input.sendReceipt,
    sendFulfillmentReceipt: input.sendFulfillmentReceipt,
    inventoryBehaviour: input.inventoryBehaviour,
  });
  return Object.keys(options).length > 0 ? { order, options } : { order };
}

interface GqlOrder {
  id: string;
  legacyResourceId?: string;
  name?: string;
  email?: string | null;
  phone?: string | null;
  createdAt?: string;
  displayFinancialStatus?: string | null;
  tags?: string[];
  note?: string | null;
  totalPriceSet?: { shopMoney?: { amount: string; currencyCode: string } };
  lineItems?: { nodes?: { id: string; title: string; quantity: number; sku?: string | null; variant?: { id: string } | null }[] };
}

/** The order as step output: GraphQL field names, connections flattened to arrays. */
export function orderOutput(order: GqlOrder): Record<string, unknown> {
  return {
    id: order.id,
    legacyResourceId: order.legacyResourceId,
    name: order.name,
    email: order.email ?? null,
    phone: order.phone ?? null,
    createdAt: order.createdAt,
    displayFinancialStatus: order.displayFinancialStatus ?? null,
    tags: order.tags ?? [],
    note: order.note ?? null,
    totalPrice: order.totalPriceSet?.shopMoney ?? null,
    lineItems: (order.lineItems?.nodes ?? []).map((n) => ({
      id: n.id,
      title: n.title,
      quantity: n.quantity,
      sku: n.sku ?? null,
      variantId: n.variant?.id ?? null,
    })),
  };
}

/**
 * Network failures that prove the request never left this process (nothing to connect to,
 * no route, no DNS answer, connect timeout). A reset, EPIPE or socket error may come after
 * the request was written, so those are not in the list.
 */
const NOT_SENT_CODES = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'UND_ERR_CONNECT_TIMEOUT']);

function neverSent(err: unknown): boolean {
  let e: unknown = err;
  for (let depth = 0; e && typeof e === 'object' && depth < 5; depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && NOT_SENT_CODES.has(code)) return true;
    e = (e as { cause?: unknown }).cause;
  }
  return false;
}

/**
 * Failures after which Shopify may or may not have created the order. Shopify answers 429,
 * THROTTLED, 401/403, ACCESS_DENIED and userErrors without applying the mutation, and a
 * refused connection sent nothing: those keep their classification. Everything else that
 * would be retried (timeouts, resets after sending, 5xx, INTERNAL_SERVER_ERROR) or that came
 * back from a 2xx we could not read leaves the outcome unknown.
 */
function isOutcomeUnknown(err: StepError): boolean {
  if (['E_RATE_LIMITED', 'E_THROTTLED', 'E_UNAUTHORIZED', 'E_SHOPIFY_USER_ERRORS', 'E_INPUT', 'E_ABORTED'].includes(err.code)) return false;
  if (err.status === 429 || err.status === 408 || err.status === 401 || err.status === 403) return false;
  if (err.code === 'E_BAD_RESPONSE' || err.code === 'E_RESPONSE_TOO_LARGE') return true;
  if (!err.retryable && err.code !== 'E_STEP_TIMEOUT') return false;
  if (err.code === 'E_NETWORK' && neverSent(err)) return false;
  return true;
}

/** The final error for an order that may exist: retrying could create it twice. */
export function orderOutcomeUnknown(err: StepError, sourceIdentifier: string | undefined): StepError {
  const lookFor = sourceIdentifier
    ? `an order with sourceIdentifier "${sourceIdentifier}"`
    : 'the order (set `sourceIdentifier` on createOrder so it can be found)';
  return new StepError(`shopify createOrder: the outcome is unknown, the order may have been created (${err.message})`, {
    code: 'E_OUTCOME_UNKNOWN',
    retryable: false,
    status: err.status,
    hint: `The order may have been created; check the shop for ${lookFor} before replaying this execution. orderCreate takes no idempotency key, so Alloy does not call it again by itself.`,
    details: { cause: err.code, ...(sourceIdentifier ? { sourceIdentifier } : {}) },
    cause: err,
  });
}

export const createOrder: ActionHandler = async (input, ctx) => {
  const order = input as CreateOrderInput;
  const variables = toOrderCreateVariables(order);
  // orderCreate is not idempotent (no @idempotent key; the Idempotency-Key header is ignored
  // by the Admin API): a failure that may have reached Shopify must not be retried.
  const sourceIdentifier = typeof order.sourceIdentifier === 'string' && order.sourceIdentifier !== '' ? order.sourceIdentifier : undefined;
  try {
    const data = await shopifyGraphql(ctx, 'createOrder', ORDER_CREATE_MUTATION, variables);
    const payload = data.orderCreate as { userErrors?: ShopifyUserError[]; order?: GqlOrder | null } | null;
    throwOnUserErrors('createOrder', payload?.userErrors);
    if (!payload?.order) {
      throw new StepError('shopify createOrder returned no order and no user errors', { code: 'E_BAD_RESPONSE' });
    }
    return orderOutput(payload.order);
  } catch (err) {
    if (err instanceof StepError && isOutcomeUnknown(err)) throw orderOutcomeUnknown(err, sourceIdentifier);
    throw err;
  }
};

/** tagsAdd takes a list; a comma-separated string is split the way Shopify's admin does. */
function tagList(tags: unknown): string[] {
  const list = Array.isArray(tags) ? tags.map(String) : String(tags ?? '').split(',');
  return list.map((t) => t.trim()).filter((t) => t !== '');
}

export const addTags: ActionHandler = async (input, ctx) => {
  const id = String(input.id ?? '');
  const tags = tagList(input.tags);
  const data = await shopifyGraphql(ctx, 'addTags', TAGS_ADD_MUTATION, { id, tags });
  const payload = data.tagsAdd as { node?: { id: string } | null; userErrors?: ShopifyUserError[] } | null;
  throwOnUserErrors('addTags', payload?.userErrors);
  return { id: payload?.node?.id ?? id, tags };
};

/** Webhook payloads carry numeric ids; GraphQL wants the global id. */
export function orderGid(id: unknown): string {
  const s = String(id ?? '').trim();
  return /^\d+$/.test(s) ? `gid://shopify/Order/${s}` : s;
}

export const getOrder: ActionHandler = async (input, ctx: ActionContext) => {
  const id = orderGid(input.id);
  const data = await shopifyGraphql(ctx, 'getOrder', ORDER_QUERY, { id });
  const order = data.order as GqlOrder | null | undefined;
  if (!order) {
    throw new StepError(`shopify getOrder: no order ${id}`, {
      code: 'E_NOT_FOUND',
      retryable: false,
      status: 404,
      hint: 'Check the order id mapped into the step (a gid://shopify/Order/<n> or the numeric id).',
    });
  }
  return orderOutput(order);
};
