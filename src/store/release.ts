/**
 * Releasing: a pure-ish plan (hash the working tree, compare with the latest version; reads
 * only) and an apply that writes. Order of writes, so a process killed anywhere leaves a
 * consistent store (docs/store.md, "Crash safety"):
 *   1. workflow and integration objects (outside the lock; idempotent, orphans are harmless)
 *   2. under the release lock: re-read latest, compare again, write the release object
 *   3. create versions/<n> (atomic, never overwrites)            <- the commit point
 *   4. move the `latest` hint (a lagging hint is corrected on read)
 */
import type { IntegrationDef, WorkflowDef } from '../core/model.js';
import { LiteralSecretError, RaceLostError, StoreError, VersionExistsError, type SecretFinding } from './errors.js';
import { assertIntegrationName } from './names.js';
import { normalizeDefinition } from './normalize.js';
import {
  encodeObject,
  sameTree,
  type EncodedObject,
  type IntegrationObject,
  type ReleaseObject,
  type ReleaseProvenance,
  type WorkflowObject,
} from './objects.js';
import { findLiteralSecrets } from './secrets.js';
import type { Store, VersionRef } from './store.js';
import { noCrash, type CrashHook } from './test-hooks.js';
import { keyOrderOf } from './key-order.js';

/** An integration as the project loader gives it (LoadedIntegration fits). */
export interface IntegrationSource {
  name: string;
  file?: string;
  def: IntegrationDef;
  workflows: { name: string; file?: string; def: WorkflowDef }[];
}

/** The content of a release, hashed but not written. */
export interface Tree {
  integration: string;
  integrationObject: EncodedObject<IntegrationObject>;
  workflows: Map<string, EncodedObject<WorkflowObject>>;
  ids: { integrationObject: string; workflows: Record<string, string> };
  /** The files' key order, recorded in the release object (not in the content ids). */
  keyOrder: { integration: string[]; workflows: Record<string, string[]> };
}

export function buildTree(source: IntegrationSource): Tree {
  const integration = assertIntegrationName(source.name);
  const integrationObject = encodeObject<IntegrationObject>({ type: 'integration', def: normalizeDefinition(source.def) });
  const workflows = new Map<string, EncodedObject<WorkflowObject>>();
  for (const w of [...source.workflows].sort((a, b) => a.name.localeCompare(b.name))) {
    workflows.set(w.name, encodeObject<WorkflowObject>({ type: 'workflow', def: normalizeDefinition(w.def) }));
  }
  const ids = {
    integrationObject: integrationObject.id,
    workflows: Object.fromEntries([...workflows].map(([name, o]) => [name, o.id])),
  };
  const keyOrder = {
    integration: keyOrderOf(source.def),
    workflows: Object.fromEntries(source.workflows.map((w) => [w.name, keyOrderOf(w.def)])),
  };
  return { integration, integrationObject, workflows, ids, keyOrder };
}

export function scanSourceForSecrets(source: IntegrationSource): SecretFinding[] {
  const fallback = `integrations/${source.name}`;
  return [
    ...findLiteralSecrets(source.file ?? `${fallback}/integration.yaml`, source.def),
    ...source.workflows.flatMap((w) => findLiteralSecrets(w.file ?? `${fallback}/workflows/${w.name}.yaml`, w.def)),
  ];
}

/** Throws LiteralSecretError listing every finding across all sources. */
export function assertNoLiteralSecrets(sources: IntegrationSource[]): void {
  const findings = sources.flatMap(scanSourceForSecrets);
  if (findings.length) throw new LiteralSecretError(findings);
}

export interface TreeChanges {
  integrationChanged: boolean;
  added: string[];
  removed: string[];
  changed: string[];
  unchanged: string[];
}

export function compareTreeIds(
  from: { integrationObject: string; workflows: Record<string, string> } | undefined,
  to: { integrationObject: string; workflows: Record<string, string> },
): TreeChanges {
  const a = from?.workflows ?? {};
  const b = to.workflows;
  const names = [...new Set([...Object.keys(a), ...Object.keys(b)])].sort();
  const out: TreeChanges = { integrationChanged: from?.integrationObject !== to.integrationObject, added: [], removed: [], changed: [], unchanged: [] };
  for (const n of names) {
    if (!(n in a)) out.added.push(n);
    else if (!(n in b)) out.removed.push(n);
    else if (a[n] !== b[n]) out.changed.push(n);
    else out.unchanged.push(n);
  }
  return out;
}

export interface ReleasePlan {
  integration: string;
  tree: Tree;
  latest: { ref: VersionRef; release: ReleaseObject } | null;
  changes: TreeChanges;
  upToDate: boolean;
}

export async function readRelease(store: Store, id: string): Promise<ReleaseObject> {
  const obj = await store.readObject(id);
  if (obj.type !== 'release') {
    throw new StoreError('E_STORE_BAD_REF', `object ${id} is a ${obj.type}, not a release`, { hint: 'Run `alloy fsck`.' });
  }
  return obj;
}

/** Reads only: hashes the source and compares it with the latest version. */
export async function planRelease(store: Store, source: IntegrationSource): Promise<ReleasePlan> {
  assertNoLiteralSecrets([source]);
  const tree = buildTree(source);
  const ref = await store.latestVersion(tree.integration);
  const latest = ref ? { ref, release: await readRelease(store, ref.id) } : null;
  const changes = compareTreeIds(latest?.release, tree.ids);
  return { integration: tree.integration, tree, latest, changes, upToDate: latest !== null && sameTree(latest.release, tree.ids) };
}

export interface ApplyReleaseOptions {
  message?: string;
  author: string;
  now: () => Date;
  provenance?: ReleaseProvenance;
  /** TEST HOOK: see test-hooks.ts. */
  crashAt?: CrashHook;
}

export interface ReleaseResult {
  integration: string;
  status: 'released' | 'up-to-date';
  version: number;
  id: string;
  /** Objects this release wrote or uploaded (0 when everything was already there). */
  objectsWritten: number;
  changes: TreeChanges;
}

export async function applyRelease(store: Store, plan: ReleasePlan, options: ApplyReleaseOptions): Promise<ReleaseResult> {
  const crashAt = options.crashAt ?? noCrash;
  const { tree, integration } = plan;
  if (plan.upToDate && plan.latest) {
    return { integration, status: 'up-to-date', version: plan.latest.ref.version, id: plan.latest.ref.id, objectsWritten: 0, changes: plan.changes };
  }
  const contentObjects = [tree.integrationObject, ...tree.workflows.values()];
  const missing = new Set(await store.missingObjects(contentObjects.map((o) => o.id)));
  const toWrite = contentObjects.filter((o) => missing.has(o.id));
  if (toWrite.length) await store.putObjects(toWrite);
  crashAt('objects-written');

  return store.withReleaseLock(integration, async () => {
    crashAt('lock-held');
    const latestRef = await store.latestVersion(integration);
    const latest = latestRef ? await readRelease(store, latestRef.id) : null;
    if (latestRef && latest && sameTree(latest, tree.ids)) {
      // Another process released exactly this content while we were hashing.
      return { integration, status: 'up-to-date' as const, version: latestRef.version, id: latestRef.id, objectsWritten: toWrite.length, changes: compareTreeIds(latest, tree.ids) };
    }
    const version = (latestRef?.version ?? 0) + 1;
    const release = encodeObject<ReleaseObject>({
      type: 'release',
      integration,
      version,
      parent: latestRef?.id ?? null,
      integrationObject: tree.ids.integrationObject,
      workflows: tree.ids.workflows,
      message: options.message ?? '',
      author: options.author,
      time: options.now().toISOString(),
      ...(options.provenance && Object.keys(options.provenance).length ? { provenance: options.provenance } : {}),
      keyOrder: tree.keyOrder,
    });
    await store.putObjects([release]);
    crashAt('release-object-written');
    try {
      await store.createVersion(integration, { version, id: release.id });
    } catch (err) {
      if (!(err instanceof VersionExistsError)) throw err;
      // Only a remote store gets here (no shared lock): someone else made v<version>.
      const now = await store.readVersion(integration, version);
      const theirs = await readRelease(store, now.id);
      if (sameTree(theirs, tree.ids)) {
        return { integration, status: 'up-to-date' as const, version, id: now.id, objectsWritten: toWrite.length + 1, changes: compareTreeIds(theirs, tree.ids) };
      }
      throw new RaceLostError(integration, version);
    }
    crashAt('released');
    return {
      integration,
      status: 'released' as const,
      version,
      id: release.id,
      objectsWritten: toWrite.length + 1,
      changes: compareTreeIds(latest ?? undefined, tree.ids),
    };
  });
}

export async function releaseIntegration(store: Store, source: IntegrationSource, options: ApplyReleaseOptions): Promise<ReleaseResult> {
  return applyRelease(store, await planRelease(store, source), options);
}
