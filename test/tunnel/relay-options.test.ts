import { describe, expect, it } from 'vitest';
import { MAX_TIMER_MS, parseDuration } from '../../src/cli/commands/relay.js';
import { UsageError } from '../../src/errors.js';
import { startRelayServer } from '../../src/tunnel/relay-server.js';
import { parseRelayTokens } from '../../src/tunnel/relay-tokens.js';
import { tempDir } from './helpers.js';

describe('relay duration flags', () => {
  it('parses units', () => {
    expect(parseDuration('500ms', '--timeout')).toBe(500);
    expect(parseDuration('30s', '--timeout')).toBe(30_000);
    expect(parseDuration('1.5m', '--timeout')).toBe(90_000);
    expect(parseDuration('48h', '--queue-ttl')).toBe(172_800_000);
    expect(parseDuration('24d', '--queue-ttl')).toBe(24 * 86_400_000);
  });

  it('refuses values a Node timer cannot hold (they would fire after 1 ms), naming the flag', () => {
    expect(MAX_TIMER_MS).toBe(2 ** 31 - 1);
    expect(parseDuration(`${MAX_TIMER_MS}ms`, '--timeout')).toBe(MAX_TIMER_MS);
    for (const value of ['30d', '25d', `${MAX_TIMER_MS + 1}ms`, '1'.repeat(400) + 'h']) {
      let err: unknown;
      try {
        parseDuration(value, '--timeout');
      } catch (e) {
        err = e;
      }
      expect(err, value).toBeInstanceOf(UsageError);
      expect((err as UsageError).message).toContain('--timeout');
      expect((err as UsageError).exitCode).toBe(2);
    }
  });

  it('refuses zero, sub-millisecond and malformed values', () => {
    for (const value of ['0s', '0.4ms', '10', 'soon', '-5s']) {
      expect(() => parseDuration(value, '--queue-ttl'), value).toThrow(/--queue-ttl/);
    }
  });

  it('startRelayServer refuses timer options a Node timer cannot hold (programmatic callers too)', async () => {
    const { dir, cleanup } = await tempDir('alloy-relay-opts-');
    try {
      const tokens = parseRelayTokens('alice:alice-token-0123456789abcdef');
      for (const bad of [{ requestTimeoutMs: 30 * 86_400_000 }, { heartbeatMs: 0 }, { redeliverDelayMs: Number.NaN }]) {
        await expect(startRelayServer({ dataDir: dir, tokens, ...bad }), JSON.stringify(bad)).rejects.toMatchObject({ code: 'E_RELAY_OPTIONS', exitCode: 2 });
      }
    } finally {
      await cleanup();
    }
  });
});
