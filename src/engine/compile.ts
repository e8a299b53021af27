/**
 * Compiles a workflow definition once: every template (`with`, `when`, `if`, branch case
 * conditions, `each`, `stop`, `delay`, stream url/secret) becomes a CompiledValue, retry
 * policies and durations are resolved. Cached per definition object.
 */
import {
  compileValue,
  ExpressionSyntaxError,
  TemplateSyntaxError,
  type CompiledValue,
} from '../core/expressions.js';
import { RESERVED_STEP_IDS, stepKind, type OnError, type Step, type WorkflowDef } from '../core/model.js';
import { AlloyError } from '../errors.js';
import { parseDuration, tryParseDuration } from './duration.js';
import { resolveRetryPolicy, STEP_RETRY_DEFAULTS, STREAM_RETRY_DEFAULTS, type ResolvedRetryPolicy } from './retry.js';

interface CompiledStepBase {
  id: string;
  name?: string;
  /** JSON pointer of the step in the workflow file, e.g. `/steps/1/then/0`. */
  pointer: string;
  when?: CompiledValue;
  retry: ResolvedRetryPolicy;
  timeoutMs?: number;
  onError: 'fail' | 'continue' | { steps: CompiledStep[] };
}

export interface CompiledActionStep extends CompiledStepBase {
  kind: 'action';
  uses: string;
  /** `transform`, `http`, or the connector name of `connector/action`. */
  app: string;
  action: string;
  with: CompiledValue;
}
export interface CompiledIfStep extends CompiledStepBase {
  kind: 'if';
  if: CompiledValue;
  then: CompiledStep[];
  else: CompiledStep[];
}
export interface CompiledBranchStep extends CompiledStepBase {
  kind: 'branch';
  mode: 'first' | 'all';
  cases: { name?: string; when: CompiledValue; steps: CompiledStep[] }[];
  default: CompiledStep[];
}
export interface CompiledEachStep extends CompiledStepBase {
  kind: 'each';
  each: CompiledValue;
  as: string;
  concurrency: number;
  stop?: CompiledValue;
  steps: CompiledStep[];
}
export interface CompiledDelayStep extends CompiledStepBase {
  kind: 'delay';
  /** Fixed delay, or a template rendered at run time and parsed as a duration. */
  delay: number | CompiledValue;
}
export interface CompiledStopStep extends CompiledStepBase {
  kind: 'stop';
  stop: CompiledValue;
}

export interface CompiledCodeStep extends CompiledStepBase {
  kind: 'code';
  code: string;
}

export type CompiledStep =
  | CompiledActionStep
  | CompiledIfStep
  | CompiledBranchStep
  | CompiledEachStep
  | CompiledDelayStep
  | CompiledStopStep
  | CompiledCodeStep;

export interface CompiledStream {
  url: CompiledValue;
  secret: CompiledValue;
  retry: ResolvedRetryPolicy;
  timeoutMs?: number;
}

export interface CompiledWorkflow {
  def: WorkflowDef;
  name: string;
  steps: CompiledStep[];
  stream?: CompiledStream;
  timeoutMs?: number;
}

/** A template that does not compile (validation normally reports these first, with a location). */
export class WorkflowCompileError extends AlloyError {
  constructor(message: string, readonly pointer: string, cause?: unknown) {
    super('E_COMPILE', `${pointer}: ${message}`, {
      hint: 'Run `alloy validate` to see the problem with its file and line.',
      exitCode: 2,
      cause,
      details: { pointer },
    });
  }
}

const cache = new WeakMap<WorkflowDef, CompiledWorkflow>();

export function compileWorkflow(def: WorkflowDef): CompiledWorkflow {
  const hit = cache.get(def);
  if (hit) return hit;
  const compiled: CompiledWorkflow = {
    def,
    name: def.name,
    steps: compileSteps(def.steps ?? [], '/steps'),
    stream: def.stream
      ? {
          url: compileAt(def.stream.url, '/stream/url'),
          secret: compileAt(def.stream.secret, '/stream/secret'),
          retry: resolveRetryPolicy(def.stream.retry, STREAM_RETRY_DEFAULTS, '/stream/retry'),
          timeoutMs: def.stream.timeout === undefined ? undefined : parseDuration(def.stream.timeout, '/stream/timeout'),
        }
      : undefined,
    timeoutMs: def.timeout === undefined ? undefined : parseDuration(def.timeout, '/timeout'),
  };
  cache.set(def, compiled);
  return compiled;
}

function compileAt(value: unknown, pointer: string): CompiledValue {
  try {
    return compileValue(value);
  } catch (err) {
    if (err instanceof TemplateSyntaxError || err instanceof ExpressionSyntaxError) {
      throw new WorkflowCompileError(err.message, pointer, err);
    }
    throw err;
  }
}

/** A condition-like field: a template string, or a literal kept as is (like every template field). */
function compileCondition(value: unknown, pointer: string): CompiledValue {
  return compileAt(value, pointer);
}

export function compileSteps(steps: Step[], pointer: string): CompiledStep[] {
  return steps.map((step, i) => compileStep(step, `${pointer}/${i}`));
}

function compileStep(step: Step, pointer: string): CompiledStep {
  // Validation reports these first; a definition that skipped it (another client's release in a
  // store) must not run with a step that the engine would take as already run.
  if (RESERVED_STEP_IDS.has(step.id)) throw new WorkflowCompileError(`step id "${step.id}" is reserved (a built-in property name of JavaScript objects)`, `${pointer}/id`);
  const s = step as unknown as Record<string, unknown>;
  const base: CompiledStepBase = {
    id: step.id,
    name: step.name,
    pointer,
    when: step.when === undefined ? undefined : compileCondition(step.when, `${pointer}/when`),
    retry: resolveRetryPolicy(step.retry, STEP_RETRY_DEFAULTS, `${pointer}/retry`),
    timeoutMs: step.timeout === undefined ? undefined : parseDuration(step.timeout, `${pointer}/timeout`),
    onError: compileOnError(step.onError, `${pointer}/onError`),
  };
  const kind = stepKind(step);
  switch (kind) {
    case 'action': {
      const uses = String(s.uses);
      const slash = uses.indexOf('/');
      return {
        ...base,
        kind,
        uses,
        app: slash < 0 ? uses : uses.slice(0, slash),
        action: slash < 0 ? (uses === 'http' ? 'request' : uses) : uses.slice(slash + 1),
        with: compileAt(s.with ?? {}, `${pointer}/with`),
      };
    }
    case 'if':
      return {
        ...base,
        kind,
        if: compileCondition(s.if, `${pointer}/if`),
        then: compileSteps((s.then as Step[]) ?? [], `${pointer}/then`),
        else: compileSteps((s.else as Step[]) ?? [], `${pointer}/else`),
      };
    case 'branch': {
      const b = (s.branch ?? {}) as { mode?: 'first' | 'all'; cases?: { name?: string; when: unknown; steps: Step[] }[]; default?: Step[] };
      return {
        ...base,
        kind,
        mode: b.mode ?? 'first',
        cases: (b.cases ?? []).map((c, i) => ({
          name: c.name,
          when: compileCondition(c.when, `${pointer}/branch/cases/${i}/when`),
          steps: compileSteps(c.steps ?? [], `${pointer}/branch/cases/${i}/steps`),
        })),
        default: compileSteps(b.default ?? [], `${pointer}/branch/default`),
      };
    }
    case 'each':
      return {
        ...base,
        kind,
        each: compileCondition(s.each, `${pointer}/each`),
        as: typeof s.as === 'string' && s.as !== '' ? s.as : 'item',
        concurrency: Math.max(1, Math.floor(Number(s.concurrency ?? 1)) || 1),
        stop: s.stop === undefined ? undefined : compileCondition(s.stop, `${pointer}/stop`),
        steps: compileSteps((s.steps as Step[]) ?? [], `${pointer}/steps`),
      };
    case 'delay': {
      const fixed = tryParseDuration(s.delay);
      return { ...base, kind, delay: fixed ?? compileAt(s.delay, `${pointer}/delay`) };
    }
    case 'stop':
      return { ...base, kind, stop: compileAt(s.stop, `${pointer}/stop`) };
    case 'code':
      return { ...base, kind, code: String(s.code) };
    default:
      throw new WorkflowCompileError(`step "${step.id}" has no kind (uses, if, branch, each, delay, stop or code)`, pointer);
  }
}

function compileOnError(onError: OnError | undefined, pointer: string): CompiledStepBase['onError'] {
  if (onError === undefined || onError === 'fail') return 'fail';
  if (onError === 'continue') return 'continue';
  return { steps: compileSteps(onError.steps ?? [], `${pointer}/steps`) };
}
