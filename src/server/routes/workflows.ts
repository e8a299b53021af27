/**
 * The workflows of the working tree for the web UI: `GET /v1/workflows` (each with its
 * trigger and the fixtures of its integration) and `POST /v1/workflows/:integration/:workflow/send`
 * (sends a fixture as that workflow's trigger, through the same ingest as a real delivery).
 */
import path from 'node:path';
import { lstat, readdir, readFile } from 'node:fs/promises';
import { checkTriggerData } from '../definitions.js';
import { HttpError, requireJsonContentType, sendJson } from '../http.js';
import { type DevContext, type DevRoute } from './context.js';
import { ingest } from './ingress.js';

export const workflowRoutes: DevRoute[] = [
  { method: 'GET', path: '/v1/workflows', name: 'workflows', ingress: false, handler: workflowsRoute },
  { method: 'POST', path: '/v1/workflows/:integration/:workflow/send', name: 'send-fixture', ingress: false, handler: sendFixtureRoute },
];

async function workflowsRoute(ctx: DevContext): Promise<void> {
  const root = ctx.deps.definitions().project.root;
  const fixturesByIntegration = new Map<string, string[]>();
  for (const integration of ctx.deps.definitions().project.integrations) {
    fixturesByIntegration.set(integration.name, await listFixtures(path.join(root, integration.dir, 'fixtures')));
  }
  const workflows = [...ctx.deps.definitions().workflows.values()].map((r) => {
    const def = r.workflow.def;
    return {
      key: r.key,
      integration: r.workflow.integration,
      name: r.workflow.name,
      file: r.workflow.file,
      ...(def.description ? { description: def.description } : {}),
      trigger: triggerSummary(def.trigger as unknown as Record<string, unknown>),
      steps: def.steps.map((s) => ({ id: s.id, ...((s as { uses?: string }).uses ? { uses: (s as { uses?: string }).uses } : {}) })),
      ...(def.stream ? { streams: true } : {}),
      fixtures: fixturesByIntegration.get(r.workflow.integration) ?? [],
    };
  });
  sendJson(ctx.res, 200, { version: ctx.deps.definitions().version, workflows });
}

/** Sends a fixture from integrations/<name>/fixtures/ as the trigger of one workflow (the web UI's "send"). */
async function sendFixtureRoute(ctx: DevContext): Promise<void> {
  requireJsonContentType(ctx.req);
  const key = `${ctx.params.integration}/${ctx.params.workflow}`;
  const routed = ctx.deps.definitions().workflows.get(key);
  if (!routed) throw new HttpError(404, 'E_WORKFLOW_NOT_FOUND', `no workflow ${key}`, 'list workflows with GET /v1/workflows');
  const payload = ctx.json(await ctx.body()) as { fixture?: unknown } | null;
  const name = payload && typeof payload === 'object' ? payload.fixture : undefined;
  if (typeof name !== 'string' || !FIXTURE_NAME.test(name)) {
    throw new HttpError(422, 'E_BAD_FIXTURE', 'the body must be {"fixture": "<file name>.json"}', 'use a name from GET /v1/workflows');
  }
  const integration = ctx.deps.definitions().project.integrations.find((i) => i.name === routed.workflow.integration);
  const file = path.join(ctx.deps.definitions().project.root, integration?.dir ?? '', 'fixtures', name);
  let bytes: Buffer;
  try {
    // A fixture is a plain file of the project: never follow a link out of it.
    if (!(await lstat(file)).isFile()) throw new Error('not a file');
    bytes = await readFile(file);
  } catch {
    throw new HttpError(404, 'E_FIXTURE_NOT_FOUND', `no fixture ${name} in ${integration?.dir ?? ''}/fixtures`, 'use a name from GET /v1/workflows');
  }
  const data = ctx.json(bytes);
  const violations = checkTriggerData([routed], data);
  if (violations.length) {
    throw new HttpError(422, 'E_EVENT_SCHEMA', `${name} does not match the trigger schema of ${key}`, 'fix the fixture file', { errors: violations });
  }
  const trigger = routed.workflow.def.trigger as unknown as Record<string, unknown>;
  const headers = { 'content-type': 'application/json', 'x-alloy-fixture': name };
  if (typeof trigger.app === 'string' && typeof trigger.event === 'string') {
    const routes = ctx.deps.definitions().byAppEvent.get(`${trigger.app}:${trigger.event}`) ?? [routed];
    await ingest(ctx, { source: trigger.app, name: trigger.event, req: ctx.req, body: bytes, event: data, verification: 'fixture', routes, eventRef: 'body', headers });
  } else if (typeof trigger.event === 'string') {
    const body = Buffer.from(JSON.stringify({ event: trigger.event, data }));
    const routes = ctx.deps.definitions().byEvent.get(trigger.event) ?? [routed];
    await ingest(ctx, { source: 'event', name: trigger.event, req: ctx.req, body, event: data, verification: 'fixture', routes, eventRef: 'body.data', headers });
  } else if (typeof trigger.webhook === 'string') {
    const routes = ctx.deps.definitions().byWebhook.get(trigger.webhook) ?? [routed];
    await ingest(ctx, { source: `webhook:${trigger.webhook}`, name: trigger.webhook, req: ctx.req, body: bytes, event: data, verification: 'fixture', routes, eventRef: 'body', headers });
  } else {
    throw new HttpError(409, 'E_NOT_SENDABLE', `${key} has a ${Object.keys(trigger)[0] ?? 'non-event'} trigger: nothing to send a fixture to`);
  }
}

/** Fixture file names: plain `.json` files directly in the fixtures folder. */
const FIXTURE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,200}\.json$/;

async function listFixtures(dir: string): Promise<string[]> {
  try {
    const entries = await readdir(dir, { withFileTypes: true });
    return entries.filter((e) => e.isFile() && FIXTURE_NAME.test(e.name)).map((e) => e.name).sort();
  } catch {
    return [];
  }
}

/** What the web UI shows of a trigger (schemas included; never secrets: verify names only the variable). */
function triggerSummary(trigger: Record<string, unknown>): Record<string, unknown> {
  if (typeof trigger.app === 'string') return { kind: 'app', app: trigger.app, event: trigger.event };
  if (typeof trigger.event === 'string') return { kind: 'event', event: trigger.event, ...(trigger.schema ? { schema: trigger.schema } : {}) };
  if (typeof trigger.webhook === 'string') return { kind: 'webhook', webhook: trigger.webhook, ...(trigger.verify ? { verify: (trigger.verify as { scheme?: string }).scheme } : {}) };
  return { kind: Object.keys(trigger)[0] ?? 'unknown', ...trigger };
}
