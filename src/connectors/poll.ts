/**
 * Polled triggers, from the manifest's `triggers.<topic>.poll`: one run sends the declared
 * request for items changed since the cursor, pages through the results (paginate.ts),
 * and hands each page's new items to the caller. No app-specific code: Shopify's
 * `orders/updated` is data in builtin-manifests.ts.
 *
 * The cursor is `{ since, seen }`: `since` is the newest change time seen (ISO), `seen` the
 * keys (`id@updatedAt`) of the items at exactly that time. The request asks for items
 * changed at or after `since` (so items sharing the last timestamp are not skipped) and
 * the ones in `seen` are dropped (so they are not emitted twice).
 */
import { renderValue } from '../core/expressions.js';
import type { ConnectorManifest } from '../core/model.js';
import { StepError, UsageError } from '../errors.js';
import { compileAt, compileAuth, compileRequest } from './declarative.js';
import { walkPages } from './paginate.js';
import type { ActionContext } from './types.js';

export interface PollCursor {
  since: string;
  seen: string[];
}

export interface PolledItem {
  /** `<id>@<updatedAt>`: one version of one item (an order updated twice is two items). */
  key: string;
  id: string;
  updatedAt: string;
  item: unknown;
}

export interface PollRunResult {
  cursor: PollCursor;
  pages: number;
  truncated: boolean;
  emitted: number;
}

export type PollContext = Pick<ActionContext, 'connection' | 'settings' | 'http' | 'signal' | 'now' | 'logger'>;

export interface CompiledPoll {
  everyMs?: number;
  /** One run from `cursor`; `onItems` gets each page's new items, in order, before the next page is fetched. */
  run(cursor: PollCursor, ctx: PollContext, onItems: (items: PolledItem[], cursor: PollCursor) => Promise<void>, maxPages?: number): Promise<PollRunResult>;
}

function field(item: unknown, path: string): unknown {
  let v: unknown = item;
  for (const part of path.split('.')) v = v && typeof v === 'object' ? (v as Record<string, unknown>)[part] : undefined;
  return v;
}

/** Compiles the poll of `manifest.triggers[topic]`; undefined when the trigger is not polled. */
export function compilePoll(manifest: ConnectorManifest, topic: string): CompiledPoll | undefined {
  const poll = manifest.triggers?.[topic]?.poll;
  if (!poll) return undefined;
  const where = `connector ${manifest.name} trigger ${topic}`;
  const auth = compileAuth(manifest.auth ?? { type: 'none' }, `connector ${manifest.name} auth`);
  const baseUrl = compileAt(manifest.baseUrl ?? '', `connector ${manifest.name} baseUrl`);
  const request = compileRequest(manifest, where, poll.request, auth, baseUrl, `Set apps.${manifest.name}.baseUrl to the API's origin.`, poll.paginate);
  const items = compileAt(poll.items, `${where} poll.items`);
  const pageInfo = poll.paginate?.pageInfo === undefined ? undefined : compileAt(poll.paginate.pageInfo, `${where} poll.paginate.pageInfo`);
  if (!poll.id || !poll.updatedAt) throw new UsageError(`${where}: poll needs id and updatedAt`);

  return {
    async run(cursor, ctx, onItems, maxPages) {
      const seen = new Set(cursor.seen);
      let since = cursor.since;
      let emitted = 0;
      const actionCtx = { ...ctx, idempotencyKey: `poll:${manifest.name}:${topic}:${cursor.since}` } as ActionContext;
      const result = await walkPages<unknown>({
        paginate: poll.paginate,
        maxPages,
        send: (page) => request.send({ connection: ctx.connection, since: cursor.since, page }, actionCtx, page.url),
        items: async (response) => {
          // GraphQL answers errors with 200 and `errors`: a poll must fail, not see an empty page.
          const errors = (response.body as { errors?: unknown } | null)?.errors;
          if (errors) {
            const text = Array.isArray(errors) ? errors.map((e) => (e as { message?: string })?.message ?? JSON.stringify(e)).join('; ') : JSON.stringify(errors);
            throw new StepError(`${where}: the poll request failed: ${text}`, { code: 'E_POLL', retryable: false });
          }
          const list = await renderValue(items, { response, since: cursor.since });
          return Array.isArray(list) ? list : [];
        },
        pageInfo: pageInfo ? (response) => renderValue(pageInfo, { response }) : undefined,
        onPage: async (list) => {
          const fresh: PolledItem[] = [];
          for (const item of list) {
            const id = field(item, poll.id);
            const updatedAt = field(item, poll.updatedAt);
            // An item without an id or a readable change time cannot be tracked: skipped, not re-sent forever.
            if (id === undefined || id === null || typeof updatedAt !== 'string' || Number.isNaN(Date.parse(updatedAt))) continue;
            const key = `${String(id)}@${updatedAt}`;
            if (seen.has(key) || Date.parse(updatedAt) < Date.parse(cursor.since)) continue;
            seen.add(key);
            fresh.push({ key, id: String(id), updatedAt, item });
          }
          // The cursor moves to the newest change time; `seen` keeps only keys at that time.
          for (const f of fresh) if (Date.parse(f.updatedAt) > Date.parse(since)) since = f.updatedAt;
          const atSince = [...seen].filter((k) => Date.parse(k.slice(k.lastIndexOf('@') + 1)) === Date.parse(since));
          emitted += fresh.length;
          await onItems(fresh, { since, seen: atSince });
        },
      });
      const atSince = [...seen].filter((k) => Date.parse(k.slice(k.lastIndexOf('@') + 1)) === Date.parse(since));
      return { cursor: { since, seen: atSince }, pages: result.pages, truncated: result.truncated, emitted };
    },
  };
}
