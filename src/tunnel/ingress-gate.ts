/**
 * A tiny loopback proxy put in front of the local ingress listener when a third-party
 * tunnel (cloudflared, ngrok) is used: those forward every path they receive, so the gate
 * answers 404 to anything but the ingress routes before it reaches the dev server.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { checkIngressTarget, forwardableHeaders } from './ingress-paths.js';
import { forwardToLocal } from './local-forward.js';

export interface IngressGate {
  /** http://127.0.0.1:<port> to hand to the tunnel program. */
  url: string;
  close(): Promise<void>;
}

export async function startIngressGate(options: { localUrl: string; maxBodyBytes?: number; timeoutMs?: number }): Promise<IngressGate> {
  const maxBodyBytes = options.maxBodyBytes ?? 5 * 1024 * 1024;
  const server = createServer((req, res) => {
    void handle(req, res).catch(() => {
      if (!res.headersSent) json(res, 502, { error: { code: 'E_TUNNEL_LOCAL', message: 'the dev server did not answer' } });
      else res.destroy();
    });
  });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const target = checkIngressTarget(req.url ?? '/');
    if (!target) return json(res, 404, { error: { code: 'E_NOT_FOUND', message: 'not an ingress route' } });
    if (req.method !== 'POST') {
      res.setHeader('allow', 'POST');
      return json(res, 405, { error: { code: 'E_METHOD', message: 'only POST is accepted' } });
    }
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of req as AsyncIterable<Buffer>) {
      size += chunk.length;
      if (size > maxBodyBytes) {
        res.setHeader('connection', 'close');
        return json(res, 413, { error: { code: 'E_TOO_LARGE', message: 'request body is too large' } });
      }
      chunks.push(chunk);
    }
    const answer = await forwardToLocal(
      options.localUrl,
      { method: 'POST', path: target.pathname + target.search, headers: forwardableHeaders(req.rawHeaders), body: Buffer.concat(chunks, size) },
      { timeoutMs: options.timeoutMs },
    );
    for (const [name, value] of answer.headers) res.appendHeader(name, value);
    res.setHeader('content-length', answer.body.length);
    res.writeHead(answer.status);
    res.end(answer.body);
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

function json(res: ServerResponse, status: number, value: unknown): void {
  const body = Buffer.from(JSON.stringify(value));
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': body.length });
  res.end(body);
}
