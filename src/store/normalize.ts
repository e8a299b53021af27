/**
 * Normalization before hashing: a definition becomes a plain JSON value (no undefined, no
 * class instances, no YAML node objects), so what is hashed is exactly what was parsed.
 * Key order does not matter: canonical JSON sorts keys.
 */
export function normalizeDefinition<T>(value: T): T {
  return toPlainJson(value, '') as T;
}

function toPlainJson(value: unknown, path: string): unknown {
  if (value === null) return null;
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return value;
    case 'number':
      if (!Number.isFinite(value)) throw new TypeError(`definition field ${path || '/'} is not a finite number`);
      return value;
    case 'object': {
      if (Array.isArray(value)) return value.map((v, i) => (v === undefined ? null : toPlainJson(v, `${path}/${i}`)));
      if (value instanceof Date) return value.toISOString();
      const out: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
        if (v === undefined) continue;
        out[k] = toPlainJson(v, `${path}/${k}`);
      }
      return out;
    }
    default:
      throw new TypeError(`definition field ${path || '/'} has unsupported type ${typeof value}`);
  }
}
