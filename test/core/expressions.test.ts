import jsonata from 'jsonata';
import { describe, expect, it } from 'vitest';
import { compileScalar, MISS } from '../../src/core/scalar-expressions.js';
import {
  compileTemplate,
  compileValue,
  expressionRefs,
  ExpressionEvaluationError,
  ExpressionSyntaxError,
  renderTemplate,
  renderValue,
  scanTemplate,
  TemplateSyntaxError,
} from '../../src/core/expressions.js';

describe('template scanner', () => {
  it('splits text and expressions', () => {
    expect(scanTemplate('Hello {{ event.name }}!')).toEqual([
      { kind: 'text', text: 'Hello ' },
      { kind: 'expr', source: ' event.name ', offset: 8 },
      { kind: 'text', text: '!' },
    ]);
  });

  it('keeps object constructors and "}}" inside string literals in one expression', () => {
    const parts = scanTemplate('{{ {"a": "}}", "b": {"c": 1}} }}');
    expect(parts).toHaveLength(1);
    expect(parts[0]).toMatchObject({ kind: 'expr', source: ' {"a": "}}", "b": {"c": 1}} ' });
    const single = scanTemplate("{{ 'it''s' & \"{{\" }} tail");
    expect(single[0]).toMatchObject({ kind: 'expr' });
    expect(single[1]).toEqual({ kind: 'text', text: ' tail' });
  });

  it('handles escaped quotes, back-quoted names and comments', () => {
    expect(scanTemplate('{{ "a\\"}}b" }}')).toHaveLength(1);
    expect(scanTemplate('{{ event.`odd}}name` }}')).toHaveLength(1);
    expect(scanTemplate('{{ /* }} */ event.x }}')).toHaveLength(1);
  });

  it('reports an unclosed "{{" and an empty expression at their offsets', () => {
    expect(() => scanTemplate('ab {{ event.x')).toThrowError(TemplateSyntaxError);
    try {
      scanTemplate('ab {{ event.x');
    } catch (e) {
      expect((e as TemplateSyntaxError).offset).toBe(3);
    }
    expect(() => scanTemplate('{{   }}')).toThrow(/empty expression/);
  });
});

describe('compile and render', () => {
  const ctx = { event: { total: '12.50', name: 'Ann', items: [{ sku: 'a', q: 2 }, { sku: 'b', q: 1 }] } };

  it('a single expression keeps its type; mixed text interpolates', async () => {
    expect(await renderTemplate(compileTemplate('{{ $number(event.total) }}'), ctx)).toBe(12.5);
    expect(await renderTemplate(compileTemplate('  {{ event.items }}  '), ctx)).toEqual(ctx.event.items);
    expect(await renderTemplate(compileTemplate('Total {{ $number(event.total) * 2 }} for {{ event.name }}'), ctx)).toBe('Total 25 for Ann');
    expect(await renderTemplate(compileTemplate('{{ event.missing }}x'), ctx)).toBe('x');
  });

  it('renders nested values and leaves out keys whose value is undefined', async () => {
    const value = compileValue({ a: '{{ event.name }}', b: ['{{ event.items[0].sku }}', 3], c: '{{ event.nope }}', d: 'plain' });
    expect(await renderValue(value, ctx)).toEqual({ a: 'Ann', b: ['a', 3], d: 'plain' });
  });

  it('keeps a `__proto__` key of the data as a key (quick and JSONata paths), not as the prototype', async () => {
    // As YAML and JSON.parse give it: an own key.
    for (const inner of ['{{ event.name }}', '{{ $uppercase(event.name) }}']) {
      const value = compileValue(JSON.parse(`{"__proto__": {"polluted": "${inner}"}, "a": 1}`));
      const out = (await renderValue(value, ctx)) as Record<string, unknown>;
      expect(Object.getPrototypeOf(out)).toBe(Object.prototype);
      expect(Object.hasOwn(out, '__proto__')).toBe(true);
      expect(Object.keys(out)).toEqual(['__proto__', 'a']);
      expect((out as { polluted?: unknown }).polluted).toBeUndefined();
    }
    // JSONata's object constructor: its prototype-less object is copied into a plain one.
    const built = (await renderTemplate(compileTemplate('{{ {"__proto__": {"a": event.name}, "b": 1} }}'), ctx)) as Record<string, unknown>;
    expect(JSON.stringify(built)).toBe('{"__proto__":{"a":"Ann"},"b":1}');
    expect(Object.getPrototypeOf(built)).toBe(Object.prototype);
  });

  it('turns jsonata sequences into plain arrays', async () => {
    const out = await renderTemplate(compileTemplate('{{ event.items.sku }}'), ctx);
    expect(Array.isArray(out)).toBe(true);
    expect(out).toEqual(['a', 'b']);
    expect(Object.getPrototypeOf(out)).toBe(Array.prototype);
  });

  it('reports syntax errors at their offset in the template', () => {
    try {
      compileTemplate('x {{ event.( }}');
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(ExpressionSyntaxError);
      expect((e as ExpressionSyntaxError).offset).toBe(12);
    }
  });

  it('bounds runaway expressions: a deep recursion fails instead of hanging', async () => {
    const t = compileTemplate('{{ ($f := function($n){ $n = 0 ? 0 : 1 + $f($n - 1) }; $f(100000)) }}');
    await expect(renderTemplate(t, {})).rejects.toBeInstanceOf(ExpressionEvaluationError);
  });

  it('bounds runaway expressions: a long loop fails with the timeout', async () => {
    const t = compileTemplate('{{ ($loop := function($n){ $n > 0 ? $loop($n - 1) : 0 }; $sum([1..200000].($loop(50)))) }}');
    const started = Date.now();
    await expect(renderTemplate(t, {})).rejects.toThrow(/longer than|deeper than/);
    expect(Date.now() - started).toBeLessThan(10_000);
  });
});

describe('references', () => {
  const refs = (s: string) => {
    const t = compileTemplate(s);
    const part = t.parts.find((p) => !('kind' in p))!;
    return expressionRefs(part as Parameters<typeof expressionRefs>[0]);
  };

  it('finds root names and step ids', () => {
    const r = refs('{{ steps.order.output.id & event.email }}');
    expect([...r.roots].sort()).toEqual(['event', 'steps']);
    expect(r.steps.map((s) => s.id)).toEqual(['order']);
  });

  it('does not mistake relative paths for roots', () => {
    expect([...refs('{{ event.items[price > 5].{ "t": title } }}').roots]).toEqual(['event']);
    expect([...refs('{{ $map(event.items, function($i){ $i.sku }) }}').roots]).toEqual(['event']);
    expect([...refs('{{ [event.line_items.{ "sku": sku, "q": quantity }] }}').roots]).toEqual(['event']);
  });
});

describe('the synchronous evaluator of scalar expressions (scalar-expressions.ts)', () => {
  const expressions = [
    'a.x', 'a', 'missing.x', 'a.x = b.y', 'a.x != b.y', 'a.x < b.y', 'a.x <= b.y', 'a.x > b.y', 'a.x >= b.y',
    'a.x + b.y', 'a.x - 1', 'a.x * b.y', 'a.x / b.y', 'a.x % 3', '-a.x', 'a.x & b.y', "a.x & '-' & b.y",
    'a.x and b.y', 'a.x or b.y', "a.x ? 'yes' : 'no'", 'a.x ? b.y', '(a.x)', '$number(a.x)', '$number(a.x) > 100',
    '$boolean(a.x)', '$not(a.x)', '$exists(a.x)', '$exists(a.nope)', '$string(a.x)', '$uppercase(a.x)', '$lowercase(b.y)',
    "a.x = 'same'", 'a.x = 1', 'true and a.x', 'false or a.x', 'a.toString', 'a.x.y', '1 / 0', "'a' < 'b'",
  ];
  const contexts: Record<string, unknown>[] = [
    { a: { x: 'same' }, b: { y: 'same' } },
    { a: { x: 'one' }, b: { y: 'two' } },
    { a: { x: 1 }, b: { y: '1' } },
    { a: { x: 0 }, b: { y: -0 } },
    { a: { x: 150.5 }, b: { y: 7 } },
    { a: { x: '150.50' }, b: { y: '1e3' } },
    { a: { x: '0x1F' }, b: { y: '0x1g' } },
    { a: { x: ' 12' }, b: { y: '' } },
    { a: { x: true }, b: { y: false } },
    { a: { x: 'v' }, b: {} },
    { a: {}, b: {} },
    { a: { x: [1] }, b: { y: [1] } },
    { a: { x: [] }, b: { y: [1, 2] } },
    { a: { x: { k: 1 } }, b: { y: { k: 2 } } },
    { a: { x: { y: 'deep' } }, b: { y: 'deep' } },
    { a: { x: null }, b: { y: null } },
    { a: [{ x: 1 }, { x: 2 }], b: { y: 1 } },
    // Paths ending at objects (answered without JSONata too): members JSON would change, nested arrays, no prototype.
    { a: { x: { k: [1, [2]], u: undefined, n: Number.NaN, z: -0 } }, b: { y: Object.assign(Object.create(null), { k: 1 }) } },
    { a: { x: { d: new Date(0), f: () => 1 } }, b: { y: { y: { y: {} } } } },
  ];
  const outcome = async (f: () => Promise<unknown>) => {
    try {
      return { value: await f() };
    } catch (err) {
      return { code: (err as { code?: string }).code };
    }
  };
  it('gives what JSONata gives (value or error code) for every kind of operand', async () => {
    for (const e of expressions) {
      const compiled = compileTemplate(`{{ ${e} }}`);
      const plain = jsonata(e);
      for (const ctx of contexts) {
        const ours = await outcome(() => renderTemplate(compiled, ctx));
        const theirs = await outcome(async () => {
          const v = await plain.evaluate(ctx);
          return v === undefined || v === null || typeof v !== 'object' ? v : JSON.parse(JSON.stringify(v));
        });
        expect(ours, `${e} with ${JSON.stringify(ctx)}`).toEqual(theirs);
      }
    }
  });
  it('answers the usual shapes itself and leaves the rest to JSONata', () => {
    const ctx = { event: { total_price: '150.50', email: 'a@b.c', tags: ['x'] }, steps: { s: { output: { n: 3 } } } };
    const answer = (e: string) => compileScalar(jsonata(e).ast())?.(ctx, { memoryBytes: 1 << 20 });
    expect(answer('$number(event.total_price) > 100')).toBe(true);
    expect(answer("event.email & ' <' & $uppercase(event.email) & '>'")).toBe('a@b.c <A@B.C>');
    expect(answer('steps.s.output.n * 2 = 6 ? "six" : "other"')).toBe('six');
    expect(answer('event.tags')).toBe(MISS); // an array: JSONata's
    // A whole expression that is a path ending at an object: that object (one step's output into the next's body).
    expect(answer('steps.s.output')).toBe(ctx.steps.s.output);
    expect(answer('(steps.s.output)')).toBe(ctx.steps.s.output);
    expect(answer('$exists(steps.s.output)')).toBe(MISS); // inside a larger expression only scalars are answered
    expect(answer('steps.s.output.nope.x')).toBeUndefined();
    // An object JSONata flags as one of its functions is not looked into (JSONata's lookup gives nothing there).
    expect(compileScalar(jsonata('a.b').ast())!({ a: { _jsonata_lambda: true, b: { c: 1 } } }, { memoryBytes: 1e6 })).toBe(MISS);
    expect(answer('$number(event.email)')).toBe(MISS); // JSONata's D3030
    for (const e of ['event.tags[0]', '$sum([1..3])', '$x := 1', 'event.{ "a": email }', '$count(event.tags)', 'event.*', 'x in [1]']) {
      expect(compileScalar(jsonata(e).ast()), e).toBeNull();
    }
  });
  it('results come back as plain JSON, as a JSON round trip of JSONata\'s would (copied only where they differ)', async () => {
    const items = [{ sku: 'a', qty: 1, tags: ['x'] }, { sku: 'b', qty: 2, tags: [] }];
    const ctx = { event: { items, nested: { deep: { list: [1, 2, 3] } } } };
    const cases = [
      'event.items', 'event.items.sku', 'event.items.tags', 'event.nested', '[1, -0, "a", true]', '[0 * -1]',
      "{'a': event.nothing, 'b': [1, 2], 'c': event.items[0]}", '$map([1, 2], function($x) { $x * 2 })',
      "{'f': $uppercase, 'g': 1}", '[$uppercase, 1]', 'event.items[qty > 1]', "event.items{sku: qty}", '[[1], [2, [3]]]',
    ];
    for (const e of cases) {
      const theirs = await jsonata(e).evaluate(ctx);
      const expected = theirs === undefined || theirs === null || typeof theirs !== 'object' ? theirs : JSON.parse(JSON.stringify(theirs));
      const ours = await renderTemplate(compileTemplate(`{{ ${e} }}`), ctx);
      expect(ours, e).toStrictEqual(expected);
    }
    // Already plain: the very array, not a copy.
    expect(await renderTemplate(compileTemplate('{{ event.items }}'), ctx)).toBe(items);
  });
  it('charges the strings it builds to the memory limit, and leaves an aborted evaluation to JSONata', async () => {
    const ctx = { event: { s: 'x'.repeat(1000) } };
    const concat = compileTemplate('{{ event.s & event.s }}');
    const err = await renderTemplate(concat, ctx, undefined, '', { limits: { timeMs: 1000, memoryBytes: 3000 } }).catch((e: unknown) => e);
    expect((err as ExpressionEvaluationError).code).toBe('E_EXPRESSION_LIMIT');
    const ac = new AbortController();
    ac.abort(new Error('stop here'));
    const aborted = await renderTemplate(compileTemplate('{{ event.s = "x" }}'), ctx, undefined, '', { signal: ac.signal }).catch((e: unknown) => e);
    expect((aborted as Error).message).toBe('stop here');
  });
});

describe('a whole template that is a path to an object', () => {
  it('a value that cannot be made plain JSON (a cycle, a throwing getter) fails as JSONata did: an ExpressionEvaluationError naming the expression, from a rejected promise', async () => {
    const cyclic: Record<string, unknown> = { n: 1 };
    cyclic.self = cyclic;
    const throwing = { get boom() { throw new Error('getter says no'); } };
    for (const output of [cyclic, throwing]) {
      const value = compileValue('{{ steps.map.output }}');
      let rendered: Promise<unknown> | undefined;
      expect(() => (rendered = renderValue(value, { steps: { map: { output } } }) as Promise<unknown>)).not.toThrow();
      const err = await Promise.resolve(rendered).then(() => undefined, (e: unknown) => e);
      expect(err).toBeInstanceOf(ExpressionEvaluationError);
      expect(String((err as Error).message)).toContain('steps.map.output');
    }
  });
});
