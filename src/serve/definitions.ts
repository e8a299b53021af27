/**
 * Where definitions come from. `alloy serve` runs published releases out of a store (local
 * folder or remote URL); `alloy dev` runs the working tree. A release is immutable, so a
 * loaded `integration@version` is cached for the life of the process: every execution is
 * run on the version it recorded when it was created, whatever is published since.
 */
import type { IntegrationDef } from '../core/model.js';
import type { LoadedProject } from '../core/project-types.js';
import { indexDefinitions, type RuntimeDefinitions } from '../server/definitions.js';
import { loadRelease, StoreNotFoundError, type Store } from '../store/lib.js';

export interface IntegrationVersion {
  integration: string;
  /** Release number; 0 for the working tree. */
  version: number;
  def: IntegrationDef;
  /** The workflows, indexed by trigger (the runtime's index, reused). */
  defs: RuntimeDefinitions;
}

export interface DefinitionSource {
  /** The published version of an integration, or undefined when none is published. */
  published(integration: string): Promise<number | undefined>;
  /** A version's definitions; throws NotFound-style StoreError when it does not exist. */
  get(integration: string, version: number): Promise<IntegrationVersion>;
}

function asProject(integration: string, def: IntegrationDef, workflows: Map<string, import('../core/model.js').WorkflowDef>): LoadedProject {
  return {
    root: '',
    config: { apiVersion: 'alloy/v1', kind: 'Project' } as LoadedProject['config'],
    integrations: [
      {
        name: integration,
        dir: `integrations/${integration}`,
        file: `integrations/${integration}/integration.yaml`,
        def,
        workflows: [...workflows].map(([name, wdef]) => ({ integration, name, file: `integrations/${integration}/workflows/${name}.yaml`, def: wdef })),
      },
    ],
    connectors: [],
    files: [],
    diagnostics: [],
  };
}

/** Published releases from a store; versions cached (immutable), the published pointer read each time. */
export function storeDefinitionSource(store: Store): DefinitionSource {
  const cache = new Map<string, Promise<IntegrationVersion>>();
  return {
    async published(integration) {
      try {
        return (await store.readPublished(integration))?.version;
      } catch (err) {
        if (err instanceof StoreNotFoundError) return undefined;
        throw err;
      }
    },
    get(integration, version) {
      const key = `${integration}@${version}`;
      let hit = cache.get(key);
      if (!hit) {
        hit = (async () => {
          const ref = await store.readVersion(integration, version);
          const rel = await loadRelease(store, integration, ref);
          return { integration, version, def: rel.integration, defs: indexDefinitions(asProject(integration, rel.integration, rel.workflows)) };
        })();
        hit.catch(() => cache.delete(key));
        cache.set(key, hit);
      }
      return hit;
    },
  };
}

/** The working tree (dev): every integration of the loaded project, as version 0. */
export function workingTreeDefinitionSource(project: () => LoadedProject): DefinitionSource {
  return {
    async published(integration) {
      return project().integrations.some((i) => i.name === integration) ? 0 : undefined;
    },
    async get(integration) {
      const p = project();
      const i = p.integrations.find((x) => x.name === integration);
      if (!i) throw new StoreNotFoundError(`no integration "${integration}" in the working tree`, 'Check the name under integrations/.');
      return { integration, version: 0, def: i.def, defs: indexDefinitions({ ...p, integrations: [i] }) };
    },
  };
}
