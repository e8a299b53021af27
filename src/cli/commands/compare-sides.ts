/**
 * Which definition of a workflow `alloy compare` and `alloy replay --version` run: the
 * working tree, or a released version from the store (`3`, `v3`, `@3`, `latest`,
 * `published`, optionally written `<integration>@3`).
 */
import type { CliContext } from '../context.js';
import { UsageError } from '../../errors.js';
import type { WorkflowDef } from '../../core/model.js';
import type { LoadedProject } from '../../core/project-types.js';
import { loadRelease, resolveVersion, StoreNotFoundError, type VersionSelector } from '../../store/lib.js';
import type { CompareSide } from '../../test-runner/compare.js';
import { openCommandStore, withStore } from './store-common.js';

export type SideSpec = 'working' | VersionSelector;

export function parseSideSpec(text: string): SideSpec {
  const t = text.includes('@') ? text.slice(text.lastIndexOf('@') + 1) : text;
  if (t === 'working' || t === 'wt' || t === '.') return 'working';
  if (t === 'latest' || t === 'published') return t;
  const m = /^v?(\d+)$/.exec(t);
  if (m) return Number(m[1]);
  throw new UsageError(`"${text}" is not a version`, { hint: 'use a version number (3 or v3), latest, published, or working (the working tree)' });
}

/** Loads one side; `fallback` is tried when the first selector finds nothing (published → latest). */
export async function loadSide(
  ctx: CliContext,
  opts: Record<string, any>,
  project: LoadedProject,
  workflowRef: string,
  spec: SideSpec,
  fallback?: VersionSelector,
): Promise<CompareSide> {
  const [integration, name] = workflowRef.split('/');
  if (spec === 'working') {
    const wf = project.integrations.find((i) => i.name === integration)?.workflows.find((w) => w.name === name);
    if (!wf) throw new UsageError(`${workflowRef} is not in the working tree`, { code: 'E_WORKFLOW_NOT_FOUND', hint: 'compare two released versions instead, e.g. alloy compare <id> 2 3' });
    return { label: 'working tree', def: wf.def };
  }
  const store = await openCommandStore(ctx, opts, { root: project.root, config: project.config });
  return withStore(store, async () => {
    const load = async (selector: VersionSelector) => {
      const ref = await resolveVersion(store, { integration, selector });
      const rel = await loadRelease(store, integration, ref);
      const def = rel.workflows.get(name) as WorkflowDef | undefined;
      if (!def) throw new UsageError(`${integration} v${ref.version} has no workflow "${name}"`, { code: 'E_WORKFLOW_NOT_FOUND', hint: 'pick a version that has it (`alloy versions`)' });
      return { label: `v${ref.version}${selector === 'published' ? ' (published)' : ''}`, def };
    };
    try {
      return await load(spec);
    } catch (err) {
      if (fallback !== undefined && err instanceof StoreNotFoundError) return load(fallback);
      throw err;
    }
  });
}
