/** Small pieces the views share. */

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
