/**
 * Meaning checks for a workflow that passed (or mostly passed) its schema: step kinds and
 * their keys, duplicate ids, connectors and actions, action inputs against the action's
 * input schema, expression syntax at its position in the file, and references to unknown,
 * later or enclosing steps. Every problem is collected; nothing throws.
 */
import type { ErrorObject } from 'ajv';
import { closest, makeDiagnostic, type Diagnostic } from './diagnostics.js';
import {
  compileTemplate,
  type CompiledTemplate,
  type ExpressionRefs,
  expressionRefs,
  ExpressionSyntaxError,
  forEachString,
  hasTemplate,
  TemplateSyntaxError,
} from './expressions.js';
import { childStepLists, RESERVED_STEP_IDS, type ConnectorManifest, type IntegrationDef, type Step } from './model.js';
import { MODEL_KEYS } from './model-keys.js';
import { parseSchedule } from './schedule.js';
import { mapSchemaErrors, userSchemaProblem, userValidator } from './schema-check.js';
import { codeOffset, keyRange, rangeAt, stringOffset, type SourceFile } from './source-file.js';

/** Steps built into the engine rather than provided by a connector. */
export const BUILTIN_STEP_TYPES = ['transform', 'http'] as const;

/** Connectors by name: built-ins plus the project's connectors/*.yaml. */
export type ConnectorCatalog = ReadonlyMap<string, ConnectorManifest>;

/** Names expressions may read at the top level. `env`/`secrets` only in stream settings. */
const BASE_ROOTS = ['event', 'steps', 'user', 'execution'];
const STREAM_ROOTS = [...BASE_ROOTS, 'env', 'secrets'];

const KIND_KEYS = ['uses', 'if', 'branch', 'each', 'delay', 'stop', 'code'] as const;
/** Keys that only make sense with one kind of step. */
const KIND_ONLY_KEYS: Record<string, string[]> = {
  with: ['uses'],
  then: ['if'],
  else: ['if'],
  as: ['each'],
  concurrency: ['each'],
  steps: ['each'],
};

interface StepEntry {
  step: Step;
  pointer: string;
  /** Pre-order position: a step may read the outputs of steps before it. */
  order: number;
  ancestors: string[];
  /** Extra names in scope: each's `as` and `index`, onError's `error`. */
  scope: string[];
}

/** The first syntax error of a code step's JavaScript (1-based line and column in the code). */
export type CodeChecker = (code: string) => { message: string; line: number; column: number } | undefined;

export interface WorkflowCheckContext {
  integration?: IntegrationDef;
  catalog: ConnectorCatalog;
  /** Syntax check for `code:` steps (the loader passes it only when a workflow has one). */
  checkCode?: CodeChecker;
}

/** True when a parsed workflow holds a `code:` step anywhere (so the checker is worth loading). */
export function workflowHasCode(def: unknown): boolean {
  const walk = (steps: unknown): boolean =>
    Array.isArray(steps) &&
    steps.some((s) => s && typeof s === 'object' && (typeof (s as { code?: unknown }).code === 'string' || childStepLists(s as Step).some((c) => walk(c.steps))));
  return !!def && typeof def === 'object' && walk((def as { steps?: unknown }).steps);
}

export function checkWorkflow(source: SourceFile, ctx: WorkflowCheckContext): Diagnostic[] {
  const out: Diagnostic[] = [];
  const def = source.value as Record<string, unknown> | undefined;
  if (!def || typeof def !== 'object' || Array.isArray(def)) return out;
  const diag: Report = Object.assign(
    (pointer: string, code: string, message: string, hint?: string, range?: [number, number]) => {
      out.push(makeDiagnostic(source.file, source.index, range ?? rangeAt(source, pointer), 'error', code, message, hint));
    },
    {
      push: (d: Diagnostic) => void out.push(d),
      warn: (pointer: string, code: string, message: string, hint?: string, range?: [number, number]) => {
        out.push(makeDiagnostic(source.file, source.index, range ?? rangeAt(source, pointer), 'warning', code, message, hint));
      },
      eventSchema: triggerSchema(def.trigger, ctx),
    },
  );

  checkTrigger(source, def.trigger, ctx, diag);

  const entries = collectSteps(Array.isArray(def.steps) ? (def.steps as Step[]) : [], '/steps', [], []);
  const byId = new Map<string, StepEntry>();
  for (const entry of entries) {
    const id = (entry.step as { id?: unknown }).id;
    if (typeof id !== 'string') continue;
    if (RESERVED_STEP_IDS.has(id)) {
      // The engine keeps steps by id in plain objects, where `steps.constructor` already exists:
      // such a step was taken for one already run and silently never ran.
      diag(`${entry.pointer}/id`, 'E_STEP_ID_RESERVED', `step id "${id}" is reserved (a built-in property name of JavaScript objects)`, 'rename the step, e.g. add a prefix');
    }
    const first = byId.get(id);
    if (first) {
      diag(
        `${entry.pointer}/id`,
        'E_STEP_DUPLICATE_ID',
        `duplicate step id "${id}" (first used at line ${source.index.position(rangeAt(source, `${first.pointer}/id`)?.[0] ?? 0).line})`,
        'give every step in the workflow a unique id',
      );
    } else byId.set(id, entry);
  }

  for (const entry of entries) checkStep(source, entry, byId, ctx, diag);

  if (def.stream && typeof def.stream === 'object') {
    for (const key of ['url', 'secret'] as const) {
      const value = (def.stream as Record<string, unknown>)[key];
      if (typeof value === 'string') checkTemplateString(source, value, `/stream/${key}`, STREAM_ROOTS, undefined, byId, diag);
    }
  }
  if (def.trigger && typeof def.trigger === 'object') {
    const verify = (def.trigger as Record<string, unknown>).verify as Record<string, unknown> | undefined;
    if (verify && typeof verify.secret === 'string') {
      checkTemplateString(source, verify.secret, '/trigger/verify/secret', ['env', 'secrets'], undefined, byId, diag);
    }
  }
  return out;
}

interface Report {
  (pointer: string, code: string, message: string, hint?: string, range?: [number, number]): void;
  /** Adds an already located diagnostic. */
  push(d: Diagnostic): void;
  /** Reports a warning. */
  warn(pointer: string, code: string, message: string, hint?: string, range?: [number, number]): void;
  /** The JSON Schema of the trigger's event, when it has one: `event.<path>` is checked against it. */
  eventSchema?: JsonSchemaLike;
}

type JsonSchemaLike = { type?: unknown; properties?: Record<string, JsonSchemaLike>; items?: unknown; additionalProperties?: unknown; [k: string]: unknown };

/** The event's schema: a custom event's `schema`, or the connector's payload schema for an app event. */
function triggerSchema(trigger: unknown, ctx: WorkflowCheckContext): JsonSchemaLike | undefined {
  if (!trigger || typeof trigger !== 'object') return undefined;
  const t = trigger as { event?: unknown; app?: unknown; schema?: unknown };
  if (typeof t.event !== 'string') return undefined;
  if (typeof t.app === 'string') {
    const triggers = (ctx.catalog.get(t.app) as { triggers?: Record<string, { payload?: unknown }> } | undefined)?.triggers;
    const payload = triggers?.[t.event]?.payload;
    return payload && typeof payload === 'object' ? (payload as JsonSchemaLike) : undefined;
  }
  return t.schema && typeof t.schema === 'object' ? (t.schema as JsonSchemaLike) : undefined;
}

/**
 * Follows `event.a.b` through the schema: an object's `properties` (through an array's
 * `items`, as JSONata maps over arrays). Returns the first name the schema does not have, with
 * the names it does; undefined when the path fits or the schema stops saying (no
 * `properties`, or composition keywords).
 */
function unknownEventProperty(schema: JsonSchemaLike, path: { name: string; offset: number }[]): { name: string; offset: number; known: string[]; at: string } | undefined {
  let s: JsonSchemaLike | undefined = schema;
  const seen: string[] = ['event'];
  for (const seg of path) {
    while (s && (s.type === 'array' || (Array.isArray(s.type) && s.type.includes('array'))) && s.items && typeof s.items === 'object' && !Array.isArray(s.items)) s = s.items as JsonSchemaLike;
    if (!s || typeof s !== 'object' || !s.properties || typeof s.properties !== 'object') return undefined;
    if (['$ref', 'oneOf', 'anyOf', 'allOf', 'patternProperties', 'if'].some((k) => k in s!)) return undefined;
    if (s.additionalProperties !== undefined && s.additionalProperties !== false) return undefined;
    const next: JsonSchemaLike | undefined = s.properties[seg.name];
    if (!next) return { ...seg, known: Object.keys(s.properties), at: seen.join('.') };
    seen.push(seg.name);
    s = next;
  }
  return undefined;
}

function checkTrigger(source: SourceFile, trigger: unknown, ctx: WorkflowCheckContext, diag: Report): void {
  if (!trigger || typeof trigger !== 'object' || Array.isArray(trigger)) return;
  const t = trigger as Record<string, unknown>;
  const kinds = ['app', 'webhook', 'schedule'].filter((k) => k in t);
  if (kinds.length === 0 && !('event' in t)) {
    diag('/trigger', 'E_TRIGGER_KIND', 'trigger names no event', 'use {event, schema} for a custom event, {app, event} for an app webhook, {webhook} or {schedule}');
    return;
  }
  if (kinds.length > 1) {
    diag('/trigger', 'E_TRIGGER_KIND', `trigger mixes ${kinds.join(' and ')}`, 'a workflow has exactly one trigger; split it into two workflows');
    return;
  }
  if ('app' in t) {
    if ('schema' in t) diag('/trigger/schema', 'E_TRIGGER_KEY', 'an app trigger takes its payload schema from the connector', 'remove "schema", or use a custom event trigger');
    if (!('event' in t)) diag('/trigger', 'E_TRIGGER_KIND', 'app trigger needs "event", e.g. orders/create', 'add event: <topic>');
    const app = String(t.app);
    if (ctx.integration && typeof ctx.integration.app === 'string' && app !== ctx.integration.app) {
      diag('/trigger/app', 'E_TRIGGER_APP_MISMATCH', `trigger app "${app}" does not match the integration's app "${ctx.integration.app}"`, `move this workflow to an integration for ${app}, or change app to ${ctx.integration.app}`);
    }
    const connector = ctx.catalog.get(app);
    if (!connector) {
      const guess = closest(app, ctx.catalog.keys());
      diag('/trigger/app', 'E_UNKNOWN_CONNECTOR', `unknown app "${app}"`, guess ? `did you mean "${guess}"?` : `known apps: ${[...ctx.catalog.keys()].join(', ')}`);
    } else if (typeof t.event === 'string') {
      const topics = Object.keys(connector.triggers ?? {});
      if (!topics.includes(t.event)) {
        const guess = closest(t.event, topics);
        diag('/trigger/event', 'E_UNKNOWN_TRIGGER', `${app} has no trigger "${t.event}"`, guess ? `did you mean "${guess}"?` : `${app} triggers: ${topics.join(', ') || 'none'}`);
      }
    }
  } else if ('event' in t && 'verify' in t && !('webhook' in t)) {
    diag('/trigger/verify', 'E_TRIGGER_KEY', '"verify" applies to webhook triggers only', 'use {webhook: <name>, verify: ...}');
  }
  if ('schedule' in t && ('event' in t || 'schema' in t)) {
    diag('/trigger', 'E_TRIGGER_KIND', 'a schedule trigger takes no event or schema', 'remove them, or use a custom event trigger');
  }
  if ('schedule' in t) {
    const { problem } = parseSchedule(t.schedule);
    if (problem) diag(`/trigger/schedule${problem.at}`, 'E_SCHEDULE_INVALID', problem.message, problem.hint);
  }
  if ('poll' in t) {
    const app = typeof t.app === 'string' ? ctx.catalog.get(t.app) : undefined;
    const trig = app && typeof t.event === 'string' ? app.triggers?.[t.event] : undefined;
    if (!('app' in t)) diag('/trigger/poll', 'E_TRIGGER_KEY', '"poll" applies to app triggers only', 'use {app, event, poll}');
    else if (app && trig && !trig.poll) diag('/trigger/poll', 'E_TRIGGER_KEY', `${String(t.app)} ${String(t.event)} arrives by webhook and is not polled`, 'remove poll, or pick a trigger the connector polls');
    const poll = t.poll as Record<string, unknown> | undefined;
    if (poll && typeof poll === 'object') {
      if (poll.every !== undefined && parseSchedule({ every: poll.every }).problem) {
        diag('/trigger/poll/every', 'E_POLL_INVALID', `every: ${JSON.stringify(poll.every)} is not an interval of at least 1s`, 'write an interval like 30s, 5m or 1h');
      }
      if (typeof poll.since === 'string' && poll.since !== 'now' && Number.isNaN(Date.parse(poll.since))) {
        diag('/trigger/poll/since', 'E_POLL_INVALID', `since: ${JSON.stringify(poll.since)} is neither "now" nor an ISO time`, 'write since: now, or since: 2026-01-01T00:00:00Z');
      }
    }
  }
  if (t.schema && typeof t.schema === 'object') {
    const problem = triggerSchemaProblem(t.schema as object);
    if (problem) diag('/trigger/schema', 'E_TRIGGER_SCHEMA_INVALID', `trigger schema is not a valid JSON Schema: ${problem}`, 'fix the schema (draft 2020-12)');
  }
}

/**
 * Checks a trigger schema against the draft 2020-12 meta-schema. Validation does not
 * compile it (code generation per workflow dominated validate's time); the runtime
 * compiles it once when it loads the workflow.
 */
function triggerSchemaProblem(schema: object): string | undefined {
  return userSchemaProblem(schema);
}

/** Compiled templates by source text: the same mapping appears in many workflows. */
const templateCache = new Map<string, { compiled?: CompiledTemplate; refs?: ExpressionRefs[]; error?: unknown }>();
const TEMPLATE_CACHE_LIMIT = 20_000;

function compileCached(text: string): { compiled?: CompiledTemplate; refs?: ExpressionRefs[]; error?: unknown } {
  let hit = templateCache.get(text);
  if (!hit) {
    try {
      const compiled = compileTemplate(text);
      hit = { compiled, refs: compiled.parts.map((p) => ('kind' in p ? { roots: new Set<string>(), steps: [], eventPaths: [] } : expressionRefs(p))) };
    } catch (error) {
      hit = { error };
    }
    if (templateCache.size >= TEMPLATE_CACHE_LIMIT) templateCache.clear();
    templateCache.set(text, hit);
  }
  return hit;
}

function collectSteps(steps: Step[], pointer: string, ancestors: string[], scope: string[], acc: StepEntry[] = []): StepEntry[] {
  steps.forEach((step, i) => {
    if (!step || typeof step !== 'object') return;
    const p = `${pointer}/${i}`;
    acc.push({ step, pointer: p, order: acc.length, ancestors, scope });
    const id = typeof step.id === 'string' ? step.id : `#${i}`;
    for (const child of childStepLists(step)) {
      const extra = [...scope];
      if (child.pointer === '/steps') extra.push(String((step as { as?: string }).as ?? 'item'), 'index');
      if (child.pointer === '/onError/steps') extra.push('error');
      collectSteps(child.steps, `${p}${child.pointer}`, [...ancestors, id], extra, acc);
    }
  });
  return acc;
}

function checkStep(source: SourceFile, entry: StepEntry, byId: Map<string, StepEntry>, ctx: WorkflowCheckContext, diag: Report): void {
  const s = entry.step as unknown as Record<string, unknown>;
  const label = typeof s.id === 'string' ? `step "${s.id}"` : 'step';
  const kinds = KIND_KEYS.filter((k) => k in s);
  // `each` has its own `stop` (the loop's end condition), so each+stop is one kind.
  const effective = kinds.includes('each') ? kinds.filter((k) => k !== 'stop') : kinds;
  if (effective.length === 0) {
    diag(entry.pointer, 'E_STEP_KIND', `${label} has no kind`, 'add one of: uses, if, branch, each, delay, stop, code');
    return;
  }
  if (effective.length > 1) {
    diag(`${entry.pointer}/${effective[1]}`, 'E_STEP_KIND', `${label} mixes ${effective.join(' and ')}`, 'a step has exactly one kind; split it into two steps', keyRange(source, entry.pointer, effective[1]));
    return;
  }
  const kind = effective[0];
  for (const [key, owners] of Object.entries(KIND_ONLY_KEYS)) {
    if (key in s && !owners.includes(kind)) {
      diag(`${entry.pointer}/${key}`, 'E_STEP_KEY', `"${key}" does not apply to a ${kind} step (${label})`, `"${key}" belongs to ${owners.join('/')} steps; remove it`, keyRange(source, entry.pointer, key));
    }
  }
  if (kind === 'if' && !('then' in s)) diag(entry.pointer, 'E_STEP_KEY', `${label}: "if" needs "then"`, 'add then: [steps]', keyRange(source, entry.pointer, 'if'));
  if (kind === 'each' && !('steps' in s)) diag(entry.pointer, 'E_STEP_KEY', `${label}: "each" needs "steps"`, 'add steps: [steps]', keyRange(source, entry.pointer, 'each'));
  if (kind === 'uses' && typeof s.uses === 'string') checkUses(source, entry, s, ctx, diag);
  if (kind === 'code' && typeof s.code === 'string' && ctx.checkCode) {
    const problem = ctx.checkCode(s.code);
    if (problem) {
      const at = codeOffset(source, `${entry.pointer}/code`, problem.line, problem.column);
      diag(
        `${entry.pointer}/code`,
        'E_CODE_SYNTAX',
        `${label}: JavaScript syntax error: ${problem.message} (code line ${problem.line})`,
        'fix the JavaScript; the code is the body of a function that returns JSON',
        at === undefined ? undefined : [at, at + 1],
      );
    }
  }

  // `config` is readable when the integration declares config variables (alloy serve fills them per installation).
  const configNames = ctx.integration?.config ? new Set(Object.keys(ctx.integration.config)) : undefined;
  const roots = [...BASE_ROOTS, ...(configNames ? ['config'] : []), ...entry.scope];
  for (const key of ['when', 'if', 'each', 'stop', 'delay']) {
    const value = s[key];
    // An each step's `stop` is checked before each item, with the item (its `as`) and index in scope.
    const keyRoots = key === 'stop' && kind === 'each' ? [...roots, String(s.as ?? 'item'), 'index'] : roots;
    if (typeof value === 'string') checkTemplateString(source, value, `${entry.pointer}/${key}`, keyRoots, entry, byId, diag, configNames);
  }
  if (s.with && typeof s.with === 'object') {
    forEachString(s.with, `${entry.pointer}/with`, (text, pointer) => checkTemplateString(source, text, pointer, roots, entry, byId, diag, configNames));
  }
  const branch = s.branch as { cases?: { when?: unknown }[] } | undefined;
  branch?.cases?.forEach((c, i) => {
    if (typeof c?.when === 'string') checkTemplateString(source, c.when, `${entry.pointer}/branch/cases/${i}/when`, roots, entry, byId, diag, configNames);
  });
}

function checkUses(source: SourceFile, entry: StepEntry, s: Record<string, unknown>, ctx: WorkflowCheckContext, diag: Report): void {
  const uses = String(s.uses);
  const pointer = `${entry.pointer}/uses`;
  if (!uses.includes('/')) {
    if (!(BUILTIN_STEP_TYPES as readonly string[]).includes(uses)) {
      const guess = closest(uses, [...BUILTIN_STEP_TYPES, ...ctx.catalog.keys()]);
      diag(pointer, 'E_UNKNOWN_STEP', `unknown step type "${uses}"`, guess ? `did you mean "${guess}"?` : 'use transform, http, or <connector>/<action>');
    }
    return;
  }
  const [name, action] = uses.split('/', 2);
  const connector = ctx.catalog.get(name);
  if (!connector) {
    const guess = closest(name, ctx.catalog.keys());
    diag(pointer, 'E_UNKNOWN_CONNECTOR', `unknown connector "${name}"`, guess ? `did you mean "${guess}/${action}"?` : `add connectors/${name}.yaml, or use one of: ${[...ctx.catalog.keys()].join(', ')}`);
    return;
  }
  const integration = ctx.integration;
  if (integration && name !== integration.app && name !== 'http' && !(integration.connectors ?? []).includes(name)) {
    diag(pointer, 'E_CONNECTOR_NOT_IN_INTEGRATION', `connector "${name}" is not part of integration "${integration.name}" (app ${integration.app})`, `add "${name}" to connectors: in integration.yaml`);
  }
  const actions = connector.actions ?? {};
  const def = actions[action];
  if (!def) {
    const guess = closest(action, Object.keys(actions));
    diag(pointer, 'E_UNKNOWN_ACTION', `connector "${name}" has no action "${action}"`, guess ? `did you mean "${name}/${guess}"?` : `${name} actions: ${Object.keys(actions).join(', ') || 'none'}`);
    return;
  }
  // A misspelled `with` is already an unknown-key error; checking the missing inputs too
  // would report the same mistake twice.
  const unknownKey = s.with === undefined && Object.keys(s).some((k) => !(k in MODEL_KEYS.step));
  if (def.input && !unknownKey) checkActionInput(source, entry, s.with, def.input, uses, diag);
}

/**
 * Checks `with` against the action's input schema. Values that are templates are only
 * known at run time, so errors located at (or inside) a template value are dropped; unknown
 * keys, missing keys and wrong literal values remain.
 */
function checkActionInput(source: SourceFile, entry: StepEntry, input: unknown, schema: object, uses: string, diag: Report): void {
  let validate;
  try {
    validate = userValidator(schema);
  } catch {
    return; // the connector's own validation reports a bad input schema
  }
  const value = input ?? {};
  if (validate(value)) return;
  const errors = (validate.errors ?? []).filter((e: ErrorObject) => !isUnderTemplate(value, e.instancePath));
  const pointer = `${entry.pointer}/with`;
  for (const d of mapSchemaErrors(source, errors, pointer, { codePrefix: 'E_ACTION_INPUT', subject: `input of ${uses}` })) {
    diag.push(d);
  }
}

function isUnderTemplate(value: unknown, instancePath: string): boolean {
  let cur: unknown = value;
  for (const seg of instancePath.split('/').slice(1)) {
    if (typeof cur === 'string') return hasTemplate(cur);
    if (!cur || typeof cur !== 'object') return false;
    cur = (cur as Record<string, unknown>)[seg.replace(/~1/g, '/').replace(/~0/g, '~')];
  }
  return typeof cur === 'string' && hasTemplate(cur);
}

function checkTemplateString(
  source: SourceFile,
  text: string,
  pointer: string,
  roots: string[],
  entry: StepEntry | undefined,
  byId: Map<string, StepEntry>,
  diag: Report,
  configNames?: ReadonlySet<string>,
): void {
  if (!hasTemplate(text)) return;
  const at = (offset: number, length: number): [number, number] | undefined => {
    const start = stringOffset(source, pointer, offset);
    return start === undefined ? undefined : [start, start + length];
  };
  const { compiled, refs: allRefs, error } = compileCached(text);
  if (error !== undefined) {
    if (error instanceof TemplateSyntaxError || error instanceof ExpressionSyntaxError) {
      diag(pointer, 'E_EXPRESSION_SYNTAX', error.message, 'fix the JSONata expression (https://docs.jsonata.org)', at(error.offset, error.length));
      return;
    }
    throw error;
  }
  for (const [i, part] of compiled!.parts.entries()) {
    if ('kind' in part) continue;
    const refs = allRefs![i];
    if (diag.eventSchema && roots.includes('event')) {
      for (const p of refs.eventPaths) {
        const miss = unknownEventProperty(diag.eventSchema, p);
        if (!miss) continue;
        const guess = closest(miss.name, miss.known);
        diag.warn(
          pointer,
          'W_EVENT_UNKNOWN_PROPERTY',
          `${miss.at}.${miss.name}: the trigger's event schema has no property "${miss.name}"`,
          guess ? `did you mean "${miss.at}.${guess}"?` : `${miss.at} has: ${miss.known.join(', ') || 'no properties'}`,
          at(miss.offset, miss.name.length),
        );
      }
    }
    if (configNames && refs.roots.has('config')) {
      for (const m of part.source.matchAll(/\bconfig\.([A-Za-z_][A-Za-z0-9_]*)/g)) {
        if (configNames.has(m[1])) continue;
        const guess = closest(m[1], configNames);
        diag(pointer, 'E_CONFIG_UNKNOWN', `expression reads config variable "${m[1]}", which the integration does not declare`, guess ? `did you mean "${guess}"?` : `declare it under config: in integration.yaml (declared: ${[...configNames].join(', ') || 'none'})`, at(part.offset + (m.index ?? 0) + 7, m[1].length));
      }
    }
    for (const root of refs.roots) {
      if (roots.includes(root)) continue;
      const offset = part.offset + Math.max(0, part.source.indexOf(root));
      if (root === 'env' || root === 'secrets') {
        diag(pointer, 'E_EXPRESSION_SECRETS', `"${root}" cannot be read here`, 'secrets and env are only readable in stream settings and connection settings; pass values through the event or a connector connection', at(offset, root.length));
        continue;
      }
      const guess = closest(root, roots);
      diag(pointer, 'E_EXPRESSION_UNKNOWN_NAME', `expression reads unknown name "${root}"`, guess ? `did you mean "${guess}"?` : `expressions can read: ${roots.join(', ')}`, at(offset, root.length));
    }
    for (const ref of refs.steps) {
      const target = byId.get(ref.id);
      const range = at(ref.offset, ref.id.length);
      if (!target) {
        const guess = closest(ref.id, byId.keys());
        diag(pointer, 'E_STEP_REF_UNKNOWN', `expression reads unknown step "${ref.id}"`, guess ? `did you mean "${guess}"?` : 'reference an earlier step by its id', range);
      } else if (entry && (target === entry || entry.ancestors.includes(ref.id))) {
        diag(pointer, 'E_STEP_REF_CYCLE', `step "${String(entry.step.id)}" reads "${ref.id}", which has not finished when this runs (a cycle)`, 'a step can only read the outputs of steps that ran before it', range);
      } else if (entry && target.order > entry.order) {
        diag(pointer, 'E_STEP_REF_FORWARD', `step "${String(entry.step.id)}" reads "${ref.id}", which runs later`, `move "${ref.id}" before "${String(entry.step.id)}", or read something else`, range);
      } else if (!entry) {
        // stream settings run after every step: any step may be read.
      }
    }
  }
}

