/**
 * Pagination declared in connector manifests: list actions walk cursor (GraphQL pageInfo),
 * Link header and offset pages against a real server on 127.0.0.1, stop at maxPages, and
 * never follow a Link to another origin with credentials. Plus the Shopify orders/updated
 * poll against the fake Shopify's Shopify-style paging.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDeclarativeConnector } from '../../src/connectors/index.js';
import { nextLink } from '../../src/connectors/paginate.js';
import { compilePoll, type PolledItem } from '../../src/connectors/poll.js';
import { shopifyManifest } from '../../src/connectors/builtin-manifests.js';
import type { ConnectorManifest } from '../../src/core/model.js';
import { startFakeShopify, type FakeShopify } from '../fakes/fake-shopify.js';
import { makeContext, thrown } from './helpers.js';
import { startServer } from './local-server.js';

const ITEMS = Array.from({ length: 23 }, (_, i) => ({ id: i + 1 }));
const TICKETS = Array.from({ length: 10 }, (_, i) => ({ id: `t${i}`, changed_at: new Date(Date.UTC(2026, 0, 1, 0, i)).toISOString() }));
let server: Awaited<ReturnType<typeof startServer>>;
let other: Awaited<ReturnType<typeof startServer>>;
beforeAll(async () => {
  other = await startServer((_req, res) => res.writeHead(200, { 'Content-Type': 'application/json' }).end('[]'));
  server = await startServer((req, res) => {
    const url = new URL(req.url, 'http://x');
    const json = (body: unknown, headers: Record<string, string> = {}) => res.writeHead(200, { 'Content-Type': 'application/json', ...headers }).end(JSON.stringify(body));
    if (url.pathname === '/graphql') {
      const { variables } = JSON.parse(req.body) as { variables: { first: number; after: string | null } };
      const start = variables.after ? Number(variables.after) : 0;
      const page = ITEMS.slice(start, start + variables.first);
      const end = start + page.length;
      return json({ data: { things: { nodes: page, pageInfo: { hasNextPage: end < ITEMS.length, endCursor: String(end) } } } });
    }
    if (url.pathname === '/link') {
      const start = Number(url.searchParams.get('page_info') ?? 0);
      const page = ITEMS.slice(start, start + 10);
      const next = start + 10 < ITEMS.length ? `<${server.url}/link?page_info=${start + 10}>; rel="next"` : '';
      return json(page, next ? { Link: `<${server.url}/link?page_info=0>; rel="previous", ${next}` } : {});
    }
    if (url.pathname === '/tickets') {
      const since = Date.parse(url.searchParams.get('changed_since') ?? '1970-01-01T00:00:00Z');
      const all = TICKETS.filter((t) => Date.parse(t.changed_at) >= since);
      const start = Number(url.searchParams.get('cursor') ?? 0);
      const page = all.slice(start, start + 4);
      const next = start + 4 < all.length ? `<${server.url}/tickets?changed_since=${encodeURIComponent(url.searchParams.get('changed_since') ?? '')}&cursor=${start + 4}>; rel="next"` : '';
      return json(page, next ? { Link: next } : {});
    }
    if (url.pathname === '/evil-link') return json(ITEMS.slice(0, 2), { Link: `<${other.url}/steal>; rel="next"` });
    if (url.pathname === '/offset') {
      const offset = Number(url.searchParams.get('skip'));
      const limit = Number(url.searchParams.get('take'));
      return json({ results: ITEMS.slice(offset, offset + limit) });
    }
    res.writeHead(404).end();
  });
});
afterAll(async () => {
  await server.close();
  await other.close();
});

const manifest = (): ConnectorManifest => ({
  apiVersion: 'alloy/v1',
  kind: 'Connector',
  name: 'acme',
  baseUrl: server.url,
  auth: { type: 'bearer', value: '{{ connection.token }}' },
  connection: { token: { secret: true } },
  actions: {
    cursorList: {
      request: { method: 'POST', path: '/graphql', body: { query: '{ things }', variables: { first: 10, after: '{{ page.cursor }}' } } },
      output: '{{ response.body.data.things.nodes }}',
      paginate: { style: 'cursor', pageInfo: '{{ response.body.data.things.pageInfo }}' },
    },
    linkList: { request: { method: 'GET', path: '/link' }, paginate: { style: 'link' } },
    cappedLinkList: { request: { method: 'GET', path: '/link' }, paginate: { style: 'link', maxPages: 2 } },
    evilLinkList: { request: { method: 'GET', path: '/evil-link' }, paginate: { style: 'link' } },
    offsetList: {
      request: { method: 'GET', path: '/offset', query: { skip: '{{ page.offset }}', take: '{{ page.limit }}' } },
      output: '{{ response.body.results }}',
      paginate: { style: 'offset', pageSize: 5 },
    },
    // The page in the query parameters the manifest names, without templates.
    offsetParamList: {
      request: { method: 'GET', path: '/offset' },
      output: '{{ response.body.results }}',
      paginate: { style: 'offset', pageSize: 5, limitParam: 'take', offsetParam: 'skip' },
    },
  },
});

const call = (action: string) => createDeclarativeConnector(manifest()).actions[action]({}, makeContext({ connection: { token: 't' } }));

describe('pagination in manifests', () => {
  it('parses RFC 8288 Link headers', () => {
    expect(nextLink('<https://a/x?p=2>; rel="next", <https://a/x?p=0>; rel="previous"')).toBe('https://a/x?p=2');
    expect(nextLink('<https://a/x?p=0>; rel="previous", <https://a/x?p=3>; rel=next')).toBe('https://a/x?p=3');
    expect(nextLink('<https://a/x>; rel="prev"')).toBeUndefined();
    expect(nextLink(undefined)).toBeUndefined();
  });

  // offsetParamList: limitParam/offsetParam were in the schema but sent nothing (one empty page).
  it.each(['cursorList', 'linkList', 'offsetList', 'offsetParamList'])('%s reads every page', async (action) => {
    const before = server.seen.length;
    expect(await call(action)).toEqual(ITEMS);
    expect(server.seen.length - before).toBe(action.startsWith('offset') ? 5 : 3);
    // Credentials ride along on every page.
    expect(server.seen.slice(before).every((r) => r.headers.authorization === 'Bearer t')).toBe(true);
  });

  it('stops at maxPages', async () => {
    expect(await call('cappedLinkList')).toEqual(ITEMS.slice(0, 20));
  });

  it('refuses a next link on another origin', async () => {
    const err = await thrown(() => call('evilLinkList'));
    expect(err.code).toBe('E_CONNECTOR_ORIGIN');
    expect(other.seen).toHaveLength(0);
  });
});

describe('a user connector poll with Link paging', () => {
  it('reads every page from the cursor and moves the cursor to the newest change', async () => {
    const m: ConnectorManifest = {
      ...manifest(),
      triggers: {
        'ticket.changed': {
          poll: {
            every: '30s',
            request: { method: 'GET', path: '/tickets', query: { changed_since: '{{ since }}' } },
            items: '{{ response.body }}',
            id: 'id',
            updatedAt: 'changed_at',
            paginate: { style: 'link' },
          },
        },
      },
    };
    const poll = compilePoll(m, 'ticket.changed')!;
    const ctx = makeContext({ connection: { token: 't' } });
    const got: string[] = [];
    const r = await poll.run({ since: TICKETS[3].changed_at, seen: [`t3@${TICKETS[3].changed_at}`] }, ctx, async (items) => void got.push(...items.map((i) => i.id)));
    expect(got).toEqual(['t4', 't5', 't6', 't7', 't8', 't9']);
    expect(r).toMatchObject({ pages: 2, emitted: 6, cursor: { since: TICKETS[9].changed_at, seen: [`t9@${TICKETS[9].changed_at}`] } });
  });
});

describe('Shopify orders/updated poll', () => {
  let fake: FakeShopify;
  beforeAll(async () => {
    fake = await startFakeShopify();
  });
  afterAll(() => fake.close());

  it('pages 250 at a time through GraphQL cursors, filtered on updated_at, and resumes from its cursor', async () => {
    const base = Date.parse('2026-03-02T08:00:00Z');
    fake.addOrder({ updatedAt: new Date(base - 1000).toISOString() });
    for (let i = 0; i < 520; i++) fake.addOrder({ updatedAt: new Date(base + i * 1000).toISOString() });
    const poll = compilePoll(shopifyManifest, 'orders/updated')!;
    const ctx = makeContext({ connection: { shop: fake.shop, accessToken: fake.accessToken, apiVersion: '2025-10' }, settings: { baseUrl: fake.url } });
    const seen: PolledItem[] = [];
    const pages: number[] = [];
    const result = await poll.run({ since: new Date(base).toISOString(), seen: [] }, ctx, async (items) => {
      seen.push(...items);
      pages.push(items.length);
    });
    expect(pages).toEqual([250, 250, 20]);
    expect(result).toMatchObject({ pages: 3, truncated: false, emitted: 520 });
    expect(result.cursor.since).toBe(new Date(base + 519_000).toISOString());
    expect(result.cursor.seen).toEqual([`${seen.at(-1)!.id}@${seen.at(-1)!.updatedAt}`]);
    expect(seen[0].item).toMatchObject({ id: expect.stringMatching(/^gid:\/\/shopify\/Order\//), updatedAt: new Date(base).toISOString() });

    // From the cursor: only what changed since, nothing repeated.
    fake.updateOrder(fake.orders[5].id, {}, new Date(base + 600_000).toISOString());
    const again: PolledItem[] = [];
    const second = await poll.run(result.cursor, ctx, async (items) => void again.push(...items));
    expect(again.map((i) => i.id)).toEqual([`gid://shopify/Order/${fake.orders[5].id}`]);
    expect(second.emitted).toBe(1);

    // A page cap leaves the rest for the next run, with the cursor at the last item read.
    const capped = await poll.run({ since: new Date(base).toISOString(), seen: [] }, ctx, async () => {}, 1);
    expect(capped).toMatchObject({ pages: 1, truncated: true, emitted: 250 });
  });

  it('fails on GraphQL errors instead of seeing an empty page', async () => {
    const poll = compilePoll(shopifyManifest, 'orders/updated')!;
    const ctx = makeContext({ connection: { shop: fake.shop, accessToken: 'wrong', apiVersion: '2025-10' }, settings: { baseUrl: fake.url } });
    const err = await thrown(() => poll.run({ since: '2026-01-01T00:00:00Z', seen: [] }, ctx, async () => {}));
    expect(err.status ?? err.code).toBeTruthy();
  });
});
