/**
 * How deep a JSON text nests, measured without recursion and without parsing, so a
 * hostile body (`[[[[…` half a million levels deep) is refused before anything builds it
 * or tries to print it again (JSON.stringify of such a value throws RangeError, which made
 * its stored record unreadable).
 */

/** Deepest nesting alloy accepts in a JSON body it ingests or stores (objects and arrays both count). */
export const JSON_MAX_DEPTH = 128;

/**
 * True when `text` nests objects/arrays more than `max` levels deep. Brackets inside strings
 * do not count (escapes are honoured); the text need not be valid JSON (the parser judges that).
 */
export function jsonTooDeep(text: string, max = JSON_MAX_DEPTH): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c /* \ */) i++;
      else if (c === 0x22 /* " */) inString = false;
    } else if (c === 0x22) {
      inString = true;
    } else if (c === 0x7b /* { */ || c === 0x5b /* [ */) {
      if (++depth > max) return true;
    } else if (c === 0x7d /* } */ || c === 0x5d /* ] */) {
      depth--;
    }
  }
  return false;
}

/**
 * True when a parsed value nests objects/arrays more than `max` levels deep (the top level
 * being 1, as jsonTooDeep counts). Stops at the first branch past `max`, so its recursion is
 * bounded by `max` whatever the value.
 */
export function valueTooDeep(value: unknown, max = JSON_MAX_DEPTH): boolean {
  return value !== null && typeof value === 'object' && deeperThan(value, 1, max);
}

function deeperThan(v: object, depth: number, max: number): boolean {
  if (depth > max) return true;
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) {
      const x: unknown = v[i];
      if (x !== null && typeof x === 'object' && deeperThan(x, depth + 1, max)) return true;
    }
    return false;
  }
  for (const k in v) {
    const x: unknown = (v as Record<string, unknown>)[k];
    if (x !== null && typeof x === 'object' && deeperThan(x, depth + 1, max)) return true;
  }
  return false;
}

/**
 * What is wrong with a parsed JSON value, in one walk (parseJson's and alloy run's check):
 * `deep` past `max` levels, `overflow` for a number JSON.parse read as ±Infinity (`1e309`, or
 * `1` with 240 zeros and `e70`: a look at the text cannot tell, its digits and exponent count
 * together), else undefined. About 3 µs more than a depth walk alone on a 28 KB order.
 */
export function valueProblem(value: unknown, max = JSON_MAX_DEPTH): 'deep' | 'overflow' | undefined {
  if (value === Infinity || value === -Infinity) return 'overflow';
  return value !== null && typeof value === 'object' ? problemIn(value, 1, max) : undefined;
}

function problemIn(v: object, depth: number, max: number): 'deep' | 'overflow' | undefined {
  if (depth > max) return 'deep';
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) {
      const x: unknown = v[i];
      if (typeof x === 'object') {
        const p = x === null ? undefined : problemIn(x, depth + 1, max);
        if (p) return p;
      } else if (x === Infinity || x === -Infinity) return 'overflow';
    }
    return undefined;
  }
  for (const k in v) {
    const x: unknown = (v as Record<string, unknown>)[k];
    if (typeof x === 'object') {
      const p = x === null ? undefined : problemIn(x, depth + 1, max);
      if (p) return p;
    } else if (x === Infinity || x === -Infinity) return 'overflow';
  }
  return undefined;
}

