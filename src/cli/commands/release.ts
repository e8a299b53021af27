/**
 * `alloy release [integration..]`: validate, refuse literal secrets, then make version N+1
 * of each integration whose content differs from its latest version ("up to date" otherwise,
 * exit 0: CI runs it on every push). One line per integration on success.
 */
import { count } from '../render/count.js';
import type { CliContext } from '../context.js';
import { loadValidProject } from '../load-project.js';
import { NotFoundError } from '../../errors.js';
import {
  applyRelease,
  assertNoLiteralSecrets,
  crashHookFromEnv,
  detectProvenance,
  LiteralSecretError,
  planRelease,
  shortId,
  type ReleasePlan,
  type ReleaseResult,
} from '../../store/lib.js';
import { openCommandStore, withStore } from './store-common.js';

export default async function releaseCommand(ctx: CliContext, args: string[], opts: Record<string, any>): Promise<number> {
  const project = await loadValidProject(ctx);
  const wanted = args.length ? args : project.integrations.map((i) => i.name);
  const sources = wanted.map((name) => {
    const found = project.integrations.find((i) => i.name === name);
    if (!found) {
      throw new NotFoundError(`no integration "${name}" in this project`, {
        code: 'E_INTEGRATION_NOT_FOUND',
        hint: `Integrations: ${project.integrations.map((i) => i.name).join(', ') || '(none)'}.`,
      });
    }
    return found;
  });
  try {
    assertNoLiteralSecrets(sources);
  } catch (err) {
    if (err instanceof LiteralSecretError && !ctx.json) {
      for (const f of err.findings) ctx.note(`${ctx.errColor.red('secret')} ${f.file}: ${f.field} looks like a ${f.kind}`);
    }
    throw err;
  }

  const store = await openCommandStore(ctx, opts, { root: project.root, config: project.config });
  return withStore(store, async () => {
    const spinner = await ctx.spinner(`${opts.dryRun ? 'planning' : 'releasing'} ${count(sources.length, 'integration')} into ${store.location}`);
    const plans: ReleasePlan[] = [];
    const results: ReleaseResult[] = [];
    try {
      for (const source of sources) plans.push(await planRelease(store, source));
      if (!opts.dryRun) {
        const { author, provenance } = await detectProvenance(ctx.env, project.root);
        for (const plan of plans) {
          spinner.update(`releasing ${plan.integration}`);
          results.push(
            await applyRelease(store, plan, { message: opts.message, author, provenance, now: () => ctx.now(), crashAt: crashHookFromEnv(ctx.env) }),
          );
        }
      }
    } finally {
      spinner.stop();
    }

    if (opts.dryRun) {
      const dry = plans.map((p) => ({
        integration: p.integration,
        status: p.upToDate ? 'up-to-date' : 'would-release',
        version: p.upToDate ? p.latest!.ref.version : (p.latest?.ref.version ?? 0) + 1,
        latest: p.latest?.ref ?? null,
        changes: p.changes,
      }));
      if (ctx.json) ctx.printJson({ ok: true, dryRun: true, store: store.location, releases: dry });
      else {
        for (const d of dry) {
          if (d.status === 'up-to-date') ctx.out(`${d.integration} is up to date at v${d.version}`);
          else {
            ctx.out(`${d.integration} would be released as v${d.version}`);
            if (d.changes.integrationChanged && d.latest) ctx.out(`  ~ integration.yaml`);
            for (const n of d.changes.added) ctx.out(`  + ${n}`);
            for (const n of d.changes.removed) ctx.out(`  - ${n}`);
            for (const n of d.changes.changed) ctx.out(`  ~ ${n}`);
          }
        }
      }
      return 0;
    }

    if (ctx.json) ctx.printJson({ ok: true, store: store.location, releases: results });
    else {
      const c = ctx.color;
      for (const r of results) {
        if (r.status === 'released') {
          const n = r.changes.added.length + r.changes.removed.length + r.changes.changed.length;
          ctx.out(`${c.green('released')} ${r.integration} v${r.version} ${c.dim(shortId(r.id))} (${count(n, 'workflow')} changed)`);
        } else ctx.out(`${r.integration} is up to date at v${r.version} ${c.dim(shortId(r.id))}`);
      }
    }
    return 0;
  });
}
