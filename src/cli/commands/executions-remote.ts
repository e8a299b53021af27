/** `alloy executions --remote <name>`: executions of a running alloy serve (the same view as the local one, from the API). */
import type { CliContext } from '../context.js';
import { openServeClient } from './serve-remote.js';

export default async function remoteExecutions(ctx: CliContext, args: string[], opts: Record<string, any>): Promise<number> {
  const client = await openServeClient(ctx, opts);
  if (args[0]) {
    const e = await client.request('GET', `/v1/executions/${encodeURIComponent(args[0])}`);
    if (ctx.json) ctx.printJson(e);
    else {
      ctx.out(`${e.id}  ${e.status}  ${e.workflow}@v${e.version}  user ${e.userId}`);
      for (const s of e.steps) ctx.out(`  ${s.status.padEnd(9)} ${s.path}${s.attempts > 1 ? ` (${s.attempts} attempts)` : ''}${s.error ? `  ${s.error.message}` : ''}`);
    }
    return 0;
  }
  const q = new URLSearchParams({ limit: String(opts.limit ?? 20) });
  for (const [flag, param] of [['user', 'userId'], ['status', 'status'], ['workflow', 'workflow'], ['installation', 'installationId']] as const) if (opts[flag]) q.set(param, opts[flag]);
  const page = await client.request('GET', `/v1/executions?${q}`);
  if (ctx.json) ctx.printJson({ ok: true, executions: page.items, next: page.next });
  else if (page.items.length === 0) ctx.out('no executions');
  else for (const e of page.items) ctx.out(`${e.id}  ${e.status.padEnd(9)}  ${e.workflow}@v${e.version}  user ${e.userId}  ${e.createdAt}`);
  return 0;
}
