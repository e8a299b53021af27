/**
 * Redaction of what the engine stores (step inputs, outputs, errors, stream payloads):
 * known secret values (connection fields marked `secret`, the secrets map) are replaced
 * wherever they appear, and values under secret-looking keys (token, secret, password,
 * authorization, api key, cookie) are replaced whole. Every string inside a step input's
 * `auth` object (http/request `{type: header, name, value}`, `{type: basic, username,
 * password}`, …) is a credential whatever its key: redactActionInput masks and learns them.
 */
import { setOwn } from '../core/own-key.js';

export const REDACTED = '[redacted]';

const SECRET_KEY_RE = /token|secret|passw(or)?d|authorization|api[-_]?key|cookie|credential/i;
/** Values shorter than this are not searched for inside other text (too many false hits). */
const MIN_SECRET_LENGTH = 4;
const NUMBER_RE = /^-?\d+(\.\d+)?(e[+-]?\d+)?$/;

export interface Redactor {
  /** Adds known secret values (e.g. a user's connection credentials once resolved). */
  add(values: Iterable<string | undefined>): void;
  /**
   * The value redacted: values under secret-looking keys are replaced whole and remembered as
   * secret values; `byKey: false` only replaces known values. Parts with nothing to redact are
   * shared with the value given, not copied (the value itself when nothing changed).
   */
  value<T>(value: T, options?: { byKey?: boolean }): T;
  text(value: string): string;
}

export function isSecretKey(key: string): boolean {
  return SECRET_KEY_RE.test(key);
}

export function createRedactor(initial: Iterable<string | undefined> = []): Redactor {
  const r = new SetRedactor();
  r.add(initial);
  return r;
}

const NO_SECRETS: string[] = [];

/**
 * One per execution: a class, its sets made when a first secret is added (most executions
 * have none), rather than two sets and five closures each.
 */
class SetRedactor implements Redactor {
  private secrets: Set<string> | undefined;
  // Secret values that are numbers' text (a numeric secret config value): a step may echo
  // the number itself, which has no text to search.
  private numbers: Set<number> | undefined;
  /** Longest first so a secret containing another is replaced whole. */
  private sorted: string[] = NO_SECRETS;

  add(values: Iterable<string | undefined>): void {
    let changed = false;
    for (const v of values) {
      if (typeof v === 'string' && v.length >= MIN_SECRET_LENGTH && !this.secrets?.has(v)) {
        (this.secrets ??= new Set()).add(v);
        if (NUMBER_RE.test(v) && String(Number(v)) === v) (this.numbers ??= new Set()).add(Number(v));
        changed = true;
      }
    }
    if (changed) this.sorted = [...this.secrets!].sort((a, b) => b.length - a.length);
  }

  text(s: string): string {
    if (this.sorted.length === 0) return s;
    let out = s;
    for (const secret of this.sorted) if (out.includes(secret)) out = out.split(secret).join(REDACTED);
    return out;
  }

  value<T>(v: T, options?: { byKey?: boolean }): T {
    return this.walk(v, options?.byKey ?? true, 0) as T;
  }

  // Copy on write: a value with nothing to redact comes back as itself (most step inputs and
  // outputs), so storing it costs a scan, not a deep copy. Callers treat stored values as read-only.
  private walk(v: unknown, byKey: boolean, depth: number): unknown {
    if (typeof v === 'string') return this.sorted.length === 0 ? v : this.text(v);
    if (typeof v === 'number') return this.numbers !== undefined && this.numbers.has(v) ? REDACTED : v;
    if (v === null || typeof v !== 'object' || depth > 64) return v;
    if (Array.isArray(v)) {
      let out: unknown[] | undefined;
      for (let i = 0; i < v.length; i++) {
        const x = v[i];
        const w = this.walk(x, byKey, depth + 1);
        if (w !== x && out === undefined) out = v.slice(0, i);
        if (out !== undefined) out.push(w);
      }
      return out ?? v;
    }
    let out: Record<string, unknown> | undefined;
    const keys = Object.keys(v);
    for (let i = 0; i < keys.length; i++) {
      const k = keys[i];
      const x = (v as Record<string, unknown>)[k];
      let w: unknown;
      if (byKey && x !== null && x !== undefined && typeof x !== 'object' && isSecretKey(k)) {
        // Learn it, so the same value echoed elsewhere (an output, an error) is redacted too.
        if (typeof x === 'string') this.add([x]);
        w = REDACTED;
      } else w = this.walk(x, byKey, depth + 1);
      if (w !== x && out === undefined) {
        out = {};
        for (let j = 0; j < i; j++) setOwn(out, keys[j], (v as Record<string, unknown>)[keys[j]]);
      }
      if (out !== undefined) setOwn(out, k, w);
    }
    return out ?? v;
  }
}

/**
 * A step input as stored: redacted like any value, and every string under its top-level
 * `auth` (except the scheme tag `auth.type`) replaced and remembered as a secret value, so the
 * same credential echoed in an output or an error is redacted too. Key names cannot tell a
 * header auth `value` from ordinary data, so the whole `auth` object counts as credentials.
 */
export function redactActionInput<T>(redactor: Redactor, input: T): T {
  if (input === null || typeof input !== 'object' || Array.isArray(input) || !('auth' in input)) return redactor.value(input);
  const found: string[] = [];
  const auth = maskStrings((input as Record<string, unknown>).auth, found, 0);
  redactor.add(found);
  return redactor.value({ ...(input as Record<string, unknown>), auth } as T);
}

function maskStrings(v: unknown, found: string[], depth: number): unknown {
  if (typeof v === 'string') {
    found.push(v);
    return REDACTED;
  }
  if (v === null || typeof v !== 'object' || depth > 64) return v;
  if (Array.isArray(v)) return v.map((x) => maskStrings(x, found, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v as Record<string, unknown>)) {
    out[k] = depth === 0 && k === 'type' && typeof x === 'string' ? x : maskStrings(x, found, depth + 1);
  }
  return out;
}
