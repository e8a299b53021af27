/** `alloy installations [--user] [--integration] [--status]`: installations on a running alloy serve. */
import type { CliContext } from '../context.js';
import { listAll, openServeClient } from './serve-remote.js';

interface InstallationView {
  id: string;
  userId: string;
  integration: string;
  version: number;
  status: string;
}

export function printInstallations(ctx: CliContext, items: InstallationView[]): void {
  if (items.length === 0) ctx.out('no installations');
  for (const i of items) ctx.out(`${i.id}  ${i.integration}@${i.version}  ${i.status.padEnd(8)}  user ${i.userId}`);
}

export default async function installationsCommand(ctx: CliContext, _args: string[], opts: Record<string, any>): Promise<number> {
  const client = await openServeClient(ctx, opts);
  const q = new URLSearchParams();
  if (opts.user) q.set('userId', opts.user);
  if (opts.integration) q.set('integration', opts.integration);
  if (opts.status) q.set('status', opts.status);
  const items = await listAll<InstallationView>(client, `/v1/installations${q.size ? `?${q}` : ''}`);
  if (ctx.json) ctx.printJson({ ok: true, installations: items });
  else printInstallations(ctx, items);
  return 0;
}
