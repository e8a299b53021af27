/**
 * A tiny loopback proxy put in front of the local ingress listener when a third-party
 * tunnel (cloudflared, ngrok) is used: those forward every path they receive, so the gate
 * answers 404 to anything but the ingress routes before it reaches the dev server. Built on
 * the HTTP kit (src/http): its router, body reader (413 E_BODY_TOO_LARGE), errors and listen.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { readBody } from '../http/body.js';
import { HttpError } from '../http/error.js';
import { listen } from '../http/listen.js';
import { sendError } from '../http/respond.js';
import { createRouter, type RequestContext } from '../http/router.js';
import { checkIngressTarget, forwardableHeaders } from './ingress-paths.js';
import { forwardToLocal } from './local-forward.js';

export interface IngressGate {
  /** http://127.0.0.1:<port> to hand to the tunnel program. */
  url: string;
  close(): Promise<void>;
}

export async function startIngressGate(options: { localUrl: string; maxBodyBytes?: number; timeoutMs?: number }): Promise<IngressGate> {
  const maxBodyBytes = options.maxBodyBytes ?? 5 * 1024 * 1024;

  // POST on any path; the raw target is checked exactly here.
  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const target = checkIngressTarget(req.url ?? '/');
    if (!target) throw new HttpError(404, 'E_NOT_FOUND', 'not an ingress route');
    const body = await readBody(req, maxBodyBytes);
    let answer: Awaited<ReturnType<typeof forwardToLocal>>;
    try {
      answer = await forwardToLocal(
        options.localUrl,
        { method: 'POST', path: target.pathname + target.search, headers: forwardableHeaders(req.rawHeaders), body },
        { timeoutMs: options.timeoutMs },
      );
    } catch {
      throw new HttpError(502, 'E_TUNNEL_LOCAL', 'the dev server did not answer');
    }
    for (const [name, value] of answer.headers) res.appendHeader(name, value);
    res.setHeader('content-length', answer.body.length);
    res.writeHead(answer.status);
    res.end(answer.body);
  }

  const route = createRouter<RequestContext>([{ method: 'POST', path: '/*', handler: ({ req, res }) => handle(req, res) }], {
    context: (base) => base,
    // Another method: 405 (Allow: POST) on an ingress route, 404 anywhere else.
    fallback: async (req, res) => {
      if (checkIngressTarget(req.url ?? '/')) return false;
      sendError(req, res, new HttpError(404, 'E_NOT_FOUND', 'not an ingress route'));
      return true;
    },
  });
  const listening = await listen((req, res) => void route(req, res), { closeGraceMs: 0 });
  return { url: listening.url, close: () => listening.close() };
}
