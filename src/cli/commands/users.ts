/** `alloy users [list|create <id>|delete <id>|token <id>] --remote <name>`: the users of a running alloy serve. */
import type { CliContext } from '../context.js';
import { UsageError } from '../../errors.js';
import { listAll, openServeClient } from './serve-remote.js';

export default async function usersCommand(ctx: CliContext, args: string[], opts: Record<string, any>): Promise<number> {
  const client = await openServeClient(ctx, opts);
  const [action = 'list', id] = args;
  const enc = (s: string) => encodeURIComponent(s);
  if (action !== 'list' && !id) throw new UsageError(`alloy users ${action} needs a user id`, { hint: `alloy users ${action} <id> --remote <name>` });
  if (action === 'list') {
    const users = await listAll<{ id: string; name?: string; createdAt: string }>(client, '/v1/users');
    if (ctx.json) ctx.printJson({ ok: true, users });
    else if (users.length === 0) ctx.out('no users');
    else for (const u of users) ctx.out(`${u.id}  ${u.createdAt}${u.name ? `  ${u.name}` : ''}`);
    return 0;
  }
  if (action === 'create') {
    const user = await client.request('POST', '/v1/users', { id, ...(opts.name ? { name: opts.name } : {}) });
    if (ctx.json) ctx.printJson({ ok: true, user });
    else ctx.out(`created user ${user.id}`);
    return 0;
  }
  if (action === 'delete') {
    await client.request('DELETE', `/v1/users/${enc(id)}`);
    if (ctx.json) ctx.printJson({ ok: true, deleted: id });
    else ctx.out(`deleted user ${id} with their credentials, installations and executions`);
    return 0;
  }
  if (action === 'token') {
    const t = await client.request('POST', `/v1/users/${enc(id)}/token`, opts.ttl ? { ttlSeconds: Number(opts.ttl) } : {});
    if (ctx.json) ctx.printJson({ ok: true, ...t });
    else ctx.out(t.token);
    return 0;
  }
  throw new UsageError(`unknown users action "${action}"`, { hint: 'Use list, create <id>, delete <id> or token <id>.' });
}
