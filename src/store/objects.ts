/**
 * The three kinds of stored object. Each is a plain JSON value with a `type` tag, stored as
 * its canonical JSON bytes and named by their sha256, so the same definition in two
 * releases (or two integrations) is one object.
 */
import type { IntegrationDef, WorkflowDef } from '../core/model.js';
import { canonicalJson, isObjectId, sha256Hex } from './canonical.js';
import { getValidator } from '../core/schema-check.js';
import { JSON_MAX_DEPTH } from '../core/json-depth.js';
import { StoreError } from '../errors.js';

export interface WorkflowObject {
  type: 'workflow';
  def: WorkflowDef;
}

export interface IntegrationObject {
  type: 'integration';
  def: IntegrationDef;
}

export interface ReleaseProvenance {
  /** Git commit of the working tree, when known (CI variables or `git rev-parse HEAD`). */
  commit?: string;
  /** CI run, when the release ran in CI. */
  ci?: { provider: string; run: string; url?: string };
}

export interface ReleaseObject {
  type: 'release';
  integration: string;
  version: number;
  /** The release this one follows (version - 1), null for v1. */
  parent: string | null;
  /** Object id of the integration definition. */
  integrationObject: string;
  /** Workflow name -> workflow object id. */
  workflows: Record<string, string>;
  message: string;
  author: string;
  /** ISO 8601 time from the injected clock. */
  time: string;
  provenance?: ReleaseProvenance;
  /**
   * The files' key order (key-order.ts), for `alloy show`: JSON pointers of every object
   * member in document order. Not part of the content ids, so reordering keys is no change.
   */
  keyOrder?: { integration: string[]; workflows: Record<string, string[]> };
}

export type StoreObject = WorkflowObject | IntegrationObject | ReleaseObject;

/** An object ready to store: its id and the exact bytes that hash to it. */
export interface EncodedObject<T extends StoreObject = StoreObject> {
  id: string;
  bytes: Buffer;
  value: T;
}

export function encodeObject<T extends StoreObject>(value: T): EncodedObject<T> {
  const text = canonicalJson(value);
  const bytes = Buffer.from(text, 'utf8');
  return { id: sha256Hex(bytes), bytes, value };
}

/**
 * Parses and checks the shape of stored bytes. Returns a reason string when the bytes are
 * not a valid object (the caller turns it into a CorruptObjectError naming the file).
 * The caller has already checked the hash.
 */
export function decodeObject(bytes: Uint8Array): StoreObject | string {
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(bytes).toString('utf8'));
  } catch {
    return 'not valid JSON';
  }
  return checkObjectShape(value);
}

export function checkObjectShape(value: unknown): StoreObject | string {
  if (!value || typeof value !== 'object' || Array.isArray(value)) return 'not a JSON object';
  const v = value as Record<string, unknown>;
  switch (v.type) {
    case 'workflow':
    case 'integration':
      if (!v.def || typeof v.def !== 'object' || Array.isArray(v.def)) return `${v.type} object without a definition`;
      if (typeof (v.def as Record<string, unknown>).name !== 'string') return `${v.type} definition without a name`;
      return v as unknown as StoreObject;
    case 'release': {
      if (typeof v.integration !== 'string') return 'release without an integration';
      if (!Number.isInteger(v.version) || (v.version as number) < 1) return 'release with a bad version number';
      if (v.parent !== null && !isObjectId(v.parent)) return 'release with a bad parent id';
      if (!isObjectId(v.integrationObject)) return 'release with a bad integration object id';
      if (!v.workflows || typeof v.workflows !== 'object') return 'release without workflows';
      for (const id of Object.values(v.workflows as Record<string, unknown>)) {
        if (!isObjectId(id)) return 'release with a bad workflow object id';
      }
      if (typeof v.time !== 'string' || typeof v.author !== 'string' || typeof v.message !== 'string') {
        return 'release without time, author or message';
      }
      if (v.keyOrder !== undefined && !isKeyOrder(v.keyOrder)) return 'release with a bad keyOrder';
      return v as unknown as ReleaseObject;
    }
    default:
      return `unknown object type ${JSON.stringify(v.type)}`;
  }
}

/**
 * What is wrong with a definition object by the shipped schemas (workflow, integration), plus
 * URLs that are not http(s) where a literal URL is given. Empty for a good object (and for
 * releases, whose claims are checked elsewhere). A store (and the store server, which trusts
 * nothing it is sent) runs this on every definition it accepts; fsck runs it again.
 */
export function definitionProblems(value: StoreObject): string[] {
  if (value.type === 'release') return [];
  const validate = getValidator(value.type);
  const out: string[] = [];
  if (!validate(value.def)) {
    for (const e of validate.errors ?? []) out.push(`${e.instancePath || '/'} ${e.message ?? 'is not valid'}`);
  }
  // Iterative walk (no recursion on uploaded data): every literal `url` must be http(s).
  const stack: Array<{ v: unknown; at: string; depth: number }> = [{ v: value.def, at: '', depth: 0 }];
  while (stack.length) {
    const { v, at, depth } = stack.pop()!;
    if (depth > JSON_MAX_DEPTH) {
      out.push(`${at || '/'} nests deeper than ${JSON_MAX_DEPTH} levels`);
      break;
    }
    if (!v || typeof v !== 'object') continue;
    for (const [k, child] of Object.entries(v as Record<string, unknown>)) {
      const here = `${at}/${k}`;
      if (k === 'url' && typeof child === 'string' && !child.includes('{{') && !/^https?:\/\//i.test(child)) {
        out.push(`${here} must be an http(s) URL, not ${JSON.stringify(child.slice(0, 40))}`);
      }
      if (child && typeof child === 'object') stack.push({ v: child, at: here, depth: depth + 1 });
    }
  }
  return [...new Set(out)];
}

/** The ids a release depends on (must exist before versions/<n> may point at it). */
export function releaseDependencies(release: ReleaseObject): string[] {
  return [release.integrationObject, ...Object.values(release.workflows)];
}

/**
 * History has no gaps and one chain: v<n> follows v<n-1> and names it as its parent (fsck's
 * E_STORE_VERSION_GAP / E_STORE_BAD_PARENT). `parent` is v<n-1>'s release id, null for v1,
 * undefined when v<n-1> does not exist. Every store checks this before creating a version.
 */
export function assertReleaseFollows(integration: string, version: number, release: ReleaseObject, parent: string | null | undefined): void {
  if (parent === undefined) {
    throw new StoreError('E_STORE_BAD_RELEASE', `${integration} v${version} cannot be created: v${version - 1} does not exist`, {
      hint: 'Versions are consecutive; `alloy release` makes the next one after the latest.',
      details: { integration, version },
    });
  }
  if (release.parent !== parent) {
    throw new StoreError('E_STORE_BAD_RELEASE', `${integration} v${version}'s parent must be ${parent === null ? 'none (it is v1)' : `v${version - 1} (${parent})`}, not ${release.parent ?? 'none'}`, {
      hint: 'Re-run `alloy release`: it builds the release on the latest version.',
      details: { integration, version },
    });
  }
}

/** Content of a release without its metadata: what "up to date" compares. */
export function sameTree(
  a: Pick<ReleaseObject, 'integrationObject' | 'workflows'>,
  b: Pick<ReleaseObject, 'integrationObject' | 'workflows'>,
): boolean {
  if (a.integrationObject !== b.integrationObject) return false;
  const ka = Object.keys(a.workflows).sort();
  const kb = Object.keys(b.workflows).sort();
  return ka.length === kb.length && ka.every((k, i) => k === kb[i] && a.workflows[k] === b.workflows[k]);
}

function isKeyOrder(v: unknown): boolean {
  const list = (l: unknown) => Array.isArray(l) && l.every((p) => typeof p === 'string');
  if (!v || typeof v !== 'object' || Array.isArray(v)) return false;
  const o = v as Record<string, unknown>;
  if (!list(o.integration) || !o.workflows || typeof o.workflows !== 'object' || Array.isArray(o.workflows)) return false;
  return Object.values(o.workflows as Record<string, unknown>).every(list);
}
