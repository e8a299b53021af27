/**
 * Ingest: custom events from the customer's backend (`POST /v1/run/event`) and app webhooks
 * (`POST /v1/webhooks/:app`). Both persist every execution they create, with the dedupe key,
 * in one transaction before answering 202; a refused request stores nothing.
 */
import { createHash, createHmac } from 'node:crypto';
import { isDeepStrictEqual } from 'node:util';
import { safeEqual } from '../../connectors/shopify/webhooks.js';
import { connectionEnvName } from '../../connectors/credentials.js';
import type { ConnectorTrigger } from '../../core/model.js';
import { HttpError } from '../../http/error.js';
import { parseJson, readBody } from '../../http/body.js';
import { headerValue } from '../../http/respond.js';
import { checkTriggerData, type RoutedWorkflow } from '../../server/definitions.js';
import { executionRowFor, ingestExecutions } from '../ingest.js';
import { eventDedupeKey, type ExecutionRow, type InstallationRecord } from '../state/types.js';
import { str, type ApiContext, type ApiRoute } from './context.js';

const EVENT_RE = /^[A-Za-z0-9][A-Za-z0-9._:/-]{0,199}$/;
const KEY_RE = /^[\x21-\x7e]{1,200}$/;

async function allActive(c: ApiContext, userId: string): Promise<InstallationRecord[]> {
  const out: InstallationRecord[] = [];
  let after: string | undefined;
  do {
    const p = await c.deps.state.installations.list({ userId, status: 'active' }, { limit: 200, after });
    out.push(...p.items);
    after = p.next;
  } while (after);
  return out;
}

const executionRow = (c: ApiContext, i: InstallationRecord, r: RoutedWorkflow, event: unknown): ExecutionRow => executionRowFor(i, r.key, event, c.deps.now());

const commit = (c: ApiContext, source: string, dedupeKey: string | undefined, rows: ExecutionRow[]) => ingestExecutions(c.deps, source, dedupeKey, rows);

/** The app-level value of a manifest template like `{{ connection.apiSecret }}`, from the server's environment. */
function appSecret(c: ApiContext, app: string, template: string): string | undefined {
  const m = /^\{\{\s*connection\.([A-Za-z_][A-Za-z0-9_]*)\s*\}\}$/.exec(template.trim());
  const manifest = c.deps.connectors.get(app)?.manifest;
  if (!m || !manifest) return undefined;
  return c.deps.env[connectionEnvName(manifest, m[1])] || undefined;
}

/**
 * A repeated Idempotency-Key must come with the request it was first sent with: reused with
 * another payload it is 422 (draft-ietf-httpapi-idempotency-key-header, "Error Scenarios"),
 * not a `duplicate` that silently drops the new request. Checked on the duplicate path only,
 * against what the first request stored: each of its executions still there must hold this
 * data, from a workflow this event triggers on that execution's version.
 */
async function refuseAnotherRequest(c: ApiContext, event: string, data: unknown, executionIds: string[]): Promise<void> {
  // As stored: JSON has no -0 (or undefined), so the data is compared in that form.
  const asStored = JSON.parse(JSON.stringify(data)) as unknown;
  for (const id of executionIds) {
    const e = await c.deps.state.executions.get(id);
    if (!e) continue;
    const routes = (await c.deps.source.get(e.integration, e.version)).defs.byEvent.get(event);
    if (isDeepStrictEqual(e.record.event, asStored) && routes?.some((r) => r.key === e.workflow)) continue;
    throw new HttpError(422, 'E_IDEMPOTENCY_KEY_REUSED', 'this Idempotency-Key was sent before with another request (event or data); nothing was stored', 'Send a new Idempotency-Key for a new request; a retry repeats the first request exactly.');
  }
}

export const eventRoutes: ApiRoute[] = [
  {
    method: 'POST',
    path: '/v1/run/event',
    fields: ['event', 'userId', 'data'],
    access: ['ingest'],
    async handler(c) {
      const key = headerValue(c.req, 'idempotency-key');
      if (key !== undefined && !KEY_RE.test(key)) throw new HttpError(400, 'E_BAD_REQUEST', 'Idempotency-Key must be 1 to 200 visible ASCII characters');
      const body = await c.body();
      const event = str(body, 'event', { required: true, pattern: EVENT_RE, max: 200 })!;
      const userId = str(body, 'userId', { required: true })!;
      const data = body.data ?? {};
      // Both reads at once (on PostgreSQL each is a round trip that the request would wait for in turn).
      const [user, active] = await Promise.all([c.deps.state.users.get(userId), allActive(c, userId)]);
      if (!user) throw new HttpError(404, 'E_NOT_FOUND', 'no such user', 'Create the user first (POST /v1/users).');
      // The rows are made as the routes are checked (no plan per request); any violation
      // anywhere refuses the whole request, and rows made before it are dropped unstored.
      const rows: ExecutionRow[] = [];
      let fields: { path: string; message: string; workflow: string; version: number }[] | undefined;
      for (const i of active) {
        const v = await c.deps.source.get(i.integration, i.version);
        const routes = v.defs.byEvent.get(event);
        if (!routes) continue;
        for (const violation of checkTriggerData(routes, data)) (fields ??= []).push({ ...violation, version: i.version });
        if (!fields) for (const r of routes) rows.push(executionRow(c, i, r, data));
      }
      if (fields) {
        throw new HttpError(422, 'E_EVENT_INVALID', `the data of ${event} does not fit the trigger schema: ${fields.map((f) => `${f.path || '/'} ${f.message}`).join('; ')}`, 'Fix the named fields; nothing was stored.', { fields });
      }
      const result = await commit(c, 'event', key ? eventDedupeKey(userId, key) : undefined, rows);
      if (result.duplicate) await refuseAnotherRequest(c, event, data, result.executionIds);
      c.send(202, { executionIds: result.executionIds, duplicate: result.duplicate });
    },
  },
  {
    // Public: verified with the app's secret before anything is stored (see docs/serve-api.md).
    method: 'POST',
    path: '/v1/webhooks/:app',
    access: 'public',
    async handler(c) {
      const app = c.params.app;
      const runtime = c.deps.connectors.get(app);
      const triggers = Object.entries(runtime?.manifest.triggers ?? {}) as [string, ConnectorTrigger][];
      const spec = triggers.find(([, t]) => t.verify)?.[1];
      if (!runtime || !spec?.verify) throw new HttpError(404, 'E_NOT_FOUND', `no webhooks for app ${app}`);
      const raw = await readBody(c.req, c.deps.maxBodyBytes);
      const headers: Record<string, string> = {};
      for (const [k, v] of Object.entries(c.req.headers)) if (typeof v === 'string') headers[k] = v;
      const secret = appSecret(c, app, spec.verify.secret);
      if (!secret) throw new HttpError(500, 'E_MISSING_SECRET', `the server has no ${app} app secret to verify webhooks`, `Set ${connectionEnvName(runtime.manifest, 'apiSecret')} for alloy serve.`);
      // The manifest's verification: an HMAC-SHA256 of the exact bytes in `header`, compared in constant time.
      const given = headers[(spec.verify.header ?? '').toLowerCase()];
      if (!given) throw new HttpError(401, 'E_SIGNATURE', `missing ${spec.verify.header}`, 'Deliveries must be signed by the app.');
      const expected = createHmac('sha256', secret).update(raw).digest(spec.verify.encoding === 'base64' ? 'base64' : 'hex');
      if (!safeEqual(expected, given.trim())) throw new HttpError(401, 'E_SIGNATURE', `${spec.verify.header} does not match the body`, 'Deliveries must be signed with the app secret.');
      const topic = spec.topicHeader ? headers[spec.topicHeader.toLowerCase()] : undefined;
      const account = spec.accountHeader ? headers[spec.accountHeader.toLowerCase()]?.toLowerCase() : undefined;
      if (!topic || !account) throw new HttpError(400, 'E_BAD_REQUEST', `missing ${!topic ? spec.topicHeader : spec.accountHeader}`);
      const payload = parseJson(raw) ?? {};
      const creds = await c.deps.state.credentials.findByAccount(app, account);
      const installations = await c.deps.state.installations.byCredentials(creds.map((x) => x.id));
      const trigger = runtime.manifest.triggers?.[topic];
      if (trigger?.uninstalls) {
        // The app signs the body, not the topic header: any genuine delivery relabelled as an
        // uninstall would pass the HMAC. The body must be the account's own record.
        const field = trigger.uninstallAccountField;
        const named = field && payload && typeof payload === 'object' ? (payload as Record<string, unknown>)[field] : undefined;
        if (field && (typeof named !== 'string' || named.toLowerCase() !== account)) {
          throw new HttpError(400, 'E_BAD_REQUEST', `a ${topic} delivery must carry the account's own record (${field}: ${account}); nothing was deactivated`);
        }
        for (const i of installations) await c.deps.state.installations.put({ ...i, status: 'inactive', updatedAt: c.iso() });
        c.deps.log('app uninstalled: installations deactivated', { app, account, installations: installations.length });
        c.send(200, { deactivated: installations.map((i) => i.id) });
        return;
      }
      if (installations.length === 0) {
        // Answered 200 (and logged), not 4xx: the delivery is genuine (signed) and there is
        // nothing to run; an error would only make the app retry it for hours.
        c.deps.log('webhook for an account with no active installation', { app, account, topic });
        c.send(200, { executionIds: [], routed: 0 });
        return;
      }
      const rows: ExecutionRow[] = [];
      for (const i of installations) {
        if (!Object.values(i.credentials).some((id) => creds.some((x) => x.id === id && x.app === app))) continue;
        const v = await c.deps.source.get(i.integration, i.version);
        for (const r of v.defs.byAppEvent.get(`${app}:${topic}`) ?? []) rows.push(executionRow(c, i, r, payload));
      }
      // De-duplicated on what the signature covers (the body), for the account and topic: the
      // delivery-id header is unsigned, so keying on it let anyone resend a captured delivery
      // with a fresh id and run it again. A retry of the same delivery carries the same bytes.
      const dedupeKey = `${app}:${account}:${topic}:${createHash('sha256').update(raw).digest('hex')}`;
      const result = await commit(c, `webhook:${app}`, dedupeKey, rows);
      c.send(202, { executionIds: result.executionIds, duplicate: result.duplicate, routed: installations.length });
    },
  },
];
