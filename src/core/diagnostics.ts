/**
 * Diagnostics: validation collects every problem as data instead of throwing, then the
 * caller decides (print, exit 2, refuse a release). Positions are 1-based.
 */

export type Severity = 'error' | 'warning';

export interface Diagnostic {
  file: string;
  line: number;
  column: number;
  endLine: number;
  endColumn: number;
  severity: Severity;
  /** Stable code, e.g. E_YAML_SYNTAX, E_SCHEMA_UNKNOWN_KEY (docs/file-format.md lists them). */
  code: string;
  message: string;
  /** One sentence naming the fix. */
  hint?: string;
}

export interface Position {
  line: number;
  column: number;
}

/** Converts character offsets into 1-based line/column positions for one source text. */
export class LineIndex {
  private readonly starts: number[] = [0];
  constructor(readonly text: string) {
    for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) === 10) this.starts.push(i + 1);
  }
  position(offset: number): Position {
    const o = Math.max(0, Math.min(offset, this.text.length));
    let lo = 0;
    let hi = this.starts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.starts[mid] <= o) lo = mid;
      else hi = mid - 1;
    }
    return { line: lo + 1, column: o - this.starts[lo] + 1 };
  }
  lineText(line: number): string {
    const start = this.starts[line - 1];
    if (start === undefined) return '';
    const end = this.starts[line] === undefined ? this.text.length : this.starts[line] - 1;
    return this.text.slice(start, end).replace(/\r$/, '');
  }
  get lineCount(): number {
    return this.starts.length;
  }
}

export function makeDiagnostic(
  file: string,
  index: LineIndex | undefined,
  range: [number, number] | undefined,
  severity: Severity,
  code: string,
  message: string,
  hint?: string,
): Diagnostic {
  if (!index || !range) {
    return { file, line: 1, column: 1, endLine: 1, endColumn: 1, severity, code, message, hint };
  }
  const start = index.position(range[0]);
  const end = index.position(Math.max(range[0], range[1]));
  return { file, line: start.line, column: start.column, endLine: end.line, endColumn: end.column, severity, code, message, hint };
}

export function sortDiagnostics(list: Diagnostic[]): Diagnostic[] {
  return [...list].sort(
    (a, b) => a.file.localeCompare(b.file) || a.line - b.line || a.column - b.column || a.code.localeCompare(b.code),
  );
}

export function hasErrors(list: readonly Diagnostic[], failOnWarn = false): boolean {
  return list.some((d) => d.severity === 'error' || (failOnWarn && d.severity === 'warning'));
}

/** Levenshtein distance, for "did you mean" hints. */
export function editDistance(a: string, b: string): number {
  const prev = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let diag = prev[0];
    prev[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = prev[j];
      prev[j] = Math.min(prev[j] + 1, prev[j - 1] + 1, diag + (a[i - 1] === b[j - 1] ? 0 : 1));
      diag = tmp;
    }
  }
  return prev[b.length];
}

/** The closest candidate within a distance that scales with the word, or undefined. */
export function closest(word: string, candidates: Iterable<string>): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  const limit = Math.max(2, Math.floor(word.length / 3));
  for (const c of candidates) {
    const d = editDistance(word.toLowerCase(), c.toLowerCase());
    if (d < bestDistance) {
      best = c;
      bestDistance = d;
    }
  }
  return bestDistance <= limit ? best : undefined;
}
