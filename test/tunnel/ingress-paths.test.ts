import { describe, expect, it } from 'vitest';
import { checkIngressTarget, filterHeaderPairs, forwardableHeaders, isIngressPath, isValidTunnelName } from '../../src/tunnel/ingress-paths.js';
import { parseRelayTokens } from '../../src/tunnel/relay-tokens.js';
import { backoffDelay, relayConnectUrl } from '../../src/tunnel/relay-client.js';

describe('ingress paths', () => {
  it.each([
    ['/v1/run/event', true],
    ['/v1/webhooks/shopify', true],
    ['/v1/webhooks/custom/orders-paid', true],
    ['/v1/webhooks/a.b_c~d', true],
    ['/v1/run/event/', false],
    ['/v1/executions', false],
    ['/v1/executions/x/replay', false],
    ['/healthz', false],
    ['/v1/webhooks', false],
    ['/v1/webhooks/', false],
    ['/v1/webhooks//x', false],
    ['/v1/webhooks/../executions', false],
    ['/v1/webhooks/./x', false],
    ['/v1/webhooks/%2e%2e/x', false],
    ['/v1/webhooks/a%2Fb', false],
    ['/V1/webhooks/shopify', false],
  ])('%s -> %s', (p, ok) => {
    expect(isIngressPath(p)).toBe(ok);
  });

  it('splits queries and refuses odd targets', () => {
    expect(checkIngressTarget('/v1/webhooks/shopify?a=1')).toEqual({ pathname: '/v1/webhooks/shopify', search: '?a=1' });
    expect(checkIngressTarget('http://evil/v1/run/event')).toBeUndefined();
    expect(checkIngressTarget('//evil/v1/run/event')).toBeUndefined();
    expect(checkIngressTarget('/v1/executions?/v1/run/event')).toBeUndefined();
  });

  it('drops hop-by-hop headers and header injection', () => {
    const pairs = forwardableHeaders(['Host', 'x', 'Connection', 'keep-alive, X-Secret-Hop', 'X-Secret-Hop', '1', 'X-Shopify-Topic', 'orders/create', 'Content-Length', '3']);
    expect(pairs).toEqual([['x-shopify-topic', 'orders/create']]);
    expect(filterHeaderPairs([['x-ok', 'a'], ['x-bad', 'a\r\nset-cookie: x'], ['bad name', 'v'], ['transfer-encoding', 'chunked'], 'junk'])).toEqual([['x-ok', 'a']]);
  });

  it('validates tunnel names', () => {
    expect(isValidTunnelName('alice')).toBe(true);
    expect(isValidTunnelName('team-bob-2')).toBe(true);
    for (const bad of ['', 'Alice', '-a', 'a-', 'a/b', '..', 'a'.repeat(64)]) expect(isValidTunnelName(bad)).toBe(false);
  });
});

describe('relay tokens', () => {
  it('binds each token to one name and compares in constant time', () => {
    const t = parseRelayTokens('alice:aaaaaaaaaaaaaaaa1,\n# comment\nbob:bbbbbbbbbbbbbbbb2');
    expect(t.names()).toEqual(['alice', 'bob']);
    expect(t.authenticate('aaaaaaaaaaaaaaaa1')).toBe('alice');
    expect(t.authenticate('bbbbbbbbbbbbbbbb2')).toBe('bob');
    expect(t.authenticate('aaaaaaaaaaaaaaaa')).toBeUndefined();
    expect(t.authenticate('')).toBeUndefined();
  });

  it.each([
    ['', 'lists no tokens'],
    ['alice', 'is not "name:token"'],
    ['Alice:aaaaaaaaaaaaaaaa1', 'must be lower-case'],
    ['alice:short', 'shorter than 16'],
    ['alice:aaaaaaaaaaaaaaaa1,alice:bbbbbbbbbbbbbbbb2', 'listed twice'],
  ])('refuses %j (%s) without echoing tokens', (text, message) => {
    let caught: Error | undefined;
    try {
      parseRelayTokens(text);
    } catch (err) {
      caught = err as Error;
    }
    expect(caught?.message).toContain(message);
    expect(caught?.message).not.toContain('aaaaaaaaaaaaaaaa1');
    expect((caught as { exitCode?: number }).exitCode).toBe(2);
  });
});

describe('relay client helpers', () => {
  it('builds the connect URL', () => {
    expect(relayConnectUrl('wss://relay.example.com')).toBe('wss://relay.example.com/v1/tunnel/connect');
    expect(relayConnectUrl('https://relay.example.com/prefix/')).toBe('wss://relay.example.com/prefix/v1/tunnel/connect');
    expect(relayConnectUrl('ws://127.0.0.1:8787/v1/tunnel/connect')).toBe('ws://127.0.0.1:8787/v1/tunnel/connect');
    expect(() => relayConnectUrl('ftp://x')).toThrow(/not a relay URL/);
    expect(() => relayConnectUrl('nope')).toThrow(/not a relay URL/);
  });

  it('backs off exponentially with jitter, capped', () => {
    expect(backoffDelay(0, 500, 30_000, () => 0)).toBe(250);
    expect(backoffDelay(0, 500, 30_000, () => 1)).toBe(500);
    expect(backoffDelay(3, 500, 30_000, () => 1)).toBe(4000);
    expect(backoffDelay(20, 500, 30_000, () => 1)).toBe(30_000);
    expect(backoffDelay(20, 500, 30_000, () => 0)).toBe(15_000);
  });
});
