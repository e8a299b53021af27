/**
 * Building what `alloy emit` sends: custom events, real Shopify deliveries (every header
 * Shopify sends, the HMAC over the exact bytes sent, a fresh webhook id each time), and
 * recorded fixtures re-signed with the local secret.
 *
 * Shopify delivery headers, per shopify.dev/docs/apps/build/webhooks/subscribe/https:
 * X-Shopify-Topic, X-Shopify-Hmac-Sha256, X-Shopify-Shop-Domain, X-Shopify-API-Version,
 * X-Shopify-Webhook-Id, X-Shopify-Event-Id, X-Shopify-Triggered-At.
 */
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { UsageError } from '../errors.js';
import { shopifyWebhookHeaders } from '../connectors/shopify/webhooks.js';
import { standardWebhookHeaders } from '../engine/standard-webhooks.js';
import { readDataFile } from '../core/data-file.js';
import { JSON_MAX_DEPTH, jsonTooDeep } from '../core/json-depth.js';

export interface DataArg {
  /** The exact bytes to send (a file's bytes are sent unchanged, so signatures cover them). */
  bytes: Buffer;
  value: unknown;
}

/** `-d '{"a":1}'`, `-d @file.json` (relative to cwd), or `-d @-` (stdin). */
/**
 * `maxDepth`: the deepest nesting the receiver will take of these bytes as sent (a custom
 * event's data is wrapped in `{event, data}`, one level more: pass JSON_MAX_DEPTH - 1).
 */
export async function readDataArg(arg: string, cwd: string, stdin?: NodeJS.ReadableStream, maxDepth = JSON_MAX_DEPTH): Promise<DataArg> {
  let bytes: Buffer;
  let where: string;
  if (arg === '@-') {
    if (!stdin) throw new UsageError('-d @- needs data on standard input', { hint: 'pipe JSON in, e.g. `cat event.json | alloy emit <event> -d @-`' });
    const chunks: Buffer[] = [];
    for await (const chunk of stdin) chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as string));
    bytes = Buffer.concat(chunks);
    where = 'standard input';
  } else if (arg.startsWith('@')) {
    const file = path.resolve(cwd, arg.slice(1));
    try {
      bytes = await readDataFile(file);
    } catch (err) {
      throw new UsageError(`cannot read ${arg.slice(1)}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, {
        code: 'E_DATA_FILE',
        cause: err,
        hint: 'pass -d @<path to a JSON file>, relative to the current folder',
      });
    }
    where = arg.slice(1);
  } else {
    bytes = Buffer.from(arg, 'utf8');
    where = '-d';
  }
  const text = bytes.toString('utf8');
  // alloy dev refuses such an event anyway (400 E_JSON_TOO_DEEP); sending it overflowed the
  // stack here first ("internal error Maximum call stack size exceeded").
  if (jsonTooDeep(text, maxDepth)) {
    throw new UsageError(`${where} nests deeper than ${maxDepth} levels`, { code: 'E_JSON_TOO_DEEP', hint: `flatten the data: alloy accepts at most ${maxDepth} levels of objects and arrays here` });
  }
  try {
    return { bytes, value: JSON.parse(text) };
  } catch (err) {
    throw new UsageError(`${where} is not valid JSON: ${(err as Error).message}`, {
      code: 'E_DATA_JSON',
      hint: `e.g. -d '{"email":"ada@example.com"}' or -d @event.json`,
    });
  }
}

export interface ShopifyDeliveryOptions {
  topic: string;
  body: Buffer;
  secret: string;
  shop: string;
  apiVersion: string;
  now?: Date;
}

/** A Shopify delivery, signed over `body` exactly; a fresh webhook id and event id each call. */
export function buildShopifyDelivery(options: ShopifyDeliveryOptions): { path: string; headers: Record<string, string>; body: Buffer } {
  const headers = shopifyWebhookHeaders({
    topic: options.topic,
    shop: options.shop,
    apiVersion: options.apiVersion,
    body: options.body,
    secret: options.secret,
    webhookId: randomUUID(),
    eventId: randomUUID(),
    triggeredAt: (options.now ?? new Date()).toISOString(),
  });
  return { path: '/v1/webhooks/shopify', headers, body: options.body };
}

/** Shopify's delivery headers (topic, shop, API version) hold visible ASCII only. */
const SHOPIFY_HEADER_VALUE = /^[\x21-\x7e]{1,255}$/;
/** Another header value (a content type): visible ASCII or Latin-1 (as recorded), with spaces or tabs inside. */
const HEADER_VALUE = /^[\x21-\x7e\x80-\xff](?:[\t\x20-\x7e\x80-\xff]{0,1022}[\x21-\x7e\x80-\xff])?$/;

/**
 * Throws unless `value` can go in a header as it is: a control character failed the send as
 * "cannot reach the alloy runtime" (exit 1), and a non-ASCII one was sent as another byte (a
 * shop no store has). `what` names where the value came from; E_USAGE unless `code` says.
 */
export function checkHeaderValue(value: unknown, what: string, options: { shopify?: boolean; code?: string; hint: string }): asserts value is string {
  if (typeof value === 'string' && (options.shopify ? SHOPIFY_HEADER_VALUE : HEADER_VALUE).test(value)) return;
  const shown = typeof value === 'string' ? JSON.stringify(value.slice(0, 200)) : `(${value === null ? 'null' : typeof value})`;
  const rule = options.shopify ? "Shopify's headers hold visible ASCII only" : 'a header holds text without control characters';
  throw new UsageError(`${what} ${shown} cannot be sent: ${rule}`, { code: options.code, hint: options.hint });
}

/** A delivery saved by `alloy dev --record`. */
export interface DeliveryFixture {
  alloyFixture: 1;
  source: string;
  name: string;
  method: 'POST';
  path: string;
  headers: Record<string, string>;
  body: string;
}

/**
 * The runtime's ingress routes a fixture may name: a path only, never a scheme or host.
 * `emit --fixture` signs with the local secrets, so a fixture naming another server
 * would make alloy a signing oracle for whoever wrote the fixture.
 * Webhook names follow schemas/workflow.schema.json ($defs/name), a little more leniently.
 */
const FIXTURE_PATH = /^\/v1\/(?:run\/event|webhooks\/shopify|webhooks\/custom\/[A-Za-z0-9][A-Za-z0-9._-]{0,127})$/;

/** Throws a UsageError naming the fixture unless `urlPath` is one of the runtime's ingress routes. */
export function checkFixturePath(urlPath: string, shownAs: string): void {
  if (!FIXTURE_PATH.test(urlPath)) {
    throw new UsageError(`the fixture ${shownAs} has path ${JSON.stringify(urlPath.slice(0, 200))}, which is not a runtime ingress route`, {
      code: 'E_FIXTURE_PATH',
      hint: 'a fixture\'s "path" must be /v1/run/event, /v1/webhooks/shopify or /v1/webhooks/custom/<name> (no scheme or host: it is sent to the local runtime, or --to)',
    });
  }
}

/** Reads a recorded delivery; `shownAs` is how errors name the file (what the user typed). */
export async function readFixture(file: string, shownAs = file): Promise<DeliveryFixture> {
  let fx: DeliveryFixture;
  try {
    fx = JSON.parse((await readDataFile(file)).toString('utf8')) as DeliveryFixture;
  } catch (err) {
    throw new UsageError(`cannot read the fixture ${shownAs}: ${(err as Error).message}`, { code: 'E_FIXTURE', hint: 'pass a file written by `alloy dev --record`' });
  }
  if (fx?.alloyFixture !== 1 || typeof fx.path !== 'string' || typeof fx.body !== 'string' || typeof fx.headers !== 'object' || fx.headers === null) {
    throw new UsageError(`${shownAs} is not a recorded delivery`, { code: 'E_FIXTURE', hint: 'pass a file written by `alloy dev --record` (under .alloy/recordings/)' });
  }
  checkFixturePath(fx.path, shownAs);
  fixtureHeaders(fx, shownAs);
  return fx;
}

/**
 * The header values a resend copies from the fixture, each checked (naming the fixture):
 * the file is anyone's, and was sent as it stood.
 */
function fixtureHeaders(fx: DeliveryFixture, shownAs: string): { shopify: { topic: string; shop: string; apiVersion: string } } | { contentType: string } {
  const check = (value: unknown, header: string, shopify: boolean) =>
    checkHeaderValue(value, `the fixture ${shownAs} has ${header}`, { shopify, code: 'E_FIXTURE', hint: 'fix the value in the fixture, or record the delivery again with `alloy dev --record`' });
  if (fx.source === 'shopify') {
    const shopify = { topic: fx.headers['x-shopify-topic'] ?? fx.name, shop: fx.headers['x-shopify-shop-domain'] ?? 'alloy-dev.myshopify.com', apiVersion: fx.headers['x-shopify-api-version'] ?? '2025-10' };
    check(shopify.topic, 'x-shopify-topic', true);
    check(shopify.shop, 'x-shopify-shop-domain', true);
    check(shopify.apiVersion, 'x-shopify-api-version', true);
    return { shopify };
  }
  // A recorded delivery keeps its headers as received: an empty content-type is none.
  const contentType = fx.headers['content-type'] || 'application/json';
  check(contentType, 'content-type', false);
  return { contentType };
}

export interface ResignSecrets {
  shopifyApiSecret?: string;
  /** Secrets for custom webhooks, by variable name. */
  lookup(name: string): string | undefined;
  /** The custom webhook's verify settings, when its workflow is known. */
  webhookVerify?: { scheme: string; header?: string; encoding?: 'hex' | 'base64'; secretName?: string };
}

/**
 * The request to resend a fixture: same body and topic, new delivery ids, signatures
 * recomputed with the local secrets (a recorded signature may come from another secret).
 */
export async function resignFixture(fx: DeliveryFixture, secrets: ResignSecrets, now = new Date()): Promise<{ path: string; headers: Record<string, string>; body: Buffer }> {
  // Checked again here for callers that build the fixture themselves: nothing is signed for another host.
  checkFixturePath(fx.path, fx.name ? `for ${fx.source} ${fx.name}` : '');
  const copied = fixtureHeaders(fx, fx.name ? `for ${fx.source} ${fx.name}` : '');
  const body = Buffer.from(fx.body, 'utf8');
  if ('shopify' in copied) {
    if (!secrets.shopifyApiSecret) throw missingShopifySecret();
    return buildShopifyDelivery({ ...copied.shopify, body, secret: secrets.shopifyApiSecret, now });
  }
  const headers: Record<string, string> = { 'content-type': copied.contentType };
  const verify = secrets.webhookVerify;
  if (fx.source.startsWith('webhook:') && verify?.secretName) {
    const secret = secrets.lookup(verify.secretName);
    if (!secret) throw new UsageError(`${verify.secretName} is not set: cannot re-sign the fixture`, { code: 'E_MISSING_SECRET', hint: `set ${verify.secretName} in the environment or .env` });
    if (verify.scheme === 'standard-webhooks') {
      Object.assign(headers, standardWebhookHeaders(secret, `msg_${randomUUID().replace(/-/g, '')}`, Math.floor(now.getTime() / 1000), fx.body));
    } else {
      const { createHmac } = await import('node:crypto');
      headers[(verify.header ?? 'x-signature').toLowerCase()] = createHmac('sha256', secret).update(body).digest(verify.encoding ?? 'hex');
    }
  }
  return { path: fx.path, headers, body };
}

export function missingShopifySecret(): UsageError {
  return new UsageError('SHOPIFY_API_SECRET is not set: cannot sign the Shopify delivery', {
    code: 'E_MISSING_SECRET',
    hint: "set SHOPIFY_API_SECRET (the app's API secret key, the same one `alloy dev` verifies with) in the environment or .env",
  });
}
