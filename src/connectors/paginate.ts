/**
 * Pagination declared in a connector manifest (`paginate:`), shared by list actions and
 * polling triggers. Three styles:
 *
 * - `cursor`: GraphQL connections (Relay style; Shopify Admin GraphQL): the request's
 *   templates read `page.cursor` (null on the first page) and `pageInfo` (a template over
 *   `response`) gives `{ hasNextPage, endCursor }`.
 * - `link`: RFC 8288 `Link: <url>; rel="next"` (Shopify REST, GitHub): the next page is the
 *   URL the server gave, which must stay on the first request's origin (credentials are
 *   never sent elsewhere).
 * - `offset`: `limitParam`/`offsetParam` query parameters; ends on a short page.
 *
 * Every style stops after `maxPages` (default 40) and says so (`truncated`), so one run
 * never walks an unbounded list.
 */
import type { Pagination } from '../core/model.js';

export const DEFAULT_MAX_PAGES = 40;

/** What a page's templates see as `page`. */
export interface PageState {
  /** 0-based page number. */
  index: number;
  /** cursor style: the previous page's endCursor (null first). */
  cursor: string | null;
  /** offset style. */
  offset: number;
  limit?: number;
  /** link style: the URL of this page (undefined for the first, which is built from the manifest). */
  url?: string;
}

export interface PageResponse {
  status: number;
  headers: Record<string, string>;
  body: unknown;
}

export interface PagedResult<T> {
  items: T[];
  pages: number;
  /** True when maxPages stopped the walk before the last page. */
  truncated: boolean;
  /** cursor style: the last endCursor seen (to resume from). */
  endCursor?: string | null;
}

export interface PageWalk<T> {
  paginate: Pagination | undefined;
  /** Sends one page's request. */
  send(page: PageState): Promise<PageResponse>;
  /** The items of one page's response. */
  items(response: PageResponse): Promise<T[]>;
  /** cursor style: `{ hasNextPage, endCursor }` of a response. */
  pageInfo?(response: PageResponse): Promise<unknown>;
  /** Called after each page (the poller emits as it goes); returning false stops the walk. */
  onPage?(items: T[], page: PageState): Promise<boolean | void>;
  /** Overrides `paginate.maxPages`. */
  maxPages?: number;
}

/** RFC 8288: the target of `rel="next"` in a Link header, or undefined. */
export function nextLink(header: string | undefined): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(/,(?=\s*<)/)) {
    const m = /^\s*<([^>]*)>\s*;(.*)$/.exec(part);
    if (!m) continue;
    const rel = /\brel\s*=\s*(?:"([^"]*)"|([^\s;]+))/i.exec(m[2]);
    const rels = (rel?.[1] ?? rel?.[2] ?? '').toLowerCase().split(/\s+/);
    if (rels.includes('next')) return m[1];
  }
  return undefined;
}

function header(headers: Record<string, string>, name: string): string | undefined {
  const lower = name.toLowerCase();
  for (const [k, v] of Object.entries(headers)) if (k.toLowerCase() === lower) return v;
  return undefined;
}

/** Walks the pages of a list; a manifest without `paginate` is one page. */
export async function walkPages<T>(walk: PageWalk<T>): Promise<PagedResult<T>> {
  const p = walk.paginate;
  const maxPages = walk.maxPages ?? p?.maxPages ?? DEFAULT_MAX_PAGES;
  const limit = p?.style === 'offset' ? (p.pageSize ?? 100) : p?.pageSize;
  const all: T[] = [];
  let page: PageState = { index: 0, cursor: null, offset: 0, limit };
  for (;;) {
    const response = await walk.send(page);
    const items = await walk.items(response);
    all.push(...items);
    const goOn = (await walk.onPage?.(items, page)) !== false;
    const done = (next: Partial<PageState> | undefined): PagedResult<T> | undefined => {
      if (!next || !goOn) return { items: all, pages: page.index + 1, truncated: false, endCursor: page.cursor };
      if (page.index + 1 >= maxPages) return { items: all, pages: page.index + 1, truncated: true, endCursor: next.cursor ?? page.cursor };
      page = { ...page, ...next, index: page.index + 1 };
      return undefined;
    };
    let result: PagedResult<T> | undefined;
    if (!p) result = done(undefined);
    else if (p.style === 'cursor') {
      const info = (walk.pageInfo ? await walk.pageInfo(response) : undefined) as { hasNextPage?: unknown; endCursor?: unknown } | undefined;
      const endCursor = typeof info?.endCursor === 'string' ? info.endCursor : null;
      // A server that says "more" without a cursor would loop on page one forever.
      result = done(info?.hasNextPage === true && endCursor ? { cursor: endCursor } : undefined);
      if (result && !result.truncated) result.endCursor = endCursor ?? page.cursor;
    } else if (p.style === 'link') {
      // send() refuses a URL off the connector's origin (credentials stay home).
      const next = nextLink(header(response.headers, 'link'));
      result = done(next ? { url: next } : undefined);
    } else {
      result = done(items.length >= (limit ?? 1) ? { offset: page.offset + items.length } : undefined);
    }
    if (result) return result;
  }
}
