/**
 * `alloy release [integration..]`: validate, refuse literal secrets, run the integrations'
 * tests (config `release.test`, default on; `--skip-tests` is recorded in the version's
 * message) and refuse on a failure, then make version N+1
 * of each integration whose content differs from its latest version ("up to date" otherwise,
 * exit 0: CI runs it on every push). One line per integration on success.
 */
import { count } from '../render/count.js';
import path from 'node:path';
import type { CliContext } from '../context.js';
import type { LoadedIntegration, LoadedProject } from '../../core/project-types.js';
import { loadValidProject } from '../load-project.js';
import { AlloyError, NotFoundError } from '../../errors.js';
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
  // With --skip-tests a broken test file does not stop the release either.
  const project = await loadValidProject(ctx, { tests: !opts.skipTests });
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

  if (!opts.skipTests && project.config.release?.test !== false) await runTestsFirst(ctx, project, sources);
  const message = opts.skipTests ? [opts.message, '[tests skipped: --skip-tests]'].filter(Boolean).join(' ') : opts.message;

  const store = await openCommandStore(ctx, opts, { root: project.root, config: project.config }, true);
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
            await applyRelease(store, plan, { message, author, provenance, now: () => ctx.now(), crashAt: crashHookFromEnv(ctx.env) }),
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

/** Runs the tests of the integrations being released; a failure stops the release, naming the tests. */
async function runTestsFirst(ctx: CliContext, project: LoadedProject, sources: LoadedIntegration[]): Promise<void> {
  if (!sources.some((s) => (s.tests ?? []).length > 0)) return;
  const [{ runTests }, { createConnectorRegistry }] = await Promise.all([import('../../test-runner/index.js'), import('../../connectors/registry.js')]);
  const spinner = await ctx.spinner('running the tests before releasing');
  const summary = await runTests({
    project,
    connectors: createConnectorRegistry({ userConnectors: project.connectors.map((c) => c.def) }),
    paths: sources.map((s) => path.join(project.root, s.dir)),
    ci: true,
  }).finally(() => spinner.stop());
  if (summary.ok) {
    if (!ctx.json) ctx.note(ctx.errColor.dim(`tests: ${summary.passed} passed${summary.skipped ? `, ${summary.skipped} skipped` : ''}`));
    return;
  }
  const failed = summary.results.filter((r) => r.state === 'failed');
  const names = failed.map((r) => `${r.file}:${r.failures[0]?.line ?? r.line} > ${r.name}`);
  throw new AlloyError('E_TESTS_FAILED', `${failed.length} test(s) failed, so nothing was released:\n${names.map((n) => `  × ${n}`).join('\n')}`, {
    hint: 'run `alloy test` to see the diffs and fix them, or release anyway with --skip-tests (recorded in the version message)',
    details: { failed: failed.map((r) => ({ file: r.file, name: r.name, failures: r.failures.map((f) => ({ line: f.line, column: f.column, message: f.message })) })) },
  });
}
