/**
 * Per-installation config (an integration's `config:` variables): values are checked
 * against the declared JSON Schemas (defaults applied, `required` enforced, unknown names
 * refused) on install, update and upgrade; stored sealed (config.ts of the state never sees
 * them in clear); shown with secret values masked.
 */
import type { ValidateFunction } from 'ajv';
import type { ConfigVariable, IntegrationDef } from '../core/model.js';
import { getUserAjv } from '../core/schema-check.js';
import { setOwn } from '../core/own-key.js';
import { open, seal, type Keyring } from './crypto.js';
import type { InstallationRecord, Sealed } from './state/types.js';

export interface ConfigViolation {
  /** JSON pointer under the config, e.g. `/threshold`. */
  path: string;
  message: string;
}

export const MASK = '********';

const compiled = new WeakMap<object, ValidateFunction>();

function schemaOf(vars: Record<string, ConfigVariable>): object {
  const properties: Record<string, object> = {};
  const required: string[] = [];
  for (const [name, v] of Object.entries(vars)) {
    const { secret: _s, required: req, ...schema } = v;
    properties[name] = schema;
    if (req && v.default === undefined) required.push(name);
  }
  return { type: 'object', properties, required, additionalProperties: false };
}

/** The values with defaults applied, and every violation (empty when valid). */
export function checkConfig(def: IntegrationDef, values: Record<string, unknown>): { values: Record<string, unknown>; violations: ConfigViolation[] } {
  const vars = def.config ?? {};
  const out: Record<string, unknown> = {};
  for (const [name, v] of Object.entries(vars)) if (v.default !== undefined) out[name] = v.default;
  // Own properties even for a `__proto__` key of the JSON (assignment would make it the prototype,
  // whose values satisfy `required` and then vanish when stored): refused as an unknown name.
  for (const [k, v] of Object.entries(values)) setOwn(out, k, v);
  let validate = compiled.get(vars);
  if (!validate) {
    validate = getUserAjv().compile(schemaOf(vars));
    compiled.set(vars, validate);
  }
  if (validate(out)) return { values: out, violations: [] };
  const violations = (validate.errors ?? []).map((e) => {
    const p = e.params as { missingProperty?: string; additionalProperty?: string };
    const name = p.missingProperty ?? p.additionalProperty;
    const path = name ? `${e.instancePath}/${name}` : e.instancePath;
    const message = e.keyword === 'required' ? 'is required' : e.keyword === 'additionalProperties' ? `is not a config variable of ${def.name}` : (e.message ?? e.keyword);
    return { path, message };
  });
  return { values: out, violations };
}

export function sealConfig(keyring: Keyring, installationId: string, values: Record<string, unknown>): Sealed {
  return seal(keyring, values, `config:${installationId}`);
}

export function openConfig(keyring: Keyring, installation: InstallationRecord, def?: IntegrationDef): { values: Record<string, unknown>; secretValues: Record<string, string> } {
  const values = open<Record<string, unknown>>(keyring, installation.config, `config:${installation.id}`);
  const secretValues: Record<string, string> = {};
  for (const [name, v] of Object.entries(def?.config ?? {})) {
    if (v.secret && values[name] !== undefined) secretLeaves(secretValues, `config.${name}`, values[name], 0);
  }
  return { values, secretValues };
}

/**
 * The values to redact for one secret config value: a string or number as its text (the
 * redactor matches a number value by it too), an object or array whole and each of its leaves
 * (a workflow may read `{{ config.creds.key }}` alone). Booleans and null are not: "true" is
 * no secret, and redacting it would blank every "true" in a record.
 */
function secretLeaves(out: Record<string, string>, key: string, value: unknown, depth: number): void {
  if (typeof value === 'string') out[key] = value;
  else if (typeof value === 'number') out[key] = String(value);
  else if (value !== null && typeof value === 'object' && depth < 32) {
    out[key] = JSON.stringify(value);
    for (const [k, v] of Object.entries(value)) secretLeaves(out, `${key}.${k}`, v, depth + 1);
  }
}

/** Values for answers: secret ones masked. */
export function maskConfig(def: IntegrationDef | undefined, values: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(values)) out[k] = def?.config?.[k]?.secret ? MASK : v;
  return out;
}
