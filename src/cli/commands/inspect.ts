/**
 * `alloy inspect [integration[/workflow]]`: what the project defines — integrations,
 * workflows, their triggers and step trees — as a tree, or as JSON with --json.
 */
import type { CliContext } from '../context.js';
import { NotFoundError } from '../../errors.js';
import { childStepLists, stepKind, type Step, type Trigger } from '../../core/model.js';
import type { LoadedProject } from '../../core/project-types.js';
import { findWorkflow, loadValidProject } from '../load-project.js';
import { parseSchedule } from '../../core/schedule.js';

export function describeTrigger(t: Trigger): string {
  const r = t as unknown as Record<string, string>;
  if ('app' in r) return `${r.app} ${'poll' in r ? 'poll' : 'webhook'} ${r.event}`;
  if ('webhook' in r) return `webhook /v1/webhooks/custom/${r.webhook}`;
  if ('schedule' in r) return `schedule ${parseSchedule(r.schedule).spec?.label ?? JSON.stringify(r.schedule)}`;
  return `event ${r.event}`;
}

export function describeStep(step: Step): string {
  const s = step as unknown as Record<string, unknown>;
  switch (stepKind(step)) {
    case 'action':
      return String(s.uses);
    case 'if':
      return `if ${String(s.if)}`;
    case 'branch':
      return `branch (${(s.branch as { mode?: string }).mode ?? 'first'})`;
    case 'each':
      return `each ${String(s.each)}`;
    case 'delay':
      return `delay ${String(s.delay)}`;
    case 'stop':
      return `stop ${String(s.stop)}`;
    case 'code':
      return `code (${String(s.code).split('\n').length} lines)`;
    default:
      return '?';
  }
}

function stepLines(steps: Step[], indent: string, dim: (s: string) => string): string[] {
  const out: string[] = [];
  for (const step of steps) {
    out.push(`${indent}${step.id}  ${dim(describeStep(step))}`);
    for (const child of childStepLists(step)) {
      out.push(`${indent}  ${dim(child.pointer.slice(1).replace(/\//g, ' '))}`);
      out.push(...stepLines(child.steps, `${indent}    `, dim));
    }
  }
  return out;
}

export function projectSummary(project: LoadedProject) {
  return {
    name: project.config.name,
    root: project.root,
    integrations: project.integrations.map((i) => ({
      name: i.name,
      app: i.def.app,
      file: i.file,
      workflows: i.workflows.map((w) => ({
        name: w.name,
        file: w.file,
        trigger: describeTrigger(w.def.trigger),
        steps: w.def.steps.map((s) => ({ id: s.id, kind: describeStep(s) })),
        streams: Boolean(w.def.stream),
      })),
    })),
    connectors: project.connectors.map((c) => ({ name: c.def.name, file: c.file, actions: Object.keys(c.def.actions ?? {}) })),
  };
}

export default async function inspectCommand(ctx: CliContext, args: string[]): Promise<number> {
  const project = await loadValidProject(ctx);
  const ref = args[0];
  let integrations = project.integrations;
  if (ref && !ref.includes('/')) {
    integrations = integrations.filter((i) => i.name === ref);
    if (integrations.length === 0) {
      throw new NotFoundError(`no integration "${ref}"`, { hint: `integrations: ${project.integrations.map((i) => i.name).join(', ')}` });
    }
  }
  const only = ref?.includes('/') ? findWorkflow(project, ref) : undefined;
  if (ctx.json) {
    const summary = projectSummary({ ...project, integrations });
    if (only) ctx.printJson(only.def);
    else ctx.printJson(summary);
    return 0;
  }
  const c = ctx.color;
  if (!only) ctx.out(`${c.bold(project.config.name)}  ${c.dim(project.root)}`);
  for (const i of integrations) {
    const workflows = only ? i.workflows.filter((w) => w === only) : i.workflows;
    if (workflows.length === 0) continue;
    ctx.out(`${c.cyan(i.name)}  ${c.dim(`app ${i.def.app} · ${i.file}`)}`);
    for (const w of workflows) {
      ctx.out(`  ${c.bold(w.name)}  ${c.dim(`on ${describeTrigger(w.def.trigger)}${w.def.stream ? ' · streams execution data' : ''}`)}`);
      for (const line of stepLines(w.def.steps, '    ', c.dim)) ctx.out(line);
    }
  }
  return 0;
}
