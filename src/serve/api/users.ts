/** Users (the customer's end users) and their short-lived tokens. */
import { HttpError } from '../../http/error.js';
import { newId } from '../../server/ids.js';
import { signUserToken } from '../auth.js';
import type { UserRecord } from '../state/types.js';
import { ID_RE, notFound, str, type ApiRoute } from './context.js';

const MAX_TOKEN_TTL = 24 * 3600;

export const userView = (u: UserRecord) => ({ id: u.id, ...(u.name ? { name: u.name } : {}), createdAt: u.createdAt });

export const userRoutes: ApiRoute[] = [
  {
    method: 'POST',
    path: '/v1/users',
    fields: ['id', 'name'],
    access: ['admin'],
    async handler(c) {
      const body = await c.body();
      const id = str(body, 'id', { pattern: ID_RE }) ?? newId('usr', c.deps.now());
      const name = str(body, 'name', { max: 200 });
      if (await c.deps.state.users.get(id)) throw new HttpError(409, 'E_CONFLICT', `user ${id} exists`, 'Use another id, or GET it.');
      const user = await c.deps.state.users.create({ id, ...(name ? { name } : {}), createdAt: c.iso() });
      c.send(201, userView(user));
    },
  },
  {
    method: 'GET',
    path: '/v1/users',
    access: ['read'],
    async handler(c) {
      const p = await c.deps.state.users.list(c.page());
      c.send(200, { items: p.items.map(userView), next: p.next ?? null });
    },
  },
  {
    method: 'GET',
    path: '/v1/users/:userId',
    access: ['read', 'user'],
    async handler(c) {
      c.own(c.params.userId, 'user');
      const u = await c.deps.state.users.get(c.params.userId);
      if (!u) throw notFound('user');
      c.send(200, userView(u));
    },
  },
  {
    method: 'DELETE',
    path: '/v1/users/:userId',
    access: ['admin'],
    async handler(c) {
      if (!(await c.deps.state.users.delete(c.params.userId))) throw notFound('user');
      c.send(200, { deleted: true });
    },
  },
  {
    method: 'POST',
    path: '/v1/users/:userId/token',
    fields: ['ttlSeconds'],
    access: ['admin'],
    async handler(c) {
      const body = await c.body();
      const ttl = body.ttlSeconds === undefined ? 900 : body.ttlSeconds;
      if (typeof ttl !== 'number' || !Number.isInteger(ttl) || ttl < 60 || ttl > MAX_TOKEN_TTL) {
        throw new HttpError(400, 'E_BAD_REQUEST', `\`ttlSeconds\` must be an integer from 60 to ${MAX_TOKEN_TTL}`, undefined, { fields: [{ path: '/ttlSeconds', message: 'is out of range' }] });
      }
      const user = await c.deps.state.users.get(c.params.userId);
      if (!user) throw notFound('user');
      const t = await signUserToken(c.deps.keyring, c.params.userId, ttl, c.deps.now(), user.createdAt);
      c.send(201, { token: t.token, expiresAt: t.expiresAt, userId: c.params.userId });
    },
  },
];
