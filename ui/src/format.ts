export function duration(ms: number | undefined): string {
  if (ms === undefined) return '';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  return `${Math.floor(ms / 60_000)} min ${Math.round((ms % 60_000) / 1000)} s`;
}

// One formatter for every time on the page: `toLocaleString(…, options)` builds a new
// Intl.DateTimeFormat per call, which was most of the cost of painting 50 rows.
let formatter: Intl.DateTimeFormat | undefined;

export function time(iso: string | undefined): string {
  if (!iso) return '';
  formatter ??= new Intl.DateTimeFormat(undefined, { year: 'numeric', month: 'numeric', day: 'numeric', hour: 'numeric', minute: 'numeric', second: 'numeric', hour12: false });
  return formatter.format(new Date(iso));
}

export function json(value: unknown): string {
  return value === undefined ? '' : JSON.stringify(value, null, 2);
}

export const STATUSES = ['queued', 'running', 'succeeded', 'failed', 'filtered'];
