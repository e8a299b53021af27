/**
 * Bounds on one JSONata evaluation: time, memory, and a fair share of the event loop.
 *
 * JSONata 2.x looks up `__evaluate_entry` / `__evaluate_exit` callbacks in the environment
 * and awaits them around every AST node it evaluates. `bound(expression)` binds both on a
 * compiled expression, plus size-aware wrappers of the built-ins that can allocate far more
 * than their arguments ($pad, $join, $replace) or loop inside one call:
 *
 * - entry: stops the evaluation when its signal aborted (step or workflow timeout) or its
 *   compute time passed `limits.timeMs`; every YIELD_EVERY_MS of evaluating (across all
 *   evaluations in the process) it awaits setImmediate, so timers, HTTP and other executions
 *   run while expressions are hot (time spent yielded does not count against the limit).
 * - exit: charges the new strings and arrays a node built (string concatenation, ranges,
 *   function and constructor results) to the evaluation's budget, `limits.memoryBytes`.
 * - the range operator and $append are capped through jsonata's own `sequence` option, set
 *   per evaluation, so `[1..1e7]` fails before it allocates.
 *
 * Catastrophic regex backtracking is bounded by a V8 flag set below (linear-time fallback),
 * $distinct (n² comparisons in one native call) and $spread (n² copying) by linear versions
 * and $sort (quadratic copying, fatal on a million items) by an O(n log n) one. Built-ins that
 * loop inside one call ($zip, $shuffle, $match, $replace) are sized first and tick (signal,
 * deadline, loop turn) as they go; $string sizes its input before JSON.stringify runs.
 *
 * Sizes are estimates: 2 bytes per string character (UTF-16), 16 per array item, 64 per
 * object key built by a constructor or group-by.
 */
import v8 from 'node:v8';
import jsonata from 'jsonata';

// A regular expression that backtracks catastrophically (`/^(a+)+$/` against "aaaa…b" from an
// event) runs inside one call no evaluator callback can interrupt: it held the thread for 43 s
// in a test. With this V8 flag a regex that backtracks excessively is re-run on V8's linear-time
// engine instead (same result for the regexes it supports). It applies to regexes run after it
// is set, process-wide.
v8.setFlagsFromString('--enable-experimental-regexp-engine-on-excessive-backtracks');

export interface ExpressionLimits {
  /** Longest one evaluation may compute, in ms (time yielded to other work does not count). */
  timeMs: number;
  /** Most one evaluation may allocate in new strings, arrays and objects, in bytes (estimated). */
  memoryBytes: number;
}

export const DEFAULT_EXPRESSION_LIMITS: Readonly<ExpressionLimits> = Object.freeze({ timeMs: 1000, memoryBytes: 64 * 1024 * 1024 });

/** An evaluation hands the event loop back after this much computing (ms). */
export const YIELD_EVERY_MS = 5;

const CHAR_BYTES = 2;
const ITEM_BYTES = 16;
const KEY_BYTES = 64;

export interface EvaluateOptions {
  limits?: ExpressionLimits;
  /** Aborting it stops the evaluation at its next node, throwing the signal's reason. */
  signal?: AbortSignal;
}

/** Thrown from inside jsonata when an evaluation passes one of its limits. */
export class ExpressionLimitExceeded extends Error {
  readonly code = 'E_EXPRESSION_LIMIT';
  constructor(
    readonly kind: 'time' | 'memory',
    readonly limit: number,
    /** Index just past the token being evaluated, in the expression source (jsonata's convention). */
    readonly at: number,
  ) {
    super(kind === 'time' ? `expression ran longer than its time limit of ${limit} ms` : `expression allocated more than its memory limit of ${formatBytes(limit)}`);
  }
}

/** Thrown from inside jsonata when the evaluation's signal aborted; carries the reason out. */
export class EvaluationAborted extends Error {
  constructor(readonly reason: unknown) {
    super('evaluation aborted');
  }
}

export function formatBytes(n: number): string {
  if (n >= 1024 * 1024 && n % (1024 * 1024) === 0) return `${n / (1024 * 1024)} MiB`;
  if (n >= 1024 && n % 1024 === 0) return `${n / 1024} KiB`;
  return `${n} bytes`;
}

const optionsCache = new WeakMap<ExpressionLimits, { stack: number; sequence: number }>();
/** jsonata options for evaluations under `limits` (one object per limits object). */
function sequenceOptions(limits: ExpressionLimits, stack: number): { stack: number; sequence: number } {
  let o = optionsCache.get(limits);
  if (!o || o.stack !== stack) {
    o = { stack, sequence: Math.max(1, Math.floor(limits.memoryBytes / ITEM_BYTES)) };
    optionsCache.set(limits, o);
  }
  return o;
}

/** Per-evaluation state, handed to jsonata as a binding no expression can name. */
export class Budget {
  deadline: number;
  used = 0;
  at = 0;
  readonly options: { stack: number; sequence: number };

  constructor(
    readonly limits: ExpressionLimits,
    readonly signal: AbortSignal | undefined,
    stack: number,
  ) {
    const now = performance.now();
    this.deadline = now + limits.timeMs;
    this.options = sequenceOptions(limits, stack);
  }

  charge(bytes: number, at: number | undefined): void {
    this.used += bytes;
    if (this.used > this.limits.memoryBytes) throw new ExpressionLimitExceeded('memory', this.limits.memoryBytes, at ?? this.at);
  }

  /** Throws when `bytes` more would pass the limit (checked before allocating). */
  precheck(bytes: number): void {
    if (this.used + bytes > this.limits.memoryBytes) throw new ExpressionLimitExceeded('memory', this.limits.memoryBytes, this.at);
  }

  pause(now: number): Promise<void> {
    return new Promise<void>((resolve) => setImmediate(resolve)).then(() => {
      const back = performance.now();
      this.deadline += back - now;
      lastTurn = back;
    });
  }
}

/**
 * When an evaluation last gave the event loop a turn. Shared by all evaluations: many short
 * ones in a row (an `each` over thousands of items) hold the loop as long as one long one.
 */
let lastTurn = performance.now();

/** A space cannot appear in a JSONata variable name, so `$…` can never read or rebind this. */
export const BUDGET_BINDING = ' alloy budget';
const BUDGET = Symbol('alloy.budget');

interface Env {
  base: Env & { [BUDGET]?: Budget; options?: unknown };
  lookup(name: string | symbol): unknown;
}
interface Node {
  type: string;
  value?: unknown;
  position?: number;
  group?: unknown;
}

/** jsonata's stack bound when an evaluation was given no bindings (GUARDRAILS.stack). */
const DEFAULT_STACK = 500;

function budgetOf(env: Env): Budget {
  const base = env.base;
  let b = base[BUDGET];
  if (b === undefined) {
    b = (base.lookup(BUDGET_BINDING) as Budget | undefined) ?? new Budget(DEFAULT_EXPRESSION_LIMITS, undefined, DEFAULT_STACK);
    base[BUDGET] = b;
    // Read by jsonata's range operator and $append: sequences longer than this fail (D2015).
    base.options = b.options;
  }
  return b;
}

function onEntry(expr: Node, _input: unknown, env: Env): Promise<void> | undefined {
  const b = budgetOf(env);
  if (expr.position !== undefined) b.at = expr.position;
  if (b.signal?.aborted) throw new EvaluationAborted(b.signal.reason);
  const now = performance.now();
  if (now > b.deadline) throw new ExpressionLimitExceeded('time', b.limits.timeMs, b.at);
  if (now - lastTurn >= YIELD_EVERY_MS) return b.pause(now);
  return undefined;
}

function onExit(expr: Node, _input: unknown, env: Env, result: unknown): void {
  if (result === undefined || result === null) return;
  const t = typeof result;
  if (t !== 'string' && t !== 'object') return;
  const type = expr.type;
  let bytes = 0;
  if (type === 'function' || type === 'apply' || type === 'partial' || (type === 'binary' && (expr.value === '&' || expr.value === '..'))) {
    if (t === 'string') bytes = (result as string).length * CHAR_BYTES;
    else if (Array.isArray(result)) bytes = result.length * ITEM_BYTES;
  }
  if ((type === 'unary' && expr.value === '{') || expr.group !== undefined) {
    if (t === 'object' && !Array.isArray(result)) bytes += Object.keys(result as object).length * KEY_BYTES;
  }
  if (bytes > 0) budgetOf(env).charge(bytes, expr.position);
}

interface JsonataFunction {
  _jsonata_function: true;
  implementation: (this: { environment: Env; createSequence?: () => unknown[] }, ...args: unknown[]) => unknown;
  signature?: unknown;
}

// The built-ins wrapped below, taken from jsonata itself (their signatures included).
const [padFn, joinFn, replaceFn, distinctFn, sortFn, spreadFn, zipFn, stringFn, shuffleFn, matchFn] = (await jsonata(
  '[$pad, $join, $replace, $distinct, $sort, $spread, $zip, $string, $shuffle, $match]',
).evaluate({})) as JsonataFunction[];

function wrap(orig: JsonataFunction, precheck: (b: Budget, args: unknown[]) => void): JsonataFunction {
  return {
    _jsonata_function: true,
    signature: orig.signature,
    implementation(...args: unknown[]) {
      precheck(budgetOf(this.environment), args);
      return orig.implementation.apply(this, args);
    },
  };
}

const padBounded = wrap(padFn, (b, [str, width, char]) => {
  if (typeof width !== 'number' || typeof str !== 'string') return;
  const padding = typeof char === 'string' && char.length > 0 ? char.length : 1;
  b.precheck((Math.abs(width) + str.length) * padding * CHAR_BYTES);
});

const joinBounded = wrap(joinFn, (b, [strs, sep]) => {
  if (!Array.isArray(strs)) return;
  let chars = Math.max(0, strs.length - 1) * (typeof sep === 'string' ? sep.length : 0);
  for (const s of strs) if (typeof s === 'string') chars += s.length;
  b.precheck(chars * CHAR_BYTES);
});

/**
 * Checks the signal and the deadline, and hands the event loop a turn when due: the entry
 * callback's work, for built-ins that loop inside one call (every CHUNK items or matches).
 */
function tick(b: Budget): Promise<void> | undefined {
  if (b.signal?.aborted) throw new EvaluationAborted(b.signal.reason);
  const now = performance.now();
  if (now > b.deadline) throw new ExpressionLimitExceeded('time', b.limits.timeMs, b.at);
  if (now - lastTurn >= YIELD_EVERY_MS) return b.pause(now);
  return undefined;
}

const CHUNK = 4096;

type Matcher = (this: unknown, str?: string) => unknown;
interface MatchResult {
  match: string;
  start: number;
  end: number;
  groups: string[];
  next: Matcher;
}

/**
 * A regex (jsonata compiles one to a matcher function whose result's `next` finds the next
 * match) whose every match is charged and ticks: $match and $replace loop over a million matches
 * inside one call, awaiting only microtasks, so no evaluator callback saw them.
 */
function guardMatcher(matcher: Matcher, b: Budget): Matcher {
  return function (this: unknown, ...args: [string?]) {
    const wrapResult = (r: unknown): unknown => {
      if (!r || typeof r !== 'object' || typeof (r as MatchResult).next !== 'function') return r;
      const m = r as MatchResult;
      b.charge((m.match.length + m.groups.length * 8) * CHAR_BYTES + 3 * KEY_BYTES, undefined);
      const out = { ...m, next: guardMatcher(m.next, b) };
      const wait = tick(b);
      return wait ? wait.then(() => out) : out;
    };
    const r = matcher.apply(this, args);
    return r instanceof Promise ? r.then(wrapResult) : wrapResult(r);
  };
}

/** jsonata's string-pattern replace, ticking every CHUNK matches (same result). */
async function replaceLiteral(b: Budget, str: string, pattern: string, replacement: string, limit: number | undefined): Promise<string> {
  let result = '';
  let position = 0;
  let count = 0;
  let index = str.indexOf(pattern, position);
  while (index !== -1 && (limit === undefined || count < limit)) {
    result += str.substring(position, index) + replacement;
    position = index + pattern.length;
    count++;
    if (count % CHUNK === 0) await tick(b);
    index = str.indexOf(pattern, position);
  }
  return result + str.substring(position);
}

const replaceBounded: JsonataFunction = {
  _jsonata_function: true,
  signature: replaceFn.signature,
  implementation(this: { environment: Env }, ...args: unknown[]) {
    const [str, pattern, replacement, limit] = args;
    const b = budgetOf(this.environment);
    if (typeof str === 'string' && typeof replacement === 'string') {
      // At most one match per position (and one at the end): an upper bound of the result.
      b.precheck((str.length + (str.length + 1) * replacement.length) * CHAR_BYTES);
    }
    if (typeof str === 'string' && typeof pattern === 'string' && pattern !== '' && typeof replacement === 'string' && (limit === undefined || (typeof limit === 'number' && limit >= 0))) {
      return replaceLiteral(b, str, pattern, replacement, limit);
    }
    if (typeof pattern === 'function') args[1] = guardMatcher(pattern as Matcher, b);
    return replaceFn.implementation.apply(this, args);
  },
};

const matchBounded: JsonataFunction = {
  _jsonata_function: true,
  signature: matchFn.signature,
  implementation(this: { environment: Env }, ...args: unknown[]) {
    if (typeof args[1] === 'function') args[1] = guardMatcher(args[1] as Matcher, budgetOf(this.environment));
    return matchFn.implementation.apply(this, args);
  },
};

/** jsonata's $zip (one tuple per index of the shortest array), sized first and ticking. */
const zipBounded: JsonataFunction = {
  _jsonata_function: true,
  signature: zipFn.signature,
  async implementation(this: { environment: Env }, ...args: unknown[]) {
    const b = budgetOf(this.environment);
    const length = Math.min(...args.map((a) => (Array.isArray(a) ? a.length : 0)));
    if (!(length > 0) || !Number.isFinite(length)) return zipFn.implementation.apply(this, args);
    b.precheck(length * (ITEM_BYTES + args.length * ITEM_BYTES));
    const result: unknown[][] = [];
    for (let i = 0; i < length; i++) {
      result.push(args.map((a) => (a as unknown[])[i]));
      if (i % CHUNK === CHUNK - 1) await tick(b);
    }
    return result;
  },
};

/** jsonata's $shuffle ('inside-out' Fisher-Yates, Math.random), sized first and ticking. */
const shuffleBounded: JsonataFunction = {
  _jsonata_function: true,
  signature: shuffleFn.signature,
  async implementation(this: { environment: Env }, arr: unknown) {
    if (!Array.isArray(arr) || arr.length <= CHUNK) return shuffleFn.implementation.call(this, arr);
    const b = budgetOf(this.environment);
    b.precheck(arr.length * ITEM_BYTES);
    const result = new Array<unknown>(arr.length);
    for (let i = 0; i < arr.length; i++) {
      const j = Math.floor(Math.random() * (i + 1));
      if (i !== j) result[i] = result[j];
      result[j] = arr[i];
      if (i % CHUNK === CHUNK - 1) await tick(b);
    }
    return result;
  },
};

/**
 * A lower bound of the characters JSON.stringify writes for `v`, walking no further than
 * `max` characters: throws the memory limit once past it. Ticks the deadline as it walks.
 */
function jsonLengthAtLeast(v: unknown, max: number, b: Budget): number {
  let chars = 0;
  let seen = 0;
  const stack: unknown[] = [v];
  while (stack.length > 0) {
    const x = stack.pop();
    if (++seen % CHUNK === 0) {
      const now = performance.now();
      if (b.signal?.aborted) throw new EvaluationAborted(b.signal.reason);
      if (now > b.deadline) throw new ExpressionLimitExceeded('time', b.limits.timeMs, b.at);
    }
    if (typeof x === 'string') chars += x.length + 2;
    else if (Array.isArray(x)) {
      chars += 1 + x.length;
      for (const item of x) stack.push(item);
    } else if (x !== null && typeof x === 'object') {
      for (const [k, item] of Object.entries(x)) {
        chars += k.length + 4;
        stack.push(item);
      }
    } else chars += 1;
    if (chars > max) throw new ExpressionLimitExceeded('memory', b.limits.memoryBytes, b.at);
  }
  return chars;
}

/** jsonata's $string, refusing (before JSON.stringify runs) an input whose text passes the budget. */
const stringBounded: JsonataFunction = {
  _jsonata_function: true,
  signature: stringFn.signature,
  implementation(this: { environment: Env }, ...args: unknown[]) {
    const arg = args[0];
    if (arg !== null && typeof arg === 'object') {
      const b = budgetOf(this.environment);
      jsonLengthAtLeast(arg, Math.max(0, (b.limits.memoryBytes - b.used) / CHAR_BYTES), b);
    }
    return stringFn.implementation.apply(this, args);
  },
};

/** A key equal for two values exactly when jsonata's deep equality says so (JSON values). */
function equalityKey(v: unknown): string | undefined {
  if (v === null || typeof v !== 'object') {
    const t = typeof v;
    return t === 'string' || t === 'number' || t === 'boolean' || v === null ? `${t}:${String(v)}` : undefined;
  }
  if (Array.isArray(v)) {
    const parts: string[] = [];
    for (const x of v) {
      const k = equalityKey(x);
      if (k === undefined) return undefined;
      parts.push(k);
    }
    return `[${parts.join(',')}]`;
  }
  const parts: string[] = [];
  for (const name of Object.getOwnPropertyNames(v).sort()) {
    const k = equalityKey((v as Record<string, unknown>)[name]);
    if (k === undefined) return undefined;
    parts.push(`${JSON.stringify(name)}:${k}`);
  }
  return `{${parts.join(',')}}`;
}

/**
 * jsonata's $distinct compares every item with every kept one (n² deep comparisons in one
 * native call: 100,000 numbers hold the thread for minutes). Same result in linear time,
 * keyed by value, for JSON data; anything else goes to the original.
 */
const distinctLinear: JsonataFunction = {
  _jsonata_function: true,
  signature: distinctFn.signature,
  implementation(this: { environment: Env; createSequence?: () => unknown[] }, arr: unknown) {
    if (!Array.isArray(arr) || arr.length <= 64) return distinctFn.implementation.call(this, arr);
    const seen = new Set<string>();
    const out: unknown[] = (arr as { sequence?: boolean }).sequence && this.createSequence ? this.createSequence() : [];
    for (const item of arr) {
      const key = equalityKey(item);
      if (key === undefined) return distinctFn.implementation.call(this, arr);
      if (!seen.has(key)) {
        seen.add(key);
        out.push(item);
      }
    }
    return out;
  },
};

/**
 * jsonata's $sort is a merge sort that copies the rest of a list for every element it takes
 * (`slice(1)`) in an async recursion as deep as the list, in callbacks no limit sees: sorting
 * 1,000,000 numbers ran 3 minutes and ended in a fatal out-of-memory. Same order here (stable,
 * `a > b` swaps), in O(n log n): V8's stable sort without a comparator, a bottom-up merge sort
 * over indexes with one (the comparator, a jsonata function, is awaited as jsonata does).
 */
const sortLinearithmic: JsonataFunction = {
  _jsonata_function: true,
  signature: sortFn.signature,
  async implementation(this: { environment: Env }, arr: unknown, comparator?: unknown) {
    if (!Array.isArray(arr) || arr.length <= 1) return sortFn.implementation.call(this, arr, comparator);
    if (comparator === undefined) {
      const numbers = arr.every((v) => typeof v === 'number');
      if (!numbers && !arr.every((v) => typeof v === 'string')) return sortFn.implementation.call(this, arr); // jsonata's D3070
      return [...arr].sort((a, b) => (a > b ? 1 : a < b ? -1 : 0));
    }
    if (typeof comparator !== 'function') return sortFn.implementation.call(this, arr, comparator);
    const swap = comparator as (a: unknown, b: unknown) => unknown;
    let from = [...arr];
    let to: unknown[] = new Array(from.length);
    for (let width = 1; width < from.length; width *= 2) {
      for (let lo = 0; lo < from.length; lo += 2 * width) {
        const mid = Math.min(lo + width, from.length);
        const hi = Math.min(lo + 2 * width, from.length);
        let i = lo;
        let j = mid;
        let k = lo;
        while (i < mid && j < hi) to[k++] = (await swap(from[i], from[j])) ? from[j++] : from[i++];
        while (i < mid) to[k++] = from[i++];
        while (j < hi) to[k++] = from[j++];
      }
      [from, to] = [to, from];
    }
    return from;
  },
};

type SpreadThis = { environment: Env; options?: { sequence?: number }; createSequence?: () => unknown[] };

/** jsonata's $spread of an array, without its copy per item: same items, same shape. */
function spreadArray(self: SpreadThis, arr: unknown[]): unknown[] {
  let out: unknown[] | undefined;
  for (const item of arr) {
    const r = Array.isArray(item) ? spreadArray(self, item) : spreadFn.implementation.call(self, item);
    if (r === undefined) continue;
    // jsonata's append: the result becomes a plain array (no longer a sequence) at the first item.
    out ??= [];
    if (Array.isArray(r)) for (const x of r) out.push(x);
    else out.push(r);
    const max = self.options?.sequence;
    if (max !== undefined && out.length > max) throw { code: 'D2015', value: out.length, stack: new Error().stack };
  }
  return out ?? (self.createSequence ? self.createSequence() : []);
}

/**
 * jsonata's $spread appends each item's spread to a copy of the result so far (n² copying in
 * one native call: 100,000 items held the thread for two minutes). Same result in linear time.
 */
const spreadLinear: JsonataFunction = {
  _jsonata_function: true,
  signature: spreadFn.signature,
  implementation(this: SpreadThis, arg: unknown) {
    return Array.isArray(arg) ? spreadArray(this, arg) : spreadFn.implementation.call(this, arg);
  },
};

/** Built-ins whose result is a number or boolean: nothing for the exit callback to charge. */
const SCALAR_FUNCTIONS = new Set([
  'number', 'boolean', 'not', 'exists', 'count', 'sum', 'max', 'min', 'average', 'abs', 'floor', 'ceil',
  'round', 'power', 'sqrt', 'length', 'contains', 'toMillis', 'millis', 'random',
]);

/**
 * Whether an expression can build strings, arrays or objects the exit callback must charge:
 * any string concatenation, range, constructor, group-by, lambda, transform, or call of a
 * function not known to return a scalar. Expressions that cannot (`$number(event.total) > 100`)
 * skip the exit callback: one awaited call less per node.
 */
export function mayAllocate(node: unknown): boolean {
  if (!node || typeof node !== 'object') return false;
  if (Array.isArray(node)) return node.some(mayAllocate);
  const n = node as Node & { procedure?: { type?: string; value?: unknown }; [key: string]: unknown };
  if (n.type === 'binary' && (n.value === '&' || n.value === '..')) return true;
  if (n.type === 'unary' && (n.value === '{' || n.value === '[')) return true;
  if (n.type === 'lambda' || n.type === 'bind' || n.type === 'transform' || n.type === 'partial' || n.type === 'apply' || n.group !== undefined) return true;
  if (n.type === 'function' && !(n.procedure?.type === 'variable' && SCALAR_FUNCTIONS.has(String(n.procedure.value)))) return true;
  for (const [key, value] of Object.entries(n)) if (key !== 'procedure' && value && typeof value === 'object' && mayAllocate(value)) return true;
  return false;
}

/** Binds the limit callbacks and the size-aware built-ins on a compiled expression. */
export function bound(expression: ReturnType<typeof jsonata>): void {
  expression.assign(Symbol.for('jsonata.__evaluate_entry') as unknown as string, onEntry);
  if (mayAllocate(expression.ast())) expression.assign(Symbol.for('jsonata.__evaluate_exit') as unknown as string, onExit);
  expression.assign('pad', padBounded);
  expression.assign('join', joinBounded);
  expression.assign('replace', replaceBounded);
  expression.assign('distinct', distinctLinear);
  expression.assign('sort', sortLinearithmic);
  expression.assign('spread', spreadLinear);
  expression.assign('zip', zipBounded);
  expression.assign('string', stringBounded);
  expression.assign('shuffle', shuffleBounded);
  expression.assign('match', matchBounded);
}

/** Bindings for one evaluation. */
export function evaluationBindings(options: EvaluateOptions | undefined, stack: number): Record<string, unknown> {
  return { [BUDGET_BINDING]: new Budget(options?.limits ?? DEFAULT_EXPRESSION_LIMITS, options?.signal, stack) };
}

/** 1-based line and column of a jsonata position (index just past the token) in `source`. */
export function lineCol(source: string, at: number): { line: number; column: number } {
  const end = Math.max(0, Math.min(at, source.length));
  let line = 1;
  let lineStart = 0;
  for (let i = 0; i < end; i++) {
    if (source.charCodeAt(i) === 10) {
      line++;
      lineStart = i + 1;
    }
  }
  return { line, column: Math.max(1, end - lineStart) };
}
