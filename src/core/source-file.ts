/**
 * Reading and parsing definition files with positions. YAML (and JSON, which YAML 1.2
 * parses) goes through the `yaml` package's Document API so every key and value keeps its
 * source range; diagnostics point at line:column, not at a JSON pointer alone.
 */
import { isUtf8 } from 'node:buffer';
import { open, stat } from 'node:fs/promises';
import { isAlias, isMap, isPair, isScalar, isSeq, parseDocument, visit, type Document, type Node, type Pair } from 'yaml';
import { FAILSAFE_SCHEMA, load as loadYaml, Type as YamlType } from 'js-yaml';
import { LineIndex, makeDiagnostic, type Diagnostic } from './diagnostics.js';
import { CORE_SCALAR_ENTRIES, CORE_TAG_PREFIX, YAML_OPTIONS } from './yaml-core.js';

export { resolvePlainScalar } from './yaml-core.js';

/** Definition files are small; anything larger is refused by size before it is read. */
export const MAX_DEFINITION_BYTES = 1024 * 1024;

export interface SourceFile {
  /** Path as shown to the user (relative to the project root, forward slashes). */
  file: string;
  text: string;
  index: LineIndex;
  doc?: Document.Parsed;
  /** The parsed value; undefined when the file could not be parsed. */
  value: unknown;
  diagnostics: Diagnostic[];
}

/** Reads a file, refusing oversized and binary files without loading them whole. */
export async function readSourceFile(
  absPath: string,
  file: string,
  maxBytes = MAX_DEFINITION_BYTES,
  parse: (file: string, text: string) => SourceFile = parseSource,
): Promise<SourceFile> {
  const read = await readSourceBytes(absPath, file, maxBytes);
  return Buffer.isBuffer(read) ? parse(file, read.toString('utf8')) : read;
}

/**
 * The first half of readSourceFile: the file's bytes (checked UTF-8 text within `maxBytes`),
 * or a source holding the diagnostic that refused it.
 */
export async function readSourceBytes(absPath: string, file: string, maxBytes = MAX_DEFINITION_BYTES): Promise<Buffer | SourceFile> {
  const empty = (d: Diagnostic): SourceFile => ({ file, text: '', index: new LineIndex(''), value: undefined, diagnostics: [d] });
  const unreadable = (err: unknown) =>
    empty(makeDiagnostic(file, undefined, undefined, 'error', 'E_FILE_READ', `cannot read file: ${(err as Error).message}`, 'check the path and its permissions'));
  let size: number;
  try {
    const info = await stat(absPath);
    if (!info.isFile()) {
      return empty(makeDiagnostic(file, undefined, undefined, 'error', 'E_FILE_READ', 'not a regular file (a folder named like a definition file?)', 'rename it, or move it out of the definitions folder'));
    }
    size = info.size;
  } catch (err) {
    return unreadable(err);
  }
  if (size > maxBytes) {
    return empty(
      makeDiagnostic(
        file,
        undefined,
        undefined,
        'error',
        'E_FILE_TOO_LARGE',
        `file is ${formatBytes(size)}; definition files are limited to ${formatBytes(maxBytes)}`,
        'split the definitions into smaller files, or move data into fixtures/',
      ),
    );
  }
  let bytes: Buffer;
  try {
    const handle = await open(absPath, 'r');
    try {
      bytes = Buffer.alloc(size);
      let read = 0;
      while (read < size) {
        const { bytesRead } = await handle.read(bytes, read, size - read, read);
        if (bytesRead === 0) break;
        read += bytesRead;
      }
      bytes = bytes.subarray(0, read);
    } finally {
      await handle.close();
    }
  } catch (err) {
    return unreadable(err);
  }
  if (bytes.includes(0) || !isValidUtf8(bytes)) {
    return empty(
      makeDiagnostic(file, undefined, undefined, 'error', 'E_FILE_BINARY', 'file is not UTF-8 text', 'definition files must be YAML or JSON text'),
    );
  }
  return bytes;
}

/** Validates without decoding: the text is decoded once, after this check. */
function isValidUtf8(bytes: Buffer): boolean {
  return isUtf8(bytes);
}

function formatBytes(n: number): string {
  if (n >= 1024 * 1024) return `${(n / (1024 * 1024)).toFixed(1)} MiB`;
  if (n >= 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${n} B`;
}

/** js-yaml's form: the failsafe schema (str, seq, map) and the core scalars of yaml-core.ts, nothing else. */
const FAST_SCHEMA = FAILSAFE_SCHEMA.extend({
  implicit: CORE_SCALAR_ENTRIES.map(
    ([name, t]) => new YamlType(CORE_TAG_PREFIX + name, { kind: 'scalar', resolve: (text: string | null) => t.test.test(text ?? ''), construct: (text: string | null) => t.value(text ?? '') }),
  ),
});


const YAML_CODES: Record<string, { code: string; hint?: string; message?: (text: string, pos: [number, number]) => string }> = {
  DUPLICATE_KEY: {
    code: 'E_YAML_DUPLICATE_KEY',
    hint: 'remove or rename one of the two keys',
    message: (text, pos) => `duplicate key "${/^["']?([^:"'\n]*)/.exec(text.slice(pos[0]))?.[1]?.trim() || '?'}"`,
  },
  TAB_AS_INDENT: { code: 'E_YAML_TAB', hint: 'indent with spaces; YAML does not allow tabs for indentation' },
  TAG_RESOLVE_FAILED: { code: 'E_YAML_TAG', hint: 'make the value fit its tag, or remove the tag' },
  MULTIPLE_DOCS: { code: 'E_YAML_MULTIPLE_DOCUMENTS', hint: 'keep one definition per file', message: () => 'file holds more than one YAML document (---)' },
};

/** Parses YAML/JSON text into a positioned document, collecting syntax errors. */
export function parseSource(file: string, text: string): SourceFile {
  const index = new LineIndex(text);
  const body = text.replace(/^\uFEFF/, '');
  if (body.trim() === '' || /^(\s*#.*\n?)*\s*$/.test(body)) {
    return {
      file,
      text,
      index,
      value: undefined,
      diagnostics: [
        makeDiagnostic(file, index, [0, 0], 'error', 'E_FILE_EMPTY', 'file is empty', 'add a definition, or delete the file'),
      ],
    };
  }
  const doc = parseDocument(text, YAML_OPTIONS);
  const diagnostics: Diagnostic[] = [];
  for (const err of doc.errors) {
    const known = YAML_CODES[err.code];
    const message = known?.message?.(text, err.pos) ?? err.message.split('\n')[0].replace(/ at line \d+, column \d+:?$/, '');
    diagnostics.push(
      makeDiagnostic(file, index, [err.pos[0], err.pos[1]], 'error', known?.code ?? 'E_YAML_SYNTAX', message, known?.hint ?? 'fix the YAML syntax at this position'),
    );
  }
  // The parser only warns about a tag it cannot resolve and keeps the plain value: a custom
  // tag (`!!js/function`) would be dropped silently. Definitions are JSON data: refused.
  for (const w of doc.warnings) {
    if (w.code !== 'TAG_RESOLVE_FAILED') continue;
    const tag = text.slice(w.pos[0], w.pos[1]).trim() || w.message.replace(/^Unresolved tag: /, '').split('\n')[0];
    // A core tag the value's kind does not fit (`!!map [1]`, `!!str {a: 1}`) is no unknown tag.
    const core = /^Unresolved tag: tag:yaml\.org,2002:(str|int|float|bool|null|map|seq)$/.exec(w.message.split('\n')[0])?.[1];
    diagnostics.push(
      core
        ? makeDiagnostic(file, index, [w.pos[0], w.pos[1]], 'error', 'E_YAML_TAG', `this value does not fit its tag !!${core}`, '!!map goes on a map, !!seq on a list, the others on a single value; or remove the tag')
        : makeDiagnostic(file, index, [w.pos[0], w.pos[1]], 'error', 'E_YAML_TAG', `unsupported YAML tag ${tag}`, 'remove the tag: definitions hold JSON values (strings, numbers, booleans, null, maps, lists); quote a value to keep it a string'),
    );
  }
  // A list or map as a key has no property name: the package wrote "[ a, b ]" (and a process
  // warning), js-yaml "a,b" or "[object Object]". Refused; the fast path sends such files here.
  if (diagnostics.length === 0) {
    visit(doc, {
      Pair(_, pair) {
        const key = isAlias(pair.key) ? pair.key.resolve(doc) : pair.key;
        if (key != null && !isScalar(key)) {
          const r = nodeRange(pair.key) ?? [0, 0];
          diagnostics.push(makeDiagnostic(file, index, r, 'error', 'E_YAML_KEY', 'a list or map as a key', 'keys are strings (or numbers, true, false, null, read as their text); quote the key'));
        }
      },
    });
  }
  if (diagnostics.length > 0) return { file, text, index, doc, value: undefined, diagnostics };
  let value: unknown;
  try {
    value = doc.toJS({ maxAliasCount: 100 });
  } catch (err) {
    diagnostics.push(makeDiagnostic(file, index, [0, 0], 'error', 'E_YAML_SYNTAX', (err as Error).message));
  }
  return { file, text, index, doc, value, diagnostics };
}

/** An anchor or alias token: such files take the positioned path, which bounds alias expansion. */
const ANCHOR_OR_ALIAS = /(^|[\s[{,])[&*][^\s,\]}]/m;
/** A possible list or map key (`? ` or `]:`/`}:`): such files take the positioned path, which refuses them. */
const COMPLEX_KEY = /(?:^|[\s[{,])\?(?:\s|$)|[\]}][ \t]*:/m;

/**
 * Like parseSource, but the value comes from js-yaml (the same YAML 1.2 core scalars, many times
 * faster than building a positioned document) and the positioned document is parsed only
 * when something asks for `doc`, i.e. when a diagnostic or a failure needs a line:col.
 * For large files read often and rarely wrong (test files). Anything js-yaml refuses, and
 * files with anchors or aliases, take parseSource, which reports located errors.
 */
export function parseSourceLazily(file: string, text: string): SourceFile {
  return parseFastPath(file, text) ?? parseSource(file, text);
}

/**
 * parseSourceLazily's fast path alone: undefined when the text must take parseSource (empty,
 * anchors or aliases, anything js-yaml refuses, a null document).
 */
export function parseFastPath(file: string, text: string): SourceFile | undefined {
  const body = text.replace(/^\uFEFF/, '');
  // The regex tries every position of the text: look for its two characters first.
  if (body.trim() === '' || ((body.includes('&') || body.includes('*')) && ANCHOR_OR_ALIAS.test(body))) return undefined;
  if ((body.includes('?') || body.includes(']') || body.includes('}')) && COMPLEX_KEY.test(body)) return undefined;
  let value: unknown;
  try {
    value = loadYaml(body, { schema: FAST_SCHEMA, json: false });
  } catch {
    return undefined;
  }
  if (value === undefined || value === null) return undefined;
  return lazySource(file, text, value);
}

/**
 * A source whose value is known (from the fast path, or a cache of it); positions are parsed
 * on demand, and the text too may be decoded on demand (`text` given as a function).
 */
export function lazySource(file: string, textOf: string | (() => string), value: unknown): SourceFile {
  let doc: Document.Parsed | undefined;
  let parsed = false;
  let index: LineIndex | undefined;
  let decoded = typeof textOf === 'string' ? textOf : undefined;
  const text = () => (decoded ??= (textOf as () => string)());
  const source = { file, value, diagnostics: [] as Diagnostic[] } as unknown as SourceFile;
  Object.defineProperty(source, 'text', {
    enumerable: true,
    get: text,
    set: (t: string) => {
      decoded = t;
    },
  });
  // The line index, like the document, is built when a position is first asked for.
  Object.defineProperty(source, 'index', {
    enumerable: true,
    get: () => (index ??= new LineIndex(text())),
    set: (i: LineIndex) => {
      index = i;
    },
  });
  Object.defineProperty(source, 'doc', {
    enumerable: true,
    get: () => {
      if (!parsed) {
        parsed = true;
        doc = parseDocument(text(), YAML_OPTIONS);
      }
      return doc;
    },
    set: (d: Document.Parsed | undefined) => {
      parsed = true;
      doc = d;
    },
  });
  return source;
}

/** Splits a JSON pointer (RFC 6901) into unescaped segments. */
export function pointerSegments(pointer: string): string[] {
  if (pointer === '' || pointer === '/') return [];
  return pointer
    .slice(1)
    .split('/')
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
}

export interface Located {
  node?: Node;
  pair?: Pair;
  /** How many pointer segments were found; less than the total when the path is missing. */
  depth: number;
}

/** Walks the YAML document along a JSON pointer as far as it exists. */
export function locate(doc: Document.Parsed | undefined, pointer: string): Located {
  let node = doc?.contents as Node | null | undefined;
  let pair: Pair | undefined;
  const segs = pointerSegments(pointer);
  let depth = 0;
  for (const seg of segs) {
    if (isMap(node)) {
      const found = node.items.find((p) => isPair(p) && isScalar(p.key) && String(p.key.value) === seg) as Pair | undefined;
      if (!found) break;
      pair = found;
      node = found.value as Node | null;
    } else if (isSeq(node)) {
      const item = node.items[Number(seg)] as Node | undefined;
      if (item === undefined) break;
      pair = undefined;
      node = item;
    } else break;
    depth++;
  }
  return { node: node ?? undefined, pair, depth };
}

function nodeRange(n: unknown): [number, number] | undefined {
  const r = (n as { range?: [number, number, number] } | undefined)?.range;
  return r ? [r[0], r[1]] : undefined;
}

/**
 * Source range for a pointer: the value's range, or with `target: 'key'` the key's range
 * (for unknown keys and missing-key errors). Falls back to the nearest existing ancestor.
 */
export function rangeAt(
  source: SourceFile,
  pointer: string,
  target: 'key' | 'value' = 'value',
): [number, number] | undefined {
  const { node, pair, depth } = locate(source.doc, pointer);
  const complete = depth === pointerSegments(pointer).length;
  if (target === 'key' && pair && complete) return nodeRange(pair.key) ?? nodeRange(node);
  if (!complete && pair) return nodeRange(pair.key);
  const r = nodeRange(node);
  if (r && isMap(node) && r[1] - r[0] > 0) {
    // A whole mapping is long; point at its first key instead of underlining everything.
    const first = node.items[0] as Pair | undefined;
    return (first && nodeRange(first.key)) ?? [r[0], r[0] + 1];
  }
  return r;
}

/** Range of a named key inside the mapping at `pointer` (for "unknown key" diagnostics). */
export function keyRange(source: SourceFile, pointer: string, key: string): [number, number] | undefined {
  const { node } = locate(source.doc, pointer);
  if (isMap(node)) {
    const found = node.items.find((p) => isPair(p) && isScalar(p.key) && String(p.key.value) === key) as Pair | undefined;
    if (found) return nodeRange(found.key);
  }
  return rangeAt(source, pointer);
}

/**
 * The offset in the source where character `i` of the string value at `pointer` lives.
 * Exact for plain and single-line quoted scalars without escapes; for block scalars and
 * escaped strings it searches for the expression text, which is exact in practice.
 */
export function stringOffset(source: SourceFile, pointer: string, i: number, needle?: string): number | undefined {
  const { node } = locate(source.doc, pointer);
  if (!isScalar(node) || typeof node.value !== 'string' || !node.range) return undefined;
  const [start, end] = node.range;
  const raw = source.text.slice(start, end);
  const quoted = node.type === 'QUOTE_DOUBLE' || node.type === 'QUOTE_SINGLE';
  if ((node.type === 'PLAIN' || quoted) && !raw.includes('\n') && !raw.includes('\\') && !raw.includes("''")) {
    return start + (quoted ? 1 : 0) + i;
  }
  if (needle) {
    const at = raw.indexOf(needle);
    if (at >= 0) return start + at;
  }
  return start;
}

/**
 * The offset in the source of 1-based `line`:`column` inside the string value at `pointer`
 * (a `code: |` block, usually). Exact for block scalars (`|`, `|-`, `|2`) and single-line
 * plain or quoted scalars without escapes; otherwise the value's start.
 */
export function codeOffset(source: SourceFile, pointer: string, line: number, column: number): number | undefined {
  const { node } = locate(source.doc, pointer);
  if (!isScalar(node) || typeof node.value !== 'string' || !node.range) return undefined;
  const [start, end] = node.range;
  if (node.type === 'BLOCK_LITERAL' || node.type === 'BLOCK_FOLDED') {
    // The range starts at the `|` header; content lines follow, all indented alike.
    const text = source.text;
    let at = text.indexOf('\n', start);
    if (at < 0 || at >= end) return start;
    const lines: number[] = [];
    while (at >= 0 && at < end) {
      lines.push(at + 1);
      at = text.indexOf('\n', at + 1);
    }
    const indentOf = (lineStart: number) => /^ */.exec(text.slice(lineStart))![0].length;
    const firstContent = lines.find((l) => text.slice(l, text.indexOf('\n', l) < 0 ? undefined : text.indexOf('\n', l)).trim() !== '');
    const indent = firstContent === undefined ? 0 : indentOf(firstContent);
    const lineStart = lines[line - 1];
    if (lineStart === undefined) return start;
    return lineStart + indent + column - 1;
  }
  if (line === 1) return stringOffset(source, pointer, column - 1);
  return start;
}

/**
 * `file:line:column` of character `offset` of the template string at `pointer` in a
 * definition file (for run-time errors that name where an expression is); undefined when
 * the file cannot be read or no longer has that string.
 */
export async function locateInFile(absPath: string, file: string, pointer: string, offset: number): Promise<string | undefined> {
  const source = await readSourceFile(absPath, file);
  if (!source.doc) return undefined;
  const at = stringOffset(source, pointer, offset);
  if (at === undefined) return undefined;
  const { line, column } = source.index.position(at);
  return `${file}:${line}:${column}`;
}
