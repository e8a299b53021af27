/**
 * `alloy diff [a] [b]`: step-level diff.
 *   alloy diff                      working tree against the latest version of each integration
 *   alloy diff @published           working tree against the published version of each
 *   alloy diff shopify-sync         working tree against shopify-sync@latest
 *   alloy diff shopify-sync@3       working tree against v3
 *   alloy diff shopify-sync@3 shopify-sync@5   (or `shopify-sync@3 @5`)
 */
import { count } from '../render/count.js';
import type { CliContext } from '../context.js';
import { UsageError } from '../../errors.js';
import type { LoadedIntegration } from '../../core/project-types.js';
import { loadValidProject } from '../load-project.js';
import {
  diffDefinitions,
  loadRelease,
  normalizeDefinition,
  parseVersionSpec,
  resolveVersion,
  StoreNotFoundError,
  type DefinitionSet,
  type IntegrationDiff,
  type Store,
  type VersionSelector,
} from '../../store/lib.js';
import { findProjectLocation, formatFieldChange, openCommandStore, withStore } from './store-common.js';

function workingSet(i: LoadedIntegration): DefinitionSet {
  return { integration: normalizeDefinition(i.def), workflows: new Map(i.workflows.map((w) => [w.name, normalizeDefinition(w.def)])) };
}

async function versionSet(store: Store, integration: string, selector: VersionSelector, optional: boolean): Promise<{ label: string; defs: DefinitionSet | undefined }> {
  try {
    const ref = await resolveVersion(store, { integration, selector });
    const rel = await loadRelease(store, integration, ref);
    return { label: `v${ref.version}`, defs: { integration: rel.integration, workflows: rel.workflows } };
  } catch (err) {
    if (optional && err instanceof StoreNotFoundError) return { label: selector === 'published' ? '(nothing published)' : '(no release)', defs: undefined };
    throw err;
  }
}

export default async function diffCommand(ctx: CliContext, args: string[], opts: Record<string, any>): Promise<number> {
  if (args.length > 2) throw new UsageError('diff compares at most two things', { hint: 'alloy diff [a] [b], e.g. alloy diff shopify-sync@3 shopify-sync@5' });
  const diffs: IntegrationDiff[] = [];
  if (args.length === 2) {
    const a = parseVersionSpec(args[0], 'latest');
    const b = args[1].startsWith('@') ? parseVersionSpec(`${a.integration}${args[1]}`) : parseVersionSpec(args[1], 'latest');
    if (a.integration !== b.integration) throw new UsageError('diff compares two versions of one integration', { hint: `e.g. alloy diff ${a.integration}@1 ${a.integration}@2` });
    const loc = await findProjectLocation(ctx, !opts.store);
    const store = await openCommandStore(ctx, opts, loc);
    await withStore(store, async () => {
      const from = await versionSet(store, a.integration, a.selector, false);
      const to = await versionSet(store, b.integration, b.selector, false);
      diffs.push(diffDefinitions(a.integration, from, { label: to.label, defs: to.defs! }));
    });
  } else {
    const project = await loadValidProject(ctx);
    let selector: VersionSelector = 'latest';
    let only: string | undefined;
    if (args[0]) {
      if (args[0].startsWith('@')) selector = parseVersionSpec(`x${args[0]}`).selector;
      else {
        const spec = parseVersionSpec(args[0], 'latest');
        only = spec.integration;
        selector = spec.selector;
      }
    }
    const integrations = only ? project.integrations.filter((i) => i.name === only) : project.integrations;
    if (only && !integrations.length) {
      throw new UsageError(`no integration "${only}" in the working tree`, { hint: `To compare two versions: alloy diff ${only}@1 ${only}@2.` });
    }
    const store = await openCommandStore(ctx, opts, { root: project.root, config: project.config });
    await withStore(store, async () => {
      for (const i of integrations) {
        const from = await versionSet(store, i.name, selector, typeof selector !== 'number');
        diffs.push(diffDefinitions(i.name, from, { label: 'working tree', defs: workingSet(i) }));
      }
    });
  }
  const changed = diffs.some((d) => d.changed);
  if (ctx.json) ctx.printJson({ ok: true, changed, diffs });
  else for (const d of diffs) renderDiff(ctx, d);
  return opts.exitCode && changed ? 1 : 0;
}

function renderDiff(ctx: CliContext, d: IntegrationDiff): void {
  const c = ctx.color;
  if (!d.changed) {
    ctx.out(`${d.integration}: no changes between ${d.from} and ${d.to}`);
    return;
  }
  ctx.out(c.bold(`${d.integration}: ${d.from} → ${d.to}`));
  for (const f of d.fields) ctx.out(`  ${c.yellow('~')} integration ${formatFieldChange(f)}`);
  for (const w of d.workflows) {
    if (w.status === 'added') {
      ctx.out(`  ${c.green('+')} workflow ${w.name} (${count(w.steps.length, 'step')})`);
      continue;
    }
    if (w.status === 'removed') {
      ctx.out(`  ${c.red('-')} workflow ${w.name}`);
      continue;
    }
    ctx.out(`  ${c.yellow('~')} workflow ${w.name}`);
    if (w.trigger) for (const f of w.trigger.fields) ctx.out(`      trigger changed: ${formatFieldChange(f)}`);
    for (const f of w.fields) ctx.out(`      ${formatFieldChange(f)}`);
    for (const s of w.steps) {
      if (s.change === 'added') ctx.out(`      ${c.green('+')} step ${s.id} at ${s.at}`);
      else if (s.change === 'removed') ctx.out(`      ${c.red('-')} step ${s.id} (was at ${s.at})`);
      else if (s.change === 'moved') ctx.out(`      ${c.cyan('>')} step ${s.id} moved ${s.from} → ${s.at}`);
      else for (const f of s.fields ?? []) ctx.out(`      ${c.yellow('~')} step ${s.id} ${formatFieldChange(f)}`);
    }
  }
}
