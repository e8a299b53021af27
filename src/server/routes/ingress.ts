/**
 * Ingress: custom events (`POST /v1/run/event`), Shopify webhooks (`POST /v1/webhooks/shopify`)
 * and custom webhooks (`POST /v1/webhooks/custom/:name`), the routes the ingress (tunnel)
 * listener serves too. A delivery is verified before anything is stored as work, committed to
 * the event log with its executions before the answer (202), and handed to the runner.
 */
import path from 'node:path';
import { createHash, createHmac } from 'node:crypto';
import { ensurePrivateDirAsync, writeFileSafe } from '../../core/safe-fs.js';
import { safeEqual, verifyShopifyWebhook } from '../../connectors/shopify/webhooks.js';
import { verifyStandardWebhook } from '../../engine/standard-webhooks.js';
import { compileTemplate, renderTemplate } from '../../core/expressions.js';
import type { WebhookTrigger } from '../../core/model.js';
import type { ExecutionRecord } from '../../engine/types.js';
import type { IncomingMessage } from 'node:http';
import type { EventRef, NewExecution } from '../event-log.js';
import { checkTriggerData, type RoutedWorkflow } from '../definitions.js';
import { newExecutionRecord } from '../executor.js';
import { HttpError, redactHeaders, requireJsonContentType, sendJson } from '../http.js';
import { newId } from '../ids.js';
import { lowerHeaders, type DevContext, type DevRoute } from './context.js';

const USER_ID = /^[A-Za-z0-9][A-Za-z0-9._@-]{0,127}$/;

export const ingressRoutes: DevRoute[] = [
  { method: 'POST', path: '/v1/run/event', name: 'event', ingress: true, handler: eventRoute },
  { method: 'POST', path: '/v1/webhooks/shopify', name: 'shopify', ingress: true, handler: shopifyRoute },
  { method: 'POST', path: '/v1/webhooks/custom/:name', name: 'webhook', ingress: true, handler: customWebhookRoute },
];

export interface IngestInput {
  source: string;
  name: string;
  req: IncomingMessage;
  body: Buffer;
  event: unknown;
  userId?: string;
  dedupeKey?: string;
  verification: string;
  routes: RoutedWorkflow[];
  /** Where the event sits in the body, so the log stores it once (see event-log.ts). */
  eventRef: EventRef;
  /** Headers to store instead of the request's (a fixture sent from the web UI). */
  headers?: Record<string, string>;
}

export async function ingest(ctx: DevContext, input: IngestInput): Promise<void> {
  const now = ctx.deps.clock();
  const deliveryId = newId('dl', now);
  const executions: NewExecution[] = input.routes.map((r) => {
    const id = newId('ex', now);
    return {
      id,
      workflow: r.key,
      userId: input.userId,
      record: newExecutionRecord({ id, workflow: r.key, version: ctx.deps.definitions().version, event: input.event, userId: input.userId, now }) as never,
      eventRef: input.eventRef,
    };
  });
  const headers = input.headers ?? redactHeaders(input.req.headers);
  const result = await ctx.deps.log.appendDelivery(
    {
      id: deliveryId,
      source: input.source,
      name: input.name,
      receivedAt: now,
      dedupeKey: input.dedupeKey,
      userId: input.userId,
      headers,
      body: input.body,
      verification: input.verification,
    },
    executions,
  );
  ctx.deps.emit({
    type: 'accepted',
    source: input.source,
    name: input.name,
    deliveryId: result.deliveryId,
    executionIds: result.executionIds,
    duplicate: result.duplicate,
  });
  if (result.duplicate) {
    sendJson(ctx.res, 200, {
      ok: true,
      duplicate: true,
      deliveryId: result.deliveryId,
      executions: result.executionIds.map((id) => ({ id })),
    });
    return;
  }
  // One execution per delivery (the usual case) is handed over as is; several share one
  // parsed event, so each reads its own copy from the log instead.
  const only = executions.length === 1 ? executions[0] : undefined;
  for (const id of result.executionIds) {
    ctx.deps.runner.push(id, only?.id === id ? { workflow: only.workflow, record: only.record as unknown as ExecutionRecord } : undefined);
  }
  sendJson(ctx.res, 202, {
    ok: true,
    deliveryId,
    executions: executions.map((e) => ({ id: e.id, workflow: e.workflow })),
    ...(executions.length === 0 ? { note: `no workflow is triggered by ${input.source === 'event' ? 'event' : input.source} ${input.name}` } : {}),
  });
  if (ctx.deps.recordDir) void recordFixture(ctx, ctx.deps.recordDir, input, headers, deliveryId, ctx.pathname);
}

async function recordFixture(ctx: DevContext, dir: string, input: IngestInput, headers: Record<string, string>, id: string, urlPath: string) {
  try {
    await ensurePrivateDirAsync(dir);
    const safe = `${input.source}-${input.name}`.replace(/[^A-Za-z0-9._-]+/g, '_');
    const fixture = { alloyFixture: 1, source: input.source, name: input.name, method: 'POST', path: urlPath, headers, body: input.body.toString('utf8') };
    await writeFileSafe(path.join(dir, `${id}-${safe}.json`), `${JSON.stringify(fixture, null, 2)}\n`);
  } catch (err) {
    ctx.deps.emit({ type: 'error', message: `could not record fixture: ${(err as Error).message}` });
  }
}

/**
 * Ingress from a tunnel (or another machine) must be signed with the ingress secret
 * (Standard Webhooks: webhook-id, webhook-timestamp, webhook-signature). Checked before the
 * body is parsed or any name is looked up, so an unsigned request learns nothing and stores nothing.
 */
function authenticateIngress(ctx: DevContext, body: Buffer): void {
  if (!ctx.untrusted) return;
  const secret = ctx.deps.ingressSecret;
  const refuse = (reason: string) =>
    new HttpError(401, 'E_INGRESS_SIGNATURE', `ingress through a tunnel must be signed: ${reason}`, 'sign with the ingress secret `alloy dev` prints (Standard Webhooks headers); `alloy emit --to <public url>` does it for you');
  if (!secret) throw refuse('this runtime has no ingress secret');
  const r = verifyStandardWebhook(secret, lowerHeaders(ctx.req), body.toString('utf8'), { nowSeconds: Math.floor(ctx.deps.clock() / 1000) });
  if (!r.ok) throw refuse(r.reason ?? 'bad signature');
}

async function eventRoute(ctx: DevContext): Promise<void> {
  requireJsonContentType(ctx.req);
  const body = await ctx.body();
  authenticateIngress(ctx, body);
  const payload = ctx.json(body);
  const problems: { path: string; message: string }[] = [];
  if (payload === null || typeof payload !== 'object' || Array.isArray(payload)) {
    problems.push({ path: '', message: 'must be an object {event, userId?, data}' });
  } else {
    const p = payload as Record<string, unknown>;
    if (typeof p.event !== 'string' || p.event === '') problems.push({ path: '/event', message: 'must be a non-empty string' });
    // The same rule as users/<id>.env file names (connectors/credentials.ts): no path tricks.
    if (p.userId !== undefined && (typeof p.userId !== 'string' || !USER_ID.test(p.userId) || p.userId.includes('..'))) {
      problems.push({ path: '/userId', message: 'must be 1-128 letters, digits, ".", "_", "-" or "@", starting with a letter or digit' });
    }
    for (const key of Object.keys(p)) {
      if (!['event', 'userId', 'data'].includes(key)) problems.push({ path: `/${key}`, message: 'is not allowed' });
    }
  }
  if (problems.length) {
    throw new HttpError(422, 'E_BAD_EVENT', 'the request is not an event', 'send {"event": "<name>", "userId"?: "<id>", "data": {...}}', {
      errors: problems,
    });
  }
  const { event, userId, data = {} } = payload as { event: string; userId?: string; data?: unknown };
  const routes = ctx.deps.definitions().byEvent.get(event) ?? [];
  const violations = checkTriggerData(routes, data);
  if (violations.length) {
    throw new HttpError(
      422,
      'E_EVENT_SCHEMA',
      `data does not match the trigger schema of ${[...new Set(violations.map((v) => v.workflow))].join(', ')}`,
      'fix the fields listed in details.errors (paths are JSON pointers into data)',
      { errors: violations.map((v) => ({ ...v, path: `/data${v.path}` })) },
    );
  }
  await ingest(ctx, { source: 'event', name: event, req: ctx.req, body, event: data, userId, verification: 'none', routes, eventRef: 'body.data' });
}

async function shopifyRoute(ctx: DevContext): Promise<void> {
  requireJsonContentType(ctx.req);
  const body = await ctx.body();
  const secret = ctx.deps.secrets.SHOPIFY_API_SECRET;
  if (!secret) {
    throw new HttpError(
      500,
      'E_MISSING_SECRET',
      'cannot verify Shopify webhooks without the app secret',
      "set SHOPIFY_API_SECRET (the app's API secret key) in the environment or .env and restart",
    );
  }
  const headers = lowerHeaders(ctx.req);
  const check = verifyShopifyWebhook({ rawBody: body, headers }, secret);
  // X-Shopify-Triggered-At is not covered by the HMAC, but a captured delivery replayed as
  // is carries its old time: refuse one older than the window (Shopify retries for 4 h at most).
  const triggeredAt = headers['x-shopify-triggered-at'];
  if (check.ok && triggeredAt !== undefined) {
    const at = Date.parse(triggeredAt);
    if (!Number.isFinite(at) || ctx.deps.clock() - at > ctx.deps.shopifyMaxAgeMs) {
      throw new HttpError(
        401,
        'E_STALE_DELIVERY',
        Number.isFinite(at) ? `X-Shopify-Triggered-At (${triggeredAt}) is older than ${Math.round(ctx.deps.shopifyMaxAgeMs / 60_000)} min: refused as a replay` : 'X-Shopify-Triggered-At is not a time',
        'Shopify retries a delivery for about 4 hours; a much older one is a replay. Resend a fresh one (alloy emit shopify:<topic>)',
      );
    }
  }
  if (!check.ok) {
    const status = check.status ?? 401;
    throw new HttpError(
      status,
      status === 400 ? 'E_MISSING_HEADER' : 'E_BAD_SIGNATURE',
      status === 400 ? `${check.reason ?? 'missing header'}: not a Shopify delivery` : `X-Shopify-Hmac-Sha256 does not match the body (${check.reason})`,
      status === 400
        ? 'Shopify sends X-Shopify-Topic, X-Shopify-Hmac-Sha256, X-Shopify-Shop-Domain, X-Shopify-Webhook-Id and X-Shopify-API-Version'
        : 'sign the exact bytes sent with SHOPIFY_API_SECRET (alloy emit shopify:<topic> does)',
    );
  }
  const event = ctx.json(body);
  const topic = check.topic!;
  await ingest(ctx, {
    source: 'shopify',
    name: topic,
    req: ctx.req,
    body,
    event,
    // From outside (a tunnel, another machine), on signed content only: X-Shopify-Webhook-Id
    // and X-Shopify-Event-Id are not covered by the HMAC, so a captured delivery resent with
    // new ids must still be recognised (a retry by Shopify carries the same bytes). On
    // loopback the sender is the developer: `alloy emit --fixture` resends a recorded delivery
    // with a fresh webhook id on purpose, and that id is the key.
    dedupeKey: ctx.untrusted ? shopifyDedupeKey(headers['x-shopify-shop-domain'] ?? '', topic, body) : `shopify:${check.deliveryId}`,
    verification: 'shopify-hmac',
    routes: ctx.deps.definitions().byAppEvent.get(`shopify:${topic}`) ?? [],
    eventRef: 'body',
  });
}

async function customWebhookRoute(ctx: DevContext): Promise<void> {
  const name = ctx.params.name;
  let body: Buffer | undefined;
  if (ctx.untrusted) {
    // Known and unknown names answer alike until the request is proven to be the developer's.
    requireJsonContentType(ctx.req);
    body = await ctx.body();
    try {
      authenticateIngress(ctx, body);
    } catch (err) {
      // A webhook with its own `verify` is authenticated by its sender's signature (a third
      // party cannot sign with the ingress secret); any failure answers as for unknown names.
      if (!(await passesOwnVerification(name, ctx, body))) throw err;
    }
  }
  const routes = ctx.deps.definitions().byWebhook.get(name);
  if (!routes || routes.length === 0) {
    const known = [...ctx.deps.definitions().byWebhook.keys()];
    // Names are listed to the developer on loopback only, never through a tunnel.
    const hint = ctx.untrusted ? 'check the webhook name' : known.length ? `known webhooks: ${known.join(', ')}` : 'add a workflow with `trigger: { webhook: <name> }`';
    throw new HttpError(404, 'E_UNKNOWN_WEBHOOK', ctx.untrusted ? 'no such webhook' : `no workflow has the webhook trigger "${name}"`, hint);
  }
  if (!body) {
    requireJsonContentType(ctx.req);
    body = await ctx.body();
  }
  const headers = lowerHeaders(ctx.req);
  let verification = 'none';
  let dedupeKey: string | undefined;
  for (const r of routes) {
    const verify = (r.workflow.def.trigger as WebhookTrigger).verify;
    if (!verify) continue;
    const secret = await resolveSecret(ctx, verify.secret, r.key);
    const result = verifyCustom(verify, secret, headers, body, ctx.deps.clock);
    if (!result.ok) {
      throw new HttpError(result.status, result.status === 400 ? 'E_MISSING_HEADER' : 'E_BAD_SIGNATURE', `${result.reason} (workflow ${r.key})`, result.hint);
    }
    verification = verify.scheme;
    if (verify.scheme === 'standard-webhooks') dedupeKey = `webhook:${name}:${headers['webhook-id']}`;
  }
  const event = ctx.json(body);
  const violations = checkTriggerData(routes, event);
  if (violations.length) {
    throw new HttpError(422, 'E_EVENT_SCHEMA', `the body does not match the trigger schema of ${[...new Set(violations.map((v) => v.workflow))].join(', ')}`, 'fix the fields listed in details.errors', {
      errors: violations,
    });
  }
  await ingest(ctx, { source: `webhook:${name}`, name, req: ctx.req, body, event, dedupeKey, verification, routes, eventRef: 'body' });
}

/** True when `name` is a webhook whose every workflow has `verify` and the request passes all of them. */
async function passesOwnVerification(name: string, ctx: DevContext, body: Buffer): Promise<boolean> {
  const routes = ctx.deps.definitions().byWebhook.get(name);
  if (!routes?.length) return false;
  const headers = lowerHeaders(ctx.req);
  for (const r of routes) {
    const verify = (r.workflow.def.trigger as WebhookTrigger).verify;
    if (!verify) return false;
    try {
      if (!verifyCustom(verify, await resolveSecret(ctx, verify.secret, r.key), headers, body, ctx.deps.clock).ok) return false;
    } catch {
      return false;
    }
  }
  return true;
}

async function resolveSecret(ctx: DevContext, template: string, workflow: string): Promise<string> {
  let value: unknown;
  try {
    value = await renderTemplate(compileTemplate(template), { secrets: ctx.deps.secrets, env: ctx.deps.secrets });
  } catch (err) {
    throw new HttpError(500, 'E_WEBHOOK_SECRET', `cannot resolve the webhook secret of ${workflow}: ${(err as Error).message}`);
  }
  if (typeof value !== 'string' || value === '') {
    throw new HttpError(500, 'E_MISSING_SECRET', `the webhook secret of ${workflow} is not set`, `set the variable named in its trigger.verify.secret (${template}) in the environment or .env`);
  }
  return value;
}

/** Default window for X-Shopify-Triggered-At: well above Shopify's retry span (about 4 hours). */
export const DEFAULT_SHOPIFY_MAX_AGE_MS = 24 * 60 * 60 * 1000;

/** De-duplication key of a Shopify delivery: what the HMAC covers (the body), for its shop and topic. */
export function shopifyDedupeKey(shop: string, topic: string, body: Buffer): string {
  return `shopify:${shop}:${topic}:${createHash('sha256').update(body).digest('hex')}`;
}

interface CustomCheck {
  ok: boolean;
  status: number;
  reason?: string;
  hint?: string;
}

/** Verifies a custom webhook per its trigger's `verify` (hmac-sha256 over the raw body, or Standard Webhooks). */
function verifyCustom(
  verify: NonNullable<WebhookTrigger['verify']>,
  secret: string,
  headers: Record<string, string | undefined>,
  body: Buffer,
  clock: () => number,
): CustomCheck {
  if (verify.scheme === 'standard-webhooks') {
    for (const h of ['webhook-id', 'webhook-timestamp', 'webhook-signature']) {
      if (!headers[h]) return { ok: false, status: 400, reason: `missing ${h} header`, hint: 'Standard Webhooks senders send webhook-id, webhook-timestamp and webhook-signature' };
    }
    const r = verifyStandardWebhook(secret, headers, body.toString('utf8'), { nowSeconds: Math.floor(clock() / 1000) });
    return r.ok ? { ok: true, status: 200 } : { ok: false, status: 401, reason: r.reason, hint: 'sign with the secret named in trigger.verify.secret' };
  }
  const headerName = (verify.header ?? 'x-signature').toLowerCase();
  const given = headers[headerName];
  if (!given) return { ok: false, status: 400, reason: `missing ${verify.header ?? 'X-Signature'} header` };
  const encoding = verify.encoding ?? 'hex';
  const expected = createHmac('sha256', secret).update(body).digest(encoding);
  // Accept an optional `sha256=` prefix (GitHub-style senders).
  const value = given.startsWith('sha256=') ? given.slice(7) : given;
  return safeEqual(value.trim(), expected)
    ? { ok: true, status: 200 }
    : { ok: false, status: 401, reason: `${verify.header ?? 'X-Signature'} does not match the body`, hint: 'sign the exact bytes sent with the secret named in trigger.verify.secret' };
}

