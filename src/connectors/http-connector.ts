/**
 * The built-in `http` connector: one action, `request`, for a custom API call. Non-2xx
 * answers fail the step with their status (so `onError` can route a 401 apart from a 5xx);
 * the output is { status, headers, body } with a JSON body parsed.
 */
import { StepError } from '../errors.js';
import { httpManifest } from './builtin-manifests.js';
import { decodeBody, hasHeader, parsedUrl, sendActionRequest } from './http-client.js';
import type { ActionHandler, ConnectorRuntime } from './types.js';

export interface HttpRequestInput {
  method?: string;
  url: string;
  headers?: Record<string, string>;
  query?: Record<string, string | number | boolean>;
  body?: unknown;
  auth?:
    | { type: 'bearer'; token: string }
    | { type: 'basic'; username: string; password: string }
    | { type: 'header'; name: string; value: string };
}

export const httpRequest: ActionHandler = async (raw, ctx) => {
  const input = raw as unknown as HttpRequestInput;
  const method = (input.method ?? (input.body === undefined ? 'GET' : 'POST')).toUpperCase();
  let url: URL;
  try {
    // Shared and read-only without a query to add (see parsedUrl); a copy to append one to.
    url = input.query && Object.keys(input.query).length > 0 ? new URL(input.url) : parsedUrl(input.url);
  } catch {
    throw new StepError(`http request: "${String(input.url)}" is not an absolute URL`, {
      code: 'E_INPUT',
      hint: 'Map `url` to a full http(s):// URL.',
    });
  }
  if (input.query) for (const [k, v] of Object.entries(input.query)) url.searchParams.append(k, String(v));
  const headers: Record<string, string> = { ...(input.headers ?? {}) };
  const auth = input.auth;
  if (auth?.type === 'bearer') headers.Authorization = `Bearer ${auth.token}`;
  else if (auth?.type === 'basic') {
    headers.Authorization = `Basic ${Buffer.from(`${auth.username}:${auth.password}`, 'utf8').toString('base64')}`;
  } else if (auth?.type === 'header') headers[auth.name] = auth.value;
  let body: string | undefined;
  if (input.body !== undefined && input.body !== null) {
    body = typeof input.body === 'string' ? input.body : JSON.stringify(input.body);
    if (typeof input.body !== 'string' && !hasHeader(headers, 'content-type')) headers['Content-Type'] = 'application/json';
  }
  // The URL is parsed once: its text for the call, origin and path for messages (safeUrl's).
  const res = await sendActionRequest(ctx, { method, url: url.href, headers, body }, `http ${method} ${url.origin}${url.pathname}`);
  return { status: res.status, headers: res.headers, body: decodeBody(res) };
};

export function createHttpConnector(): ConnectorRuntime {
  return { manifest: httpManifest, actions: { request: httpRequest } };
}
