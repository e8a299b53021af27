/**
 * Shopify Admin GraphQL calls: endpoint, auth header, error mapping and throttling.
 *
 * Rate limits (shopify.dev/docs/api/usage/rate-limits): the GraphQL Admin API answers a
 * throttled query with HTTP 200 and `errors[].extensions.code = "THROTTLED"`, reporting
 * `extensions.cost.{requestedQueryCost, throttleStatus.{currentlyAvailable, restoreRate}}`;
 * the bucket refills at `restoreRate` points per second, so the wait is
 * ceil((requested - available) / restoreRate) seconds. HTTP 429 (REST, or a burst at the
 * edge) carries Retry-After.
 */
import { MissingSecretError, StepError } from '../../errors.js';
import { DEFAULT_SHOPIFY_API_VERSION } from '../builtin-manifests.js';
import { parseJsonBody, sendActionRequest } from '../http-client.js';
import type { ActionContext } from '../types.js';

/** How many THROTTLED answers one call waits out before handing the retry to the engine. */
export const MAX_THROTTLE_WAITS = 3;

export interface ShopifyEndpoint {
  url: string;
  apiVersion: string;
}

/**
 * `<base>/admin/api/<version>/graphql.json`; base is `apps.shopify.baseUrl` (tests, a fake)
 * or `https://<shop>`. Version: apps.shopify.apiVersion, else the connection's
 * (SHOPIFY_API_VERSION), else the default.
 */
export function shopifyGraphqlEndpoint(ctx: Pick<ActionContext, 'connection' | 'settings'>): ShopifyEndpoint {
  const apiVersion = ctx.settings.apiVersion || ctx.connection.apiVersion || DEFAULT_SHOPIFY_API_VERSION;
  let base = ctx.settings.baseUrl;
  if (!base) {
    const shop = ctx.connection.shop?.trim();
    if (!shop) {
      throw new MissingSecretError(
        'shopify connection has no shop domain',
        'Set SHOPIFY_SHOP (e.g. acme.myshopify.com) in the environment or .env.',
      );
    }
    // "acme" is short for acme.myshopify.com, as in the Shopify CLI's --store flag.
    const host = /^https?:\/\//.test(shop) ? shop : `https://${shop.includes('.') ? shop : `${shop}.myshopify.com`}`;
    base = host;
  }
  return { url: `${base.replace(/\/+$/, '')}/admin/api/${apiVersion}/graphql.json`, apiVersion };
}

interface GraphqlError {
  message?: string;
  extensions?: { code?: string; [k: string]: unknown };
}
interface GraphqlBody {
  data?: Record<string, unknown> | null;
  errors?: GraphqlError[] | string;
  extensions?: {
    cost?: {
      requestedQueryCost?: number;
      actualQueryCost?: number | null;
      throttleStatus?: { maximumAvailable?: number; currentlyAvailable?: number; restoreRate?: number };
    };
  };
}

/** Seconds to wait before a THROTTLED query can run again, from the reported cost. */
export function throttleWaitMs(body: GraphqlBody): number {
  const cost = body.extensions?.cost;
  const requested = cost?.requestedQueryCost;
  const available = cost?.throttleStatus?.currentlyAvailable;
  const restoreRate = cost?.throttleStatus?.restoreRate;
  if (typeof requested !== 'number' || typeof available !== 'number' || !restoreRate || restoreRate <= 0) {
    return 1000; // no usable report: one second refills at least 50 points on every plan
  }
  const seconds = Math.ceil(Math.max(0, requested - available) / restoreRate);
  return Math.max(1, seconds) * 1000;
}

/** Runs one GraphQL operation and returns `data`; throws StepError for everything else. */
export async function shopifyGraphql(
  ctx: ActionContext,
  operation: string,
  query: string,
  variables: Record<string, unknown>,
): Promise<Record<string, unknown>> {
  const { url } = shopifyGraphqlEndpoint(ctx);
  const token = ctx.connection.accessToken;
  if (!token) {
    throw new MissingSecretError(
      'shopify connection has no access token',
      'Set SHOPIFY_ACCESS_TOKEN (the Admin API access token) in the environment or .env.',
    );
  }
  const label = `shopify ${operation}`;
  const body = JSON.stringify({ query, variables });
  for (let wait = 0; ; wait++) {
    const res = await sendActionRequest(
      ctx,
      {
        method: 'POST',
        url,
        headers: { 'Content-Type': 'application/json', Accept: 'application/json', 'X-Shopify-Access-Token': token },
        body,
      },
      label,
    ).catch((err: unknown) => {
      if (err instanceof StepError && (err.status === 401 || err.status === 403)) {
        throw new StepError(`${label}: Shopify rejected the access token (HTTP ${err.status})`, {
          code: 'E_UNAUTHORIZED',
          retryable: false,
          status: err.status,
          hint: 'Check SHOPIFY_ACCESS_TOKEN and the app’s access scopes for this shop.',
          cause: err,
        });
      }
      throw err;
    });
    const parsed = parseJsonBody(res, label) as GraphqlBody | undefined;
    const errors = Array.isArray(parsed?.errors) ? parsed.errors : [];
    const throttled = errors.some((e) => e?.extensions?.code === 'THROTTLED');
    if (throttled) {
      const waitMs = throttleWaitMs(parsed ?? {});
      if (wait < MAX_THROTTLE_WAITS) {
        ctx.logger.debug('shopify throttled; waiting for the bucket to refill', { operation, waitMs });
        await ctx.sleep(waitMs, ctx.signal);
        continue;
      }
      throw new StepError(`${label} was throttled by Shopify ${wait + 1} times in a row`, {
        code: 'E_THROTTLED',
        retryable: true,
        retryAfterMs: waitMs,
        hint: 'Lower the step concurrency or add retry attempts; Shopify refills the query budget every second.',
      });
    }
    if (errors.length > 0 || typeof parsed?.errors === 'string') {
      const messages =
        typeof parsed?.errors === 'string'
          ? [parsed.errors]
          : errors.map((e) => `${e.message ?? 'error'}${e.extensions?.code ? ` (${e.extensions.code})` : ''}`);
      const accessDenied = errors.some((e) => e?.extensions?.code === 'ACCESS_DENIED');
      throw new StepError(`${label} failed: ${messages.join('; ')}`, {
        code: accessDenied ? 'E_UNAUTHORIZED' : 'E_SHOPIFY_GRAPHQL',
        retryable: errors.some((e) => e?.extensions?.code === 'INTERNAL_SERVER_ERROR'),
        hint: accessDenied ? 'Grant the app the access scope this action needs (e.g. write_orders).' : undefined,
        details: { errors: messages },
      });
    }
    if (!parsed?.data) {
      throw new StepError(`${label} returned no data`, { code: 'E_BAD_RESPONSE', retryable: false, status: res.status });
    }
    return parsed.data;
  }
}

export interface ShopifyUserError {
  field?: string[] | null;
  message: string;
  code?: string | null;
}

/** userErrors mean Shopify refused the input: retrying the same input cannot help. */
export function throwOnUserErrors(operation: string, userErrors: ShopifyUserError[] | undefined): void {
  if (!userErrors || userErrors.length === 0) return;
  const lines = userErrors.map((e) => `${e.field?.length ? `${e.field.join('.')}: ` : ''}${e.message}`);
  throw new StepError(
    `shopify ${operation} returned ${userErrors.length} user error${userErrors.length === 1 ? '' : 's'}: ${lines.join('; ')}`,
    {
      code: 'E_SHOPIFY_USER_ERRORS',
      retryable: false,
      hint: 'Fix the step input mapping: the messages name the fields Shopify rejected.',
      details: { userErrors: userErrors.map((e) => ({ field: e.field ?? null, message: e.message, code: e.code ?? null })) },
    },
  );
}
