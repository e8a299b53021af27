/**
 * The key order of a definition as written in its file. Objects are canonical JSON (keys
 * sorted, so reordering keys never changes an id); a release records the source order beside
 * the ids, as the JSON pointers of every object member in document order, and `alloy show`
 * prints with it. Releases without it print in the conventional order (show.ts).
 */

/** Pointers (RFC 6901) of every object member of `value`: each object's members together, in insertion order. */
export function keyOrderOf(value: unknown): string[] {
  const out: string[] = [];
  // Iterative, children pushed in reverse so they pop in order.
  const stack: Array<{ v: unknown; at: string }> = [{ v: value, at: '' }];
  while (stack.length) {
    const { v, at } = stack.pop()!;
    if (!v || typeof v !== 'object') continue;
    const entries = Array.isArray(v) ? v.map((c, i) => [String(i), c] as const) : Object.entries(v as Record<string, unknown>).filter(([, c]) => c !== undefined);
    const children: Array<{ v: unknown; at: string }> = [];
    for (const [k, c] of entries) {
      const here = member(at, k);
      if (!Array.isArray(v)) out.push(here);
      children.push({ v: c, at: here });
    }
    for (let i = children.length - 1; i >= 0; i--) stack.push(children[i]);
  }
  return out;
}

/**
 * `value` with every object's keys in the order `order` lists them; keys it does not list
 * (or every key, without `order`) are placed by `fallback(pointer, keys)`.
 */
export function applyKeyOrder(value: unknown, order: readonly string[] | undefined, fallback: (at: string, keys: string[]) => string[]): unknown {
  const rank = new Map((order ?? []).map((p, i) => [p, i]));
  const walk = (v: unknown, at: string): unknown => {
    if (!v || typeof v !== 'object') return v;
    if (Array.isArray(v)) return v.map((c, i) => walk(c, `${at}/${i}`));
    const obj = v as Record<string, unknown>;
    const ptr = (k: string) => member(at, k);
    const known = Object.keys(obj).filter((k) => rank.has(ptr(k))).sort((a, b) => rank.get(ptr(a))! - rank.get(ptr(b))!);
    const rest = fallback(at, Object.keys(obj).filter((k) => !rank.has(ptr(k))));
    return Object.fromEntries([...known, ...rest].map((k) => [k, walk(obj[k], ptr(k))]));
  };
  return walk(value, '');
}

/** The pointer of member `key` of the object at `at` (RFC 6901 escaping). */
function member(at: string, key: string): string {
  return `${at}/${key.replace(/~/g, '~0').replace(/\//g, '~1')}`;
}
