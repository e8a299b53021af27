/**
 * Renders compiled values against an expression context, turning evaluation failures into
 * StepErrors that name the step, the field (JSON pointer) and the expression.
 *
 * Fast path: an expression that is a plain dotted path (`event.customer.email`) resolving
 * through plain objects to a string, number or boolean is read directly; JSONata gives the
 * same value for it. Anything else (arrays on the way, objects, functions) goes to JSONata.
 */
import {
  escapePointer,
  ExpressionEvaluationError,
  GUARDRAILS,
  type CompiledExpression,
  type CompiledTemplate,
  type CompiledValue,
} from '../core/expressions.js';
import { StepError } from '../errors.js';

/** Where a value is rendered: the step path and the field's JSON pointer inside the step. */
export interface RenderSite {
  step: string;
  field: string;
}

export class ExpressionFailure extends StepError {
  constructor(
    message: string,
    readonly site: RenderSite,
    readonly expression: string,
    cause: unknown,
  ) {
    super(`step "${site.step}", field ${site.field}: ${message}`, {
      code: 'E_EXPRESSION',
      retryable: false,
      cause,
      hint: 'Fix the expression in the workflow file; `alloy run --dry-run` shows what each field resolves to.',
      details: { step: site.step, field: site.field, expression: expression },
    });
  }
}

const PATH_RE = /^\s*([A-Za-z_][A-Za-z0-9_]*)(\s*\.\s*[A-Za-z_][A-Za-z0-9_]*)*\s*$/;
const JSONATA_WORDS = new Set(['and', 'or', 'in', 'true', 'false', 'null', 'function']);
const fastPaths = new WeakMap<CompiledExpression, string[] | null>();

function fastPathOf(expr: CompiledExpression): string[] | null {
  let p = fastPaths.get(expr);
  if (p !== undefined) return p;
  p = null;
  if (PATH_RE.test(expr.source)) {
    const names = expr.source.split('.').map((s) => s.trim());
    if (!names.some((n) => JSONATA_WORDS.has(n))) p = names;
  }
  fastPaths.set(expr, p);
  return p;
}

const MISS = Symbol('miss');

function readFastPath(names: string[], context: Record<string, unknown>): unknown {
  let v: unknown = context;
  for (const name of names) {
    if (v === null || typeof v !== 'object' || Array.isArray(v)) return MISS;
    if (!Object.prototype.hasOwnProperty.call(v, name)) return MISS;
    v = (v as Record<string, unknown>)[name];
  }
  const t = typeof v;
  return t === 'string' || t === 'number' || t === 'boolean' ? v : MISS;
}

export async function evaluateExpression(
  expr: CompiledExpression,
  context: Record<string, unknown>,
  site: RenderSite,
): Promise<unknown> {
  const path = fastPathOf(expr);
  if (path) {
    const v = readFastPath(path, context);
    if (v !== MISS) return v;
  }
  try {
    return normalize(await expr.expression.evaluate(context));
  } catch (err) {
    const e = err as { message?: string; code?: string };
    const code = e.code ?? 'D0000';
    const message =
      err instanceof ExpressionEvaluationError
        ? err.message
        : code === 'D1012'
          ? `expression ran longer than ${GUARDRAILS.timeout} ms in {{${expr.source}}}`
          : code === 'D1011'
            ? `expression nested deeper than ${GUARDRAILS.stack} levels in {{${expr.source}}}`
            : `${e.message ?? String(err)} in {{${expr.source}}}`;
    throw new ExpressionFailure(message, site, expr.source, err);
  }
}

/** jsonata returns arrays tagged as sequences and may share input objects; return plain JSON. */
function normalize(value: unknown): unknown {
  if (value === undefined || value === null || typeof value !== 'object') return value;
  return JSON.parse(JSON.stringify(value));
}

function stringify(value: unknown): string {
  if (value === undefined || value === null) return '';
  if (typeof value === 'string') return value;
  return typeof value === 'object' ? JSON.stringify(value) : String(value);
}

export async function renderTemplateAt(
  t: CompiledTemplate,
  context: Record<string, unknown>,
  site: RenderSite,
): Promise<unknown> {
  if (t.single) return evaluateExpression(t.parts[0] as CompiledExpression, context, site);
  let text = '';
  for (const part of t.parts) {
    if ('kind' in part) text += part.text;
    else text += stringify(await evaluateExpression(part, context, site));
  }
  return text;
}

/** Renders a compiled value; object keys whose value renders to undefined are left out. */
export async function renderAt(value: CompiledValue, context: Record<string, unknown>, site: RenderSite): Promise<unknown> {
  switch (value.kind) {
    case 'literal':
      return value.value;
    case 'template':
      return renderTemplateAt(value.template, context, site);
    case 'array': {
      const out: unknown[] = [];
      for (let i = 0; i < value.items.length; i++) {
        out.push(await renderAt(value.items[i], context, { step: site.step, field: `${site.field}/${i}` }));
      }
      return out;
    }
    case 'object': {
      const out: Record<string, unknown> = {};
      for (const [k, v] of value.entries) {
        const rendered = await renderAt(v, context, { step: site.step, field: `${site.field}/${escapePointer(k)}` });
        if (rendered !== undefined) out[k] = rendered;
      }
      return out;
    }
  }
}

/** JSONata-style truthiness: false, null, undefined, 0, "" and [] are false. */
export function isTruthy(value: unknown): boolean {
  if (Array.isArray(value)) return value.length > 0;
  return Boolean(value);
}
