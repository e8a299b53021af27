/** `limits.*` of the project config, resolved to the engine's expression limits. */
import type { ProjectConfig } from '../core/model.js';
import { DEFAULT_EXPRESSION_LIMITS, type ExpressionLimits } from '../core/expression-limits.js';
import { AlloyError } from '../errors.js';
import { tryParseDuration } from './duration.js';

const SIZE_UNITS: Record<string, number> = { '': 1, b: 1, k: 1024, kb: 1024, m: 1024 ** 2, mb: 1024 ** 2, g: 1024 ** 3, gb: 1024 ** 3 };

/** Bytes for `512kb`, `64mb`, `1g` or a number; undefined when it is not a size. */
export function tryParseSize(value: unknown): number | undefined {
  if (typeof value === 'number') return Number.isFinite(value) && value > 0 ? Math.floor(value) : undefined;
  if (typeof value !== 'string') return undefined;
  const m = /^\s*([0-9]+(?:\.[0-9]+)?)\s*([a-z]*)\s*$/i.exec(value);
  const unit = m ? SIZE_UNITS[m[2].toLowerCase()] : undefined;
  if (!m || unit === undefined) return undefined;
  const n = Math.floor(Number(m[1]) * unit);
  return Number.isFinite(n) && n > 0 ? n : undefined;
}

/** The expression limits a config sets (defaults for what it leaves out); throws E_CONFIG on a bad value. */
export function resolveExpressionLimits(limits: ProjectConfig['limits']): ExpressionLimits {
  if (!limits) return DEFAULT_EXPRESSION_LIMITS;
  const timeMs = limits.expressionTime === undefined ? DEFAULT_EXPRESSION_LIMITS.timeMs : tryParseDuration(limits.expressionTime);
  if (timeMs === undefined || timeMs <= 0) {
    throw new AlloyError('E_CONFIG', `limits.expressionTime: ${JSON.stringify(limits.expressionTime)} is not a duration`, {
      hint: 'Write a duration like 500ms or 2s (default 1s).',
      exitCode: 2,
    });
  }
  const memoryBytes = limits.expressionMemory === undefined ? DEFAULT_EXPRESSION_LIMITS.memoryBytes : tryParseSize(limits.expressionMemory);
  if (memoryBytes === undefined) {
    throw new AlloyError('E_CONFIG', `limits.expressionMemory: ${JSON.stringify(limits.expressionMemory)} is not a size`, {
      hint: 'Write a size like 16mb or 512kb, or a number of bytes (default 64mb).',
      exitCode: 2,
    });
  }
  return { timeMs, memoryBytes };
}
