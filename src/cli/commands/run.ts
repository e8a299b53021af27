/**
 * `alloy run <integration>/<workflow> --event <json|@file|@-> [--user <id>] [--dry-run] [--json]`
 *
 * Validates the event against the trigger's schema (errors with JSON paths), then either
 * prints the pure plan (--dry-run, calls nothing) or runs the workflow once with the local
 * connectors and credentials (env, .env, users/<id>.env) and prints a step trace.
 * Exit 0 on succeeded or filtered, 1 on failed, 2 on a bad event or invalid project.
 */
import { newId } from '../../server/ids.js';
import { createHash } from 'node:crypto';
import path from 'node:path';
import { readDataFile } from '../../core/data-file.js';
import { readEnvFile } from '../../core/env-file.js';
import { JSON_MAX_DEPTH, jsonTooDeep, valueProblem } from '../../core/json-depth.js';
import { count } from '../render/count.js';
import type { CliContext } from '../context.js';
import { findWorkflow, loadValidProject } from '../load-project.js';
import { AlloyError, EXIT_FAILURE, EXIT_OK, EXIT_USAGE, UsageError } from '../../errors.js';
import type { JsonSchema, WorkflowDef } from '../../core/model.js';
import type { LoadedProject } from '../../core/project-types.js';
import { getUserAjv } from '../../core/schema-check.js';
import { createConnectorRegistry } from '../../connectors/registry.js';
import { resolveConnection, resolveConnectionWithSources } from '../../connectors/credentials.js';
import { createHttpClient } from '../../connectors/http-client.js';
import { egressAgent } from '../../connectors/egress.js';
import { resolveExpressionLimits } from '../../engine/limits.js';
import { locateInFile } from '../../core/source-file.js';
import type { ConnectorRegistry } from '../../connectors/types.js';
import {
  compileWorkflow,
  createExecutionRecord,
  executeWorkflow,
  plan,
  realClock,
  type EngineLogger,
  type ExecutionPlan,
  type ExecutionRecord,
} from '../../engine/index.js';
import { VERSION } from '../../version.js';

interface RunOptions {
  event?: string;
  user?: string;
  dryRun?: boolean;
}

export default async function runCommand(ctx: CliContext, args: string[], opts: RunOptions): Promise<number> {
  const [ref] = args;
  if (!ref) throw new UsageError('name the workflow to run', { hint: 'alloy run <integration>/<workflow> --event @fixture.json' });
  if (opts.event === undefined) {
    throw new UsageError('--event is required', {
      hint: 'pass the trigger event as JSON, @file.json or @- (stdin), e.g. --event @integrations/shopify-sync/fixtures/orders-create.json',
    });
  }
  const project = await loadValidProject(ctx);
  const workflow = findWorkflow(project, ref);
  const workflowRef = `${workflow.integration}/${workflow.name}`;
  const event = await readEvent(ctx, opts.event);
  const registry = createConnectorRegistry({ userConnectors: project.connectors.map((c) => c.def) });
  validateEvent(event, workflow.def, registry, workflowRef);
  const compiled = compileWorkflow(workflow.def);

  if (opts.dryRun) {
    const p = await plan(compiled, event, { userId: opts.user });
    const warnings = await missingCredentials(p, registry, ctx.env, project.root, opts.user);
    if (ctx.json) ctx.printJson({ ok: true, dryRun: true, workflow: workflowRef, plan: p, warnings });
    else {
      printPlan(ctx, workflowRef, p);
      for (const w of warnings) ctx.note(ctx.errColor.yellow(`warning: ${w}`));
    }
    return EXIT_OK;
  }

  const dotenv = await readDotenv(project.root);
  const env: Record<string, string | undefined> = { ...dotenv, ...ctx.env };
  const secrets = streamSecrets(workflow.def, env);
  const startedAt = realClock.now();
  // The same id format as alloy dev's executions (ex_<time><random>), so ids look alike everywhere.
  const record = createExecutionRecord(
    { id: newId('ex', startedAt), workflow: workflowRef, userId: opts.user, event, version: workingTreeVersion(workflow.def) },
    startedAt,
  );
  if (!ctx.json) ctx.note(ctx.errColor.dim(`running ${workflowRef} (${record.id}${opts.user ? `, user ${opts.user}` : ''})`));
  // Our own connection pool, closed when the run ends: idle keep-alive sockets would
  // otherwise hold the process open for seconds after the trace is printed.
  const agent = egressAgent({ loopback: true, allow: project.config.egress?.allow });
  const result = await executeWorkflow(compiled, record, {
    connectors: registry,
    http: createHttpClient({ userAgent: `alloy/${VERSION}`, dispatcher: agent }),
    clock: realClock,
    random: Math.random,
    // `alloy run` keeps nothing between runs; dev and serve pass a store-backed checkpoint.
    checkpoint: async () => {},
    logger: cliLogger(ctx),
    resolveConnection: async (app, userId) => {
      const runtime = registry.get(app);
      if (!runtime) return {};
      return resolveConnection({ manifest: runtime.manifest, userId, env: ctx.env, projectRoot: project.root });
    },
    settings: project.config.apps ?? {},
    secrets,
    env,
    limits: resolveExpressionLimits(project.config.limits),
    locate: (pointer, offset) => locateInFile(path.join(project.root, workflow.file), workflow.file, pointer, offset),
  }).finally(() => agent.close());

  if (ctx.json) ctx.printJson({ ok: result.status !== 'failed', execution: result });
  else printTrace(ctx, result);
  return result.status === 'failed' ? EXIT_FAILURE : EXIT_OK;
}

// ---------------------------------------------------------------- event

async function readEvent(ctx: CliContext, spec: string): Promise<unknown> {
  let text: string;
  let source: string;
  if (spec === '@-') {
    if (!ctx.io.stdin) throw new UsageError('--event @- reads stdin, but there is none', { hint: 'pipe the event in, or pass --event @file.json' });
    text = await readStream(ctx.io.stdin);
    source = 'stdin';
  } else if (spec.startsWith('@')) {
    const file = path.resolve(ctx.cwd, spec.slice(1));
    try {
      text = (await readDataFile(file)).toString('utf8');
    } catch (err) {
      throw new UsageError(`cannot read the event file ${spec.slice(1)}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, {
        code: 'E_EVENT_FILE',
        hint: 'the path after @ is relative to the current directory (or -C)',
      });
    }
    source = spec.slice(1);
  } else {
    text = spec;
    source = '--event';
  }
  if (jsonTooDeep(text)) {
    throw new UsageError(`the event in ${source} nests deeper than ${JSON_MAX_DEPTH} levels`, { code: 'E_JSON_TOO_DEEP', hint: `flatten it: alloy accepts at most ${JSON_MAX_DEPTH} levels of objects and arrays (alloy dev and serve refuse deeper events)` });
  }
  let event: unknown;
  try {
    event = JSON.parse(text);
  } catch (err) {
    throw new UsageError(`the event in ${source} is not JSON: ${(err as Error).message}`, {
      code: 'E_EVENT_JSON',
      hint: `pass a JSON object, e.g. --event '{"email":"a@example.com"}'`,
    });
  }
  // The text check above bounds the walk's depth.
  if (valueProblem(event) === 'overflow') {
    throw new UsageError(`the event in ${source} holds a number too large to represent (over 1.8e308)`, { code: 'E_EVENT_JSON', hint: 'send the number as a string, or a smaller one (alloy dev and serve refuse it too)' });
  }
  return event;
}

async function readStream(stream: NodeJS.ReadableStream): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer));
  return Buffer.concat(chunks).toString('utf8');
}

/** The JSON Schema an event must match: the trigger's own, or the app trigger's payload schema. */
function triggerSchema(def: WorkflowDef, registry: ConnectorRegistry): JsonSchema | undefined {
  const t = def.trigger as unknown as Record<string, unknown>;
  if (typeof t.app === 'string' && typeof t.event === 'string') {
    return registry.get(t.app)?.manifest.triggers?.[t.event]?.payload;
  }
  return (t.schema as JsonSchema | undefined) ?? undefined;
}

function validateEvent(event: unknown, def: WorkflowDef, registry: ConnectorRegistry, ref: string): void {
  const schema = triggerSchema(def, registry);
  if (!schema) return;
  const validate = getUserAjv().compile(schema);
  if (validate(event)) return;
  const errors = (validate.errors ?? []).map((e) => {
    const missing = e.keyword === 'required' ? `/${(e.params as { missingProperty: string }).missingProperty}` : '';
    const at = `${e.instancePath}${missing}` || '/';
    return { path: at, message: e.keyword === 'required' ? 'is required' : (e.message ?? 'is invalid') };
  });
  throw new AlloyError('E_EVENT_INVALID', `the event does not match the trigger schema of ${ref}:\n${errors.map((e) => `  ${e.path}: ${e.message}`).join('\n')}`, {
    exitCode: EXIT_USAGE,
    hint: 'fix the event (paths are JSON pointers into it), or the trigger schema in the workflow file',
    details: { errors },
  });
}

// ---------------------------------------------------------------- local settings

async function readDotenv(root: string): Promise<Record<string, string>> {
  return (await readEnvFile(path.join(root, '.env'), '.env')) ?? {};
}

/** Only the variables the stream secret names become `secrets` (and get redacted). */
function streamSecrets(def: WorkflowDef, env: Record<string, string | undefined>): Record<string, string> {
  const out: Record<string, string> = {};
  const template = typeof def.stream?.secret === 'string' ? def.stream.secret : '';
  for (const m of template.matchAll(/secrets\s*\.\s*([A-Za-z_][A-Za-z0-9_]*)/g)) {
    const v = env[m[1]];
    if (v !== undefined && v !== '') out[m[1]] = v;
  }
  return out;
}

/** `wt-<hash>`: identifies the working-tree definition that ran (releases have v<n>). */
function workingTreeVersion(def: WorkflowDef): string {
  return `wt-${createHash('sha256').update(JSON.stringify(def)).digest('hex').slice(0, 12)}`;
}

function cliLogger(ctx: CliContext): EngineLogger {
  const line = (level: string, message: string, fields?: Record<string, unknown>) =>
    ctx.note(ctx.errColor.dim(`${level} ${message}${fields ? ` ${JSON.stringify(fields)}` : ''}`));
  return {
    debug: (m, f) => {
      if (ctx.verbose && !ctx.json) line('debug', m, f);
    },
    info: (m, f) => {
      if (ctx.verbose && !ctx.json) line('info', m, f);
    },
    warn: (m, f) => {
      if (!ctx.json) line('warn', m, f);
    },
  };
}

// ---------------------------------------------------------------- output

const PREVIEW = 100;

export function preview(value: unknown, width = PREVIEW): string {
  if (value === undefined) return '';
  const text = JSON.stringify(value);
  return text.length > width ? `${text.slice(0, width - 1)}…` : text;
}

/**
 * What a real run would lack: for each app the planned action steps call, the connection
 * variables that are not set (checked as the run would, env over .env, per user). Nothing is called.
 */
async function missingCredentials(p: ExecutionPlan, registry: ConnectorRegistry, env: NodeJS.ProcessEnv, projectRoot: string, userId?: string): Promise<string[]> {
  const byApp = new Map<string, string[]>();
  for (const s of p.steps) {
    if (s.kind !== 'action' || !s.uses?.includes('/') || s.will === 'skip') continue;
    const app = s.uses.slice(0, s.uses.indexOf('/'));
    byApp.set(app, [...(byApp.get(app) ?? []), s.path]);
  }
  const out: string[] = [];
  for (const [app, steps] of byApp) {
    const runtime = registry.get(app);
    if (!runtime) continue;
    try {
      await resolveConnectionWithSources({ manifest: runtime.manifest, userId, env, projectRoot });
    } catch (err) {
      if (!(err instanceof AlloyError)) throw err;
      out.push(`a real run needs ${app} credentials it lacks (${steps.join(', ')} would fail): ${err.message}${err.hint ? `; ${err.hint}` : ''}`);
    }
  }
  return out;
}

function printPlan(ctx: CliContext, ref: string, p: ExecutionPlan): void {
  const c = ctx.color;
  ctx.out(`${c.bold('plan')} ${ref} ${c.dim('(dry run: nothing is called)')}`);
  for (const s of p.steps) {
    const pad = '  '.repeat(s.depth + 1);
    const mark = s.will === 'run' ? c.green('→') : s.will === 'skip' ? c.dim('–') : c.yellow('?');
    const what = s.uses ?? s.kind;
    const note = s.will === 'skip' ? c.dim(' skipped (when is false)') : s.will === 'maybe' ? c.yellow(' maybe') : '';
    ctx.out(`${pad}${mark} ${s.path} ${c.dim(what)}${note}${s.decision ? c.dim(` [${s.decision}]`) : ''}`);
    // -v: the inputs in full.
    if (s.inputs !== undefined && s.kind === 'action') ctx.out(`${pad}    ${c.dim('with')} ${ctx.verbose ? JSON.stringify(s.inputs) : preview(s.inputs, 160)}`);
    if (s.dependsOn) ctx.out(`${pad}    ${c.dim(`needs the run-time output of ${s.dependsOn.join(', ')}`)}`);
    if (s.error) ctx.out(`${pad}    ${c.red('error')} ${s.error}`);
  }
  if (p.outcome === 'filtered') ctx.out(`${c.yellow('filtered')}: ${p.reason}`);
  if (p.stream) ctx.out(c.dim(`then streams the execution data to ${p.stream.url}`));
}

function printTrace(ctx: CliContext, r: ExecutionRecord): void {
  const c = ctx.color;
  const steps = Object.values(r.steps);
  const width = Math.min(32, Math.max(4, ...steps.map((s) => s.path.length)));
  for (const s of steps) {
    const mark =
      s.status === 'succeeded' ? c.green('✓') : s.status === 'skipped' ? c.dim('–') : s.status === 'failed' ? (s.handled ? c.yellow('✗') : c.red('✗')) : c.yellow('…');
    const depth = s.path.split('.').length - 1;
    const timing = s.status === 'skipped' ? 'skipped' : `${s.durationMs ?? 0}ms`;
    const attempts = s.attempts > 1 ? ` ${s.attempts} attempts` : '';
    const head = `${'  '.repeat(depth)}${mark} ${s.path.padEnd(width - depth * 2)} ${c.dim((s.uses ?? s.kind).padEnd(20))} ${timing.padStart(7)}${attempts}`;
    ctx.out(head);
    for (const line of s.logs ?? []) ctx.out(`${'  '.repeat(depth)}    ${c.dim('log')} ${line}`);
    if (s.status === 'failed' && s.error) {
      ctx.out(`${'  '.repeat(depth)}    ${s.handled ? c.yellow('handled') : c.red('error')} ${s.error.code}: ${s.error.message}`);
    } else if (s.output !== undefined) {
      ctx.out(`${'  '.repeat(depth)}    ${c.dim('→')} ${preview(s.output)}`);
    }
  }
  const total = `${r.durationMs ?? 0}ms`;
  if (r.status === 'succeeded') ctx.out(`${c.green('succeeded')} in ${total}`);
  else if (r.status === 'filtered') ctx.out(`${c.yellow('filtered')} in ${total}: ${r.reason}`);
  else {
    ctx.out(`${c.red('failed')} in ${total}: ${r.error?.message ?? 'unknown error'}`);
    if (r.error?.hint) ctx.note(`${ctx.errColor.cyan('hint')}  ${r.error.hint}`);
  }
  if (r.stream) {
    if (r.stream.status === 'delivered') ctx.out(c.dim(`streamed to ${r.stream.url} (HTTP ${r.stream.statusCode}, ${count(r.stream.attempts, 'attempt')})`));
    else {
      ctx.out(`${c.yellow('stream failed')}: ${r.stream.error?.message ?? 'unknown error'}`);
      if (r.stream.error?.hint) ctx.note(`${ctx.errColor.cyan('hint')}  ${r.stream.error.hint}`);
    }
  }
}
