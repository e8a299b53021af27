/**
 * User connectors from `connectors/*.yaml`: each action is a declarative HTTP request whose
 * templates see `input` (the step's resolved `with`) and `connection` (the user's resolved
 * connection fields); the output is a template over `response` ({status, headers, body}).
 * Templates are compiled once here, when the connector is created.
 */
import { StepError, UsageError } from '../errors.js';
import {
  compileTemplate,
  compileValue,
  evaluateExpression,
  hasTemplate,
  renderValue,
  type CompiledTemplate,
  type CompiledValue,
} from '../core/expressions.js';
import type { ConnectorAction, ConnectorAuth, ConnectorManifest, Pagination } from '../core/model.js';
import { decodeBody, hasHeader, safeUrl, sendActionRequest } from './http-client.js';
import { walkPages, type PageState } from './paginate.js';
import type { ActionContext, ActionHandler, ConnectorRuntime } from './types.js';

export function compileAt(value: unknown, where: string): CompiledValue {
  try {
    return compileValue(value);
  } catch (err) {
    throw new UsageError(`invalid template in ${where}: ${(err as Error).message}`, {
      code: 'E_CONNECTOR_TEMPLATE',
      hint: 'Run `alloy validate` to see the file and position of the expression.',
      cause: err,
    });
  }
}

export interface CompiledAuth {
  type: ConnectorAuth['type'];
  header?: string;
  value?: CompiledValue;
  username?: CompiledValue;
  password?: CompiledValue;
}

export function compileAuth(auth: ConnectorAuth, where: string): CompiledAuth {
  return {
    type: auth.type,
    header: auth.header,
    value: auth.value === undefined ? undefined : compileAt(auth.value, `${where}.value`),
    username: auth.username === undefined ? undefined : compileAt(auth.username, `${where}.username`),
    password: auth.password === undefined ? undefined : compileAt(auth.password, `${where}.password`),
  };
}

async function renderText(value: CompiledValue | undefined, context: Record<string, unknown>): Promise<string> {
  if (!value) return '';
  const v = await renderValue(value, context);
  return v === undefined || v === null ? '' : typeof v === 'string' ? v : String(v);
}

/** Auth headers for a connector (`none`, `bearer`, `header`, `basic`), rendered over `connection`. */
async function authHeaders(auth: CompiledAuth, context: Record<string, unknown>, name: string): Promise<Record<string, string>> {
  switch (auth.type) {
    case 'none':
      return {};
    case 'bearer':
      return { Authorization: `Bearer ${await renderText(auth.value, context)}` };
    case 'header': {
      if (!auth.header) throw new UsageError(`connector ${name}: auth type "header" needs \`header\``);
      return { [auth.header]: await renderText(auth.value, context) };
    }
    case 'basic': {
      const user = await renderText(auth.username, context);
      const pass = await renderText(auth.password, context);
      return { Authorization: `Basic ${Buffer.from(`${user}:${pass}`, 'utf8').toString('base64')}` };
    }
  }
}

/** `request.path` compiled so that each expression's value can be encoded on its own. */
type CompiledPath = { kind: 'literal'; text: string } | { kind: 'template'; template: CompiledTemplate };

function compilePath(path: unknown, where: string): CompiledPath {
  const text = typeof path === 'string' ? path : String(path ?? '');
  if (!hasTemplate(text)) return { kind: 'literal', text };
  try {
    return { kind: 'template', template: compileTemplate(text) };
  } catch (err) {
    throw new UsageError(`invalid template in ${where}: ${(err as Error).message}`, {
      code: 'E_CONNECTOR_TEMPLATE',
      hint: 'Run `alloy validate` to see the file and position of the expression.',
      cause: err,
    });
  }
}

/**
 * Renders the path with every expression's value percent-encoded (encodeURIComponent): an id
 * like `../admin/x` or `1?delete=1#` stays one path segment instead of changing the endpoint.
 * Literal text of the path is kept as written.
 */
async function renderPath(path: CompiledPath, context: Record<string, unknown>): Promise<string> {
  if (path.kind === 'literal') return path.text;
  let out = '';
  for (const part of path.template.parts) {
    if ('kind' in part) out += part.text;
    else {
      const v = await evaluateExpression(part, context);
      const text = v === undefined || v === null ? '' : typeof v === 'string' ? v : typeof v === 'object' ? JSON.stringify(v) : String(v);
      out += encodeURIComponent(text);
    }
  }
  return out;
}

function originOf(url: string): string | undefined {
  try {
    return new URL(url).origin;
  } catch {
    return undefined;
  }
}

export function joinUrl(base: string, path: string): string {
  if (/^https?:\/\//i.test(path)) return path;
  if (!base) return path;
  return `${base.replace(/\/+$/, '')}/${path.replace(/^\/+/, '')}`;
}

function appendQuery(url: string, query: Record<string, unknown> | undefined): string {
  if (!query) return url;
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) {
    if (v === undefined || v === null) continue;
    if (Array.isArray(v)) for (const item of v) params.append(k, String(item));
    else params.append(k, typeof v === 'object' ? JSON.stringify(v) : String(v));
  }
  const qs = params.toString();
  if (!qs) return url;
  return `${url}${url.includes('?') ? '&' : '?'}${qs}`;
}

/** A declarative request compiled once; `send` renders it over a context and sends it. */
export interface CompiledRequest {
  send(context: Record<string, unknown>, ctx: ActionContext, urlOverride?: string): Promise<{ status: number; headers: Record<string, string>; body: unknown }>;
}

/**
 * Compiles `request` (path, query, headers, body templates) with the connector's auth. The
 * context is what templates see (`input`, `connection`, and for pages `page`, for polls
 * `since`). `urlOverride` is a next-page URL from a Link header: it gets the same origin
 * check as any rendered URL, so credentials never leave the connector's base origin.
 */
export function compileRequest(
  manifest: ConnectorManifest,
  where: string,
  req: NonNullable<ConnectorAction['request']>,
  auth: CompiledAuth,
  baseUrl: CompiledValue,
  fixHint: string,
  paginate?: Pagination,
): CompiledRequest {
  const path = compilePath(req.path, `${where} request.path`);
  const headers = compileAt(req.headers ?? {}, `${where} request.headers`);
  const query = req.query === undefined ? undefined : compileAt(req.query, `${where} request.query`);
  const body = req.body === undefined ? undefined : compileAt(req.body, `${where} request.body`);
  const label = where.replace(/^connector /, '').replace(/ (action|trigger) /, ' ');
  return {
    async send(context, ctx, urlOverride) {
      const base = ctx.settings.baseUrl || (await renderText(baseUrl, context));
      let rendered: Record<string, unknown> | undefined = query ? ((await renderValue(query, context)) as Record<string, unknown>) : undefined;
      // Offset paging with `limitParam`/`offsetParam`: those query parameters carry the page
      // (the schema took them, nothing sent them); a `request.query` naming them itself wins.
      const page = context.page as PageState | undefined;
      if (paginate?.style === 'offset' && page && (paginate.limitParam || paginate.offsetParam)) {
        rendered = { ...(paginate.limitParam ? { [paginate.limitParam]: page.limit } : {}), ...(paginate.offsetParam ? { [paginate.offsetParam]: page.offset } : {}), ...rendered };
      }
      const url = urlOverride ?? appendQuery(joinUrl(base, await renderPath(path, context)), rendered);
      const renderedHeaders = (await renderValue(headers, context)) as Record<string, unknown>;
      const outHeaders: Record<string, string> = { Accept: 'application/json' };
      for (const [k, v] of Object.entries(renderedHeaders)) if (v !== undefined && v !== null) outHeaders[k] = String(v);
      if (auth.type !== 'none') {
        // Credentials go only to the connector's own origin: a path that is (or renders to) an
        // absolute URL elsewhere is refused rather than sent with the connection's credentials.
        // (A URL that does not parse is refused by sendActionRequest before anything is sent.)
        const target = originOf(url);
        const own = originOf(base);
        if (target !== undefined && target !== own) {
          throw new StepError(
            `${label}: refusing to send ${manifest.name} credentials to ${target ?? safeUrl(url)}, which is not the connector's base URL origin (${own ?? 'no base URL'})`,
            { code: 'E_CONNECTOR_ORIGIN', retryable: false, hint: fixHint },
          );
        }
        if (target !== undefined) Object.assign(outHeaders, await authHeaders(auth, context, manifest.name));
      }
      let payload: string | undefined;
      if (body !== undefined) {
        const value = await renderValue(body, context);
        if (value !== undefined) {
          payload = typeof value === 'string' ? value : JSON.stringify(value);
          if (typeof value !== 'string' && !hasHeader(outHeaders, 'content-type')) outHeaders['Content-Type'] = 'application/json';
        }
      }
      const res = await sendActionRequest(ctx, { method: req.method, url, headers: outHeaders, body: payload }, `${label} (${req.method} ${safeUrl(url)})`);
      return { status: res.status, headers: res.headers, body: decodeBody(res) };
    },
  };
}

function compileAction(manifest: ConnectorManifest, actionName: string, action: ConnectorAction, auth: CompiledAuth, baseUrl: CompiledValue): ActionHandler {
  const where = `connector ${manifest.name} action ${actionName}`;
  const req = action.request;
  if (!req) {
    return async () => {
      throw new StepError(`${where} has no \`request\` to send`, {
        code: 'E_CONNECTOR',
        hint: `Add a request (method, path) to actions.${actionName} in connectors/${manifest.name}.yaml.`,
      });
    };
  }
  const request = compileRequest(
    manifest,
    where,
    req,
    auth,
    baseUrl,
    `Make actions.${actionName}.request.path relative to baseUrl in connectors/${manifest.name}.yaml (or set baseUrl / apps.${manifest.name}.baseUrl to that origin).`,
    action.paginate,
  );
  const output = action.output === undefined ? undefined : compileAt(action.output, `${where} output`);
  const paginate = action.paginate;
  const pageInfo = paginate?.pageInfo === undefined ? undefined : compileAt(paginate.pageInfo, `${where} paginate.pageInfo`);

  return async (input, ctx: ActionContext) => {
    const connection = ctx.connection;
    if (!paginate) {
      const response = await request.send({ input, connection }, ctx);
      return output === undefined ? response.body : renderValue(output, { response, input });
    }
    // A list action: every page's output (a list) concatenated, up to maxPages.
    const result = await walkPages<unknown>({
      paginate,
      send: (page) => request.send({ input, connection, page }, ctx, page.url),
      items: async (response) => {
        const out = output === undefined ? response.body : await renderValue(output, { response, input });
        return Array.isArray(out) ? out : out === undefined || out === null ? [] : [out];
      },
      pageInfo: pageInfo ? (response) => renderValue(pageInfo, { response, input }) : undefined,
    });
    if (result.truncated) ctx.logger.warn(`${manifest.name} ${actionName}: stopped after ${result.pages} pages (paginate.maxPages)`, { pages: result.pages });
    return result.items;
  };
}

/** A runtime for a user connector manifest; throws UsageError on a template that does not compile. */
export function createDeclarativeConnector(manifest: ConnectorManifest): ConnectorRuntime {
  const auth = compileAuth(manifest.auth ?? { type: 'none' }, `connector ${manifest.name} auth`);
  const baseUrl = compileAt(manifest.baseUrl ?? '', `connector ${manifest.name} baseUrl`);
  const actions: Record<string, ActionHandler> = {};
  for (const [name, action] of Object.entries(manifest.actions ?? {})) {
    actions[name] = compileAction(manifest, name, action, auth, baseUrl);
  }
  return { manifest, actions };
}
