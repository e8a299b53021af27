/**
 * `alloy compare <execution-id|fixture> [a] [b] [--workflow] [--json]`
 * `alloy compare --all <workflow> [a] [b] [--since <time>]`
 *
 * Runs the same event through two definitions of its workflow (default: the published
 * version, else the latest, against the working tree), in process with no network, the
 * app answering as the recorded execution did (a fixture runs against the in-process fake
 * Shopify instead), and prints the step-level diff. `--all` does it for every stored
 * execution of a workflow and summarises. Exit 1 when a run that did not fail would fail.
 */
import path from 'node:path';
import type { CliContext } from '../context.js';
import { findWorkflow, loadValidProject } from '../load-project.js';
import { NotFoundError, UsageError } from '../../errors.js';
import { readDataFile } from '../../core/data-file.js';
import type { LoadedProject } from '../../core/project-types.js';
import { createConnectorRegistry } from '../../connectors/registry.js';
import { tryParseDuration } from '../../engine/duration.js';
import type { ExecutionRecord } from '../../engine/types.js';
import { openLogReader, type LogReader } from '../../server/log-reader.js';
import { answersFromRecord, compareDefinitions, streamPlaceholders, type Comparison, type CompareSide } from '../../test-runner/index.js';
import type { TestSetup } from '../../test-runner/types.js';
import { loadSide, parseSideSpec } from './compare-sides.js';

export default async function compareCommand(ctx: CliContext, args: string[], opts: Record<string, any>): Promise<number> {
  const [target, aSpec, bSpec] = args;
  if (!target) throw new UsageError('name an execution id, a fixture file, or with --all a workflow', { hint: 'alloy compare <execution-id> [a] [b], e.g. alloy compare ex_… published working' });
  if (args.length > 3) throw new UsageError('compare takes at most two versions', { hint: 'alloy compare <execution-id> [a] [b]' });
  if (opts.since !== undefined && !opts.all) throw new UsageError('--since goes with --all', { hint: 'alloy compare --all <workflow> --since 24h' });
  const project = await loadValidProject(ctx);
  const connectors = createConnectorRegistry({ userConnectors: project.connectors.map((c) => c.def) });
  const sides = async (workflowRef: string): Promise<[CompareSide, CompareSide]> => [
    await loadSide(ctx, opts, project, workflowRef, aSpec ? parseSideSpec(aSpec) : 'published', aSpec ? undefined : 'latest'),
    await loadSide(ctx, opts, project, workflowRef, bSpec ? parseSideSpec(bSpec) : 'working'),
  ];

  if (opts.all) return compareAll(ctx, opts, project, target, sides, connectors);

  const bytes = /\.json$/i.test(target) ? await readFixtureFile(path.resolve(ctx.cwd, target), target) : undefined;
  if (bytes) {
    if (!opts.workflow) throw new UsageError('a fixture does not say which workflow it is for', { hint: `add --workflow <integration>/<workflow>, e.g. alloy compare ${target} --workflow shopify-sync/order-created` });
    const wf = findWorkflow(project, opts.workflow);
    const ref = `${wf.integration}/${wf.name}`;
    let event: unknown;
    try {
      event = JSON.parse(bytes.toString('utf8'));
    } catch (err) {
      throw new UsageError(`${target} is not JSON: ${(err as Error).message}`, { code: 'E_EVENT_JSON', hint: 'a fixture is the trigger event as a JSON file' });
    }
    const [a, b] = await sides(ref);
    const setup: TestSetup = { fake: { app: 'shopify' }, ...placeholders(a, b) };
    const result = await compareDefinitions({ workflow: ref, executionId: 'exec_compare', event, setup, a, b, connectors, settings: project.config.apps });
    return printOne(ctx, result, target);
  }

  const reader = await openLogReader(project.root, opts.to);
  try {
    const record = await getRecord(reader, target);
    const [a, b] = await sides(record.workflow);
    const result = await compareRecord(record, a, b, project, connectors);
    return printOne(ctx, result, target);
  } finally {
    reader.close();
  }
}

/**
 * A fixture's bytes, or undefined when there is no such file (the target is then taken as an
 * execution id). A pipe blocked the command for ever: it, a device or a folder is refused.
 */
async function readFixtureFile(file: string, shown: string): Promise<Buffer | undefined> {
  try {
    return await readDataFile(file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw new UsageError(`cannot read the fixture ${shown}: ${code ?? (err as Error).message}`, { code: 'E_EVENT_FILE', hint: 'a fixture is the trigger event as a regular JSON file' });
  }
}

async function getRecord(reader: LogReader, id: string): Promise<ExecutionRecord> {
  const ex = await reader.getExecution(id);
  if (!ex) throw new NotFoundError(`no execution ${id}`, { code: 'E_EXECUTION_NOT_FOUND', hint: 'list them with `alloy executions`; a fixture file must end in .json' });
  return ex.record;
}

function placeholders(a: CompareSide, b: CompareSide): Pick<TestSetup, 'env' | 'secrets'> {
  const pa = streamPlaceholders(a.def);
  const pb = streamPlaceholders(b.def);
  return { env: { ...pa.env, ...pb.env }, secrets: { ...pa.secrets, ...pb.secrets } };
}

function compareRecord(record: ExecutionRecord, a: CompareSide, b: CompareSide, project: LoadedProject, connectors: ReturnType<typeof createConnectorRegistry>): Promise<Comparison> {
  const setup: TestSetup = {
    answers: answersFromRecord(record),
    ...(record.userId ? { user: record.userId } : {}),
    ...(record.startedAt ? { clock: record.startedAt } : {}),
    ...placeholders(a, b),
  };
  return compareDefinitions({ workflow: record.workflow, executionId: record.id, event: record.event, setup, a, b, connectors, settings: project.config.apps });
}

function parseSince(text: string, now: number): number {
  if (/^\d{4}-\d{2}-\d{2}/.test(text) && !Number.isNaN(Date.parse(text))) return Date.parse(text);
  const days = /^(\d+)d$/.exec(text);
  const ms = days ? Number(days[1]) * 86_400_000 : tryParseDuration(text);
  if (ms !== undefined && typeof ms === 'number') return now - ms;
  throw new UsageError(`--since "${text}" is neither a time nor a duration`, { hint: 'e.g. --since 2026-01-31T00:00:00Z, --since 24h or --since 7d' });
}

async function compareAll(
  ctx: CliContext,
  opts: Record<string, any>,
  project: LoadedProject,
  target: string,
  sides: (ref: string) => Promise<[CompareSide, CompareSide]>,
  connectors: ReturnType<typeof createConnectorRegistry>,
): Promise<number> {
  const wf = findWorkflow(project, target);
  const ref = `${wf.integration}/${wf.name}`;
  const since = opts.since !== undefined ? parseSince(String(opts.since), ctx.now().getTime()) : undefined;
  const [a, b] = await sides(ref);
  const reader = await openLogReader(project.root, opts.to);
  const results: { id: string; verdict: Comparison['verdict']; changedSteps: string[]; status: Comparison['status'] }[] = [];
  try {
    const list = (await reader.listExecutions({ workflow: ref, limit: 1000 })).filter((e) => since === undefined || Date.parse(e.createdAt) >= since);
    for (const e of list) {
      if (!['succeeded', 'failed', 'filtered'].includes(e.status)) continue;
      const r = await compareRecord(await getRecord(reader, e.id), a, b, project, connectors);
      results.push({ id: e.id, verdict: r.verdict, status: r.status, changedSteps: r.steps.filter((s) => s.change !== 'same').map((s) => s.path) });
    }
  } finally {
    reader.close();
  }
  const n = (v: Comparison['verdict']) => results.filter((r) => r.verdict === v).length;
  const summary = { unchanged: n('unchanged'), changed: n('changed'), fails: n('fails') };
  if (ctx.json) ctx.printJson({ ok: summary.fails === 0, workflow: ref, a: a.label, b: b.label, since: since ? new Date(since).toISOString() : null, summary, executions: results });
  else {
    const c = ctx.color;
    ctx.out(c.bold(`${ref}: ${a.label} → ${b.label}`) + c.dim(` (${results.length} stored execution(s)${since ? ` since ${new Date(since).toISOString()}` : ''})`));
    for (const r of results) {
      if (r.verdict === 'unchanged') continue;
      const mark = r.verdict === 'fails' ? c.red('✖ would fail') : c.yellow('~ changed');
      ctx.out(`  ${mark} ${r.id}  ${c.dim(`${r.status.a} → ${r.status.b}`)}${r.changedSteps.length ? c.dim(`  steps: ${r.changedSteps.join(', ')}`) : ''}`);
    }
    ctx.out(`${summary.unchanged} unchanged, ${summary.changed} changed, ${summary.fails} would fail`);
  }
  return summary.fails ? 1 : 0;
}

function printOne(ctx: CliContext, r: Comparison, target: string): number {
  if (ctx.json) {
    ctx.printJson({ ok: r.verdict !== 'fails', target, ...r });
    return r.verdict === 'fails' ? 1 : 0;
  }
  const c = ctx.color;
  const indent = (text: string, n = 6) =>
    text
      .split('\n')
      .map((l) => ' '.repeat(n) + (l.startsWith('- ') ? c.red(l) : l.startsWith('+ ') ? c.green(l) : l))
      .join('\n');
  ctx.out(c.bold(`${r.workflow}: ${r.a} → ${r.b}`) + c.dim(`  (${target})`));
  for (const s of r.steps) {
    if (s.change === 'same') ctx.out(`  ${c.dim(`= step ${s.path}`)}`);
    else if (s.change === 'added') ctx.out(`  ${c.green('+')} step ${s.path} ${c.dim(s.uses ?? '')} runs only in ${r.b}`);
    else if (s.change === 'removed') ctx.out(`  ${c.red('-')} step ${s.path} ${c.dim(s.uses ?? '')} runs only in ${r.a}`);
    else {
      ctx.out(`  ${c.yellow('~')} step ${s.path} ${c.dim(s.uses ?? '')}`);
      for (const f of s.fields) {
        ctx.out(`    ${f.field}:`);
        ctx.out(indent(f.diff.split('\n').slice(3).join('\n')));
      }
    }
  }
  if (r.requests.diff) {
    ctx.out(`  ${c.yellow('~')} requests:`);
    ctx.out(indent(r.requests.diff.split('\n').slice(3).join('\n')));
  }
  if (r.stream.diff) {
    ctx.out(`  ${c.yellow('~')} stream payload:`);
    ctx.out(indent(r.stream.diff.split('\n').slice(3).join('\n')));
  }
  const status = r.status.a === r.status.b ? r.status.b : `${r.status.a} → ${r.status.b}`;
  const verdict = r.verdict === 'unchanged' ? c.green('unchanged') : r.verdict === 'changed' ? c.yellow('changed') : c.red('would fail');
  ctx.out(`${verdict}: ${status}${r.verdict === 'fails' && r.error?.b ? ` (${r.error.b})` : ''}`);
  return r.verdict === 'fails' ? 1 : 0;
}
