import { describe, expect, it } from 'vitest';
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

describe('the `<path> = <path>` fast path', () => {
  const contexts: Record<string, unknown>[] = [
    { a: { x: 'same' }, b: { y: 'same' } },
    { a: { x: 'one' }, b: { y: 'two' } },
    { a: { x: 1 }, b: { y: '1' } },
    { a: { x: 0 }, b: { y: -0 } },
    { a: { x: true }, b: { y: true } },
    { a: { x: 'v' }, b: {} },
    { a: {}, b: {} },
    { a: { x: [1] }, b: { y: [1] } },
    { a: { x: { k: 1 } }, b: { y: { k: 2 } } },
    { a: { x: null }, b: { y: null } },
  ];
  it('gives what JSONata gives for every kind of operand', async () => {
    for (const ctx of contexts) {
      // Parenthesised, the same comparison is not on the fast path: JSONata evaluates it.
      const fast = await renderTemplate(compileTemplate('{{ a.x = b.y }}'), ctx);
      const slow = await renderTemplate(compileTemplate('{{ (a.x) = (b.y) }}'), ctx);
      expect(fast, JSON.stringify(ctx)).toEqual(slow);
    }
  });
  it('leaves != , <= and >= to JSONata', async () => {
    const ctx = { a: { x: 2 }, b: { y: 2 } };
    expect(await renderTemplate(compileTemplate('{{ a.x != b.y }}'), ctx)).toBe(false);
    expect(await renderTemplate(compileTemplate('{{ a.x <= b.y }}'), ctx)).toBe(true);
    expect(await renderTemplate(compileTemplate('{{ a.x >= b.y }}'), ctx)).toBe(true);
  });
});
