/**
 * `alloy listen [--port] [--secret] [--out file]`: a local receiver for workflow streams, as
 * `stripe listen` is for Stripe events. It accepts POSTs on any path of
 * http://127.0.0.1:<port> (default 4100, the scaffold's ACME_STREAM_URL), verifies each
 * delivery's Standard Webhooks signature (src/engine/standard-webhooks.ts), answers 204 (or
 * 401 when the signature does not verify, so the sender records a failed delivery) and prints
 * one line per delivery. `--out` appends each delivery as a JSON line (0600, never through a
 * symlink). Runs until SIGINT/SIGTERM.
 *
 * Secrets tried, in order: --secret; else every stream secret the project's workflows name
 * (`secrets.X`) that is set in the environment or `.env`, and the project's dev stream secret
 * (.alloy/stream-secret, which `alloy dev` signs with when X is unset; created here if
 * `alloy listen` starts first, so both agree).
 */
import { constants } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { untilSignal } from '../signals.js';
import type { CliContext } from '../context.js';
import { DEFAULT_PORTS } from '../defaults.js';
import { AlloyError, UsageError } from '../../errors.js';
import { findConfig } from '../../core/project.js';
import { verifyStandardWebhook } from '../../engine/standard-webhooks.js';
import { BodyTooLargeError, readRequestBody } from '../../http/body.js';
import { applyServerLimits, DEFAULT_MAX_HEADER_SIZE } from '../../http/listen.js';
import { clockTime, statusMark } from '../../server/terminal-format.js';

export const DEFAULT_LISTEN_PORT = DEFAULT_PORTS.listen;
/** The address the scaffold's ACME_STREAM_URL defaults to. */
export const DEFAULT_LISTEN_URL = `http://127.0.0.1:${DEFAULT_LISTEN_PORT}/alloy/stream`;
const MAX_BODY = 5 * 1024 * 1024;

interface Secret {
  value: string;
  /** Where it came from, for the banner (never the value). */
  source: string;
}

export interface Delivery {
  receivedAt: string;
  method: string;
  path: string;
  id?: string;
  verified: boolean;
  /** Why it did not verify. */
  reason?: string;
  /** Which secret verified it. */
  secret?: string;
  status: number;
  body: unknown;
}

export default async function listen(ctx: CliContext, _args: string[], opts: Record<string, any>): Promise<number> {
  const port = Number(opts.port ?? DEFAULT_LISTEN_PORT);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new UsageError(`port "${String(opts.port)}" is not a port number`, { hint: 'pass --port <0-65535> (0 picks a free port)' });
  }
  const secrets = await secretsToTry(ctx, opts.secret);
  const out = opts.out ? await openOut(path.resolve(ctx.cwd, String(opts.out))) : undefined;
  const c = ctx.color;

  const server = http.createServer({ maxHeaderSize: DEFAULT_MAX_HEADER_SIZE }, (req, res) => {
    void handle(req, res).catch(() => {
      if (!res.headersSent) res.writeHead(500).end();
    });
  });
  applyServerLimits(server);
  const handle = async (req: http.IncomingMessage, res: http.ServerResponse) => {
    const receivedAt = new Date().toISOString();
    const urlPath = (req.url ?? '/').split('?')[0];
    if (req.method !== 'POST') {
      res.writeHead(405, { allow: 'POST', 'content-type': 'text/plain' }).end('alloy listen accepts POSTed stream deliveries\n');
      return;
    }
    let raw: Buffer;
    try {
      raw = await readRequestBody(req, MAX_BODY);
    } catch (err) {
      if (err instanceof BodyTooLargeError) {
        res.writeHead(413).end();
        report({ receivedAt, method: 'POST', path: urlPath, verified: false, reason: `body larger than ${MAX_BODY} bytes`, status: 413, body: undefined });
        return;
      }
      throw err;
    }
    const text = raw.toString('utf8');
    const nowSeconds = Math.floor(Date.now() / 1000);
    let reason = 'no secret to verify with';
    let verifiedBy: Secret | undefined;
    for (const s of secrets) {
      const check = verifyStandardWebhook(s.value, req.headers, text, { nowSeconds });
      if (check.ok) {
        verifiedBy = s;
        break;
      }
      reason = check.reason ?? 'signature does not match';
    }
    const status = verifiedBy ? 204 : 401;
    res.writeHead(status).end();
    let body: unknown = text;
    try {
      body = JSON.parse(text);
    } catch {
      /* shown as text */
    }
    const id = typeof req.headers['webhook-id'] === 'string' ? req.headers['webhook-id'] : undefined;
    report({ receivedAt, method: 'POST', path: urlPath, id, verified: Boolean(verifiedBy), reason: verifiedBy ? undefined : reason, secret: verifiedBy?.source, status, body });
  };

  const report = (d: Delivery) => {
    if (out) void out.write(`${JSON.stringify(d)}\n`).catch((err: Error) => ctx.note(ctx.errColor.red(`cannot write --out: ${err.message}`)));
    if (ctx.json) {
      ctx.io.stdout.write(`${JSON.stringify({ type: 'delivery', ...d })}\n`);
      return;
    }
    const data = (d.body as { type?: string; data?: Record<string, any> } | undefined) ?? {};
    const exec = data.data ?? {};
    const what = typeof data.type === 'string' ? data.type : 'delivery';
    ctx.out(`${c.dim(clockTime(d.receivedAt))}  --> ${c.bold(what)} ${c.dim(`[${d.id ?? 'no webhook-id'}]`)}${exec.workflow ? `  ${exec.workflow}` : ''}${exec.status ? `  ${statusMark(c, String(exec.status)).trim()}` : ''}${exec.id ? c.dim(`  ${exec.id}`) : ''}`);
    const verdict = d.verified ? c.green('signature verified') : c.red(`signature NOT verified: ${d.reason}`);
    ctx.out(`${c.dim(clockTime(d.receivedAt))}  <-- ${d.status < 300 ? c.green(`[${d.status}]`) : c.red(`[${d.status}]`)} ${d.method} ${d.path}  ${verdict}`);
    if (ctx.verbose && d.body !== undefined) ctx.out(typeof d.body === 'string' ? d.body : JSON.stringify(d.body, null, 2));
  };

  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => resolve());
    });
  } catch (err) {
    await out?.close();
    if ((err as NodeJS.ErrnoException).code === 'EADDRINUSE') {
      throw new AlloyError('E_PORT_IN_USE', `port ${port} on 127.0.0.1 is already in use`, {
        hint: 'pass another port with --port <port> (and point the stream URL at it), or stop the other listener',
        exitCode: 1,
      });
    }
    throw err;
  }
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  if (ctx.json) {
    ctx.io.stdout.write(`${JSON.stringify({ type: 'ready', url, streamUrl: `${url}/alloy/stream`, secrets: secrets.map((s) => s.source), out: opts.out })}\n`);
  } else {
    ctx.out(`${c.bold('alloy listen')} ready: POST ${url}/alloy/stream ${c.dim('(any path)')}`);
    ctx.out(c.dim(`  verifying Standard Webhooks signatures with ${secrets.map((s) => s.source).join(', ') || 'no secret (pass --secret)'}`));
    if (opts.out) ctx.out(c.dim(`  appending each delivery to ${opts.out}`));
  }

  const signal = await untilSignal();
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  await out?.close();
  ctx.note(ctx.errColor.dim(`${signal}: stopped`));
  return 0;
}

async function secretsToTry(ctx: CliContext, flag: unknown): Promise<Secret[]> {
  if (typeof flag === 'string' && flag !== '') {
    if (!/^whsec_/.test(flag)) throw new UsageError('--secret must be a Standard Webhooks secret (whsec_…)', { code: 'E_LISTEN_SECRET', hint: 'e.g. --secret "$ACME_STREAM_SECRET"' });
    return [{ value: flag, source: '--secret' }];
  }
  const found = await findConfig(ctx.cwd);
  if (!found) {
    throw new UsageError('no secret to verify deliveries with', {
      code: 'E_LISTEN_SECRET',
      hint: 'run alloy listen in your project (it uses the stream secrets alloy dev signs with), or pass --secret whsec_…',
    });
  }
  const [{ loadProjectWithDiagnostics }, { referencedSecretNames }, { loadOrCreateStreamSecret, loadProjectEnv }] = await Promise.all([
    import('../load-project.js'),
    import('../../server/engine-executor.js'),
    import('../../server/dev-state.js'),
  ]);
  const project = await loadProjectWithDiagnostics({ ...ctx, cwd: found.root });
  const env = await loadProjectEnv(found.root, ctx.env);
  const out: Secret[] = [];
  for (const name of referencedSecretNames(project).stream) if (env[name]) out.push({ value: env[name]!, source: name });
  const dev = loadOrCreateStreamSecret(found.root);
  if (dev.replaced) ctx.note(ctx.errColor.yellow(`warning: ${dev.replaced}; replaced by a new secret`));
  out.push({ value: dev.secret, source: 'the dev stream secret (.alloy/stream-secret)' });
  return out;
}

/** Append-only, created 0600, refusing to follow a symlink at the path. */
async function openOut(file: string): Promise<FileHandle> {
  try {
    return await open(file, constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT | constants.O_NOFOLLOW, 0o600);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new UsageError(`cannot write deliveries to ${file}: ${code === 'ELOOP' ? 'it is a symbolic link' : (err as Error).message}`, {
      code: 'E_LISTEN_OUT',
      hint: 'pass --out <file> naming a regular file in a folder you can write',
    });
  }
}
