/**
 * Setting a key that came from data (JSON, YAML, a request body) on a plain object:
 * `out[k] = v` with k = `__proto__` sets the object's prototype instead of a key, so the
 * value vanishes from the output (and its properties show through as inherited ones).
 * JSON.parse makes such a key an own property; this keeps it one.
 */
export function setOwn(out: Record<string, unknown>, key: string, value: unknown): void {
  if (key === '__proto__') Object.defineProperty(out, key, { value, enumerable: true, writable: true, configurable: true });
  else out[key] = value;
}
