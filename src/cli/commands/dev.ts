/**
 * `alloy dev`: the local runtime on the working tree (src/server/dev-runtime.ts), printing
 * its endpoints, one line per execution (`-v`: each step), reloads and rejected deliveries.
 * Runs until SIGINT/SIGTERM, then stops cleanly: in-flight work finishes or is
 * checkpointed, the event log is closed. With --json, stdout carries one JSON object per line.
 */
import path from 'node:path';
import { count } from '../render/count.js';
import { untilSignal } from '../signals.js';
import type { CliContext } from '../context.js';
import { DEFAULT_PORTS } from '../defaults.js';
import { AlloyError, UsageError } from '../../errors.js';
import { listenError } from '../../http/listen.js';
import { hasErrors } from '../../core/diagnostics.js';
import { findConfig, noProjectError } from '../../core/project.js';
import { loadProjectWithDiagnostics, reportDiagnostics } from '../load-project.js';
import { startDevRuntime, type DevEvent, type DevRuntime } from '../../server/dev-runtime.js';
import { recordLine, stepLine, clockTime } from '../../server/terminal-format.js';
import type { RuntimeDefinitions } from '../../server/definitions.js';
import { parseFakeNames, withFakeApps, type DevFakes } from '../../server/dev-fakes.js';
import { parseDuration } from '../../engine/duration.js';

export const DEFAULT_DEV_PORT = DEFAULT_PORTS.dev;

export default async function dev(ctx: CliContext, _args: string[], opts: Record<string, any>): Promise<number> {
  const found = await findConfig(ctx.cwd);
  if (!found) throw noProjectError(ctx.cwd);
  const root = found.root;
  const loadCtx = { ...ctx, cwd: root };
  const first = await loadProjectWithDiagnostics(loadCtx);
  const cfgDev = first.config?.dev ?? {};
  // Flags arrive already filled from ALLOY_DEV_<FLAG> (src/cli/main.ts); the config comes after.
  const port = parsePort(opts.port ?? cfgDev.port ?? DEFAULT_DEV_PORT);
  // ALLOY_DEV_HOST counts as configuration, not as the flag: a non-loopback host needs the flag itself.
  const hostFromEnv = (opts.fromEnvironment as Set<string> | undefined)?.has('host');
  const host = devHost(hostFromEnv ? undefined : opts.host, hostFromEnv ? opts.host : cfgDev.host);
  if (!isLoopbackHost(host)) {
    ctx.note(ctx.errColor.yellow(`warning: listening on ${host}: other machines on the network can reach this runtime's API (stored events, replays)`));
  }
  const concurrency = opts.concurrency !== undefined ? parsePositive(opts.concurrency, '--concurrency') : undefined;
  const maxQueued = opts.maxQueued !== undefined ? parsePositive(opts.maxQueued, '--max-queued') : undefined;
  const c = ctx.color;
  const line = (s: string) => (ctx.json ? undefined : ctx.out(s));
  const jsonLine = (value: unknown) => ctx.json && ctx.io.stdout.write(`${JSON.stringify(value)}\n`);

  if (hasErrors(first.diagnostics)) {
    reportDiagnostics(ctx, first, first.diagnostics);
    ctx.note(ctx.errColor.yellow('The working tree has errors: serving no workflows until they are fixed (watching for changes).'));
  }

  const onEvent = (e: DevEvent) => {
    switch (e.type) {
      case 'execution':
        jsonLine({ type: 'execution', id: e.record.id, workflow: e.record.workflow, status: e.record.status, durationMs: e.durationMs, error: e.record.error, reason: e.record.reason });
        line(recordLine(c, e.record, e.durationMs));
        break;
      case 'step':
        if (ctx.verbose) {
          jsonLine({ type: 'step', executionId: e.executionId, path: e.step.path, status: e.step.status, durationMs: e.step.durationMs, attempts: e.step.attempts });
          line(stepLine(c, e.step));
        }
        break;
      case 'accepted':
        jsonLine({ type: 'accepted', source: e.source, name: e.name, deliveryId: e.deliveryId, executions: e.executionIds, duplicate: e.duplicate });
        if (e.duplicate) ctx.note(`${ctx.errColor.dim(clockTime(undefined))}  ${ctx.errColor.yellow('duplicate')} ${e.source} ${e.name} (delivery ${e.deliveryId} already received): not run again`);
        else if (e.executionIds.length === 0) ctx.note(`${ctx.errColor.dim(clockTime(undefined))}  ${ctx.errColor.yellow('no workflow')} for ${e.source} ${e.name} (stored as ${e.deliveryId})`);
        else if (ctx.verbose) ctx.note(`${ctx.errColor.dim(clockTime(undefined))}  received ${e.source} ${e.name} → ${e.executionIds.join(', ')}`);
        break;
      case 'rejected':
        jsonLine({ type: 'rejected', route: e.route, status: e.status, code: e.code, message: e.message });
        ctx.note(`${ctx.errColor.dim(clockTime(undefined))}  ${ctx.errColor.red(`✗ ${e.status}`)} ${e.route}  ${ctx.errColor.dim(e.code)} ${e.message}`);
        break;
      case 'error':
        ctx.note(`${ctx.errColor.red('error')} ${e.executionId ? `${e.executionId}: ` : ''}${e.message}`);
        break;
      case 'reload':
        jsonLine({ type: 'reload', files: e.files, changes: e.changes, version: e.version });
        ctx.note(
          `${ctx.errColor.dim(clockTime(undefined))}  ${ctx.errColor.cyan('reloaded')} ${e.files.join(', ') || 'definitions'}` +
            (e.changes.length ? `: ${e.changes.join(', ')}` : ': no workflow changed'),
        );
        break;
      case 'tick':
        jsonLine({ type: 'tick', workflow: e.workflow, scheduledAt: e.scheduledAt, missed: e.missed, duplicate: e.duplicate });
        if (ctx.verbose || e.missed) ctx.note(`${ctx.errColor.dim(clockTime(undefined))}  ${ctx.errColor.cyan('schedule')} ${e.workflow} ${e.missed ? `(missed tick ${e.scheduledAt}, run once now)` : e.scheduledAt}`);
        break;
      case 'poll':
        jsonLine({ type: 'poll', workflow: e.workflow, pages: e.pages, emitted: e.emitted, duplicates: e.duplicates, truncated: e.truncated, since: e.since });
        if (ctx.verbose || e.emitted > 0 || e.truncated) {
          ctx.note(
            `${ctx.errColor.dim(clockTime(undefined))}  ${ctx.errColor.cyan('poll')} ${e.workflow}: ${e.emitted} new item(s) in ${e.pages} page(s)` +
              (e.truncated ? ctx.errColor.yellow(' (page cap reached; the rest comes next poll)') : ''),
          );
        }
        break;
      case 'reload-failed':
        jsonLine({ type: 'reload-failed', files: e.files, diagnostics: e.diagnostics });
        reportDiagnostics(ctx, e.project, e.diagnostics);
        ctx.note(ctx.errColor.yellow(`${clockTime(undefined)}  ${e.files.join(', ') || 'definitions'} changed but have errors: still serving the last good definitions`));
        break;
    }
  };

  const started = Date.now();
  // The tunnel's ingress secret and the stream secret, made or replaced before anything signs with them.
  const { loadOrCreateStreamSecret, loadOrCreateIngressSecret } = await import('../../server/dev-state.js');
  const secrets = { stream: loadOrCreateStreamSecret(root), ingress: loadOrCreateIngressSecret(root) };
  for (const s of [secrets.stream, secrets.ingress]) {
    if (s.replaced) ctx.note(ctx.errColor.yellow(`warning: ${s.replaced}; replaced by a new secret (update any sender or receiver configured with the old one)`));
  }
  // --fake shopify (or dev.fakes): local stand-ins the connectors and credentials point at for this run.
  const fakes = await startFakes(opts.fake ?? cfgDev.fakes, secrets.stream.secret);
  const withFakes = (p: Awaited<ReturnType<typeof loadProjectWithDiagnostics>>) => (fakes ? withFakeApps(p, fakes.apps) : p);
  let runtime: DevRuntime;
  try {
    runtime = await startDevRuntime({
      root,
      loadProject: async () => withFakes(await loadProjectWithDiagnostics(loadCtx)),
      initialProject: withFakes(first),
      processEnv: fakes ? { ...ctx.env, ...fakes.env } : ctx.env,
      fakes: fakes?.names,
      host,
      port,
      fresh: Boolean(opts.fresh),
      secrets: { stream: secrets.stream.secret, ingress: secrets.ingress.secret },
      record: opts.record === undefined ? undefined : opts.record === true ? true : String(opts.record),
      concurrency,
      maxQueued,
      shopifyMaxAgeMs: cfgDev.shopifyMaxAge === undefined ? undefined : parseDuration(cfgDev.shopifyMaxAge, 'dev.shopifyMaxAge'),
      onEvent,
    });
  } catch (err) {
    await fakes?.close();
    throw listenError(err, host, port, '-p') ?? err;
  }

  let tunnel: { publicUrl: string; close(): Promise<void> } | undefined;
  try {
    if (opts.tunnel !== undefined && opts.tunnel !== false) {
      tunnel = await openTunnel(ctx, runtime, opts);
    }
  } catch (err) {
    await runtime.close();
    await fakes?.close();
    throw err;
  }

  printBanner(ctx, runtime, Date.now() - started, tunnel?.publicUrl, root, fakes);

  // The one long wait: until SIGINT/SIGTERM. A second signal gets Node's default (immediate exit).
  const signal = await untilSignal();
  const q = runtime.server.queueSize();
  ctx.note(ctx.errColor.dim(`${signal}: stopping${q.running ? ` (waiting for ${count(q.running, 'running execution')})` : ''}…`));
  await tunnel?.close().catch(() => {});
  await runtime.close();
  await fakes?.close();
  ctx.note(ctx.errColor.dim('stopped; the event log is closed'));
  return 0;
}

async function openTunnel(ctx: CliContext, runtime: DevRuntime, opts: Record<string, any>) {
  const { startTunnel, TUNNEL_PROVIDERS } = await import('../../tunnel/index.js');
  const requested = typeof opts.tunnel === 'string' ? opts.tunnel : undefined;
  const provider = requested ?? (opts.tunnelUrl ? 'relay' : 'cloudflared');
  if (!(TUNNEL_PROVIDERS as readonly string[]).includes(provider)) {
    throw new UsageError(`unknown tunnel provider "${provider}"`, { code: 'E_TUNNEL_PROVIDER', hint: `use one of: ${TUNNEL_PROVIDERS.join(', ')}` });
  }
  // The tunnel only ever sees a listener that serves ingress routes (events and webhooks).
  const ingressUrl = await runtime.server.listenIngress('127.0.0.1', 0);
  const tunnel = await startTunnel({
    provider: provider as (typeof TUNNEL_PROVIDERS)[number],
    localUrl: ingressUrl,
    relayUrl: opts.tunnelUrl,
    name: opts.tunnelName,
    env: ctx.env,
    logger: {
      info: (m: string) => ctx.note(ctx.errColor.dim(`tunnel  ${m}`)),
      warn: (m: string) => ctx.note(ctx.errColor.yellow(`tunnel  ${m}`)),
    },
  });
  // Lost, restored and stopped are reported once, by the tunnel's logger above.
  const { writeDevInfo } = await import('../../server/dev-state.js');
  writeDevInfo(runtime.project.root, { url: runtime.url, pid: process.pid, startedAt: new Date().toISOString(), ingressUrl, publicUrl: tunnel.publicUrl, fakes: runtime.fakes });
  return tunnel;
}

async function startFakes(requested: unknown, streamSecret: string): Promise<DevFakes | undefined> {
  const names = parseFakeNames(requested);
  if (names.length === 0) return undefined;
  const { startDevFakes } = await import('../../server/dev-fakes.js');
  return startDevFakes(names, { streamSecret });
}

function printBanner(ctx: CliContext, runtime: DevRuntime, ms: number, publicUrl: string | undefined, root: string, fakes?: DevFakes): void {
  const defs: RuntimeDefinitions = runtime.server.definitions;
  const url = runtime.url;
  const webhookBase = publicUrl ?? url;
  if (ctx.json) {
    ctx.io.stdout.write(
      `${JSON.stringify({
        type: 'ready',
        url,
        ui: `${url}/`,
        publicUrl,
        eventApi: `${url}/v1/run/event`,
        webhooks: webhookUrls(defs, webhookBase),
        workflows: [...defs.workflows.keys()],
        schedules: runtime.timers(),
        version: defs.version,
        eventLog: path.relative(root, runtime.server.log.file),
        pending: runtime.server.queueSize(),
        ...(fakes ? { fakes: fakes.urls } : {}),
      })}\n`,
    );
    return;
  }
  const c = ctx.color;
  const row = (label: string, value: string) => ctx.out(`  ${c.dim(label.padEnd(17))}${value}`);
  ctx.out(`${c.bold('alloy dev')} ${c.dim(`ready in ${ms}ms`)}`);
  ctx.out();
  row('web UI', `${url}/${/^http:\/\/(127\.|\[::1\]|localhost)/.test(url) ? c.dim('  (this machine only)') : ''}`);
  row('event API', `POST ${url}/v1/run/event`);
  for (const w of webhookUrls(defs, webhookBase)) row(w.label, `POST ${w.url}${w.topics.length ? c.dim(`  (${w.topics.join(', ')})`) : ''}`);
  for (const f of fakes?.rows ?? []) row(f.label, `${f.value}${c.dim(`  (${f.note})`)}`);
  if (publicUrl) row('public URL', `${publicUrl} ${c.dim('(ingress routes only)')}`);
  row('executions', `GET  ${url}/v1/executions`);
  row('ingress secret', `${runtime.ingressSecret}${c.dim('  (sign tunnel events and webhooks with it; alloy emit does)')}`);
  row('stream secret', `${runtime.streamSecret}${runtime.streamSecretNames.length ? c.dim(`  (signs streams: ${runtime.streamSecretNames.join(', ')} unset)`) : ''}`);
  const pending = runtime.server.queueSize();
  row('event log', `${path.relative(root, runtime.server.log.file)}${pending.queued + pending.running ? c.dim(`  (${count(pending.queued + pending.running, 'unfinished execution')} resumed)`) : ''}`);
  row('workflows', `${defs.workflows.size}${defs.workflows.size ? c.dim(`  ${[...defs.workflows.keys()].join(', ')}`) : ''}`);
  if (!runtime.env.SHOPIFY_API_SECRET && [...defs.byAppEvent.keys()].some((k) => k.startsWith('shopify:'))) {
    ctx.note(ctx.errColor.yellow('  SHOPIFY_API_SECRET is not set: Shopify webhooks will be refused (500) until it is (env or .env).'));
  }
  runtime.timers().forEach((t, i) => {
    const next = t.nextAt ? `${t.nextAt.slice(0, 10)} ${t.nextAt.slice(11, 19)} UTC` : c.dim('never');
    row(i === 0 ? 'schedules' : '', `${t.workflow}  ${c.dim(t.label)}  next ${next}`);
  });
  if (runtime.recordDir) row('recording to', path.relative(root, runtime.recordDir) || '.');
  ctx.out();
  ctx.note(ctx.errColor.dim('Watching for changes. Ctrl-C to stop.'));
}

function webhookUrls(defs: RuntimeDefinitions, base: string): { label: string; url: string; topics: string[] }[] {
  const apps = new Map<string, string[]>();
  for (const key of defs.byAppEvent.keys()) {
    const i = key.indexOf(':');
    const app = key.slice(0, i);
    apps.set(app, [...(apps.get(app) ?? []), key.slice(i + 1)]);
  }
  if (!apps.has('shopify')) apps.set('shopify', []);
  const out = [...apps].sort().map(([app, topics]) => ({ label: `${app} webhooks`, url: `${base}/v1/webhooks/${app}`, topics: topics.sort() }));
  for (const name of [...defs.byWebhook.keys()].sort()) out.push({ label: `webhook ${name}`, url: `${base}/v1/webhooks/custom/${encodeURIComponent(name)}`, topics: [] });
  return out;
}

function isLoopbackHost(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);
}

/**
 * The interface to bind: loopback unless `--host` says otherwise on the command line. A
 * committed `dev.host` (or ALLOY_DEV_HOST) may only name a loopback address: a cloned
 * repository must not open a developer's runtime to the network.
 */
export function devHost(flag: string | undefined, configured: string | undefined): string {
  if (flag !== undefined) return flag;
  const host = configured ?? '127.0.0.1';
  if (!isLoopbackHost(host)) {
    throw new UsageError(`dev.host (or ALLOY_DEV_HOST) is ${host}, a non-loopback address: refused`, {
      code: 'E_DEV_HOST',
      hint: `binding beyond this machine needs the flag on the command line: alloy dev --host ${host}`,
    });
  }
  return host;
}

function parsePort(value: unknown): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535) {
    throw new UsageError(`port "${String(value)}" is not a port number`, { hint: 'pass -p <0-65535> (0 picks a free port)' });
  }
  return n;
}

function parsePositive(value: unknown, flag: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 1000) throw new UsageError(`${flag} must be an integer from 1 to 1000`, { hint: `e.g. ${flag} 8` });
  return n;
}
