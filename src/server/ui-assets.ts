/**
 * The web UI (built by Vite from ui/ into dist/ui/) served by the runtime at `/` on its
 * API listener only, never on the ingress (tunnel) listener. Files are read on first
 * request and kept, so starting the CLI costs nothing. Every answer carries a strict
 * Content-Security-Policy: scripts, styles and connections from this origin only, no
 * inline code, no framing.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { ServerResponse } from 'node:http';
import { PACKAGE_ROOT } from '../package-paths.js';
import { HttpError } from './http.js';

export const UI_DIR = path.join(PACKAGE_ROOT, 'dist', 'ui');

export const UI_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "font-src 'self'",
  "connect-src 'self'",
  "manifest-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.json': 'application/json; charset=utf-8',
  '.woff2': 'font/woff2',
};

/** Built asset names: Vite's `name-hash.ext`, nothing that could leave the folder. */
const ASSET_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,200}$/;

export interface UiAssets {
  /** Answers `/` (index.html) or `/assets/<name>`; 404 for anything else. */
  serve(res: ServerResponse, urlPath: string): Promise<void>;
}

/**
 * `runtime` tells the page which runtime serves it (one bundle for both): `serve` adds
 * `<meta name="alloy-runtime" content="serve">`, and the UI asks for a key and shows the
 * serve views.
 */
export function createUiAssets(dir = UI_DIR, runtime: 'dev' | 'serve' = 'dev'): UiAssets {
  const cache = new Map<string, Buffer>();
  const load = async (rel: string): Promise<Buffer | undefined> => {
    const hit = cache.get(rel);
    if (hit) return hit;
    try {
      let bytes = await readFile(path.join(dir, rel));
      if (rel === 'index.html' && runtime !== 'dev') {
        bytes = Buffer.from(bytes.toString('utf8').replace('<head>', `<head>\n    <meta name="alloy-runtime" content="${runtime}" />`));
      }
      cache.set(rel, bytes);
      return bytes;
    } catch {
      return undefined;
    }
  };
  return {
    async serve(res, urlPath) {
      let rel: string;
      if (urlPath === '/' || urlPath === '/index.html') rel = 'index.html';
      else {
        const name = urlPath.slice('/assets/'.length);
        if (!urlPath.startsWith('/assets/') || !ASSET_NAME.test(name) || name.includes('..')) {
          throw new HttpError(404, 'E_NOT_FOUND', `no route GET ${urlPath}`, 'see docs/http-api.md for the routes');
        }
        rel = `assets/${name}`;
      }
      const bytes = await load(rel);
      if (!bytes) {
        if (rel === 'index.html') {
          throw new HttpError(404, 'E_UI_NOT_BUILT', 'the web UI is not built', 'run `npm run build` (it builds ui/ into dist/ui/)');
        }
        throw new HttpError(404, 'E_NOT_FOUND', `no asset ${urlPath}`);
      }
      res.writeHead(200, {
        'content-type': CONTENT_TYPES[path.extname(rel)] ?? 'application/octet-stream',
        'content-length': String(bytes.length),
        // Hashed asset names never change content; the page itself is always re-checked.
        'cache-control': rel === 'index.html' ? 'no-cache' : 'public, max-age=31536000, immutable',
        'content-security-policy': UI_CSP,
        'x-content-type-options': 'nosniff',
        'referrer-policy': 'no-referrer',
        'x-frame-options': 'DENY',
        'cross-origin-opener-policy': 'same-origin',
        'cross-origin-resource-policy': 'same-origin',
      });
      res.end(bytes);
    },
  };
}
