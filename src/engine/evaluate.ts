/**
 * Renders compiled values against an expression context (core/expressions.ts does the
 * work), turning evaluation failures into StepErrors that name the step, the field (JSON
 * pointer) and the expression.
 */
import {
  evaluateExpression as evaluateCore,
  ExpressionEvaluationError,
  renderTemplate,
  renderValue,
  type CompiledExpression,
  type CompiledTemplate,
  type CompiledValue,
  type EvaluateOptions,
} from '../core/expressions.js';
import { formatBytes } from '../core/expression-limits.js';
import { StepError } from '../errors.js';

/** Where a value is rendered: the step path and the field's JSON pointer inside the step. */
export interface RenderSite {
  step: string;
  field: string;
  /** Limits and the abort signal (step and execution timeouts) for the evaluations. */
  options?: EvaluateOptions;
  /** JSON pointer of the step in the workflow file (compiled step `pointer`). */
  stepPointer?: string;
}

export class ExpressionFailure extends StepError {
  constructor(
    message: string,
    readonly site: RenderSite,
    readonly expression: string,
    cause: unknown,
  ) {
    const limit = cause instanceof ExpressionEvaluationError ? cause.limit : undefined;
    super(`step "${site.step}", field ${site.field}: ${message}`, {
      code: limit ? 'E_EXPRESSION_LIMIT' : 'E_EXPRESSION',
      retryable: false,
      cause,
      hint: limit
        ? `Make the expression do less (the ${limit.kind} limit is ${limit.kind === 'time' ? `${limit.value} ms` : formatBytes(limit.value)}), or raise limits.expression${limit.kind === 'time' ? 'Time' : 'Memory'} in alloy.config.yaml.`
        : 'Fix the expression in the workflow file; `alloy run --dry-run` shows what each field resolves to.',
      details: {
        step: site.step,
        field: site.field,
        expression: expression,
        ...(limit ? { limit: limit.kind, limitValue: limit.value, line: limit.line, column: limit.column } : {}),
        ...(limit && site.stepPointer !== undefined ? { pointer: site.stepPointer + site.field, templateOffset: limit.templateOffset } : {}),
      },
    });
  }
}

/** The engine's error for a failed expression: the step path, the field and the expression. */
function failureAt(site: RenderSite) {
  return (err: ExpressionEvaluationError, field: string) =>
    new ExpressionFailure(err.message, { step: site.step, field: `${site.field}${field}`, stepPointer: site.stepPointer }, err.source, err);
}

export function evaluateExpression(expr: CompiledExpression, context: Record<string, unknown>, site: RenderSite): Promise<unknown> {
  return evaluateCore(expr, context, site.options).catch((err: unknown) => {
    throw err instanceof ExpressionEvaluationError ? failureAt(site)(err, '') : err;
  });
}

export function renderTemplateAt(t: CompiledTemplate, context: Record<string, unknown>, site: RenderSite): Promise<unknown> {
  return renderTemplate(t, context, failureAt(site), '', site.options);
}

/** Renders a compiled value; object keys whose value renders to undefined are left out. */
export function renderAt(value: CompiledValue, context: Record<string, unknown>, site: RenderSite): Promise<unknown> {
  return renderValue(value, context, failureAt(site), '', site.options);
}

/** JSONata-style truthiness: false, null, undefined, 0, "" and [] are false. */
export function isTruthy(value: unknown): boolean {
  if (Array.isArray(value)) return value.length > 0;
  return Boolean(value);
}
