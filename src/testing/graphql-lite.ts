/**
 * Just enough GraphQL for the fake Shopify: parse one operation's root fields, their
 * arguments (variables or scalar literals) and selection sets, then project a resolved
 * value onto a selection, so a client gets exactly the fields it asked for and an unknown
 * field is an error, as on the real API. Fragments and directives are not supported.
 */

export interface Selection {
  alias?: string;
  name: string;
  args: Record<string, ArgValue>;
  selections?: Selection[];
}
export type ArgValue = { variable: string } | { literal: unknown };

export interface ParsedOperation {
  type: 'query' | 'mutation';
  name?: string;
  selections: Selection[];
}

export class GraphqlSyntaxError extends Error {}

type Token = { kind: 'punct' | 'name' | 'string' | 'number' | 'spread'; value: string };

function tokenize(source: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < source.length) {
    const c = source[i];
    if (/[\s,]/.test(c)) {
      i++;
    } else if (c === '#') {
      while (i < source.length && source[i] !== '\n') i++;
    } else if ('{}()[]:!$=@'.includes(c)) {
      tokens.push({ kind: 'punct', value: c });
      i++;
    } else if (source.startsWith('...', i)) {
      tokens.push({ kind: 'spread', value: '...' });
      i += 3;
    } else if (c === '"') {
      let j = i + 1;
      let text = '';
      while (j < source.length && source[j] !== '"') {
        if (source[j] === '\\') {
          text += source[j + 1];
          j += 2;
        } else text += source[j++];
      }
      tokens.push({ kind: 'string', value: text });
      i = j + 1;
    } else if (/[-0-9]/.test(c)) {
      const m = /^-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?/.exec(source.slice(i));
      if (!m) throw new GraphqlSyntaxError(`Unexpected character "${c}"`);
      tokens.push({ kind: 'number', value: m[0] });
      i += m[0].length;
    } else if (/[A-Za-z_]/.test(c)) {
      const m = /^[A-Za-z_][A-Za-z0-9_]*/.exec(source.slice(i))!;
      tokens.push({ kind: 'name', value: m[0] });
      i += m[0].length;
    } else {
      throw new GraphqlSyntaxError(`Unexpected character "${c}"`);
    }
  }
  return tokens;
}

export function parseOperation(source: string): ParsedOperation {
  const tokens = tokenize(source);
  let pos = 0;
  const peek = () => tokens[pos];
  const next = () => {
    const t = tokens[pos++];
    if (!t) throw new GraphqlSyntaxError('Unexpected end of document');
    return t;
  };
  const expect = (value: string) => {
    const t = next();
    if (t.value !== value) throw new GraphqlSyntaxError(`Expected "${value}", found "${t.value}"`);
  };

  let type: 'query' | 'mutation' = 'query';
  let name: string | undefined;
  if (peek()?.kind === 'name' && (peek().value === 'query' || peek().value === 'mutation')) {
    type = next().value as 'query' | 'mutation';
    if (peek()?.kind === 'name') name = next().value;
    if (peek()?.value === '(') skipBalanced('(', ')');
  }
  const selections = parseSelectionSet();
  if (pos < tokens.length) throw new GraphqlSyntaxError('Only one operation per document is supported by the fake');
  return { type, name, selections };

  function skipBalanced(open: string, close: string): void {
    let depth = 0;
    do {
      const t = next();
      if (t.value === open) depth++;
      else if (t.value === close) depth--;
    } while (depth > 0);
  }

  function parseSelectionSet(): Selection[] {
    expect('{');
    const out: Selection[] = [];
    while (peek() && peek().value !== '}') {
      const t = next();
      if (t.kind === 'spread') throw new GraphqlSyntaxError('Fragments are not supported by the fake');
      if (t.kind !== 'name') throw new GraphqlSyntaxError(`Expected Name, found "${t.value}"`);
      let alias: string | undefined;
      let fieldName = t.value;
      if (peek()?.value === ':') {
        next();
        alias = fieldName;
        fieldName = next().value;
      }
      const args: Record<string, ArgValue> = {};
      if (peek()?.value === '(') {
        next();
        while (peek()?.value !== ')') {
          const argName = next().value;
          expect(':');
          args[argName] = parseArgValue();
        }
        next();
      }
      if (peek()?.value === '@') throw new GraphqlSyntaxError('Directives are not supported by the fake');
      const sel: Selection = { alias, name: fieldName, args };
      if (peek()?.value === '{') sel.selections = parseSelectionSet();
      out.push(sel);
    }
    expect('}');
    return out;
  }

  function parseArgValue(): ArgValue {
    const t = next();
    if (t.value === '$') return { variable: next().value };
    if (t.kind === 'string') return { literal: t.value };
    if (t.kind === 'number') return { literal: Number(t.value) };
    if (t.kind === 'name') return { literal: t.value === 'true' ? true : t.value === 'false' ? false : t.value === 'null' ? null : t.value };
    if (t.value === '[' || t.value === '{') {
      throw new GraphqlSyntaxError('List and object literals are not supported by the fake: pass variables');
    }
    throw new GraphqlSyntaxError(`Unexpected "${t.value}"`);
  }
}

export function argValue(arg: ArgValue | undefined, variables: Record<string, unknown>): unknown {
  if (!arg) return undefined;
  return 'variable' in arg ? variables[arg.variable] : arg.literal;
}

/** A field the client selected that the type does not have. */
export class UndefinedFieldError extends Error {
  constructor(
    readonly field: string,
    readonly typeName: string,
  ) {
    super(`Field '${field}' doesn't exist on type '${typeName}'`);
  }
}

/**
 * Projects a resolved value (every field the fake knows) onto the client's selection.
 * Object values may carry `__typename` so errors name the type.
 */
export function project(value: unknown, selections: Selection[] | undefined, typeName = 'Object'): unknown {
  if (value === null || value === undefined) return null;
  if (Array.isArray(value)) return value.map((v) => project(v, selections, typeName));
  if (typeof value !== 'object' || !selections) return value;
  const obj = value as Record<string, unknown>;
  const type = typeof obj.__typename === 'string' ? obj.__typename : typeName;
  const out: Record<string, unknown> = {};
  for (const sel of selections) {
    if (sel.name === '__typename') {
      out[sel.alias ?? sel.name] = type;
      continue;
    }
    if (!(sel.name in obj)) throw new UndefinedFieldError(sel.name, type);
    out[sel.alias ?? sel.name] = project(obj[sel.name], sel.selections, sel.name);
  }
  return out;
}
