import { Alert } from './parts.js';
import { useEffect, useState } from 'preact/hooks';
import type { Api, WorkflowInfo } from './api.js';
import type { Live } from './live.js';
import { json } from './format.js';

function triggerText(t: WorkflowInfo['trigger']): string {
  if (t.kind === 'app') return `${t.app} ${t.event}`;
  if (t.kind === 'event') return `event ${t.event}`;
  if (t.kind === 'webhook') return `webhook ${t.webhook}${t.verify ? ` (${t.verify})` : ''}`;
  return t.kind;
}

export function WorkflowsView({ api, live }: { api: Api; live: Live }) {
  const [workflows, setWorkflows] = useState<WorkflowInfo[] | undefined>();
  const [error, setError] = useState<string | undefined>();
  const [sent, setSent] = useState<Record<string, { id?: string; message: string; failed?: boolean }>>({});

  const load = () =>
    api.workflows().then(
      (w) => {
        setWorkflows(w.workflows);
        setError(undefined);
      },
      (err: Error) => setError(err.message),
    );
  useEffect(() => {
    void load();
  }, [api]);
  // A hot reload changed the definitions: show the new ones.
  useEffect(() => live.on((m) => m.event === 'definitions' && void load()), [live]);

  const send = async (w: WorkflowInfo, fixture: string) => {
    const key = `${w.key}:${fixture}`;
    try {
      const r = await api.sendFixture(w.key, fixture);
      const mine = r.executions.find((e) => e.workflow === w.key) ?? r.executions[0];
      setSent((s) => ({ ...s, [key]: { id: mine?.id, message: mine ? 'sent' : r.note ?? 'no workflow ran' } }));
    } catch (err) {
      setSent((s) => ({ ...s, [key]: { message: (err as Error).message, failed: true } }));
    }
  };

  if (error) return <Alert message={error} />;
  if (!workflows) return <p role="status">Loading workflows…</p>;
  return (
    <section aria-labelledby="workflows-title">
      <h1 id="workflows-title">Workflows</h1>
      {workflows.length === 0 && <p class="empty">No workflows: add one under integrations/&lt;name&gt;/workflows/.</p>}
      {workflows.map((w) => (
        <article class="workflow" aria-labelledby={`wf-${w.key}`} data-workflow={w.key}>
          <h2 id={`wf-${w.key}`}>{w.key}</h2>
          {w.description && <p>{w.description}</p>}
          <dl class="facts">
            <dt>Trigger</dt>
            <dd>{triggerText(w.trigger)}</dd>
            <dt>Steps</dt>
            <dd>{w.steps.map((s) => `${s.id}${s.uses ? ` (${s.uses})` : ''}`).join(' → ')}</dd>
            <dt>File</dt>
            <dd class="mono">{w.file}</dd>
            {w.streams && (
              <>
                <dt>Streams</dt>
                <dd>yes</dd>
              </>
            )}
          </dl>
          {w.trigger.schema !== undefined && (
            <details>
              <summary>Trigger schema</summary>
              <pre tabIndex={0} aria-label={`Trigger schema of ${w.key}`}>
                {json(w.trigger.schema)}
              </pre>
            </details>
          )}
          <h3>Fixtures</h3>
          {w.fixtures.length === 0 ? (
            <p class="empty">No fixtures in integrations/{w.integration}/fixtures/.</p>
          ) : (
            <ul class="fixtures">
              {w.fixtures.map((f) => {
                const result = sent[`${w.key}:${f}`];
                return (
                  <li>
                    <span class="mono">{f}</span>{' '}
                    <button type="button" onClick={() => send(w, f)} aria-label={`Send ${f} to ${w.key}`}>
                      Send
                    </button>{' '}
                    {result && (
                      <span role="status" class={result.failed ? 'error' : ''}>
                        {result.id ? (
                          <>
                            sent as{' '}
                            <a class="mono" href={`#/executions/${encodeURIComponent(result.id)}`}>
                              {result.id}
                            </a>
                          </>
                        ) : (
                          result.message
                        )}
                      </span>
                    )}
                  </li>
                );
              })}
            </ul>
          )}
        </article>
      ))}
    </section>
  );
}
