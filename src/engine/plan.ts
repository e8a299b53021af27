/**
 * The pure plan: what would run for an event, with resolved inputs, calling nothing.
 * `transform` steps are pure, so the plan computes their outputs and later steps see them;
 * connector and http outputs are unknown, so a step reading them is marked as depending on
 * them, and a condition that depends on them plans every path it could take.
 * `alloy run --dry-run` prints this.
 */
import { expressionRefs, type CompiledExpression, type CompiledValue } from '../core/expressions.js';
import type { StepKind } from '../core/model.js';
import type { CompiledStep, CompiledWorkflow } from './compile.js';
import { tryParseDuration } from './duration.js';
import { isTruthy, renderAt } from './evaluate.js';
import { createRedactor, redactActionInput } from './redact.js';

export interface PlannedStep {
  path: string;
  id: string;
  name?: string;
  kind: StepKind;
  uses?: string;
  /** Nesting level, for printing. */
  depth: number;
  /** `run`: would run; `skip`: its `when` is false; `maybe`: depends on outputs known only at run time. */
  will: 'run' | 'skip' | 'maybe';
  /** Resolved inputs (secret-looking keys redacted). Unknown parts are left out. */
  inputs?: unknown;
  /** For transforms, the value it would produce. */
  output?: unknown;
  /** Step ids whose run-time outputs this step reads. */
  dependsOn?: string[];
  /** The path taken (if/branch) or the items (each). */
  decision?: string;
  /** An expression that fails for this event. */
  error?: string;
}

export interface ExecutionPlan {
  workflow: string;
  event: unknown;
  steps: PlannedStep[];
  /** `filtered` when a `stop` step is certain to be reached. */
  outcome: 'run' | 'filtered';
  reason?: string;
  /** Where the execution data would be streamed (the url template; it is resolved at run time). */
  stream?: { url: string };
}

export interface PlanOptions {
  userId?: string;
  executionId?: string;
  /** ISO time shown as `execution.startedAt`. */
  startedAt?: string;
  /** Items of an `each` planned one by one; more are summarised. Default 20. */
  maxItems?: number;
}

interface PlanFrame {
  steps: Record<string, { output?: unknown }>;
  vars: Record<string, unknown>;
  prefix: string;
  depth: number;
  /** False inside a path that may not be taken. */
  certain: boolean;
}

class PlanStop extends Error {
  constructor(readonly reason: string) {
    super(reason);
  }
}

export async function plan(compiled: CompiledWorkflow, event: unknown, options: PlanOptions = {}): Promise<ExecutionPlan> {
  const out: ExecutionPlan = { workflow: compiled.name, event, steps: [], outcome: 'run' };
  if (compiled.def.stream) out.stream = { url: String(compiled.def.stream.url) };
  const planner = new Planner(compiled, event, options, out.steps);
  try {
    await planner.steps(compiled.steps, { steps: {}, vars: {}, prefix: '', depth: 0, certain: true });
  } catch (err) {
    if (!(err instanceof PlanStop)) throw err;
    out.outcome = 'filtered';
    out.reason = err.reason;
  }
  return out;
}

class Planner {
  private readonly unknown = new Set<string>();
  private readonly base: Record<string, unknown>;
  private readonly redactor = createRedactor();

  constructor(
    private readonly compiled: CompiledWorkflow,
    event: unknown,
    private readonly options: PlanOptions,
    private readonly out: PlannedStep[],
  ) {
    this.base = {
      event,
      user: { id: options.userId },
      execution: { id: options.executionId ?? 'dry-run', workflow: compiled.name, startedAt: options.startedAt },
    };
  }

  async steps(steps: CompiledStep[], frame: PlanFrame): Promise<void> {
    for (const s of steps) await this.step(s, frame);
  }

  /** Unknown step ids a compiled value reads. */
  private dependsOn(value: CompiledValue | undefined): string[] {
    if (!value || this.unknown.size === 0) return [];
    const ids = new Set<string>();
    const visit = (v: CompiledValue) => {
      if (v.kind === 'template') {
        for (const p of v.template.parts) {
          if ('kind' in p) continue;
          for (const ref of expressionRefs(p as CompiledExpression).steps) if (this.unknown.has(ref.id)) ids.add(ref.id);
        }
      } else if (v.kind === 'array') v.items.forEach(visit);
      else if (v.kind === 'object') v.entries.forEach(([, x]) => visit(x));
    };
    visit(value);
    return [...ids];
  }

  /** Renders, turning a failure into the step's `error` (the plan keeps going). */
  private async render(value: CompiledValue, frame: PlanFrame, entry: PlannedStep, field: string): Promise<unknown> {
    try {
      return await renderAt(value, { ...this.base, steps: frame.steps, ...frame.vars }, { step: entry.path, field });
    } catch (err) {
      entry.error ??= (err as Error).message;
      return undefined;
    }
  }

  private async step(step: CompiledStep, frame: PlanFrame): Promise<void> {
    await this.stepBody(step, frame);
    // onError steps run only if the step fails: planned as `maybe`, with `error` unknown.
    if (typeof step.onError !== 'object') return;
    const own = this.out.find((s) => s.path === frame.prefix + step.id);
    if (own?.will === 'skip') return;
    await this.steps(step.onError.steps, { ...frame, depth: frame.depth + 1, certain: false, vars: { ...frame.vars, error: undefined } });
  }

  private async stepBody(step: CompiledStep, frame: PlanFrame): Promise<void> {
    const path = frame.prefix + step.id;
    const entry: PlannedStep = { path, id: step.id, kind: step.kind, depth: frame.depth, will: frame.certain ? 'run' : 'maybe' };
    if (step.name !== undefined) entry.name = step.name;
    if (step.kind === 'action') entry.uses = step.uses;
    this.out.push(entry);
    const addDeps = (ids: string[]) => {
      if (ids.length === 0) return;
      entry.dependsOn = [...new Set([...(entry.dependsOn ?? []), ...ids])];
    };

    let certain = frame.certain;
    if (step.when) {
      const deps = this.dependsOn(step.when);
      addDeps(deps);
      if (deps.length > 0) {
        entry.will = 'maybe';
        certain = false;
      } else if (!isTruthy(await this.render(step.when, frame, entry, '/when'))) {
        entry.will = 'skip';
        frame.steps[step.id] = {};
        return;
      }
    }
    const child: PlanFrame = { ...frame, depth: frame.depth + 1, certain };

    switch (step.kind) {
      case 'action': {
        addDeps(this.dependsOn(step.with));
        const inputs = await this.render(step.with, frame, entry, '/with');
        entry.inputs = redactActionInput(this.redactor, inputs);
        if (step.uses === 'transform' && !entry.dependsOn) {
          entry.output = inputs;
          frame.steps[step.id] = { output: inputs };
        } else {
          this.unknown.add(step.id);
          frame.steps[step.id] = {};
        }
        return;
      }
      case 'if': {
        const deps = this.dependsOn(step.if);
        addDeps(deps);
        if (deps.length > 0) {
          entry.decision = 'then or else (decided at run time)';
          await this.steps(step.then, { ...child, certain: false });
          await this.steps(step.else, { ...child, certain: false });
          return;
        }
        const cond = isTruthy(await this.render(step.if, frame, entry, '/if'));
        entry.decision = cond ? 'then' : step.else.length > 0 ? 'else' : 'nothing (condition false)';
        await this.steps(cond ? step.then : step.else, child);
        return;
      }
      case 'branch': {
        const matched: number[] = [];
        let open = false;
        for (let i = 0; i < step.cases.length; i++) {
          const deps = this.dependsOn(step.cases[i].when);
          addDeps(deps);
          if (deps.length > 0) {
            open = true;
            matched.push(i);
            continue;
          }
          if (isTruthy(await this.render(step.cases[i].when, frame, entry, `/branch/cases/${i}/when`))) {
            matched.push(i);
            if (step.mode === 'first' && !open) break;
          }
        }
        const names = matched.map((i) => step.cases[i].name ?? String(i));
        entry.decision = open
          ? `decided at run time among: ${[...names, 'default'].join(', ')}`
          : matched.length > 0
            ? names.join(', ')
            : 'default';
        for (const i of matched) await this.steps(step.cases[i].steps, open ? { ...child, certain: false } : child);
        if (matched.length === 0 || open) await this.steps(step.default, open ? { ...child, certain: false } : child);
        return;
      }
      case 'each': {
        const deps = this.dependsOn(step.each);
        addDeps(deps);
        const list = deps.length > 0 ? undefined : await this.render(step.each, frame, entry, '/each');
        if (deps.length > 0 || list === undefined) {
          entry.decision = 'items known at run time';
          const iframe = this.iteration(step.as, undefined, '*', path, frame, { ...child, certain: false });
          await this.steps(step.steps, iframe);
          return;
        }
        const items = Array.isArray(list) ? list : list === null ? [] : [list];
        const max = this.options.maxItems ?? 20;
        let planned = 0;
        for (let i = 0; i < items.length && i < max; i++) {
          const iframe = this.iteration(step.as, items[i], String(i), path, frame, child);
          if (step.stop) {
            const sdeps = this.dependsOn(step.stop);
            addDeps(sdeps);
            if (sdeps.length === 0 && isTruthy(await this.render(step.stop, iframe, entry, '/stop'))) break;
          }
          await this.steps(step.steps, iframe);
          planned++;
        }
        entry.decision = `${planned} of ${items.length} item(s)${items.length > max ? ` (first ${max} planned)` : ''}`;
        return;
      }
      case 'delay': {
        const ms = typeof step.delay === 'number' ? step.delay : tryParseDuration(await this.render(step.delay, frame, entry, '/delay'));
        entry.inputs = { ms };
        return;
      }
      case 'stop': {
        addDeps(this.dependsOn(step.stop));
        const reason = await this.render(step.stop, frame, entry, '/stop');
        const text = typeof reason === 'string' ? reason : JSON.stringify(reason ?? null);
        entry.inputs = { reason: text };
        if (certain) throw new PlanStop(text);
        return;
      }
      case 'code': {
        // The plan calls nothing and runs no user code: the output is unknown until run.
        entry.inputs = { lines: step.code.split('\n').length };
        return;
      }
    }
  }

  private iteration(as: string, item: unknown, index: string, path: string, frame: PlanFrame, child: PlanFrame): PlanFrame {
    return {
      ...child,
      steps: { ...frame.steps },
      vars: { ...frame.vars, [as]: item, index: index === '*' ? undefined : Number(index) },
      prefix: `${path}[${index}].`,
    };
  }
}
