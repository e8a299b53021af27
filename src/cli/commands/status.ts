/** `alloy status`: per integration, the latest and published versions and the unreleased changes. */
import type { CliContext } from '../context.js';
import { loadValidProject } from '../load-project.js';
import { buildTree, compareTreeIds, readRelease, shortId, type TreeChanges, type VersionRef } from '../../store/lib.js';
import { openCommandStore, withStore } from './store-common.js';

interface StatusRow {
  integration: string;
  inWorkingTree: boolean;
  latest: VersionRef | null;
  published: VersionRef | null;
  unreleased: boolean;
  changes?: TreeChanges;
}

export default async function statusCommand(ctx: CliContext, _args: string[], opts: Record<string, any>): Promise<number> {
  const project = await loadValidProject(ctx);
  const store = await openCommandStore(ctx, opts, { root: project.root, config: project.config });
  return withStore(store, async () => {
    const names = [...new Set([...project.integrations.map((i) => i.name), ...(await store.listIntegrations())])].sort();
    const rows: StatusRow[] = [];
    for (const name of names) {
      const source = project.integrations.find((i) => i.name === name);
      const latest = await store.latestVersion(name);
      const published = await store.readPublished(name);
      let changes: TreeChanges | undefined;
      if (source) changes = compareTreeIds(latest ? await readRelease(store, latest.id) : undefined, buildTree(source).ids);
      const unreleased = Boolean(changes && (changes.integrationChanged || changes.added.length || changes.removed.length || changes.changed.length));
      rows.push({ integration: name, inWorkingTree: Boolean(source), latest, published, unreleased, ...(changes ? { changes } : {}) });
    }
    if (ctx.json) {
      ctx.printJson({ ok: true, store: store.location, integrations: rows });
      return 0;
    }
    const c = ctx.color;
    const v = (r: VersionRef | null) => (r ? `v${r.version} ${c.dim(shortId(r.id))}` : c.dim('none'));
    for (const r of rows) {
      ctx.out(`${c.bold(r.integration)}  latest ${v(r.latest)}  published ${v(r.published)}`);
      if (!r.inWorkingTree) ctx.out(`  ${c.dim('not in the working tree')}`);
      else if (!r.unreleased) ctx.out(`  ${c.dim('no unreleased changes')}`);
      else {
        const ch = r.changes!;
        if (ch.integrationChanged && r.latest) ctx.out(`  ${c.yellow('~')} integration.yaml`);
        for (const n of ch.added) ctx.out(`  ${c.green('+')} ${n}`);
        for (const n of ch.removed) ctx.out(`  ${c.red('-')} ${n}`);
        for (const n of ch.changed) ctx.out(`  ${c.yellow('~')} ${n}`);
        ctx.out(`  ${c.dim('run `alloy release` to make a new version')}`);
      }
    }
    return 0;
  });
}
