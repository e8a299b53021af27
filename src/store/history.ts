/**
 * Reading history and moving the published pointer: `int@3`, `int@latest` and
 * `int@published` references, publish, rollback (back along the publish log), and loading a
 * released definition.
 */
import type { IntegrationDef, WorkflowDef } from '../core/model.js';
import { mapLimit } from '../core/map-limit.js';
import { BadStoreInputError, NothingToRollBackError, StoreError, StoreNotFoundError } from './errors.js';
import { assertIntegrationName, INTEGRATION_NAME } from './names.js';
import type { ReleaseObject } from './objects.js';
import { readRelease } from './release.js';
import type { PublishLogEntry, Store, VersionRef } from './store.js';

export type VersionSelector = number | 'latest' | 'published';

export interface VersionSpec {
  integration: string;
  selector: VersionSelector;
}

/** Parses `int@3`, `int@v3`, `int@latest`, `int@published`, or `int` (= default selector). */
export function parseVersionSpec(text: string, defaultSelector?: VersionSelector): VersionSpec {
  const at = text.lastIndexOf('@');
  const name = at < 0 ? text : text.slice(0, at);
  const sel = at < 0 ? undefined : text.slice(at + 1);
  if (!INTEGRATION_NAME.test(name)) {
    throw new BadStoreInputError(`"${text}" does not name an integration`, 'Write <integration>@<version>, e.g. shopify-sync@3 or shopify-sync@latest.');
  }
  if (sel === undefined || sel === '') {
    if (defaultSelector === undefined) {
      throw new BadStoreInputError(`"${text}" names no version`, `Write ${name}@<version>, e.g. ${name}@3, ${name}@latest or ${name}@published.`);
    }
    return { integration: name, selector: defaultSelector };
  }
  if (sel === 'latest' || sel === 'published') return { integration: name, selector: sel };
  const m = /^v?([1-9][0-9]*)$/.exec(sel);
  if (!m || !Number.isSafeInteger(Number(m[1]))) {
    throw new BadStoreInputError(`"${sel}" is not a version`, 'A version is a number (3 or v3), latest or published.');
  }
  return { integration: name, selector: Number(m[1]) };
}

export function formatSpec(spec: VersionSpec): string {
  return `${spec.integration}@${spec.selector}`;
}

export async function resolveVersion(store: Store, spec: VersionSpec): Promise<VersionRef> {
  const { integration, selector } = spec;
  assertIntegrationName(integration);
  if (selector === 'latest') {
    const ref = await store.latestVersion(integration);
    if (!ref) throw new StoreNotFoundError(`${integration} has no released version in ${store.location}`, `Run \`alloy release ${integration}\` first.`);
    return ref;
  }
  if (selector === 'published') {
    const ref = await store.readPublished(integration);
    if (!ref) throw new StoreNotFoundError(`${integration} has no published version`, `Publish one with \`alloy publish ${integration}@latest\`.`);
    return ref;
  }
  return store.readVersion(integration, selector);
}

export interface ReleasedDefinitions {
  ref: VersionRef;
  release: ReleaseObject;
  integration: IntegrationDef;
  workflows: Map<string, WorkflowDef>;
}

/** A release with its definitions, every object verified on read. */
export async function loadRelease(store: Store, integration: string, ref: VersionRef): Promise<ReleasedDefinitions> {
  const release = await readRelease(store, ref.id);
  if (release.integration !== integration || release.version !== ref.version) {
    throw new StoreError('E_STORE_BAD_REF', `${integration} v${ref.version} points at release ${release.integration} v${release.version}`, {
      hint: 'Run `alloy fsck` on the store.',
    });
  }
  const intObj = await store.readObject(release.integrationObject);
  if (intObj.type !== 'integration') throw new StoreError('E_STORE_BAD_REF', `object ${release.integrationObject} is not an integration`, { hint: 'Run `alloy fsck`.' });
  const workflows = new Map<string, WorkflowDef>();
  for (const [name, id] of Object.entries(release.workflows).sort(([a], [b]) => a.localeCompare(b))) {
    const obj = await store.readObject(id);
    if (obj.type !== 'workflow') throw new StoreError('E_STORE_BAD_REF', `object ${id} is not a workflow`, { hint: 'Run `alloy fsck`.' });
    workflows.set(name, obj.def);
  }
  return { ref, release, integration: intObj.def, workflows };
}

export interface PublishOptions {
  who: string;
  message?: string;
}

export interface PublishResult {
  integration: string;
  status: 'published' | 'already-published';
  entry?: PublishLogEntry;
  ref: VersionRef;
  previous: VersionRef | null;
}

export async function publishVersion(store: Store, spec: VersionSpec, options: PublishOptions): Promise<PublishResult> {
  const ref = await resolveVersion(store, spec);
  const current = await store.readPublished(spec.integration);
  if (current && current.id === ref.id) {
    return { integration: spec.integration, status: 'already-published', ref, previous: current };
  }
  const entry = await store.movePublished(spec.integration, {
    expected: current?.id ?? null,
    to: ref,
    action: 'publish',
    who: options.who,
    message: options.message,
  });
  return { integration: spec.integration, status: 'published', entry, ref, previous: entry.from };
}

/**
 * The stack of published versions implied by the log: a publish pushes its target, a
 * rollback pops. Rolling back twice from v1→v2→v3 goes to v2, then to v1 (not back to v3).
 *
 * Only moves that took effect count. The log line is written before the pointer moves, so
 * a process killed in between leaves a line for a move that never happened; replaying it
 * would pop (or push) a version the pointer never left. An entry took effect when the next
 * entry starts where it ended (its `from` is this entry's `to`), or, for the last entry,
 * when the pointer is where it ended. `currentId` is the published pointer now (null when
 * nothing is published); leave it out to trust the last entry.
 */
export function publishStack(log: PublishLogEntry[], currentId?: string | null): VersionRef[] {
  const stack: VersionRef[] = [];
  log.forEach((e, i) => {
    const next = log[i + 1];
    const tookEffect = next ? (next.from?.id ?? null) === e.to.id : currentId === undefined || currentId === e.to.id;
    if (!tookEffect) return;
    if (e.action === 'rollback') {
      stack.pop();
      if (stack.length === 0 || stack[stack.length - 1].id !== e.to.id) stack.push(e.to);
    } else stack.push(e.to);
  });
  return stack;
}

/**
 * Where a rollback would go, without moving anything (the CLI asks before moving): the
 * version published before the current one along the publish log, or `to` (any released
 * version other than the current one).
 */
export async function planRollback(store: Store, integration: string, to?: VersionSpec): Promise<{ current: VersionRef; target: VersionRef }> {
  assertIntegrationName(integration);
  const current = await store.readPublished(integration);
  if (!current) throw new NothingToRollBackError(`${integration} has no published version to roll back`, `Publish one with \`alloy publish ${integration}@<version>\`.`);
  if (to) {
    const target = await resolveVersion(store, to);
    if (target.id === current.id) {
      throw new NothingToRollBackError(`${integration} v${target.version} is already the published version`, `Name another version: \`alloy deployments ${integration}\` lists what was published.`);
    }
    return { current, target };
  }
  const stack = publishStack(await store.readPublishLog(integration), current.id);
  // The pointer is the truth; if the log's top still disagrees (a log edited by hand), start from the pointer.
  while (stack.length && stack[stack.length - 1].id !== current.id) stack.pop();
  const target = stack.length >= 2 ? stack[stack.length - 2] : undefined;
  if (!target) {
    throw new NothingToRollBackError(`${integration} v${current.version} is the first published version; there is nothing to roll back to`, `Publish a specific version with \`alloy publish ${integration}@<version>\`, or name one with \`alloy rollback ${integration} --to <version>\`.`);
  }
  return { current, target };
}

export async function rollbackPublished(store: Store, integration: string, options: PublishOptions & { to?: VersionSpec; plan?: { current: VersionRef; target: VersionRef } }): Promise<PublishResult> {
  const { current, target } = options.plan ?? (await planRollback(store, integration, options.to));
  const entry = await store.movePublished(integration, { expected: current.id, to: target, action: 'rollback', who: options.who, message: options.message });
  return { integration, status: 'published', entry, ref: target, previous: current };
}

export interface VersionInfo extends VersionRef {
  integration: string;
  time: string;
  author: string;
  message: string;
  parent: string | null;
  workflows: number;
  published: boolean;
  commit?: string;
}

export async function listVersionInfo(store: Store, integration: string, options: { limit?: number } = {}): Promise<VersionInfo[]> {
  const refs = await store.listVersions(integration, options.limit && options.limit > 0 ? { newest: options.limit } : {});
  const published = await store.readPublished(integration);
  // Release objects are independent reads: a few at a time (a remote store answers each with one GET).
  return mapLimit(refs, 8, async (ref) => {
    const r = await readRelease(store, ref.id);
    return {
      integration,
      version: ref.version,
      id: ref.id,
      time: r.time,
      author: r.author,
      message: r.message,
      parent: r.parent,
      workflows: Object.keys(r.workflows).length,
      published: published?.id === ref.id,
      ...(r.provenance?.commit ? { commit: r.provenance.commit } : {}),
    };
  });
}

