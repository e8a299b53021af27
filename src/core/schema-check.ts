/**
 * JSON Schema checks (draft 2020-12, ajv in strict mode) with errors mapped back to the
 * YAML source: an unknown key points at the key and suggests the nearest known one; a
 * wrong value points at the value.
 */
import { createRequire } from 'node:module';
import path from 'node:path';
import type { ErrorObject, ValidateFunction } from 'ajv';
import Ajv2020Module from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import { closest, makeDiagnostic, type Diagnostic } from './diagnostics.js';
import { keyRange, rangeAt, type SourceFile } from './source-file.js';
import { PACKAGE_ROOT } from '../package-paths.js';

// ajv and ajv-formats are CommonJS; their default export arrives under `.default`.
const Ajv2020 = ((Ajv2020Module as unknown as { default?: unknown }).default ?? Ajv2020Module) as typeof Ajv2020Module.default;
const addFormats = ((addFormatsModule as unknown as { default?: unknown }).default ?? addFormatsModule) as unknown as (
  ajv: InstanceType<typeof Ajv2020>,
) => void;

/** `tunnel-frame` is the relay wire protocol (src/tunnel/protocol.ts), checked on both ends. */
export type SchemaName = 'workflow' | 'integration' | 'config' | 'connector' | 'test' | 'tunnel-frame';

/** schemas/ ships in the package next to dist/. */
export const SCHEMAS_DIR = path.join(PACKAGE_ROOT, 'schemas');

export function schemaPath(name: SchemaName): string {
  return path.join(SCHEMAS_DIR, `${name}.schema.json`);
}

let ajvInstance: InstanceType<typeof Ajv2020> | undefined;
const validators = new Map<SchemaName, ValidateFunction>();

/** One ajv per process; each schema compiled once, on first use. */
export function getAjv(): InstanceType<typeof Ajv2020> {
  if (!ajvInstance) {
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

/** A separate, lenient ajv for user-written schemas (trigger schemas, action inputs). */
let userAjv: InstanceType<typeof Ajv2020> | undefined;
export function getUserAjv(): InstanceType<typeof Ajv2020> {
  if (!userAjv) {
    userAjv = new Ajv2020({ strict: false, allErrors: true, verbose: true });
    addFormats(userAjv);
  }
  return userAjv;
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
