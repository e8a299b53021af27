/**
 * Third-party tunnel programs, when installed: cloudflared quick tunnels and ngrok.
 * Spawned with execa, the public URL read from their output (with a timeout), ended with
 * close(). They forward every path, so they are pointed at an ingress gate
 * (ingress-gate.ts), never straight at the dev server.
 *
 * Output formats (checked against the programs' real output):
 * - `cloudflared tunnel --url <u>` logs to stderr and prints a box:
 *     INF |  Your quick Tunnel has been created! Visit it at (it may take some time to be reachable):  |
 *     INF |  https://<random-words>.trycloudflare.com                                                 |
 *   (the first lines also hold other https URLs, e.g. developers.cloudflare.com, so only a
 *   trycloudflare.com host counts).
 * - `ngrok http <addr> --log stdout --log-format json` writes one JSON object a line; the
 *   tunnel is up on `{"msg":"started tunnel", ..., "url":"https://<id>.ngrok-free.app"}`,
 *   failures have `"lvl":"eror"` or `"crit"` with an `err` field (e.g. ERR_NGROK_4018, no authtoken).
 */
import { EventEmitter } from 'node:events';
import { createInterface } from 'node:readline';
import { execa } from 'execa';
import { AlloyError } from '../errors.js';
import type { TunnelLogger } from './relay-client.js';

export type ProviderName = 'cloudflared' | 'ngrok';

export interface ProviderOptions {
  /** The URL the program should expose (an ingress gate, normally). */
  localUrl: string;
  logger: TunnelLogger;
  /** Environment for the child (PATH decides which binary runs). Default process.env. */
  env?: NodeJS.ProcessEnv;
  signal?: AbortSignal;
  /** How long to wait for the public URL. Default 30 s. */
  timeoutMs?: number;
}

export interface ProviderTunnel {
  publicUrl: string;
  close(): Promise<void>;
  /** 'exit' ({exitCode}) when the program ends on its own after the URL was read. */
  on(event: 'exit', fn: (arg: { exitCode?: number; signal?: string }) => void): void;
}

/** What a line of output says: the public URL, a fatal error, or nothing. */
export interface LineVerdict {
  url?: string;
  error?: string;
}

const TRYCLOUDFLARE = /https:\/\/[a-z0-9-]+\.trycloudflare\.com\b/i;

export function parseCloudflaredLine(line: string): LineVerdict {
  // Error and warning lines name cloudflared's own API (`https://api.trycloudflare.com/tunnel`,
  // "failed to request quick Tunnel …"): never a public URL. Only info lines announce it.
  if (/\s(ERR|WRN|FTL)\s/.test(` ${line} `)) return {};
  const url = TRYCLOUDFLARE.exec(line)?.[0];
  if (url && !/^https:\/\/api\.trycloudflare\.com$/i.test(url)) return { url: url.toLowerCase() };
  // cloudflared logs fatal problems as "ERR ..." lines and exits; keep the text for the error.
  return {};
}

export function parseNgrokLine(line: string): LineVerdict {
  let entry: Record<string, unknown>;
  try {
    entry = JSON.parse(line) as Record<string, unknown>;
  } catch {
    // ngrok v3 prints some startup failures as plain text ("ERROR:  authentication failed...").
    return /^ERROR:/.test(line.trim()) ? { error: line.trim().replace(/^ERROR:\s*/, '') } : {};
  }
  if (entry.msg === 'started tunnel' && typeof entry.url === 'string' && entry.url.startsWith('https://')) {
    return { url: entry.url };
  }
  if (entry.lvl === 'crit' || (entry.lvl === 'eror' && typeof entry.err === 'string' && entry.err !== '<nil>')) {
    return { error: String(entry.err ?? entry.msg) };
  }
  return {};
}

interface ProviderSpec {
  name: ProviderName;
  args: string[];
  parse: (line: string) => LineVerdict;
  installHint: string;
}

export function providerSpec(name: ProviderName, localUrl: string): ProviderSpec {
  if (name === 'cloudflared') {
    return {
      name,
      args: ['tunnel', '--no-autoupdate', '--url', localUrl],
      parse: parseCloudflaredLine,
      installHint:
        'Install cloudflared (https://developers.cloudflare.com/cloudflare-one/connections/connect-networks/downloads/, e.g. `brew install cloudflared`), or use --tunnel relay.',
    };
  }
  const u = new URL(localUrl);
  return {
    name,
    // host:port rather than a bare port, so ngrok does not try ::1 for "localhost".
    args: ['http', `${u.hostname}:${u.port || (u.protocol === 'https:' ? '443' : '80')}`, '--log', 'stdout', '--log-format', 'json'],
    parse: parseNgrokLine,
    installHint:
      'Install ngrok (https://ngrok.com/download) and run `ngrok config add-authtoken <token>` once, or use --tunnel relay.',
  };
}

export async function startProvider(name: ProviderName, options: ProviderOptions): Promise<ProviderTunnel> {
  const spec = providerSpec(name, options.localUrl);
  const timeoutMs = options.timeoutMs ?? 30_000;
  const events = new EventEmitter();
  const tail: string[] = [];
  let found = false;
  let stopping = false;

  const child = execa(spec.name, spec.args, {
    env: options.env,
    stdin: 'ignore',
    stdout: 'pipe',
    stderr: 'pipe',
    buffer: false,
    reject: false,
    // SIGTERM first; SIGKILL if it has not gone after 3 s.
    forceKillAfterDelay: 3_000,
  });

  const publicUrl = await new Promise<string>((resolve, reject) => {
    const fail = (err: AlloyError): void => {
      clearTimeout(timer);
      clearInterval(progress);
      options.signal?.removeEventListener('abort', onAbort);
      stopping = true;
      child.kill();
      reject(err);
    };
    const timer = setTimeout(
      () =>
        fail(
          new AlloyError('E_TUNNEL_START', `${spec.name} printed no public URL within ${Math.round(timeoutMs / 1000)}s${lastLines(tail)}`, {
            hint: `Run \`${spec.name} ${spec.args.join(' ')}\` yourself to see what it says, or use --tunnel relay.`,
          }),
        ),
      timeoutMs,
    );
    // Progress while waiting (quick tunnels can take several seconds).
    const startedAt = Date.now();
    const progress = setInterval(() => {
      if (!found) options.logger.info(`waiting for ${spec.name} to print its public URL (${Math.round((Date.now() - startedAt) / 1000)}s)…`);
    }, 5_000);
    child.finally(() => clearInterval(progress)).catch(() => {});
    const onAbort = (): void => fail(new AlloyError('E_ABORTED', `${spec.name} start was cancelled`));
    options.signal?.addEventListener('abort', onAbort, { once: true });

    const onLine = (line: string): void => {
      tail.push(line.length > 300 ? `${line.slice(0, 300)}…` : line);
      if (tail.length > 6) tail.shift();
      if (found) return;
      const verdict = spec.parse(line);
      if (verdict.url) {
        found = true;
        clearTimeout(timer);
        clearInterval(progress);
        options.signal?.removeEventListener('abort', onAbort);
        resolve(verdict.url);
      } else if (verdict.error) {
        fail(new AlloyError('E_TUNNEL_START', `${spec.name} failed: ${verdict.error}`, { hint: spec.installHint }));
      }
    };
    if (child.stdout) createInterface({ input: child.stdout }).on('line', onLine);
    if (child.stderr) createInterface({ input: child.stderr }).on('line', onLine);

    void child.then((result) => {
      const code = (result as { code?: string }).code ?? (result.cause as { code?: string } | undefined)?.code;
      if (!found && !stopping) {
        if (code === 'ENOENT') {
          fail(new AlloyError('E_TUNNEL_MISSING', `${spec.name} is not installed (not found on PATH)`, { hint: spec.installHint }));
        } else if (code === 'EACCES') {
          fail(new AlloyError('E_TUNNEL_MISSING', `${spec.name} on PATH is not executable`, { hint: spec.installHint }));
        } else {
          fail(
            new AlloyError('E_TUNNEL_START', `${spec.name} exited (code ${result.exitCode ?? result.signal ?? '?'}) before printing a public URL${lastLines(tail)}`, {
              hint: spec.installHint,
            }),
          );
        }
        return;
      }
      if (found && !stopping) {
        options.logger.warn(`${spec.name} exited (code ${result.exitCode ?? result.signal ?? '?'}); the public URL no longer works`);
        events.emit('exit', { exitCode: result.exitCode, signal: result.signal });
      }
    });
  });

  const close = async (): Promise<void> => {
    if (stopping) return;
    stopping = true;
    child.kill();
    await child;
  };
  options.signal?.addEventListener('abort', () => void close(), { once: true });
  return { publicUrl, close, on: (event, fn) => void events.on(event, fn) };
}

function lastLines(tail: string[]): string {
  return tail.length ? `; last output:\n  ${tail.join('\n  ')}` : '';
}
