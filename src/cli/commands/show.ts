/** `alloy show <integration>@<version> [workflow]`: the released definition as YAML. */
import { stringify } from 'yaml';
import type { CliContext } from '../context.js';
import { UsageError } from '../../errors.js';
import { loadRelease, parseVersionSpec, resolveVersion, shortId, StoreNotFoundError } from '../../store/lib.js';
import { findProjectLocation, openCommandStore, withStore } from './store-common.js';
import { applyKeyOrder } from '../../store/key-order.js';

// Objects are stored with sorted keys; print them in the order people write them.
const TOP_ORDER = ['apiVersion', 'kind', 'name', 'description', 'app', 'connectors', 'trigger', 'steps', 'stream', 'timeout'];
const STEP_ORDER = ['id', 'name', 'uses', 'if', 'then', 'else', 'each', 'as', 'concurrency', 'stop', 'branch', 'delay', 'code', 'when', 'with', 'retry', 'timeout', 'onError', 'steps'];

// Releases record the file's key order (keyOrder): print with it. Keys it does not cover (a
// release made before it was recorded) go in the conventional order, then alphabetically.
const STEP_AT = /\/(?:steps|then|else)\/\d+$/;
function conventional(at: string, keys: string[]): string[] {
  const order = at === '' ? TOP_ORDER : STEP_AT.test(at) ? STEP_ORDER : [];
  return [...order.filter((k) => keys.includes(k)), ...keys.filter((k) => !order.includes(k)).sort()];
}

function toYaml(def: unknown, keyOrder: string[] | undefined): string {
  return stringify(applyKeyOrder(def, keyOrder, conventional), { lineWidth: 0 }).trimEnd();
}

export default async function showCommand(ctx: CliContext, args: string[], opts: Record<string, any>): Promise<number> {
  if (!args[0]) throw new UsageError('name a version to show', { hint: 'alloy show <integration>@<version> [workflow], e.g. alloy show shopify-sync@3' });
  const spec = parseVersionSpec(args[0], 'latest');
  const loc = await findProjectLocation(ctx, !opts.store);
  const store = await openCommandStore(ctx, opts, loc);
  return withStore(store, async () => {
    const ref = await resolveVersion(store, spec);
    const rel = await loadRelease(store, spec.integration, ref);
    const wf = args[1];
    if (wf !== undefined && !rel.workflows.has(wf)) {
      throw new StoreNotFoundError(`${spec.integration} v${ref.version} has no workflow "${wf}"`, `Workflows in v${ref.version}: ${[...rel.workflows.keys()].join(', ') || '(none)'}.`);
    }
    if (ctx.json) {
      ctx.printJson({
        ok: true,
        integration: spec.integration,
        version: ref.version,
        id: ref.id,
        release: rel.release,
        ...(wf !== undefined
          ? { workflow: rel.workflows.get(wf) }
          : { definition: { integration: rel.integration, workflows: Object.fromEntries(rel.workflows) } }),
      });
      return 0;
    }
    const r = rel.release;
    ctx.out(`# ${spec.integration} v${ref.version} ${ref.id}`);
    ctx.out(`# released ${r.time} by ${r.author}${r.message ? `: ${r.message.split('\n')[0]}` : ''}`);
    if (wf !== undefined) {
      ctx.out(toYaml(rel.workflows.get(wf), r.keyOrder?.workflows[wf]));
      return 0;
    }
    ctx.out(`# ${shortId(r.integrationObject)} integration.yaml`);
    ctx.out(toYaml(rel.integration, r.keyOrder?.integration));
    for (const [name, def] of rel.workflows) {
      ctx.out('---');
      ctx.out(`# ${shortId(r.workflows[name])} workflows/${name}.yaml`);
      ctx.out(toYaml(def, r.keyOrder?.workflows[name]));
    }
    return 0;
  });
}
