import { Alert, Choice, TableHead } from './parts.js';
import { useEffect, useRef, useState } from 'preact/hooks';
import { normalizeSummary, type Api, type ExecutionQuery, type ExecutionSummary, type ServeFields } from './api.js';
import type { Live } from './live.js';
import { duration, STATUSES, time } from './format.js';
import type { Session } from './session.js';

type Row = ExecutionSummary & ServeFields;

const PAGE = 50;
const SINCE: { label: string; ms?: number }[] = [
  { label: 'Any time' },
  { label: 'Last 15 minutes', ms: 15 * 60_000 },
  { label: 'Last hour', ms: 3_600_000 },
  { label: 'Last 24 hours', ms: 86_400_000 },
  { label: 'Last 7 days', ms: 7 * 86_400_000 },
];

interface Filters {
  workflow: string;
  status: string;
  since: string;
  id: string;
  /** serve */
  userId: string;
  installationId: string;
}

function matches(s: Row, f: Filters, sinceIso: string | undefined): boolean {
  if (f.status && s.status !== f.status) return false;
  if (f.workflow && s.workflow !== f.workflow) return false;
  if (f.id && !s.id.startsWith(f.id)) return false;
  if (f.userId && s.userId !== f.userId) return false;
  if (f.installationId && s.installationId !== f.installationId) return false;
  if (sinceIso && s.createdAt < sinceIso) return false;
  return true;
}

export function ExecutionsView({ api, live, session, userId, installationId }: { api: Api; live: Live; session?: Session; userId?: string; installationId?: string }) {
  const serve = api.runtime === 'serve';
  const [filters, setFilters] = useState<Filters>({ workflow: '', status: '', since: '', id: '', userId: userId ?? '', installationId: installationId ?? '' });
  const [rows, setRows] = useState<Row[]>([]);
  const [cursor, setCursor] = useState<string | undefined>();
  const [workflows, setWorkflows] = useState<string[]>([]);
  const [error, setError] = useState<string | undefined>();
  const [loading, setLoading] = useState(true);
  const sinceIso = useRef<string | undefined>(undefined);
  const current = useRef(filters);
  current.current = filters;

  const query = (f: Filters, more?: string): ExecutionQuery => {
    const ms = SINCE.find((s) => s.label === f.since)?.ms;
    sinceIso.current = ms ? new Date(Date.now() - ms).toISOString() : undefined;
    return { workflow: f.workflow.trim(), status: f.status, id: f.id.trim(), since: sinceIso.current, cursor: more, limit: PAGE, userId: f.userId.trim(), installationId: f.installationId };
  };

  useEffect(() => {
    // serve runs many integrations at many versions: its workflow filter offers the names seen.
    if (!serve) api.workflows().then((w) => setWorkflows(w.workflows.map((x) => x.key)), () => {});
  }, [api]);
  useEffect(() => {
    if (serve) setWorkflows((w) => [...new Set([...w, ...rows.map((r) => r.workflow)])].sort());
  }, [rows]);

  useEffect(() => {
    let cancelled = false;
    setLoading(true);
    const t = setTimeout(() => {
      api.listExecutions(query(filters)).then(
        (page) => {
          if (cancelled) return;
          setRows(page.executions);
          setCursor(page.nextCursor);
          setError(undefined);
          setLoading(false);
        },
        (err: Error) => {
          if (!cancelled) {
            setError(err.message);
            setLoading(false);
          }
        },
      );
    }, filters.id || (serve && (filters.workflow || filters.userId)) ? 150 : 0);
    return () => {
      cancelled = true;
      clearTimeout(t);
    };
  }, [api, filters]);

  useEffect(
    () =>
      live.on((m) => {
        if (m.event === 'open') {
          // (Re)connected: re-read the first page for whatever the stream did not carry.
          api.listExecutions(query(current.current)).then(
            (page) => {
              setRows(page.executions);
              setCursor(page.nextCursor);
            },
            () => {},
          );
        } else if (m.event === 'execution') {
          const s = normalizeSummary(JSON.parse(m.data)) as Row;
          setRows((list) => {
            const i = list.findIndex((r) => r.id === s.id);
            if (i >= 0) return list.map((r) => (r.id === s.id ? s : r));
            return matches(s, current.current, sinceIso.current) ? [s, ...list] : list;
          });
        } else if (m.event === 'step') {
          const { executionId } = JSON.parse(m.data) as { executionId: string };
          setRows((list) => list.map((r) => (r.id === executionId && r.status === 'queued' ? { ...r, status: 'running' } : r)));
        }
      }),
    [live],
  );

  // The first time the list (or its empty state) is on screen: bench/web-ui-first-paint.mjs reads this mark.
  const marked = useRef(false);
  useEffect(() => {
    if (loading || marked.current) return;
    marked.current = true;
    requestAnimationFrame(() => performance.mark('alloy:list-painted'));
  }, [loading]);

  const more = () => {
    if (!cursor) return;
    api.listExecutions(query(filters, cursor)).then(
      (page) => {
        setRows((list) => [...list, ...page.executions.filter((e) => !list.some((r) => r.id === e.id))]);
        setCursor(page.nextCursor);
      },
      (err: Error) => setError(err.message),
    );
  };
  const set = (k: keyof Filters) => (e: Event) => setFilters({ ...filters, [k]: (e.currentTarget as HTMLInputElement).value });

  return (
    <section aria-labelledby="executions-title">
      <h1 id="executions-title">Executions</h1>
      <form class="filters" role="search" aria-label="Filter executions" onSubmit={(e) => e.preventDefault()}>
        {serve ? (
          <label>
            Workflow
            <input type="search" list="workflow-names" placeholder="integration/workflow" value={filters.workflow} onInput={set('workflow')} autocomplete="off" spellcheck={false} />
            <datalist id="workflow-names">
              {workflows.map((w) => (
                <option value={w} />
              ))}
            </datalist>
          </label>
        ) : (
          <Choice label="Workflow" value={filters.workflow} onChange={set('workflow')} options={[['', 'All workflows'], ...workflows.map((w): [string, string] => [w, w])]} />
        )}
        <Choice label="Status" value={filters.status} onChange={set('status')} options={[['', 'Any status'], ...[...STATUSES, ...(serve ? ['cancelled'] : [])].map((s): [string, string] => [s, s])]} />
        <Choice label="Time" value={filters.since} onChange={set('since')} options={SINCE.map((s): [string, string] => [s.ms ? s.label : '', s.label])} />
        {serve && session?.kind !== 'user' && (
          <label>
            User
            <input type="search" placeholder="user id" value={filters.userId} onInput={set('userId')} autocomplete="off" spellcheck={false} />
          </label>
        )}
        <label>
          {serve ? 'Execution id' : 'Search by id'}
          <input type="search" placeholder="ex_…" value={filters.id} onInput={set('id')} autocomplete="off" spellcheck={false} />
        </label>
      </form>
      {filters.installationId && (
        <p>
          Installation <span class="mono">{filters.installationId}</span> only · <a href="#/">all executions</a>
        </p>
      )}
      <Alert message={error} />
      <table class="executions" data-testid="executions">
        <caption class="sr-only">Executions, newest first</caption>
        <TableHead columns={serve ? ['Execution', 'Workflow', 'Version', 'User', 'Status', 'Started', 'Duration', 'Error'] : ['Execution', 'Workflow', 'Status', 'Started', 'Duration', 'Error']} />
        <tbody>
          {rows.map((r) => (
            <tr key={r.id} data-id={r.id} data-status={r.status}>
              <td>
                <a href={`#/executions/${encodeURIComponent(r.id)}`} class="mono">
                  {r.id}
                </a>
                {r.replayOf && <span class="tag">{serve ? 'rerun' : 'replay'}</span>}
              </td>
              <td>{r.workflow}</td>
              {serve && <td class="mono">{r.version !== undefined ? `v${r.version}` : ''}</td>}
              {serve && <td class="mono">{r.userId ?? ''}</td>}
              <td>
                <span class={`status ${r.status}`}>{r.status}</span>
              </td>
              <td>{time(r.createdAt)}</td>
              <td>{duration(r.durationMs)}</td>
              <td class="err">{r.error ? `${r.error.step ? `${r.error.step}: ` : ''}${r.error.message}` : r.reason ?? ''}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {!loading && rows.length === 0 && (
        <p class="empty">{serve ? 'No executions here yet. Events arrive through POST /v1/run/event and app webhooks.' : 'No executions yet. Send an event with `alloy emit`, or a fixture from Workflows.'}</p>
      )}
      {cursor && (
        <button type="button" class="more" onClick={more}>
          Load older executions
        </button>
      )}
    </section>
  );
}
