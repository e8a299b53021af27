/**
 * The built-in connectors' manifests, as pure data: the validator loads this to check
 * `uses:` references, `with:` inputs and app triggers without loading any connector code.
 *
 * Input schemas are a JSON Schema 2020-12 subset that compiles under ajv strict mode (no
 * union `type` arrays, no formats, every `required` key declared) with
 * `additionalProperties: false`, so a mistyped mapping key is a validation error.
 */
import type { ConnectorManifest, JsonSchema } from '../core/model.js';

/** Shopify Admin API version used when neither SHOPIFY_API_VERSION nor apps.shopify.apiVersion is set. */
export const DEFAULT_SHOPIFY_API_VERSION = '2025-10';

const str = (description?: string): JsonSchema => (description ? { type: 'string', description } : { type: 'string' });
const nullable = (schema: JsonSchema): JsonSchema => ({ anyOf: [schema, { type: 'null' }] });
/** Shopify money amounts are Decimal: accept 74.99 or "74.99". */
const money: JsonSchema = {
  anyOf: [{ type: 'number' }, { type: 'string', pattern: '^-?[0-9]+(\\.[0-9]+)?$' }],
};
/** A global id such as gid://shopify/Order/1073459976. */
const gid = (resource: string): JsonSchema => ({
  type: 'string',
  pattern: '^gid://shopify/[A-Za-z]+/[0-9]+',
  description: `Global id, e.g. gid://shopify/${resource}/1073459976`,
});

/** MailingAddressInput (Admin GraphQL). */
const mailingAddress: JsonSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    firstName: str(),
    lastName: str(),
    company: str(),
    address1: str(),
    address2: str(),
    city: str(),
    provinceCode: str('ISO 3166-2 subdivision code without country, e.g. ON'),
    countryCode: str('ISO 3166-1 alpha-2, e.g. CA'),
    zip: str(),
    phone: str(),
  },
};

/**
 * A flat, mapping-friendly view of OrderCreateOrderInput (shopify.dev Admin GraphQL,
 * input-objects/OrderCreateOrderInput, 2024-10+); the runtime builds the nested GraphQL
 * input (priceSet.shopMoney, customer.toAssociate/toUpsert, options) from it.
 */
const createOrderInput: JsonSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['lineItems'],
  properties: {
    email: str('Customer email on the order'),
    phone: str('Customer phone, E.164 preferred'),
    currency: { type: 'string', pattern: '^[A-Z]{3}$', description: 'Shop currency code, e.g. EUR' },
    lineItems: {
      type: 'array',
      minItems: 1,
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['quantity'],
        properties: {
          title: str('Required for custom line items (no variantId)'),
          quantity: { type: 'integer', minimum: 1 },
          price: money,
          variantId: gid('ProductVariant'),
          sku: str(),
          requiresShipping: { type: 'boolean' },
          taxable: { type: 'boolean' },
          vendor: str(),
        },
      },
    },
    customerId: gid('Customer'),
    customer: {
      type: 'object',
      additionalProperties: false,
      description: 'Customer to create or update by email (OrderCreateCustomerInput.toUpsert)',
      properties: { email: str(), phone: str(), firstName: str(), lastName: str() },
    },
    shippingAddress: mailingAddress,
    billingAddress: mailingAddress,
    note: str(),
    tags: { type: 'array', items: { type: 'string' } },
    sourceIdentifier: str('Your own id for the order, e.g. the Acme order id'),
    poNumber: str(),
    financialStatus: {
      enum: ['AUTHORIZED', 'EXPIRED', 'PAID', 'PARTIALLY_PAID', 'PARTIALLY_REFUNDED', 'PENDING', 'REFUNDED', 'VOIDED'],
    },
    test: { type: 'boolean' },
    sendReceipt: { type: 'boolean', description: 'OrderCreateOptionsInput.sendReceipt, default false' },
    sendFulfillmentReceipt: { type: 'boolean' },
    inventoryBehaviour: { enum: ['BYPASS', 'DECREMENT_IGNORING_POLICY', 'DECREMENT_OBEYING_POLICY'] },
  },
};

/** Webhook payloads (REST shape, snake_case): loose, the fields workflows usually map. */
const orderPayload: JsonSchema = {
  type: 'object',
  required: ['id'],
  properties: {
    id: { type: 'integer' },
    admin_graphql_api_id: { type: 'string' },
    name: { type: 'string' },
    email: nullable({ type: 'string' }),
    phone: nullable({ type: 'string' }),
    currency: { type: 'string' },
    total_price: { type: 'string' },
    financial_status: nullable({ type: 'string' }),
    created_at: { type: 'string' },
    tags: { type: 'string' },
    line_items: { type: 'array', items: { type: 'object' } },
    customer: nullable({ type: 'object' }),
  },
};

const customerPayload: JsonSchema = {
  type: 'object',
  required: ['id'],
  properties: {
    id: { type: 'integer' },
    admin_graphql_api_id: { type: 'string' },
    email: nullable({ type: 'string' }),
    phone: nullable({ type: 'string' }),
    first_name: nullable({ type: 'string' }),
    last_name: nullable({ type: 'string' }),
    tags: { type: 'string' },
    created_at: { type: 'string' },
  },
};

/** The Order fields a polled `orders/updated` event carries (GraphQL names). */
const POLL_ORDERS_QUERY = `query AlloyPollOrders($first: Int!, $after: String, $query: String) {
  orders(first: $first, after: $after, query: $query, sortKey: UPDATED_AT) {
    nodes {
      id legacyResourceId name email phone createdAt updatedAt displayFinancialStatus tags note currencyCode
      customer { id }
      totalPriceSet { shopMoney { amount currencyCode } }
    }
    pageInfo { hasNextPage endCursor }
  }
}`;

const polledOrderPayload: JsonSchema = {
  type: 'object',
  required: ['id', 'updatedAt'],
  properties: {
    id: gid('Order'),
    legacyResourceId: { type: 'string' },
    name: { type: 'string' },
    email: nullable({ type: 'string' }),
    phone: nullable({ type: 'string' }),
    createdAt: { type: 'string' },
    updatedAt: { type: 'string' },
    displayFinancialStatus: nullable({ type: 'string' }),
    tags: { type: 'array', items: { type: 'string' } },
    note: nullable({ type: 'string' }),
    currencyCode: { type: 'string' },
    customer: nullable({ type: 'object' }),
    totalPriceSet: { type: 'object' },
  },
};

/** Shopify signs each delivery with the app's client secret (shopify.dev, webhooks/https). */
const shopifyVerify = {
  scheme: 'hmac-sha256',
  header: 'X-Shopify-Hmac-Sha256',
  encoding: 'base64',
  secret: '{{ connection.apiSecret }}',
} as const;

const shopifyTrigger = (description: string, payload: JsonSchema) => ({
  description,
  payload,
  verify: { ...shopifyVerify },
  dedupeHeader: 'X-Shopify-Webhook-Id',
  topicHeader: 'X-Shopify-Topic',
  accountHeader: 'X-Shopify-Shop-Domain',
});

export const shopifyManifest: ConnectorManifest = {
  apiVersion: 'alloy/v1',
  kind: 'Connector',
  name: 'shopify',
  description: 'Shopify Admin API (GraphQL) and webhooks',
  baseUrl: 'https://{{ connection.shop }}',
  auth: { type: 'header', header: 'X-Shopify-Access-Token', value: '{{ connection.accessToken }}' },
  connection: {
    shop: {
      description: 'Shop domain, e.g. acme.myshopify.com',
      env: 'SHOPIFY_SHOP',
      required: true,
    },
    accessToken: {
      description: 'Admin API access token (shpat_…)',
      env: 'SHOPIFY_ACCESS_TOKEN',
      secret: true,
      required: true,
    },
    apiSecret: {
      description: "The app's API secret key (client secret); signs and verifies webhooks",
      env: 'SHOPIFY_API_SECRET',
      secret: true,
      required: false,
    },
    apiVersion: {
      description: 'Admin API version (orderCreate exists from 2024-10)',
      env: 'SHOPIFY_API_VERSION',
      required: false,
      default: DEFAULT_SHOPIFY_API_VERSION,
    },
  },
  actions: {
    createOrder: {
      description: 'Create an order (GraphQL orderCreate); userErrors fail the step with their messages',
      input: createOrderInput,
      // orderCreate is not among the mutations Shopify de-duplicates with @idempotent(key:),
      // and the Admin API ignores an Idempotency-Key header: a second call creates a second order.
      idempotent: false,
    },
    addTags: {
      description: 'Add tags to an order, customer, product, draft order or article (GraphQL tagsAdd)',
      input: {
        type: 'object',
        additionalProperties: false,
        required: ['id', 'tags'],
        properties: {
          id: gid('Customer'),
          tags: {
            anyOf: [
              { type: 'array', minItems: 1, items: { type: 'string', minLength: 1 } },
              { type: 'string', minLength: 1, description: 'Comma-separated tags' },
            ],
          },
        },
      },
    },
    getOrder: {
      description: 'Fetch an order by id (GraphQL order(id:))',
      input: {
        type: 'object',
        additionalProperties: false,
        required: ['id'],
        properties: {
          id: {
            anyOf: [gid('Order'), { type: 'integer', minimum: 1 }, { type: 'string', pattern: '^[0-9]+$' }],
            description: 'gid://shopify/Order/<n> or the numeric id from a webhook',
          },
        },
      },
    },
  },
  triggers: {
    'orders/create': shopifyTrigger('An order was created', orderPayload),
    'orders/paid': shopifyTrigger("An order's payment was completed", orderPayload),
    'customers/create': shopifyTrigger('A customer was created', customerPayload),
    // Sent when the merchant uninstalls the app; `alloy serve` deactivates the shop's installations.
    // Its body is the Shop resource, whose myshopify_domain is the X-Shopify-Shop-Domain.
    'app/uninstalled': { ...shopifyTrigger('The app was uninstalled from the shop', { type: 'object' }), uninstalls: true, uninstallAccountField: 'myshopify_domain' },
    'orders/updated': {
      description: 'An order was created or changed (polled: GraphQL orders by updated_at; the event is the Order node)',
      payload: polledOrderPayload,
      poll: {
        every: '1m',
        // shopify.dev Admin GraphQL queries/orders: cursor pagination (first/after, pageInfo),
        // search syntax `updated_at:>=<time>`, sortKey UPDATED_AT so the cursor time only grows.
        request: {
          method: 'POST',
          path: '/admin/api/{{ connection.apiVersion }}/graphql.json',
          body: {
            query: POLL_ORDERS_QUERY,
            variables: { first: 250, after: '{{ page.cursor }}', query: "updated_at:>='{{ since }}'" },
          },
        },
        items: '{{ response.body.data.orders.nodes }}',
        id: 'id',
        updatedAt: 'updatedAt',
        paginate: { style: 'cursor', pageInfo: '{{ response.body.data.orders.pageInfo }}', pageSize: 250, maxPages: 40 },
      },
    },
  },
};

const stringMap: JsonSchema = { type: 'object', additionalProperties: { type: 'string' } };

export const httpManifest: ConnectorManifest = {
  apiVersion: 'alloy/v1',
  kind: 'Connector',
  name: 'http',
  description: 'A custom HTTP request to any API',
  baseUrl: '',
  auth: { type: 'none' },
  actions: {
    request: {
      description: 'Send one HTTP request; non-2xx responses fail the step with their status',
      input: {
        type: 'object',
        additionalProperties: false,
        required: ['url'],
        properties: {
          method: { enum: ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'] },
          url: { type: 'string', pattern: '^https?://' },
          headers: stringMap,
          query: {
            type: 'object',
            additionalProperties: { anyOf: [{ type: 'string' }, { type: 'number' }, { type: 'boolean' }] },
          },
          body: { description: 'A string is sent as is; any other value as JSON' },
          auth: {
            oneOf: [
              {
                type: 'object',
                additionalProperties: false,
                required: ['type', 'token'],
                properties: { type: { const: 'bearer' }, token: { type: 'string' } },
              },
              {
                type: 'object',
                additionalProperties: false,
                required: ['type', 'username', 'password'],
                properties: { type: { const: 'basic' }, username: { type: 'string' }, password: { type: 'string' } },
              },
              {
                type: 'object',
                additionalProperties: false,
                required: ['type', 'name', 'value'],
                properties: { type: { const: 'header' }, name: { type: 'string' }, value: { type: 'string' } },
              },
            ],
          },
        },
      },
    },
  },
};

export const builtinConnectorManifests: ConnectorManifest[] = [shopifyManifest, httpManifest];
