/**
 * Canonical JSON and object ids. The id of an object is the sha256 (hex) of its canonical
 * JSON bytes: object keys sorted by code unit, no whitespace, strings and numbers as
 * JSON.stringify writes them. For the values YAML definitions produce (strings, finite
 * numbers, booleans, null, arrays, plain objects) this matches RFC 8785 (JCS) closely enough
 * that the same definition always hashes the same, whatever the key order in the file.
 *
 * Hashing is separate from writing (cf. isomorphic-git): plan code computes ids without I/O.
 */
import { createHash } from 'node:crypto';

export function canonicalJson(value: unknown): string {
  return write(value, '');
}

function write(value: unknown, path: string): string {
  if (value === null) return 'null';
  switch (typeof value) {
    case 'string':
      return JSON.stringify(value);
    case 'boolean':
      return value ? 'true' : 'false';
    case 'number':
      if (!Number.isFinite(value)) throw new TypeError(`canonicalJson: ${path || '/'} is not a finite number`);
      return JSON.stringify(Object.is(value, -0) ? 0 : value);
    case 'object': {
      if (Array.isArray(value)) return `[${value.map((v, i) => write(v === undefined ? null : v, `${path}/${i}`)).join(',')}]`;
      const proto = Object.getPrototypeOf(value);
      if (proto !== Object.prototype && proto !== null) {
        throw new TypeError(`canonicalJson: ${path || '/'} is not a plain object`);
      }
      const obj = value as Record<string, unknown>;
      const keys = Object.keys(obj)
        .filter((k) => obj[k] !== undefined)
        .sort();
      return `{${keys.map((k) => `${JSON.stringify(k)}:${write(obj[k], `${path}/${k}`)}`).join(',')}}`;
    }
    default:
      throw new TypeError(`canonicalJson: ${path || '/'} has unsupported type ${typeof value}`);
  }
}

export function sha256Hex(data: string | Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

export const OBJECT_ID_PATTERN = /^[0-9a-f]{64}$/;

export function isObjectId(value: unknown): value is string {
  return typeof value === 'string' && OBJECT_ID_PATTERN.test(value);
}

/** The first 12 hex digits: what humans see (full ids are in --json). */
export function shortId(id: string): string {
  return id.slice(0, 12);
}
