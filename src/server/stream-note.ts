/**
 * What execution lines say about a stream delivery (`alloy dev`, `emit --wait`, `executions`,
 * `logs`): its outcome and, when it failed, why (`E_NETWORK: connect ECONNREFUSED
 * 127.0.0.1:4100`, or the status and body excerpt of an HTTP error). Kept in summaries and
 * log entries so every view can show it.
 */
export interface StreamNote {
  status: string;
  error?: string;
}

/** A record's stream delivery as a StreamNote (undefined when there is none). */
export function streamNote(stream: { status: string; error?: { message: string } } | undefined): StreamNote | undefined {
  return stream ? { status: stream.status, ...(stream.error ? { error: stream.error.message } : {}) } : undefined;
}
