/**
 * Refuses literal secrets in definitions before they become immutable objects (a stored
 * object can never be edited, and a remote store may be read by many). Only text outside
 * `{{ }}` is checked, so `{{ secrets.SHOPIFY_TOKEN }}` is fine and `shpat_…` is not.
 * Findings name the file and the field, never the value.
 */
import { escapePointer } from '../core/expressions.js';
import type { SecretFinding } from './errors.js';

interface Pattern {
  kind: string;
  re: RegExp;
}

// Prefixes published by the issuers (Shopify access tokens and app secrets, Standard
// Webhooks secrets, Stripe live keys, GitHub tokens, Slack tokens, AWS access key ids).
const PATTERNS: Pattern[] = [
  { kind: 'Shopify access token', re: /\bshp(at|ca|pa|ss)_[A-Za-z0-9]{16,}/ },
  { kind: 'Standard Webhooks secret', re: /\bwhsec_[A-Za-z0-9+/=]{16,}/ },
  { kind: 'Stripe live key', re: /\b(sk|rk)_live_[A-Za-z0-9]{16,}/ },
  { kind: 'GitHub token', re: /\b(gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{30,})/ },
  { kind: 'Slack token', re: /\bxox[abposr]-[A-Za-z0-9-]{10,}/ },
  { kind: 'AWS access key id', re: /\b(AKIA|ASIA)[0-9A-Z]{16}\b/ },
  { kind: 'private key', re: /-----BEGIN [A-Z ]*PRIVATE KEY-----/ },
  { kind: 'JSON Web Token', re: /\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}/ },
  { kind: 'credential in a URL', re: /[a-z][a-z0-9+.-]*:\/\/[^\s/:@]+:[^\s/@]{3,}@/i },
];

/** Field names whose literal (non-template) value is a credential whatever it looks like. */
const SECRET_FIELD = /(^|[-_])?(secret|password|passwd|token|api[-_]?key|access[-_]?key|private[-_]?key|client[-_]?secret)$/i;

/** Strips `{{ … }}` parts (their references are resolved at run time, not stored). */
function literalText(value: string): string {
  return value.replace(/\{\{[\s\S]*?\}\}/g, ' ');
}

function shannonEntropy(s: string): number {
  const counts = new Map<string, number>();
  for (const ch of s) counts.set(ch, (counts.get(ch) ?? 0) + 1);
  let h = 0;
  for (const c of counts.values()) {
    const p = c / s.length;
    h -= p * Math.log2(p);
  }
  return h;
}

/**
 * A long random-looking word: 32+ characters of a key alphabet with upper, lower case and
 * digits, and more than 4.2 bits of entropy per character. Hex digests (4 bits at most),
 * words, paths and URLs stay below it.
 */
function looksRandom(word: string): boolean {
  if (word.length < 32) return false;
  if (!/[a-z]/.test(word) || !/[A-Z]/.test(word) || !/[0-9]/.test(word)) return false;
  return shannonEntropy(word) > 4.2;
}

export function detectSecret(key: string | undefined, value: string): string | undefined {
  const text = literalText(value);
  for (const p of PATTERNS) if (p.re.test(text)) return p.kind;
  for (const word of text.split(/[^A-Za-z0-9+/=_-]+/)) if (looksRandom(word)) return 'high-entropy key';
  if (key && SECRET_FIELD.test(key) && text.trim().length >= 8 && !value.includes('{{')) return `literal value in a "${key}" field`;
  return undefined;
}

/** Every literal secret in a definition, as `file` + JSON pointer. */
export function findLiteralSecrets(file: string, definition: unknown): SecretFinding[] {
  const findings: SecretFinding[] = [];
  const walk = (value: unknown, pointer: string, key: string | undefined) => {
    if (typeof value === 'string') {
      const kind = detectSecret(key, value);
      if (kind) findings.push({ file, field: pointer || '/', kind });
    } else if (Array.isArray(value)) {
      value.forEach((v, i) => walk(v, `${pointer}/${i}`, key));
    } else if (value && typeof value === 'object') {
      for (const [k, v] of Object.entries(value)) walk(v, `${pointer}/${escapePointer(k)}`, k);
    }
  };
  walk(definition, '', undefined);
  return findings;
}
