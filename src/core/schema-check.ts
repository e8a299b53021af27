/**
 * JSON Schema checks (draft 2020-12, ajv in strict mode) with errors mapped back to the
 * YAML source: an unknown key points at the key and suggests the nearest known one; a
 * wrong value points at the value.
 */
import { createRequire } from 'node:module';
import path from 'node:path';
import v8 from 'node:v8';
import type { ErrorObject, ValidateFunction } from 'ajv';
import type Ajv2020Module from 'ajv/dist/2020.js';
import { closest, makeDiagnostic, type Diagnostic } from './diagnostics.js';
import { keyRange, rangeAt, type SourceFile } from './source-file.js';
import { PACKAGE_ROOT } from '../package-paths.js';

type Ajv2020 = typeof Ajv2020Module.default;

/**
 * ajv and ajv-formats, loaded on first need: checks of the shipped schemas and of trigger
 * schemas and built-in action inputs run on code generated at build time, so a project that
 * only uses those never loads ajv (about half of `alloy validate`'s start-up, issue 13).
 */
function loadAjv(): { Ajv2020: Ajv2020; addFormats: (ajv: InstanceType<Ajv2020>) => void } {
  const require = createRequire(import.meta.url);
  // CommonJS; the default export arrives under `.default`.
  const a = require('ajv/dist/2020.js') as { default?: Ajv2020 } & Ajv2020;
  const f = require('ajv-formats') as { default?: (ajv: InstanceType<Ajv2020>) => void } & ((ajv: InstanceType<Ajv2020>) => void);
  return { Ajv2020: a.default ?? a, addFormats: f.default ?? f };
}

/** `tunnel-frame` is the relay wire protocol (src/tunnel/protocol.ts), checked on both ends. */
export type SchemaName = 'workflow' | 'integration' | 'config' | 'connector' | 'test' | 'tunnel-frame';

/** schemas/ ships in the package next to dist/. */
export const SCHEMAS_DIR = path.join(PACKAGE_ROOT, 'schemas');

export function schemaPath(name: SchemaName): string {
  return path.join(SCHEMAS_DIR, `${name}.schema.json`);
}

let ajvInstance: InstanceType<Ajv2020> | undefined;
const validators = new Map<SchemaName, ValidateFunction>();

/** One ajv per process; each schema compiled once, on first use. */
export function getAjv(): InstanceType<Ajv2020> {
  if (!ajvInstance) {
    const { Ajv2020, addFormats } = loadAjv();
    ajvInstance = new Ajv2020({ strict: true, allErrors: true, verbose: true });
    addFormats(ajvInstance);
  }
  return ajvInstance;
}

/**
 * The validator for a shipped schema: ajv standalone code generated at build time
 * (scripts/build-validators.mjs) when present, else compiled here once per process.
 */
export function getValidator(name: SchemaName): ValidateFunction {
  let v = validators.get(name);
  if (!v) {
    const require = createRequire(import.meta.url);
    v = loadGenerated(require)?.[name] ?? getAjv().compile(require(schemaPath(name)) as object);
    validators.set(name, v);
  }
  return v;
}

let generated: Partial<Record<SchemaName, ValidateFunction>> | null | undefined;
function loadGenerated(require: NodeJS.Require): Partial<Record<SchemaName, ValidateFunction>> | null {
  if (generated === undefined) {
    try {
      generated = require('./generated/validators.cjs') as Partial<Record<SchemaName, ValidateFunction>>;
    } catch {
      generated = null; // running from source (tests): compile instead
    }
  }
  return generated;
}

/**
 * The RegExp of a user schema's `pattern`. ajv adds the `u` flag, and V8 re-runs a regex that
 * backtracks catastrophically on its linear-time engine (the flag below, also set for
 * expressions in expression-limits.ts) only without it: `^(a+)+$` against event data held
 * the thread for minutes. So `u` is dropped when the pattern needs none of its syntax
 * (`\p{…}`, `\u{…}`, a surrogate written as `\uD83D` or literally, characters beyond
 * U+FFFF); it is still compiled with `u` first, so a pattern ajv refused is still refused, and
 * one that compiles only with `u` keeps it. The difference left: `.`, `\S` and negated
 * classes count a character beyond U+FFFF (an emoji) as two (docs/security.md).
 */
function userPatternRegExp(pattern: string, flags: string): RegExp {
  const strict = new RegExp(pattern, flags);
  if (!flags.includes('u') || /\\[pP]|\\u\{|\\u[dD][89a-fA-F]|[\uD800-\uDFFF]/.test(pattern)) return strict;
  try {
    return new RegExp(pattern, flags.replace('u', ''));
  } catch {
    return strict;
  }
}
// ajv names the engine by `code` in generated standalone code (not used for user schemas).
userPatternRegExp.code = 'userPatternRegExp';

/** A separate, lenient ajv for user-written schemas (trigger schemas, action inputs). */
let userAjv: InstanceType<Ajv2020> | undefined;
export function getUserAjv(): InstanceType<Ajv2020> {
  if (!userAjv) {
    const { Ajv2020, addFormats } = loadAjv();
    v8.setFlagsFromString('--enable-experimental-regexp-engine-on-excessive-backtracks');
    userAjv = new Ajv2020({ strict: false, allErrors: true, verbose: true, code: { regExp: userPatternRegExp } });
    addFormats(userAjv);
  }
  return userAjv;
}

interface UserGenerated {
  meta: ValidateFunction;
  inputsByJson: Record<string, ValidateFunction>;
}
let userGenerated: UserGenerated | null | undefined;
/** Build-time code for the user ajv (scripts/build-validators.mjs), or null when running from source. */
function loadUserGenerated(): UserGenerated | null {
  if (userGenerated === undefined) {
    try {
      userGenerated = createRequire(import.meta.url)('./generated/user-validators.cjs') as UserGenerated;
    } catch {
      userGenerated = null;
    }
  }
  return userGenerated;
}

/** Why `schema` is not a valid draft 2020-12 JSON Schema (as ajv's errorsText), or undefined. */
export function userSchemaProblem(schema: object): string | undefined {
  const meta = loadUserGenerated()?.meta;
  if (meta) return meta(schema) ? undefined : errorsText(meta.errors, 'schema');
  const ajv = getUserAjv();
  if (ajv.validateSchema(schema)) return undefined;
  return ajv.errorsText(ajv.errors, { dataVar: 'schema' });
}

/** A validator for a user-facing schema: built at build time for the built-in action inputs, else compiled. */
export function userValidator(schema: object): ValidateFunction {
  return loadUserGenerated()?.inputsByJson[JSON.stringify(schema)] ?? getUserAjv().compile(schema);
}

/** ajv's Ajv#errorsText (default separator), without an ajv instance. */
function errorsText(errors: ErrorObject[] | null | undefined, dataVar: string): string {
  if (!errors || errors.length === 0) return 'No errors';
  return errors.map((e) => `${dataVar}${e.instancePath} ${e.message}`).join(', ');
}

export function checkSchema(source: SourceFile, name: SchemaName, basePointer = ''): Diagnostic[] {
  const validate = getValidator(name);
  if (validate(source.value)) return [];
  return mapSchemaErrors(source, validate.errors ?? [], basePointer);
}

/**
 * Turns ajv errors into located diagnostics. `anyOf` failures collapse to one message per
 * location (the branch errors are noise); the rest map one to one.
 */
export function mapSchemaErrors(
  source: SourceFile,
  errors: ErrorObject[],
  basePointer = '',
  options: { codePrefix?: string; subject?: string } = {},
): Diagnostic[] {
  const prefix = options.codePrefix ?? 'E_SCHEMA';
  const anyOfPaths = errors.filter((e) => e.keyword === 'anyOf' || e.keyword === 'oneOf').map((e) => e.schemaPath);
  const out: Diagnostic[] = [];
  const seen = new Set<string>();
  for (const e of errors) {
    if (e.keyword !== 'anyOf' && e.keyword !== 'oneOf' && anyOfPaths.some((p) => e.schemaPath.startsWith(p.replace(/\/(anyOf|oneOf)$/, '/$1/')))) {
      continue;
    }
    const pointer = basePointer + e.instancePath;
    const subject = options.subject && (e.instancePath ? `${options.subject}, field "${e.instancePath.split('/').slice(1).join('.')}"` : options.subject);
    const d = toDiagnostic(source, e, pointer, prefix, subject);
    const key = `${d.line}:${d.column}:${d.code}:${d.message}`;
    if (!seen.has(key)) {
      seen.add(key);
      out.push(d);
    }
  }
  return out;
}

function where(pointer: string, subject: string | undefined, root: unknown): string {
  if (subject) return subject;
  return pointer === '' ? 'the file' : describePointer(root, pointer);
}

/**
 * A readable name for a location: `step "order" retry` rather than `steps.0.retry`,
 * because users know their steps by id, not by index.
 */
export function describePointer(root: unknown, pointer: string): string {
  let cur: unknown = root;
  let label: string[] = [];
  for (const seg of pointer.split('/').slice(1).map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'))) {
    const next: unknown = cur && typeof cur === 'object' ? (cur as Record<string, unknown>)[seg] : undefined;
    const id = next && typeof next === 'object' && !Array.isArray(next) ? (next as { id?: unknown }).id : undefined;
    if (Array.isArray(cur) && typeof id === 'string') label = [`step "${id}"`];
    else label.push(seg);
    cur = next;
  }
  const [head, ...rest] = label;
  return head?.startsWith('step "') ? [head, rest.join('.')].filter(Boolean).join(' ') : `"${label.join('.')}"`;
}

function toDiagnostic(source: SourceFile, e: ErrorObject, pointer: string, prefix: string, subject?: string): Diagnostic {
  const at = where(pointer, subject, source.value);
  const parent = (e.parentSchema ?? {}) as { properties?: Record<string, unknown>; description?: string; enum?: unknown[] };
  const p = e.params as Record<string, unknown>;
  switch (e.keyword) {
    case 'additionalProperties': {
      const key = String(p.additionalProperty);
      const known = Object.keys(parent.properties ?? {});
      const guess = closest(key, known);
      return makeDiagnostic(
        source.file,
        source.index,
        keyRange(source, pointer, key),
        'error',
        `${prefix}_UNKNOWN_KEY`,
        `unknown key "${key}" in ${at}`,
        guess ? `did you mean "${guess}"?` : known.length ? `allowed keys: ${known.join(', ')}` : 'remove this key',
      );
    }
    case 'required': {
      const key = String(p.missingProperty);
      return makeDiagnostic(
        source.file,
        source.index,
        rangeAt(source, pointer, 'key'),
        'error',
        `${prefix}_MISSING_KEY`,
        `missing required key "${key}" in ${at}`,
        `add "${key}:"`,
      );
    }
    case 'type':
      return makeDiagnostic(source.file, source.index, rangeAt(source, pointer), 'error', `${prefix}_TYPE`, `${at} must be ${String(p.type)}, got ${typeName(e.data)}`, parent.description);
    case 'const':
    case 'enum': {
      const allowed = (e.keyword === 'const' ? [p.allowedValue] : (p.allowedValues as unknown[])) ?? [];
      const guess = typeof e.data === 'string' ? closest(e.data, allowed.map(String)) : undefined;
      return makeDiagnostic(
        source.file,
        source.index,
        rangeAt(source, pointer),
        'error',
        `${prefix}_VALUE`,
        `${at} must be ${allowed.map((a) => JSON.stringify(a)).join(' or ')}, got ${JSON.stringify(e.data)}`,
        guess ? `did you mean "${guess}"?` : undefined,
      );
    }
    case 'pattern':
      return makeDiagnostic(
        source.file,
        source.index,
        rangeAt(source, pointer),
        'error',
        `${prefix}_PATTERN`,
        `${at} has an invalid value ${JSON.stringify(e.data)}`,
        parent.description ?? `it must match ${String(p.pattern)}`,
      );
    case 'anyOf':
    case 'oneOf':
      return makeDiagnostic(
        source.file,
        source.index,
        rangeAt(source, pointer),
        'error',
        `${prefix}_VALUE`,
        `${at} has an invalid value ${JSON.stringify(e.data)}`,
        parent.description,
      );
    default:
      return makeDiagnostic(source.file, source.index, rangeAt(source, pointer), 'error', prefix, `${at} ${e.message ?? 'is invalid'}`, parent.description);
  }
}

function typeName(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  return typeof v;
}
