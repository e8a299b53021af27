/**
 * `alloy relay`: run the self-hostable tunnel relay until SIGINT/SIGTERM. A thin shell over
 * startRelayServer (src/tunnel/relay-server.ts); see docs/tunnel.md for deployment.
 */
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { CliContext } from '../context.js';
import { DEFAULT_PORTS } from '../defaults.js';
import { AlloyError, UsageError, MissingSecretError } from '../../errors.js';
import { parseRelayTokens, type RelayTokens } from '../../tunnel/relay-tokens.js';
import { MAX_TIMER_MS, startRelayServer, type RelayServer } from '../../tunnel/relay-server.js';
import { DEFAULT_QUEUE_LIMITS } from '../../tunnel/relay-queue.js';
import { RELAY_CONNECT_PATH } from '../../tunnel/protocol.js';

export default async function relay(ctx: CliContext, _args: string[], opts: Record<string, any>): Promise<number> {
  // Flags arrive already filled from ALLOY_RELAY_<FLAG> (src/cli/main.ts).
  const port = parseIntOption(opts.port ?? String(DEFAULT_PORTS.relay), '--port', 0, 65535);
  const host = String(opts.host ?? '127.0.0.1');
  const dataDir = resolve(ctx.cwd, String(opts.data ?? '.alloy/relay'));
  const tokens = await loadTokens(ctx, opts.tokensFile);
  const publicUrl = opts.publicUrl;
  if (publicUrl !== undefined && !/^https?:\/\/[^/]+/.test(String(publicUrl))) {
    throw new UsageError(`--public-url "${publicUrl}" is not an http(s) URL`, { hint: 'Pass e.g. --public-url https://relay.example.com' });
  }

  const log = (level: 'info' | 'warn') => (msg: string) => {
    const line = `${ctx.now().toISOString()} ${msg}`;
    ctx.note(level === 'warn' ? ctx.errColor.yellow(line) : line);
  };
  const maxBodyBytes = opts.maxBody !== undefined ? parseSize(opts.maxBody, '--max-body') : undefined;
  const requestTimeoutMs = opts.timeout !== undefined ? parseDuration(opts.timeout, '--timeout') : undefined;
  const queue = {
    maxItems: opts.queueMax !== undefined ? parseIntOption(opts.queueMax, '--queue-max', 1, 10_000_000) : DEFAULT_QUEUE_LIMITS.maxItems,
    maxBytes: opts.queueMaxBytes !== undefined ? parseSize(opts.queueMaxBytes, '--queue-max-bytes') : DEFAULT_QUEUE_LIMITS.maxBytes,
    maxAgeMs: opts.queueTtl !== undefined ? parseDuration(opts.queueTtl, '--queue-ttl') : DEFAULT_QUEUE_LIMITS.maxAgeMs,
  };
  let server: RelayServer;
  try {
    server = await startRelayServer({ host, port, dataDir, tokens, publicUrl, maxBodyBytes, requestTimeoutMs, queue, logger: { info: log('info'), warn: log('warn') } });
  } catch (err) {
    throw withFlagHint(err, host, port, dataDir);
  }

  const connectUrl = `${server.url.replace(/^http/, 'ws')}${RELAY_CONNECT_PATH}`;
  const base = String(publicUrl ?? server.url).replace(/\/+$/, '');
  if (ctx.json) {
    ctx.printJson({ url: server.url, connectUrl, names: tokens.names(), publicUrls: Object.fromEntries(tokens.names().map((n) => [n, `${base}/t/${n}`])), dataDir });
  } else {
    ctx.out(`alloy relay listening on ${server.url}`);
    ctx.note(`  developers connect with: ALLOY_RELAY_TOKEN=<their token> alloy dev --tunnel relay --tunnel-url ${publicUrl ? base.replace(/^http/, 'ws') : connectUrl.replace(RELAY_CONNECT_PATH, '')}`);
    ctx.note(`  (each developer needs ALLOY_RELAY_TOKEN set to their token from ALLOY_RELAY_TOKENS or --tokens-file)`);
    for (const name of tokens.names()) ctx.note(`  ${name}: ${base}/t/${name}/v1/webhooks/<app>`);
    ctx.note(`  data (offline queue): ${dataDir}`);
    if (host !== '127.0.0.1' && host !== '::1' && host !== 'localhost') {
      ctx.note(ctx.errColor.yellow(`  listening on ${host} without TLS: put a TLS proxy in front (docs/tunnel.md)`));
    }
  }

  await new Promise<void>((done) => {
    const stop = (): void => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      done();
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
  ctx.note('alloy relay: shutting down (queued requests stay on disk)');
  await server.close();
  return 0;
}

/** The server's errors name its options; on the command line, name the flags instead. */
function withFlagHint(err: unknown, host: string, port: number, dataDir: string): unknown {
  if (!(err instanceof AlloyError)) return err;
  if (err.code === 'E_RELAY_LISTEN') {
    const inUse = err.details?.errno === 'EADDRINUSE';
    return new AlloyError(err.code, err.message, {
      cause: err.cause,
      details: err.details,
      hint: inUse
        ? `Pass another --port (or ALLOY_RELAY_PORT), or stop whatever is listening on ${host}:${port}.`
        : 'Check --host (ALLOY_RELAY_HOST) and --port (ALLOY_RELAY_PORT): the address must be on this machine and the port allowed.',
    });
  }
  if (err.code === 'E_RELAY_DATA') {
    return new AlloyError(err.code, err.message, {
      cause: err.cause,
      details: err.details,
      hint: `Pass --data (or ALLOY_RELAY_DATA) naming a directory the relay can create and write; ${dataDir} cannot be used.`,
    });
  }
  return err;
}

async function loadTokens(ctx: CliContext, file: unknown): Promise<RelayTokens> {
  if (file !== undefined && file !== '') {
    const path = resolve(ctx.cwd, String(file));
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (err) {
      throw new UsageError(`cannot read the tokens file ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, {
        code: 'E_RELAY_TOKENS',
        hint: 'Pass --tokens-file pointing at a file with one name:token a line.',
      });
    }
    return parseRelayTokens(text, path);
  }
  const env = ctx.env.ALLOY_RELAY_TOKENS;
  if (!env) {
    throw new MissingSecretError(
      'the relay has no developer tokens',
      'Set ALLOY_RELAY_TOKENS="alice:<token>,bob:<token>" or pass --tokens-file <file> (one name:token a line).',
    );
  }
  return parseRelayTokens(env, 'ALLOY_RELAY_TOKENS');
}

function parseIntOption(value: unknown, flag: string, min: number, max: number): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < min || n > max) {
    throw new UsageError(`${flag} must be a whole number between ${min} and ${max}, got "${String(value)}"`);
  }
  return n;
}

const SIZE_UNITS: Record<string, number> = { '': 1, b: 1, kb: 1024, k: 1024, mb: 1024 ** 2, m: 1024 ** 2, gb: 1024 ** 3, g: 1024 ** 3 };

export function parseSize(value: unknown, flag: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([a-z]*)$/i.exec(String(value).trim());
  const unit = m ? SIZE_UNITS[m[2].toLowerCase()] : undefined;
  if (!m || unit === undefined || Number(m[1]) <= 0) {
    throw new UsageError(`${flag} must be a size like 512kb or 5mb, got "${String(value)}"`);
  }
  return Math.floor(Number(m[1]) * unit);
}

const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

export { MAX_TIMER_MS };

/**
 * A duration flag in milliseconds, between 1 ms and MAX_TIMER_MS (2^31-1 ms, about 24.8 days):
 * Node timers cannot hold more and would fire after 1 ms instead (TimeoutOverflowWarning).
 * Every relay duration is refused past that, even one not used as a timer today (--queue-ttl),
 * so the rule is one and stays safe.
 */
export function parseDuration(value: unknown, flag: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)$/i.exec(String(value).trim());
  const ms = m ? Math.round(Number(m[1]) * DURATION_UNITS[m[2].toLowerCase()]) : NaN;
  if (!m || !(ms >= 1)) {
    throw new UsageError(`${flag} must be a duration like 500ms, 30s, 10m or 48h, got "${String(value)}"`);
  }
  if (!(ms <= MAX_TIMER_MS)) {
    throw new UsageError(`${flag} "${String(value)}" is too long: at most ${MAX_TIMER_MS} ms (about 24 days)`, {
      hint: `Pass a shorter ${flag}, e.g. 24d or less.`,
    });
  }
  return ms;
}
