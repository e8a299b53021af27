/**
 * `alloy emit <event> [-d json|@file|@-] [--user id]`: send a custom event to the running
 * runtime (found via .alloy/dev.json, or --to). `alloy emit shopify:<topic>` sends a real,
 * signed Shopify delivery instead; `alloy emit --fixture <file>` resends a recorded one,
 * re-signed. `--wait` follows the executions: exit 0 when all succeed (or are filtered), 1 otherwise.
 */
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { count } from '../render/count.js';
import type { CliContext } from '../context.js';
import { AlloyError, UsageError } from '../../errors.js';
import { findConfig } from '../../core/find-config.js';
import { findRuntime, errorFromResponse, type AcceptedResponse, type ApiResponse, type RuntimeClient } from '../../server/client.js';
import { buildShopifyDelivery, checkHeaderValue, missingShopifySecret, readDataArg, readFixture, resignFixture } from '../../server/emit.js';
import { JSON_MAX_DEPTH } from '../../core/json-depth.js';
import { loadProjectEnv, readDevInfo } from '../../server/dev-state.js';
import { recordLine, stepLine, waitingStatus } from '../../server/terminal-format.js';
import { connectionEnvName } from '../../connectors/credentials.js';
import { DEFAULT_SHOPIFY_API_VERSION, shopifyManifest } from '../../connectors/builtin-manifests.js';
import type { ExecutionRecord } from '../../engine/types.js';

export default async function emit(ctx: CliContext, args: string[], opts: Record<string, any>): Promise<number> {
  const [eventArg] = args;
  if (!eventArg && !opts.fixture) {
    throw new UsageError('name the event to send', { hint: 'e.g. `alloy emit acme.order.requested -d @event.json`, `alloy emit shopify:orders/create`, or `alloy emit --fixture <file>`' });
  }
  if (eventArg && opts.fixture) throw new UsageError('pass an event or --fixture, not both', { hint: 'the fixture already names its event' });
  const timeoutMs = parseTimeout(opts.timeout ?? '30s');
  const root = (await findConfig(ctx.cwd))?.root ?? ctx.cwd;
  const client = (await findRuntime(root, opts.to))!;
  const env = await loadProjectEnv(root, ctx.env);
  // While `alloy dev --fake shopify` runs, sign and send as the fake shop it expects.
  if (!opts.to && readDevInfo(root)?.fakes?.includes('shopify')) Object.assign(env, await (await import('../../server/dev-fakes.js')).fakeShopifyEmitEnv(root));

  let res: ApiResponse<AcceptedResponse>;
  if (opts.fixture) {
    const fx = await readFixture(path.resolve(ctx.cwd, opts.fixture), opts.fixture);
    const req = await resignFixture(fx, { shopifyApiSecret: env.SHOPIFY_API_SECRET, lookup: (n) => env[n], webhookVerify: await webhookVerifyFor(ctx, root, fx.source) });
    res = await client.send('POST', req.path.replace(/^\//, ''), { body: req.body, headers: req.headers });
  } else if (eventArg.includes(':')) {
    const [app, topic] = [eventArg.slice(0, eventArg.indexOf(':')), eventArg.slice(eventArg.indexOf(':') + 1)];
    if (app !== 'shopify') {
      throw new UsageError(`cannot emit ${app} webhooks yet`, { code: 'E_EMIT_APP', hint: 'apps alloy can sign for: shopify (e.g. `alloy emit shopify:orders/create`)' });
    }
    if (!topic) throw new UsageError('name the Shopify topic', { hint: 'e.g. `alloy emit shopify:orders/create -d @order.json`' });
    if (opts.user) ctx.note(ctx.errColor.yellow('--user is ignored for app webhooks (the shop sends them)'));
    const secret = env.SHOPIFY_API_SECRET;
    if (!secret) throw missingShopifySecret();
    const data = opts.data ? await readDataArg(opts.data, ctx.cwd, ctx.io.stdin) : await defaultTopicFixture(root, topic, ctx);
    const shop = opts.shop ?? env[connectionEnvName(shopifyManifest, 'shop')] ?? 'alloy-dev.myshopify.com';
    const apiVersion = opts.apiVersion ?? env.SHOPIFY_API_VERSION ?? DEFAULT_SHOPIFY_API_VERSION;
    for (const [what, value] of [['the topic', topic], ['--shop (or SHOPIFY_SHOP)', shop], ['--api-version (or SHOPIFY_API_VERSION)', apiVersion]] as const) {
      checkHeaderValue(value, what, { shopify: true, hint: 'e.g. alloy emit shopify:orders/create --shop acme.myshopify.com --api-version 2025-01' });
    }
    const req = buildShopifyDelivery({ topic, body: data.bytes, secret, shop, apiVersion, now: ctx.now() });
    res = await client.send('POST', 'v1/webhooks/shopify', { body: req.body, headers: req.headers });
  } else {
    // The data goes inside {event, data}: one level of the receiver's limit is the envelope's.
    const data = opts.data ? (await readDataArg(opts.data, ctx.cwd, ctx.io.stdin, JSON_MAX_DEPTH - 1)).value : {};
    res = await client.emitEvent(eventArg, data, opts.user);
  }

  if (res.status !== 200 && res.status !== 202) {
    const err = errorFromResponse(res);
    const errors = (err.details?.errors ?? []) as { workflow?: string; path?: string; message?: string }[];
    if (!ctx.json) for (const e of errors) ctx.note(`  ${ctx.errColor.red(e.path || '/')} ${e.message}${e.workflow ? ctx.errColor.dim(`  (${e.workflow})`) : ''}`);
    throw err;
  }
  const body = res.body;
  // `--to <relay URL>`: the relay answers 202 `{ queued: true }` while the developer is offline.
  const queued = body as { queued?: unknown; id?: unknown; name?: unknown; position?: unknown } | undefined;
  if (res.status === 202 && queued && typeof queued === 'object' && queued.queued === true) {
    if (ctx.json) ctx.printJson({ ok: true, queued: true, id: queued.id, name: queued.name, position: queued.position });
    else ctx.out(`queued by the relay for ${String(queued.name ?? 'the developer')}, who is offline (position ${String(queued.position ?? '?')}): it runs when their alloy dev --tunnel reconnects`);
    if (opts.wait) ctx.note(ctx.errColor.yellow('--wait: nothing to wait for until the developer reconnects'));
    return 0;
  }
  // Another server on that port (or a proxy page) can answer 2xx with something else.
  if (!body || typeof body !== 'object' || !Array.isArray((body as { executions?: unknown }).executions)) {
    throw new AlloyError('E_NOT_ALLOY', `the server at ${client.baseUrl} answered ${res.status} but not as an alloy runtime`, {
      hint: 'check that `alloy dev` is running there, or pass the right --to <url>',
    });
  }
  if (!opts.wait) {
    if (ctx.json) ctx.printJson(body);
    else printAccepted(ctx, body);
    return 0;
  }

  if (!ctx.json) printAccepted(ctx, body);
  const spinner = await ctx.spinner(`waiting for ${count(body.executions.length, 'execution')}`);
  const results: ExecutionRecord[] = [];
  let timedOut = false;
  try {
    for (const e of body.executions) {
      const ex = await client.waitForExecution(e.id, timeoutMs, waitProgress(ctx, spinner));
      if (!['succeeded', 'failed', 'filtered'].includes(ex.status)) timedOut = true;
      results.push(ex.record);
    }
  } finally {
    spinner.stop();
  }
  if (ctx.json) {
    ctx.printJson({ ...body, results: results.map((r) => ({ id: r.id, workflow: r.workflow, status: r.status, durationMs: r.durationMs, error: r.error, reason: r.reason, steps: r.steps })) });
  } else {
    for (const r of results) {
      ctx.out(recordLine(ctx.color, r));
      if (ctx.verbose || r.status === 'failed') for (const s of Object.values(r.steps ?? {})) ctx.out(stepLine(ctx.color, s));
    }
  }
  if (timedOut) {
    throw new AlloyError('E_WAIT_TIMEOUT', `the execution did not finish within ${opts.timeout ?? '30s'}`, {
      hint: 'raise --timeout, or follow it with `alloy logs -f`',
    });
  }
  return results.every((r) => r.status === 'succeeded' || r.status === 'filtered') ? 0 : 1;
}

/**
 * `--wait`'s status line (what the execution still waits for, e.g. a retry in 4 s): on a TTY
 * in the spinner, else with -v as a note; on stderr only, once per change. Undefined when
 * nothing would show it, so the wait long-polls as before.
 */
export function waitProgress(ctx: CliContext, spinner: { update(text: string): void }) {
  const tty = Boolean(ctx.io.stderr.isTTY) && !ctx.json;
  if (!tty && !ctx.verbose) return undefined;
  let last: string | undefined;
  return (ex: { record: ExecutionRecord }) => {
    const status = waitingStatus(ex.record, Date.now());
    if (tty && status) spinner.update(status.text);
    if (!status || status.key === last) return;
    last = status.key;
    if (!tty) ctx.note(ctx.errColor.dim(status.text));
  };
}

/** For a recorded custom webhook: its trigger's verify settings, so the resend is signed the same way. */
async function webhookVerifyFor(ctx: CliContext, root: string, source: string) {
  if (!source.startsWith('webhook:')) return undefined;
  const name = source.slice('webhook:'.length);
  const { loadProjectWithDiagnostics } = await import('../load-project.js');
  const project = await loadProjectWithDiagnostics({ ...ctx, cwd: root });
  for (const w of project.integrations.flatMap((i) => i.workflows)) {
    const t = w.def.trigger as { webhook?: string; verify?: { scheme: string; header?: string; encoding?: 'hex' | 'base64'; secret: string } };
    if (t.webhook === name && t.verify) {
      const secretName = /(?:secrets|env)\.([A-Za-z_][A-Za-z0-9_]*)/.exec(t.verify.secret)?.[1];
      return { scheme: t.verify.scheme, header: t.verify.header, encoding: t.verify.encoding, secretName };
    }
  }
  return undefined;
}

function printAccepted(ctx: CliContext, body: AcceptedResponse): void {
  const c = ctx.color;
  if (body.duplicate) {
    ctx.out(`${c.yellow('duplicate')} delivery ${body.deliveryId} was already received: ${body.executions.map((e) => e.id).join(', ') || 'no executions'}`);
    return;
  }
  if (body.executions.length === 0) {
    ctx.out(`${c.yellow('accepted')} ${body.deliveryId}, but ${body.note ?? 'no workflow is triggered by it'}`);
    return;
  }
  for (const e of body.executions) ctx.out(`${c.green('accepted')} ${e.id}  ${e.workflow ?? ''}`.trimEnd());
}

/** Without -d: the project's `integrations/*\/fixtures/<topic with / as ->.json`, e.g. orders-create.json. */
async function defaultTopicFixture(root: string, topic: string, ctx: CliContext) {
  const name = `${topic.replace(/\//g, '-')}.json`;
  const integrations = path.join(root, 'integrations');
  let dirs: string[] = [];
  try {
    dirs = (await readdir(integrations)).sort();
  } catch {
    /* none */
  }
  for (const d of dirs) {
    const file = path.join(integrations, d, 'fixtures', name);
    const shown = path.relative(ctx.cwd, file);
    try {
      const data = await readDataArg(`@${file}`, root);
      ctx.note(ctx.errColor.dim(`using ${shown}`));
      return data;
    } catch (err) {
      if ((err as AlloyError).code !== 'E_DATA_FILE') throw err;
      // Only a missing file means "look further": a pipe or a link to /dev/zero there is refused, not skipped.
      const cause = (err as Error).cause as NodeJS.ErrnoException | undefined;
      if (cause?.code === 'ENOENT' || cause?.code === 'ENOTDIR') continue;
      throw new UsageError(`cannot read ${shown}: ${cause?.code ?? cause?.message ?? (err as Error).message}`, {
        code: 'E_DATA_FILE',
        hint: `make it a regular JSON file holding the ${topic} payload, or pass -d @<payload.json>`,
      });
    }
  }
  throw new UsageError(`no payload for shopify:${topic}`, { code: 'E_DATA_MISSING', hint: `pass -d @<payload.json>, or add integrations/<name>/fixtures/${name}` });
}

export function parseTimeout(value: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(String(value).trim());
  if (!m) throw new UsageError(`--timeout ${value} is not a duration`, { hint: 'e.g. --timeout 30s, 500ms or 2m' });
  const n = Number(m[1]);
  return Math.round(m[2] === 'ms' ? n : m[2] === 'm' ? n * 60_000 : n * 1000);
}

export type { RuntimeClient };
