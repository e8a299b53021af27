/** Small pieces the views share. */
import { useEffect, useState } from 'preact/hooks';

export function TableHead({ columns }: { columns: string[] }) {
  return (
    <thead>
      <tr>
        {columns.map((c) => (
          <th scope="col">{c}</th>
        ))}
      </tr>
    </thead>
  );
}

/** An error message, announced to screen readers. */
export function Alert({ message }: { message: string | undefined }) {
  if (!message) return null;
  return (
    <p class="error" role="alert">
      {message}
    </p>
  );
}

/** A labelled select; options are [value, text] pairs. */
export function Choice({ label, value, options, onChange }: { label: string; value: string; options: [string, string][]; onChange: (e: Event) => void }) {
  return (
    <label>
      {label}
      <select value={value} onChange={onChange}>
        {options.map(([v, text]) => (
          <option value={v}>{text}</option>
        ))}
      </select>
    </label>
  );
}

/**
 * A cursor-paged list (the Embedded API's `nextCursor`): the first page on mount and whenever
 * `deps` change, `more()` appends the next. `setRows` lets a view replace a row it changed.
 */
export function usePagedList<T>(page: (cursor?: string) => Promise<{ rows: T[]; nextCursor?: string }>, deps: unknown[]) {
  const [rows, setRows] = useState<T[]>([]);
  const [cursor, setCursor] = useState<string | undefined>();
  const [error, setError] = useState<string | undefined>();
  const [loading, setLoading] = useState(true);
  const load = (more?: string) =>
    page(more).then(
      (p) => {
        setRows((list) => (more ? [...list, ...p.rows] : p.rows));
        setCursor(p.nextCursor);
        setError(undefined);
        setLoading(false);
      },
      (err: Error) => {
        setError(err.message);
        setLoading(false);
      },
    );
  useEffect(() => {
    setLoading(true);
    void load();
  }, deps);
  return { rows, setRows, cursor, error, loading, more: () => void load(cursor) };
}
