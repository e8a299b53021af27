#!/usr/bin/env node
/**
 * A polling run over 10,000 Shopify orders in pages of 250 (40 GraphQL calls) against the
 * shipped fake Shopify, in the same run as a plain script making the same 40 calls with
 * fetch (same query, same variables, same cursor walk). Three rows:
 *   plain script        fetch + JSON.parse + follow pageInfo.endCursor
 *   alloy poll          connectors/poll.ts: the manifest's request through the production
 *                       HTTP client, paging, item ids, cursor and de-dup bookkeeping
 *   alloy poll + claims the same, plus claiming one execution per order in a real SQLite
 *                       event log (what `alloy dev` does before running anything)
 *   alloy poll, paced   alloy poll through the per-(app, shop) cost limiter (serve/limiter.ts
 *                       pacedHttp, as serve and dev poll): the fake's bucket never runs
 *                       short, so this is the limiter's own overhead
 * Median of runs; ratios against the plain script.
 *
 *   npm run build && node bench/polling.mjs [--runs 5] [--orders 10000]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { fmt, median, printTable, ratio } from './lib.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const dist = path.resolve(here, '..', 'dist');
const load = (rel) => import(pathToFileURL(path.join(dist, rel)).href);
const { startFakeShopify } = await load('testing/fake-shopify.js');
const { compilePoll } = await load('connectors/poll.js');
const { shopifyManifest } = await load('connectors/builtin-manifests.js');
const { createHttpClient } = await load('connectors/http-client.js');
const { openEventLog } = await load('server/event-log.js');
const { CostLimiter, pacedHttp } = await load('serve/limiter.js');
const { realClock } = await load('engine/clock.js');

const arg = (name, def) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : def;
};
const RUNS = arg('runs', 5);
const ORDERS = arg('orders', 10_000);
const SINCE = '2026-03-02T08:00:00.000Z';
const API_VERSION = '2025-10';

// The fake reads the bundled third-party fixtures (fixtures/third-party/README.md) by default.
const fake = await startFakeShopify();
const base = Date.parse(SINCE);
for (let i = 0; i < ORDERS; i++) {
  fake.addOrder({ email: `buyer${i}@example.com`, totalPrice: '10.00', updatedAt: new Date(base + i * 1000).toISOString() });
}
const pollRequest = shopifyManifest.triggers['orders/updated'].poll.request;
const query = pollRequest.body.query;

async function plainScript() {
  const url = `${fake.url}/admin/api/${API_VERSION}/graphql.json`;
  let after = null;
  let items = 0;
  let calls = 0;
  for (;;) {
    const res = await fetch(url, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Accept: 'application/json', 'X-Shopify-Access-Token': fake.accessToken },
      body: JSON.stringify({ query, variables: { first: 250, after, query: `updated_at:>='${SINCE}'` } }),
    });
    const body = await res.json();
    calls++;
    const orders = body.data.orders;
    items += orders.nodes.length;
    if (!orders.pageInfo.hasNextPage) break;
    after = orders.pageInfo.endCursor;
  }
  return { items, calls };
}

const poll = compilePoll(shopifyManifest, 'orders/updated');
const ctx = {
  connection: { shop: fake.shop, accessToken: fake.accessToken, apiVersion: API_VERSION },
  settings: { baseUrl: fake.url },
  http: createHttpClient(),
  signal: new AbortController().signal,
  now: Date.now,
  logger: { debug() {}, warn() {} },
};

async function alloyPoll(claim, context = ctx) {
  let items = 0;
  const r = await poll.run({ since: SINCE, seen: [] }, context, async (page) => {
    items += page.length;
    if (claim) await claim(page);
  });
  return { items, calls: r.pages };
}

async function alloyPollWithClaims() {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'alloy-poll-bench-'));
  const log = openEventLog({ file: path.join(dir, 'events.db') });
  let n = 0;
  try {
    return await alloyPoll(async (page) => {
      // One delivery + execution per order, keyed for de-duplication (as RuntimeServer.submit).
      await Promise.all(
        page.map((item) => {
          const id = `b${n++}`;
          const now = Date.now();
          return log.appendDelivery(
            { id: `dl_${id}`, source: 'poll:shopify', name: 'orders/updated', receivedAt: now, dedupeKey: `poll:bench/x:${item.key}`, headers: {}, body: Buffer.from(JSON.stringify(item.item)), verification: 'none' },
            [{ id: `ex_${id}`, workflow: 'bench/x', record: { id: `ex_${id}`, status: 'queued', workflow: 'bench/x', steps: {}, createdAt: new Date(now).toISOString() }, eventRef: 'body' }],
          );
        }),
      );
    });
  } finally {
    log.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

const cases = [
  ['plain script (fetch)', plainScript],
  ['alloy poll', () => alloyPoll()],
  ['alloy poll + claims (SQLite)', alloyPollWithClaims],
  ['alloy poll, paced (cost limiter)', () => alloyPoll(undefined, { ...ctx, http: pacedHttp(ctx.http, new CostLimiter(realClock), () => `shopify:${fake.shop}`) })],
];
// Warm-up, and a check that all of them read every order in the same number of calls.
for (const [name, fn] of cases) {
  const r = await fn();
  if (r.items !== ORDERS || r.calls !== Math.ceil(ORDERS / 250)) throw new Error(`${name}: read ${r.items} orders in ${r.calls} calls`);
}
const times = cases.map(() => []);
for (let run = 0; run < RUNS; run++) {
  for (const [i, [, fn]] of cases.entries()) {
    const t0 = process.hrtime.bigint();
    await fn();
    times[i].push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
}
const base0 = median(times[0]);
printTable(`polling ${ORDERS} orders in pages of 250 (${Math.ceil(ORDERS / 250)} GraphQL calls) against the fake Shopify, median of ${RUNS}`, [
  ['run', 'time', 'orders/s', 'ratio'],
  ...cases.map(([name], i) => {
    const m = median(times[i]);
    return [name, fmt(m), Math.round(ORDERS / (m / 1000)).toLocaleString('en-US'), ratio(m, base0)];
  }),
]);
await fake.close();
