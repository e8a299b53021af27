// shopify/createOrder is not idempotent (orderCreate takes no @idempotent key and ignores the
// Idempotency-Key header): a failure that may have reached Shopify must not be retried.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { builtinConnectorManifests, createShopifyConnector } from '../../src/connectors/index.js';
import { StepError } from '../../src/errors.js';
import { startFakeShopify, type FakeShopify } from '../fakes/fake-shopify.js';
import { makeContext, thrown } from './helpers.js';

const shopify = createShopifyConnector();
let fake: FakeShopify;
beforeAll(async () => {
  fake = await startFakeShopify();
});
afterAll(() => fake.close());
beforeEach(() => fake.reset());

const orderInput = { currency: 'EUR', lineItems: [{ title: 'Boots', quantity: 1, price: '10.00' }], sourceIdentifier: 'acme-42' };
const ctxAt = (baseUrl: string, timeoutMs?: number) =>
  makeContext({ connection: { accessToken: fake.accessToken, apiVersion: '2025-10' }, settings: { baseUrl }, timeoutMs });

/** A server that reads the whole request, then misbehaves as told (after the request reached it). */
async function misbehaving(mode: 'reset' | 'hang'): Promise<{ url: string; hits: number; close(): Promise<void> }> {
  const state = { hits: 0 };
  const server = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      state.hits++;
      if (mode === 'reset') res.socket?.destroy();
      // 'hang': never answers
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    get hits() {
      return state.hits;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

describe('shopify createOrder: unknown outcomes are not retryable', () => {
  it('the manifest declares createOrder not idempotent (and the read/tag actions are left undeclared)', () => {
    const m = builtinConnectorManifests.find((x) => x.name === 'shopify')!;
    expect(m.actions!.createOrder.idempotent).toBe(false);
    expect(m.actions!.getOrder.idempotent).toBeUndefined();
  });

  it('a 503 after the request reached Shopify is E_OUTCOME_UNKNOWN, not retryable, naming the sourceIdentifier', async () => {
    fake.failNext(1, { status: 503 });
    const err = await thrown(() => shopify.actions.createOrder(orderInput, ctxAt(fake.url)));
    expect(err).toBeInstanceOf(StepError);
    expect(err).toMatchObject({ code: 'E_OUTCOME_UNKNOWN', retryable: false, status: 503 });
    expect(err.hint).toContain('acme-42');
    expect(err.hint).toMatch(/check the shop/i);
  });

  it('a connection reset after the request was sent is E_OUTCOME_UNKNOWN', async () => {
    const s = await misbehaving('reset');
    try {
      const err = await thrown(() => shopify.actions.createOrder(orderInput, ctxAt(s.url)));
      expect(s.hits).toBe(1);
      expect(err).toMatchObject({ code: 'E_OUTCOME_UNKNOWN', retryable: false });
    } finally {
      await s.close();
    }
  });

  it('a timeout waiting for the answer is E_OUTCOME_UNKNOWN', async () => {
    const s = await misbehaving('hang');
    try {
      const err = await thrown(() => shopify.actions.createOrder(orderInput, ctxAt(s.url, 150)));
      expect(s.hits).toBe(1);
      expect(err).toMatchObject({ code: 'E_OUTCOME_UNKNOWN', retryable: false });
    } finally {
      await s.close();
    }
  });

  it('failures that prove nothing was applied keep their retry classification', async () => {
    // connection refused: nothing was sent
    const refused = await thrown(() => shopify.actions.createOrder(orderInput, ctxAt('http://127.0.0.1:1')));
    expect(refused).toMatchObject({ code: 'E_NETWORK', retryable: true });
    // 429: Shopify refused before doing anything
    fake.failNext(1, { status: 429, retryAfter: '2' });
    expect(await thrown(() => shopify.actions.createOrder(orderInput, ctxAt(fake.url)))).toMatchObject({ code: 'E_RATE_LIMITED', retryable: true });
    // THROTTLED (bounded waits exhausted)
    fake.throttleNext(10, { requestedQueryCost: 10, currentlyAvailable: 0, restoreRate: 50 });
    expect(await thrown(() => shopify.actions.createOrder(orderInput, ctxAt(fake.url)))).toMatchObject({ code: 'E_THROTTLED', retryable: true });
    expect(fake.orders).toHaveLength(0);
  });

  it('getOrder (a read) keeps 5xx retryable', async () => {
    fake.failNext(1, { status: 503 });
    expect(await thrown(() => shopify.actions.getOrder({ id: 1 }, ctxAt(fake.url)))).toMatchObject({ code: 'E_HTTP', retryable: true });
  });
});
