/**
 * A synchronous evaluator for the small expressions most templates are
 * (`$number(event.total_price) > 100`, `event.a & '-' & event.b`, `x ? 'y' : 'z'`), giving
 * JSONata's own result without its asynchronous evaluator and the per-node limit callbacks
 * (about 10–20 µs an expression). It handles only what it can answer exactly: paths of plain
 * names through plain objects, literals, arithmetic, comparison, `=`/`!=`, `and`/`or`, `&` of
 * strings, `? :`, parentheses, and $number, $boolean, $not, $exists, $string of a string,
 * $uppercase, $lowercase — on strings, numbers, booleans and missing values only. Anything else
 * (an array or object on the way, null, a type error JSONata would report, a result that is not
 * finite) returns MISS and the caller evaluates the expression with JSONata, which gives the
 * answer or the error.
 *
 * Why the limits still hold: such an expression has no loops, lambdas, ranges or bindings, so
 * it visits each node once and its time is its size plus the length of the strings it reads
 * (microseconds); the strings `&` builds are charged against the memory limit (past it: MISS,
 * and JSONata reports the limit); an aborted signal is MISS too, so the abort is JSONata's to
 * throw.
 */

/** Returned when the fast evaluator cannot answer exactly; the caller falls back to JSONata. */
export const MISS: unique symbol = Symbol('scalar-miss');
type Miss = typeof MISS;

/** What one evaluation may use: strings built by `&` are charged here (bytes, 2 per character). */
export interface ScalarBudget {
  memoryBytes: number;
}

export type ScalarEvaluator = (context: Record<string, unknown>, budget: ScalarBudget) => unknown;

interface AstNode {
  type?: unknown;
  value?: unknown;
  [key: string]: unknown;
}

// Evaluation state for one call (single-threaded and synchronous, so a module variable is safe).
let charged = 0;

/**
 * Compiles a JSONata AST into a synchronous evaluator, or null when it is outside the subset.
 * A whole expression that is a path of plain names (`steps.map.output`) also answers with the
 * object it ends at (not an array: JSONata flattens those), which JSONata returns as it is;
 * the caller makes it plain JSON as it does JSONata's result. Mapping one step's output into
 * the next step's body is that, and JSONata cost ~20 µs for it.
 */
export function compileScalar(ast: unknown): ScalarEvaluator | null {
  const path = topPath(ast);
  if (path) {
    return compilePath(path, true);
  }
  const run = compileNode(ast);
  if (!run) return null;
  return (context, budget) => {
    charged = 0;
    const v = run(context, budget);
    return v === undefined || isScalar(v) ? v : MISS;
  };
}

type Run = (ctx: Record<string, unknown>, budget: ScalarBudget) => unknown;

function isScalar(v: unknown): v is string | number | boolean {
  const t = typeof v;
  return t === 'string' || t === 'boolean' || (t === 'number' && Number.isFinite(v));
}

/** Only these keys may appear on a node: anything else (predicates, stages, group-by, focus…) changes its meaning. */
function onlyKeys(n: AstNode, allowed: readonly string[]): boolean {
  for (const k of Object.keys(n)) if (n[k] !== undefined && k !== 'type' && k !== 'position' && !allowed.includes(k)) return false;
  return true;
}

const FUNCTIONS: Record<string, (v: unknown) => unknown> = {
  number: toNumber,
  boolean: (v) => (v === undefined ? undefined : boolValue(v)),
  not: (v) => (v === undefined ? undefined : !boolValue(v)),
  exists: (v) => v !== undefined,
  string: (v) => (v === undefined || typeof v === 'string' ? v : MISS),
  uppercase: (v) => (v === undefined ? undefined : typeof v === 'string' ? v.toUpperCase() : MISS),
  lowercase: (v) => (v === undefined ? undefined : typeof v === 'string' ? v.toLowerCase() : MISS),
};

// JSONata's $number: these two patterns, else an error (MISS here).
const NUMBER_RE = /^-?[0-9]+(\.[0-9]+)?([Ee][-+]?[0-9]+)?$/;
const RADIX_RE = /^(0[xX][0-9A-Fa-f]+)|(0[oO][0-7]+)|(0[bB][0-1]+)$/;
function toNumber(v: unknown): unknown {
  if (v === undefined) return undefined;
  if (typeof v === 'number') return v;
  if (typeof v === 'boolean') return v ? 1 : 0;
  if (typeof v === 'string') {
    if (NUMBER_RE.test(v) && Number.isFinite(Number(v))) return parseFloat(v);
    // JSONata's pattern is loosely anchored ("0x1g" passes, giving NaN): only finite results are answered here.
    if (RADIX_RE.test(v)) {
      const r = Number(v);
      if (Number.isFinite(r)) return r;
    }
  }
  return MISS;
}

/** JSONata's effective boolean value of a scalar. */
function boolValue(v: unknown): boolean {
  if (typeof v === 'string') return v.length > 0;
  if (typeof v === 'number') return v !== 0;
  return v === true;
}

function compileNode(node: unknown): Run | null {
  if (!node || typeof node !== 'object' || Array.isArray(node)) return null;
  const n = node as AstNode;
  switch (n.type) {
    case 'string':
    case 'number':
    case 'value': {
      if (!onlyKeys(n, ['value'])) return null;
      const v = n.value;
      if (!isScalar(v)) return null;
      return () => v;
    }
    case 'path':
      return compilePath(n);
    case 'block': {
      if (!onlyKeys(n, ['expressions']) || !Array.isArray(n.expressions) || n.expressions.length !== 1) return null;
      return compileNode(n.expressions[0]);
    }
    case 'unary': {
      if (n.value !== '-' || !onlyKeys(n, ['value', 'expression'])) return null;
      const e = compileNode(n.expression);
      if (!e) return null;
      return (c, b) => {
        const v = e(c, b);
        return v === undefined ? undefined : typeof v === 'number' ? -v : MISS;
      };
    }
    case 'condition': {
      if (!onlyKeys(n, ['condition', 'then', 'else'])) return null;
      const cond = compileNode(n.condition);
      const then = compileNode(n.then);
      const otherwise = n.else === undefined ? () => undefined : compileNode(n.else);
      if (!cond || !then || !otherwise) return null;
      return (c, b) => {
        const v = cond(c, b);
        if (v === MISS) return MISS;
        return v !== undefined && boolValue(v) ? then(c, b) : otherwise(c, b);
      };
    }
    case 'function': {
      if (n.value !== '(' || !onlyKeys(n, ['value', 'arguments', 'procedure'])) return null;
      const proc = n.procedure as AstNode | undefined;
      if (!proc || proc.type !== 'variable' || typeof proc.value !== 'string' || !onlyKeys(proc, ['value'])) return null;
      const fn = Object.prototype.hasOwnProperty.call(FUNCTIONS, proc.value) ? FUNCTIONS[proc.value] : undefined;
      const args = n.arguments;
      if (!fn || !Array.isArray(args) || args.length !== 1) return null;
      const arg = compileNode(args[0]);
      if (!arg) return null;
      return (c, b) => {
        const v = arg(c, b);
        return v === MISS ? MISS : fn(v);
      };
    }
    case 'binary':
      return compileBinary(n);
    default:
      return null;
  }
}

/** The path node an expression is, alone or as a block of one (`(a.b)`); undefined otherwise. */
function topPath(node: unknown): AstNode | undefined {
  let n = node as AstNode | undefined;
  while (n && typeof n === 'object' && n.type === 'block' && onlyKeys(n, ['expressions']) && Array.isArray(n.expressions) && n.expressions.length === 1) {
    n = n.expressions[0] as AstNode;
  }
  return n && typeof n === 'object' && n.type === 'path' ? n : undefined;
}

/** A path of plain names; `objects`: it may end at a non-array object (a whole expression only, see compileScalar). */
function compilePath(n: AstNode, objects = false): Run | null {
  if (!onlyKeys(n, ['steps']) || !Array.isArray(n.steps) || n.steps.length === 0) return null;
  const names: string[] = [];
  for (const s of n.steps as AstNode[]) {
    if (!s || s.type !== 'name' || typeof s.value !== 'string' || !onlyKeys(s, ['value'])) return null;
    names.push(s.value);
  }
  return (ctx) => {
    let v: unknown = ctx;
    for (const name of names) {
      // Arrays map over their items and non-objects have no fields in JSONata: leave both to it.
      if (v === null || typeof v !== 'object' || Array.isArray(v)) return MISS;
      // JSONata does not look into an object flagged as one of its functions (its `lookup`).
      if ((v as Record<string, unknown>)._jsonata_lambda === true || (v as Record<string, unknown>)._jsonata_function === true) return MISS;
      if (!Object.prototype.hasOwnProperty.call(v, name)) return name in v ? MISS : undefined;
      v = (v as Record<string, unknown>)[name];
      if (v === undefined) return undefined;
    }
    return v === undefined || isScalar(v) || (objects && typeof v === 'object' && v !== null && !Array.isArray(v)) ? v : MISS;
  };
}

function compileBinary(n: AstNode): Run | null {
  if (!onlyKeys(n, ['value', 'lhs', 'rhs'])) return null;
  const op = n.value;
  const lhs = compileNode(n.lhs);
  const rhs = compileNode(n.rhs);
  if (!lhs || !rhs) return null;
  switch (op) {
    case 'and':
    case 'or':
      return (c, b) => {
        const l = lhs(c, b);
        if (l === MISS) return MISS;
        const lb = l !== undefined && boolValue(l);
        if (op === 'and' ? !lb : lb) return lb;
        const r = rhs(c, b);
        return r === MISS ? MISS : r !== undefined && boolValue(r);
      };
    case '+':
    case '-':
    case '*':
    case '/':
    case '%':
      return (c, b) => {
        const l = lhs(c, b);
        if (l === MISS || (l !== undefined && typeof l !== 'number')) return MISS;
        const r = rhs(c, b);
        if (r === MISS || (r !== undefined && typeof r !== 'number')) return MISS;
        if (l === undefined || r === undefined) return undefined;
        const v = op === '+' ? l + r : op === '-' ? l - r : op === '*' ? l * r : op === '/' ? l / r : l % r;
        return Number.isFinite(v) ? v : MISS;
      };
    case '=':
    case '!=':
      return (c, b) => {
        const l = lhs(c, b);
        if (l === MISS) return MISS;
        const r = rhs(c, b);
        if (r === MISS) return MISS;
        if (l === undefined || r === undefined) return false;
        return op === '=' ? l === r : l !== r;
      };
    case '<':
    case '<=':
    case '>':
    case '>=':
      return (c, b) => {
        const l = lhs(c, b);
        if (l === MISS || (l !== undefined && typeof l !== 'number' && typeof l !== 'string')) return MISS;
        const r = rhs(c, b);
        if (r === MISS || (r !== undefined && typeof r !== 'number' && typeof r !== 'string')) return MISS;
        if (l === undefined || r === undefined) return undefined;
        if (typeof l !== typeof r) return MISS;
        return op === '<' ? l < r : op === '<=' ? l <= r : op === '>' ? l > r : l >= r;
      };
    case '&':
      return (c, b) => {
        const l = lhs(c, b);
        if (l === MISS || (l !== undefined && typeof l !== 'string')) return MISS;
        const r = rhs(c, b);
        if (r === MISS || (r !== undefined && typeof r !== 'string')) return MISS;
        const v = (l ?? '') + (r ?? '');
        charged += v.length * 2;
        return charged > b.memoryBytes ? MISS : v;
      };
    default:
      return null;
  }
}
