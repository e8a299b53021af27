/**
 * Templates: JSONata expressions inside `{{ }}` (https://docs.jsonata.org).
 *
 * - A string that is exactly one `{{ expr }}` (whitespace around allowed) keeps the
 *   expression's value and type.
 * - Mixed text interpolates each expression's value as text.
 *
 * The scanner understands JSONata's strings ("…", '…' with backslash escapes), back-quoted
 * names, comments and nested braces (object constructors), so `{{ {"a": "}}"} }}` is one
 * expression. Expressions are compiled once, when definitions load; never evaluated with
 * eval, Function or vm.
 */
import jsonata from 'jsonata';
import {
  bound,
  DEFAULT_EXPRESSION_LIMITS as DEFAULT_LIMITS,
  EvaluationAborted,
  evaluationBindings,
  ExpressionLimitExceeded,
  formatBytes,
  lineCol,
  type EvaluateOptions,
} from './expression-limits.js';
import { compileScalar, MISS, type ScalarEvaluator } from './scalar-expressions.js';
import { setOwn } from './own-key.js';

export { DEFAULT_EXPRESSION_LIMITS, type EvaluateOptions, type ExpressionLimits } from './expression-limits.js';

export interface TemplateTextPart {
  kind: 'text';
  text: string;
}
export interface TemplateExprPart {
  kind: 'expr';
  /** The JSONata source between the braces. */
  source: string;
  /** Offset of `source` in the template string. */
  offset: number;
}
export type TemplatePart = TemplateTextPart | TemplateExprPart;

export class TemplateSyntaxError extends Error {
  constructor(
    message: string,
    /** Offset in the template string where the problem is. */
    readonly offset: number,
    readonly length = 1,
  ) {
    super(message);
  }
}

/** True when the string contains a template opener; cheap pre-check before scanning. */
export function hasTemplate(value: string): boolean {
  return value.includes('{{');
}

/** Splits a template string into text and expression parts. Throws TemplateSyntaxError. */
export function scanTemplate(value: string): TemplatePart[] {
  const parts: TemplatePart[] = [];
  let textStart = 0;
  let i = 0;
  while (i < value.length) {
    const open = value.indexOf('{{', i);
    if (open < 0) break;
    if (open > textStart) parts.push({ kind: 'text', text: value.slice(textStart, open) });
    const exprStart = open + 2;
    const close = findClose(value, exprStart);
    if (close < 0) throw new TemplateSyntaxError('unclosed "{{": add the matching "}}"', open, 2);
    const source = value.slice(exprStart, close);
    if (source.trim() === '') throw new TemplateSyntaxError('empty expression "{{ }}"', open, close + 2 - open);
    parts.push({ kind: 'expr', source, offset: exprStart });
    i = close + 2;
    textStart = i;
  }
  if (textStart < value.length) parts.push({ kind: 'text', text: value.slice(textStart) });
  return parts;
}

/** Index of the `}}` that closes an expression starting at `from`, or -1. */
function findClose(s: string, from: number): number {
  let depth = 0;
  let i = from;
  while (i < s.length) {
    const c = s[i];
    if (c === '"' || c === "'" || c === '`') {
      i = skipQuoted(s, i, c);
      if (i < 0) return -1;
      continue;
    }
    if (c === '/' && s[i + 1] === '*') {
      const end = s.indexOf('*/', i + 2);
      if (end < 0) return -1;
      i = end + 2;
      continue;
    }
    if (c === '{') depth++;
    else if (c === '}') {
      if (depth === 0 && s[i + 1] === '}') return i;
      if (depth > 0) depth--;
    }
    i++;
  }
  return -1;
}

function skipQuoted(s: string, start: number, quote: string): number {
  let i = start + 1;
  while (i < s.length) {
    const c = s[i];
    if (c === '\\' && quote !== '`') {
      i += 2;
      continue;
    }
    if (c === quote) return i + 1;
    i++;
  }
  return -1;
}

/** A JSONata compile error at an offset inside the template string. */
export class ExpressionSyntaxError extends Error {
  constructor(
    message: string,
    readonly offset: number,
    readonly length: number,
    readonly code: string,
  ) {
    super(message);
  }
}

export type JsonataExpression = ReturnType<typeof jsonata>;

/**
 * Stack bound, enforced by jsonata itself on every evaluation step (error D1011 stack too
 * deep). Time and memory are bounded per evaluation by ExpressionLimits (see `bound`).
 */
export const GUARDRAILS = { stack: 500 } as const;

export interface CompiledExpression {
  source: string;
  offset: number;
  expression: JsonataExpression;
  /** Its synchronous evaluator (scalar-expressions.ts), null when JSONata must evaluate it; made on first use. */
  scalar?: ScalarEvaluator | null;
}

export interface CompiledTemplate {
  template: string;
  /** Exactly one expression and no text: the value keeps its type. */
  single: boolean;
  parts: (TemplateTextPart | CompiledExpression)[];
}

/** Compiles a template string. Throws TemplateSyntaxError or ExpressionSyntaxError. */
export function compileTemplate(value: string): CompiledTemplate {
  const scanned = scanTemplate(value);
  const exprs = scanned.filter((p) => p.kind === 'expr');
  const single = exprs.length === 1 && scanned.every((p) => p.kind === 'expr' || p.text.trim() === '');
  const parts = (single ? exprs : scanned).map((p) => (p.kind === 'text' ? p : compileExpression(p)));
  return { template: value, single, parts };
}

function compileExpression(part: TemplateExprPart): CompiledExpression {
  try {
    const expression = jsonata(part.source, GUARDRAILS);
    bound(expression);
    return { source: part.source, offset: part.offset, expression };
  } catch (err) {
    const e = err as { message?: string; position?: number; token?: string; code?: string };
    // jsonata reports `position` as the index just past the offending token.
    const atEnd = e.token === '(end)';
    const tokenLength = !atEnd && typeof e.token === 'string' && e.token.length > 0 ? e.token.length : 1;
    const rel = atEnd
      ? part.source.trimEnd().length
      : typeof e.position === 'number'
        ? Math.max(0, e.position - tokenLength)
        : 0;
    throw new ExpressionSyntaxError(
      `invalid expression: ${e.message ?? String(err)}`,
      part.offset + Math.min(rel, part.source.length),
      tokenLength,
      e.code ?? 'S0000',
    );
  }
}

/**
 * Top-level context names an expression reads (`event`, `steps`, …) and the step ids it
 * reads through `steps.<id>`. Used by validation for unknown and forward references.
 */
export interface ExpressionRefs {
  roots: Set<string>;
  steps: { id: string; offset: number }[];
  /** Property paths read from `event` (`event.customer.email` → ['customer', 'email']), each name with its offset. */
  eventPaths: { name: string; offset: number }[][];
}

interface AstNode {
  type?: string;
  value?: unknown;
  position?: number;
  steps?: AstNode[];
  [key: string]: unknown;
}

export function expressionRefs(compiled: CompiledExpression): ExpressionRefs {
  const refs: ExpressionRefs = { roots: new Set(), steps: [], eventPaths: [] };
  collectRefs(compiled.expression.ast() as unknown as AstNode, false, refs, compiled.offset);
  return refs;
}

/**
 * Records the names read from the root context. Only the first step of a path evaluated
 * against the root counts: later steps, predicates, object constructors applied to a path
 * and lambda bodies read relative to some other value, so `event.items[price > 5]` reads
 * `event`, not `price`.
 */
function collectRefs(node: unknown, relative: boolean, refs: ExpressionRefs, base: number): void {
  if (!node || typeof node !== 'object') return;
  if (Array.isArray(node)) {
    for (const n of node) collectRefs(n, relative, refs, base);
    return;
  }
  const n = node as AstNode;
  if (n.type === 'lambda') return;
  if (n.type === 'path' && Array.isArray(n.steps) && n.steps.length > 0) {
    const [first, second] = n.steps;
    if (first.type === 'name' && typeof first.value === 'string') {
      if (!relative) {
        refs.roots.add(first.value);
        if (first.value === 'event') {
          // The plain names after `event`, up to the first step that is not one (a predicate, a function…).
          const names: { name: string; offset: number }[] = [];
          for (const step of n.steps.slice(1)) {
            if (step.type !== 'name' || typeof step.value !== 'string' || step.predicate || step.stages || step.group) break;
            const pos = typeof step.position === 'number' ? step.position - step.value.length : 0;
            names.push({ name: step.value, offset: base + Math.max(0, pos) });
          }
          if (names.length) refs.eventPaths.push(names);
        }
        if (first.value === 'steps' && second?.type === 'name' && typeof second.value === 'string') {
          const pos = typeof second.position === 'number' ? second.position - second.value.length : 0;
          refs.steps.push({ id: second.value, offset: base + Math.max(0, pos) });
        }
      }
      collectChildren(first, true, refs, base);
    } else {
      collectRefs(first, relative, refs, base);
    }
    for (const step of n.steps.slice(1)) collectRefs(step, true, refs, base);
    for (const key of ['group', 'stages', 'predicate']) collectRefs(n[key], true, refs, base);
    return;
  }
  collectChildren(n, relative, refs, base);
}

function collectChildren(n: AstNode, relative: boolean, refs: ExpressionRefs, base: number): void {
  for (const [key, value] of Object.entries(n)) {
    if (key === 'steps' && n.type === 'path') continue;
    if (value && typeof value === 'object') {
      const rel = relative || key === 'stages' || key === 'predicate' || key === 'group';
      collectRefs(value, rel, refs, base);
    }
  }
}

/** Visits every string in a JSON-like value with its JSON pointer. */
export function forEachString(
  value: unknown,
  pointer: string,
  visit: (text: string, pointer: string) => void,
): void {
  if (typeof value === 'string') visit(value, pointer);
  else if (Array.isArray(value)) value.forEach((v, i) => forEachString(v, `${pointer}/${i}`, visit));
  else if (value && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) forEachString(v, `${pointer}/${escapePointer(k)}`, visit);
  }
}

/** RFC 6901 escaping of one segment; most keys have nothing to escape, and skip the regexes. */
export function escapePointer(key: string): string {
  return key.includes('~') || key.includes('/') ? key.replace(/~/g, '~0').replace(/\//g, '~1') : key;
}

// ---------------------------------------------------------------- evaluation

/** An evaluation failure, naming the expression; the engine adds the step and field. */
export class ExpressionEvaluationError extends Error {
  constructor(
    message: string,
    readonly source: string,
    readonly code: string,
    options?: { cause?: unknown },
    /** For E_EXPRESSION_LIMIT: which limit, its value, and where in the expression it was hit. */
    readonly limit?: { kind: 'time' | 'memory'; value: number; line: number; column: number; templateOffset: number },
  ) {
    super(message, options);
  }
}

/**
 * Evaluates one compiled expression within `options.limits` (default
 * DEFAULT_EXPRESSION_LIMITS). Throws ExpressionEvaluationError naming the expression (code
 * E_EXPRESSION_LIMIT past a limit), or the signal's reason when `options.signal` aborts.
 */
export async function evaluateExpression(
  expr: CompiledExpression,
  context: Record<string, unknown>,
  options?: EvaluateOptions,
): Promise<unknown> {
  if (!options?.signal?.aborted) {
    const v = quickExpression(expr, context, options?.limits ?? DEFAULT_LIMITS);
    if (v !== MISS) return v;
  }
  try {
    return normalizeResult(await expr.expression.evaluate(context, evaluationBindings(options, GUARDRAILS.stack)), context);
  } catch (thrown) {
    let err = thrown;
    // $eval wraps what its evaluation threw (D3121, the original under `error`, the $eval
    // call's position on the wrapper): a limit or an abort inside it is still that.
    let evalAt: number | undefined;
    while ((err as { code?: string } | null)?.code === 'D3121' && (err as { error?: unknown }).error) {
      evalAt ??= (err as { position?: number }).position;
      err = (err as { error: unknown }).error;
    }
    if (err instanceof EvaluationAborted) throw err.reason;
    const innerCode = (err as { code?: string } | null)?.code;
    if (err instanceof ExpressionLimitExceeded) {
      if (evalAt !== undefined) err = new ExpressionLimitExceeded(err.kind, err.limit, evalAt);
    } else if (evalAt !== undefined && (innerCode === 'D2015' || innerCode === 'D2014')) {
      err = { ...(err as object), position: evalAt };
    } else err = thrown;
    if (err instanceof ExpressionLimitExceeded) {
      const { line, column } = lineCol(expr.source, err.at);
      throw new ExpressionEvaluationError(`${err.message} at ${line}:${column} of {{${expr.source}}}`, expr.source, err.code, { cause: err }, {
        kind: err.kind,
        value: err.limit,
        line,
        column,
        templateOffset: expr.offset + Math.max(0, err.at - 1),
      });
    }
    const e = err as { message?: string; code?: string; value?: unknown; position?: number };
    const code = e.code ?? 'D0000';
    if (code === 'D2015' || code === 'D2014') {
      // A range or $append longer than the memory limit allows (checked before allocating).
      const limit = options?.limits?.memoryBytes ?? DEFAULT_LIMITS.memoryBytes;
      const { line, column } = lineCol(expr.source, e.position ?? 0);
      throw new ExpressionEvaluationError(
        `expression built a sequence of ${String(e.value)} items, past its memory limit of ${formatBytes(limit)} at ${line}:${column} of {{${expr.source}}}`,
        expr.source,
        'E_EXPRESSION_LIMIT',
        { cause: err },
        { kind: 'memory', value: limit, line, column, templateOffset: expr.offset + Math.max(0, (e.position ?? 1) - 1) },
      );
    }
    const message = code === 'D1011' ? `expression nested deeper than ${GUARDRAILS.stack} levels` : (e.message ?? String(err));
    throw new ExpressionEvaluationError(`${message} in {{${expr.source}}}`, expr.source, code, { cause: err });
  }
}

/**
 * Turns an evaluation failure into the caller's error, given the JSON pointer of the
 * field being rendered (the engine names the step and field this way).
 */
export type RenderErrorHook = (err: ExpressionEvaluationError, field: string) => Error;

/** Renders a compiled template against a context: the value itself when `single`, else text. */
export async function renderTemplate(
  t: CompiledTemplate,
  context: Record<string, unknown>,
  onError?: RenderErrorHook,
  field = '',
  options?: EvaluateOptions,
): Promise<unknown> {
  try {
    if (t.single) return await evaluateExpression(t.parts[0] as CompiledExpression, context, options);
    let text = '';
    for (const part of t.parts) {
      if ('kind' in part) text += part.text;
      else text += stringify(await evaluateExpression(part, context, options));
    }
    return text;
  } catch (err) {
    if (onError && err instanceof ExpressionEvaluationError) throw onError(err, field);
    throw err;
  }
}

/**
 * jsonata returns arrays tagged as sequences (extra properties); return plain JSON, as a JSON
 * round trip would (undefined and functions left out of objects and null in arrays, numbers
 * that are not finite null, -0 as 0), but copying only what differs: a result that is
 * already plain (`event.line_items`, 10,000 items) is returned as it is, sharing the input's
 * objects, instead of costing a stringify and a parse on the event loop. Values are read-only
 * from here on (the engine and the redactor never change them).
 */
function normalizeResult(value: unknown, context: Record<string, unknown>): unknown {
  if (value === undefined || value === null || typeof value !== 'object') return value;
  liveContext = context;
  try {
    return plainJson(value, 0);
  } finally {
    liveContext = undefined;
  }
}

/**
 * The context of the evaluation being normalized (the walk is synchronous). It and its `steps`
 * are the engine's live objects: `{{ $ }}` or `{{ steps }}` returned them as they were, so a
 * step's output held the steps map that then held that output (a cycle: the record could not
 * be stored, and the execution stayed queued). Such a result gets a copy as of now.
 */
let liveContext: Record<string, unknown> | undefined;

function detached(v: object): object {
  const live = liveContext!;
  return v === live ? { ...live, steps: { ...(live.steps as object) } } : { ...v };
}

const SEQUENCE_FLAGS = ['sequence', 'keepSingleton', 'cons', 'tupleStream', 'outerWrapper'];
/** Past this depth, or for anything but plain objects and arrays, the round trip decides. */
const PLAIN_DEPTH = 200;

function plainJson(v: object, depth: number): unknown {
  if (liveContext !== undefined && (v === liveContext || v === liveContext.steps)) return plainJson(detached(v), depth);
  if (depth > PLAIN_DEPTH) return JSON.parse(JSON.stringify(v));
  if (Array.isArray(v)) {
    let out: unknown[] | undefined = SEQUENCE_FLAGS.some((f) => Object.prototype.hasOwnProperty.call(v, f)) ? [] : undefined;
    for (let i = 0; i < v.length; i++) {
      const x = v[i];
      const y = plainItem(x, depth, true);
      if (out === undefined && !Object.is(y, x)) out = v.slice(0, i);
      if (out !== undefined) out.push(y);
    }
    return out ?? v;
  }
  const proto = Object.getPrototypeOf(v);
  const o = v as Record<string, unknown>;
  if ((proto !== Object.prototype && proto !== null) || typeof o.toJSON === 'function' || o._jsonata_lambda === true || o._jsonata_function === true) {
    return JSON.parse(JSON.stringify(v) ?? 'null');
  }
  // jsonata's object constructors make objects without a prototype: copied into plain ones.
  let out: Record<string, unknown> | undefined = proto === null ? {} : undefined;
  const keys = Object.keys(o);
  for (let i = 0; i < keys.length; i++) {
    const k = keys[i];
    const x = o[k];
    const y = plainItem(x, depth, false);
    if (out === undefined && (y === undefined || !Object.is(y, x))) {
      out = {};
      for (let j = 0; j < i; j++) setOwn(out, keys[j], o[keys[j]]);
    }
    if (out !== undefined && y !== undefined) setOwn(out, k, y);
  }
  return out ?? v;
}

/** One member: what JSON.stringify would write for it (undefined: left out of an object). */
function plainItem(x: unknown, depth: number, inArray: boolean): unknown {
  switch (typeof x) {
    case 'string':
    case 'boolean':
      return x;
    case 'number':
      return Number.isFinite(x) ? x + 0 : null; // -0 + 0 is 0
    case 'object':
      return x === null ? null : plainJson(x, depth + 1);
    default:
      // undefined, functions, symbols
      return inArray ? null : undefined;
  }
}

function stringify(value: unknown): string {
  if (value === undefined || value === null) return '';
  if (typeof value === 'string') return value;
  return typeof value === 'object' ? JSON.stringify(value) : String(value);
}

/** A JSON-like value whose template strings are compiled once. */
export type CompiledValue =
  | { kind: 'literal'; value: unknown }
  | { kind: 'template'; template: CompiledTemplate }
  | { kind: 'array'; items: CompiledValue[] }
  | { kind: 'object'; entries: [string, CompiledValue][] };

/** Compiles every template string in a value. Throws on the first syntax error. */
export function compileValue(value: unknown): CompiledValue {
  if (typeof value === 'string') {
    return hasTemplate(value) ? { kind: 'template', template: compileTemplate(value) } : { kind: 'literal', value };
  }
  if (Array.isArray(value)) return { kind: 'array', items: value.map(compileValue) };
  if (value && typeof value === 'object') {
    return { kind: 'object', entries: Object.entries(value).map(([k, v]) => [k, compileValue(v)]) };
  }
  return { kind: 'literal', value };
}

/**
 * Renders a value at once when every expression in it is answered by its synchronous evaluator
 * (the usual mapping of fields); MISS otherwise, and the caller renders it with JSONata.
 */
function renderQuick(value: CompiledValue, context: Record<string, unknown>, options: EvaluateOptions | undefined): unknown {
  switch (value.kind) {
    case 'literal':
      return value.value;
    case 'template': {
      const t = value.template;
      if (options?.signal?.aborted) return MISS;
      const budget = options?.limits ?? DEFAULT_LIMITS;
      if (t.single) return quickExpression(t.parts[0] as CompiledExpression, context, budget);
      let text = '';
      for (const part of t.parts) {
        if ('kind' in part) text += part.text;
        else {
          const v = quickExpression(part, context, budget);
          if (v === MISS) return MISS;
          text += stringify(v);
        }
      }
      return text;
    }
    case 'array': {
      const out: unknown[] = [];
      for (const item of value.items) {
        const v = renderQuick(item, context, options);
        if (v === MISS) return MISS;
        out.push(v);
      }
      return out;
    }
    case 'object': {
      const out: Record<string, unknown> = {};
      for (const [k, item] of value.entries) {
        const v = renderQuick(item, context, options);
        if (v === MISS) return MISS;
        if (v !== undefined) setOwn(out, k, v);
      }
      return out;
    }
  }
}

function quickExpression(expr: CompiledExpression, context: Record<string, unknown>, budget: { memoryBytes: number }): unknown {
  const scalar = expr.scalar === undefined ? (expr.scalar = compileScalar(expr.expression.ast())) : expr.scalar;
  if (!scalar) return MISS;
  const v = scalar(context, budget);
  if (v === null || typeof v !== 'object') return v;
  // A path ending at an object (see compileScalar): plain JSON, as JSONata's result is made. A
  // value that cannot be made so (a cycle, too deep, a throwing getter) goes to JSONata, whose
  // evaluation fails the same way inside its error wrapper (step, field, expression).
  try {
    return normalizeResult(v, context);
  } catch {
    return MISS;
  }
}

/** Renders a compiled value in order; an object key whose value renders to undefined is left out. */
export function renderValue(
  value: CompiledValue,
  context: Record<string, unknown>,
  onError?: RenderErrorHook,
  field = '',
  options?: EvaluateOptions,
): Promise<unknown> {
  const quick = renderQuick(value, context, options);
  return quick === MISS ? renderSlow(value, context, onError, field, options) : Promise.resolve(quick);
}

async function renderSlow(
  value: CompiledValue,
  context: Record<string, unknown>,
  onError: RenderErrorHook | undefined,
  field: string,
  options: EvaluateOptions | undefined,
): Promise<unknown> {
  switch (value.kind) {
    case 'literal':
      return value.value;
    case 'template':
      return renderTemplate(value.template, context, onError, field, options);
    case 'array': {
      const out: unknown[] = [];
      for (let i = 0; i < value.items.length; i++) out.push(await renderSlow(value.items[i], context, onError, `${field}/${i}`, options));
      return out;
    }
    case 'object': {
      const out: Record<string, unknown> = {};
      for (const [k, v] of value.entries) {
        const rendered = await renderSlow(v, context, onError, `${field}/${escapePointer(k)}`, options);
        if (rendered !== undefined) setOwn(out, k, rendered);
      }
      return out;
    }
  }
}
