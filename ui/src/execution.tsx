import { Alert, Choice, TableHead } from './parts.js';
import { useEffect, useState } from 'preact/hooks';
import { normalizeSummary, type Api, type ErrorInfo, type ExecutionDetail, type ExecutionSummary, type StepRecord } from './api.js';
import type { Live } from './live.js';
import type { Session } from './session.js';
import { duration, json, time } from './format.js';

function ErrorBlock({ error }: { error: ErrorInfo }) {
  return (
    <div class="error-block" data-testid="error">
      <p>
        <strong>{error.code}</strong> {error.message}
      </p>
      {error.status !== undefined && <p>HTTP status {error.status}</p>}
      {error.field && (
        <p>
          field <code>{error.field}</code> {error.expression && <code>{error.expression}</code>}
        </p>
      )}
      {error.hint && <p class="hint">{error.hint}</p>}
    </div>
  );
}

function Json({ label, value }: { label: string; value: unknown }) {
  if (value === undefined) return null;
  return (
    <details>
      <summary>{label}</summary>
      <pre tabIndex={0} aria-label={label}>
        {json(value)}
      </pre>
    </details>
  );
}

function StepRow({ step }: { step: StepRecord }) {
  return (
    <li class={`step ${step.status}`} data-step={step.path}>
      <div class="step-head">
        <span class="mono">{step.path}</span>
        {step.name && <span class="step-name">{step.name}</span>}
        <span class="dim">{step.uses ?? step.kind}</span>
        <span class={`status ${step.status}`}>{step.status}</span>
        <span class="dim">
          {step.attempts} attempt{step.attempts === 1 ? '' : 's'}
        </span>
        <span class="dim">{duration(step.durationMs)}</span>
        <span class="dim">{time(step.startedAt)}</span>
        {step.handled && <span class="tag">handled</span>}
      </div>
      {step.error && <ErrorBlock error={step.error} />}
      <Json label={`Inputs of ${step.path}`} value={step.inputs} />
      <Json label={`Output of ${step.path}`} value={step.output} />
    </li>
  );
}

export function ExecutionView({ api, live, id, session }: { api: Api; live: Live; id: string; session?: Session }) {
  const serve = api.runtime === 'serve';
  // serve: a rerun is for admin keys (the same event on the same version, docs/serve-api.md).
  const canReplay = !serve || session?.kind === 'admin';
  const word = serve ? 'Rerun' : 'Replay';
  const [ex, setEx] = useState<ExecutionDetail | undefined>();
  const [error, setError] = useState<string | undefined>();
  const [replays, setReplays] = useState<ExecutionSummary[]>([]);
  const [editing, setEditing] = useState(false);
  const [draft, setDraft] = useState('');
  const [draftError, setDraftError] = useState<string | undefined>();
  const [busy, setBusy] = useState(false);
  // serve's rerun options (kept in state: live updates re-render the page).
  const [fromStep, setFromStep] = useState('');
  const [rerunVersion, setRerunVersion] = useState('');

  const load = () =>
    api.getExecution(id).then(
      (e) => {
        setEx(e);
        setError(undefined);
      },
      (err: Error) => setError(err.message),
    );
  useEffect(() => {
    void load();
  }, [id]);
  useEffect(
    () =>
      live.on((m) => {
        if (m.event === 'open') void load();
        else if (m.event === 'execution') {
          const s = normalizeSummary(JSON.parse(m.data));
          if (s.id === id) void load();
          if (s.replayOf === id) setReplays((list) => (list.some((r) => r.id === s.id) ? list.map((r) => (r.id === s.id ? s : r)) : [...list, s]));
        } else if (m.event === 'step' && (JSON.parse(m.data) as { executionId: string }).executionId === id) {
          void load();
        }
      }),
    [live, id],
  );

  const replay = async (event?: unknown, rerun?: { fromStep?: string; version?: number }) => {
    setBusy(true);
    try {
      const r = await api.replay(id, event, rerun);
      const started = r.executions[0];
      if (started) {
        setReplays((list) =>
          list.some((x) => x.id === started.id)
            ? list
            : [...list, { id: started.id, workflow: started.workflow ?? ex?.workflow ?? '', status: 'queued', deliveryId: r.deliveryId, replayOf: id, createdAt: new Date().toISOString(), updatedAt: new Date().toISOString() }],
        );
      }
      setEditing(false);
    } catch (err) {
      setDraftError((err as Error).message);
    } finally {
      setBusy(false);
    }
  };
  const submitRerun = (e: Event) => {
    e.preventDefault();
    const raw = rerunVersion.trim();
    const version = raw === '' ? undefined : Number(raw.replace(/^v/, ''));
    if (version !== undefined && (!Number.isInteger(version) || version < 1)) {
      setDraftError('A version is a whole number from 1 (blank: the same version).');
      return;
    }
    setDraftError(undefined);
    void replay(undefined, { ...(fromStep ? { fromStep } : {}), ...(version !== undefined ? { version } : {}) });
  };
  const submitEdited = (e: Event) => {
    e.preventDefault();
    let event: unknown;
    try {
      event = JSON.parse(draft);
    } catch (err) {
      setDraftError(`not valid JSON: ${(err as Error).message}`);
      return;
    }
    setDraftError(undefined);
    void replay(event);
  };

  if (error) {
    return (
      <section>
        <h1>Execution {id}</h1>
        <Alert message={error} />
        <a href="#/">Back to executions</a>
      </section>
    );
  }
  if (!ex) return <p role="status">Loading {id}…</p>;
  const steps = Object.values(ex.record.steps ?? {});
  const stream = ex.record.stream;
  return (
    <article aria-labelledby="execution-title" data-testid="execution" data-status={ex.status}>
      <p>
        <a href="#/">← Executions</a>
      </p>
      <h1 id="execution-title">
        <span class="mono">{ex.id}</span> <span class={`status ${ex.status}`}>{ex.status}</span>
      </h1>
      <dl class="facts">
        <dt>Workflow</dt>
        <dd>{ex.workflow}</dd>
        {ex.installationId && (
          <>
            <dt>Installation</dt>
            <dd>
              <a class="mono" href={`#/?installationId=${encodeURIComponent(ex.installationId)}`}>
                {ex.installationId}
              </a>
            </dd>
          </>
        )}
        <dt>Version</dt>
        <dd class="mono">{ex.record.version ?? ''}</dd>
        <dt>Created</dt>
        <dd>{time(ex.createdAt)}</dd>
        <dt>Duration</dt>
        <dd>{duration(ex.durationMs)}</dd>
        {ex.userId && (
          <>
            <dt>User</dt>
            <dd>{ex.userId}</dd>
          </>
        )}
        {ex.replayOf && (
          <>
            <dt>{word} of</dt>
            <dd>
              <a class="mono" href={`#/executions/${encodeURIComponent(ex.replayOf)}`}>
                {ex.replayOf}
              </a>
            </dd>
          </>
        )}
        {ex.reason && (
          <>
            <dt>Filtered</dt>
            <dd>{ex.reason}</dd>
          </>
        )}
      </dl>
      {ex.record.error && <ErrorBlock error={ex.record.error} />}

      {canReplay && (
        <div class="actions">
          <button type="button" onClick={() => replay()} disabled={busy}>
            {word}
          </button>
          <button
            type="button"
            aria-expanded={editing}
            aria-controls="edit-event"
            onClick={() => {
              setDraft(json(ex.record.event));
              setDraftError(undefined);
              setEditing(!editing);
            }}
          >
            {serve ? 'Rerun from a step or on a version…' : 'Replay with edited event…'}
          </button>
        </div>
      )}
      {editing && serve && (
        <form id="edit-event" class="edit" onSubmit={submitRerun}>
          <Choice label="From step" value={fromStep} onChange={(e) => setFromStep((e.currentTarget as HTMLSelectElement).value)} options={[['', 'the start'], ...steps.map((s): [string, string] => [s.path, s.path])]} />
          <label>
            On version
            <input inputMode="numeric" size={6} placeholder={ex.record.version ?? ''} value={rerunVersion} onInput={(e) => setRerunVersion((e.currentTarget as HTMLInputElement).value)} />
          </label>
          <p class="dim">The steps before the chosen one keep their recorded results; blank version: the same one.</p>
          <Alert message={draftError} />
          <button type="submit" disabled={busy}>
            Rerun with these
          </button>
        </form>
      )}
      {editing && !serve && (
        <form id="edit-event" class="edit" onSubmit={submitEdited}>
          <label for="event-draft">Event (JSON)</label>
          <textarea id="event-draft" rows={12} spellcheck={false} value={draft} onInput={(e) => setDraft((e.currentTarget as HTMLTextAreaElement).value)} />
          <Alert message={draftError} />
          <button type="submit" disabled={busy}>
            Replay with this event
          </button>
        </form>
      )}
      {!editing && <Alert message={draftError} />}
      {replays.length > 0 && (
        <section aria-labelledby="replays-title">
          <h2 id="replays-title">{word}s</h2>
          <ul class="replays" data-testid="replays">
            {replays.map((r) => (
              <li data-id={r.id} data-status={r.status}>
                <a class="mono" href={`#/executions/${encodeURIComponent(r.id)}`}>
                  {r.id}
                </a>{' '}
                <span class={`status ${r.status}`}>{r.status}</span>
              </li>
            ))}
          </ul>
        </section>
      )}

      <section aria-labelledby="steps-title">
        <h2 id="steps-title">Steps</h2>
        {steps.length === 0 ? <p class="empty">No step has run yet.</p> : <ol class="steps">{steps.map((s) => <StepRow step={s} />)}</ol>}
      </section>

      <section aria-labelledby="event-title">
        <h2 id="event-title">Event</h2>
        {ex.delivery && (
          <p class="dim">
            {ex.delivery.source} {ex.delivery.name} · delivery <span class="mono">{ex.delivery.id}</span> · received {time(ex.delivery.receivedAt)} · verified by {ex.delivery.verification}
          </p>
        )}
        <pre tabIndex={0} aria-label="Event JSON" data-testid="event">
          {json(ex.record.event)}
        </pre>
        {ex.delivery && <Json label="Delivery headers" value={ex.delivery.headers} />}
      </section>

      <section aria-labelledby="stream-title">
        <h2 id="stream-title">Stream deliveries</h2>
        {stream ? (
          <table>
            <TableHead columns={['URL', 'Status', 'Answer', 'Attempts', 'Message id', 'At']} />
            <tbody>
              <tr data-testid="stream">
                <td class="mono">{stream.url}</td>
                <td>
                  <span class={`status ${stream.status === 'delivered' ? 'succeeded' : 'failed'}`}>{stream.status}</span>
                </td>
                <td>{stream.statusCode !== undefined ? `HTTP ${stream.statusCode}` : ''}{stream.error ? ` ${stream.error.message}` : ''}</td>
                <td>{stream.attempts}</td>
                <td class="mono">{stream.messageId}</td>
                <td>{time(stream.at)}</td>
              </tr>
            </tbody>
          </table>
        ) : (
          <p class="empty">This execution streamed nothing.</p>
        )}
      </section>
    </article>
  );
}
