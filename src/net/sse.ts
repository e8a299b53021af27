/**
 * Server-sent events (https://html.spec.whatwg.org/multipage/server-sent-events.html):
 * formatting one event, and an incremental parser for a stream of them. Pure (no Node or
 * DOM imports), so the runtime, `alloy logs -f` and the web UI (ui/) share it.
 */

export interface SseMessage {
  /** `message` when the stream names none. */
  event: string;
  data: string;
  id?: string;
}

/** One event as it goes on the wire; `data` is split on newlines as the spec requires. */
export function formatSse(message: { event?: string; data: string; id?: string | number }): string {
  let out = '';
  if (message.event) out += `event: ${message.event}\n`;
  if (message.id !== undefined) out += `id: ${message.id}\n`;
  for (const line of message.data.split(/\r\n|\r|\n/)) out += `data: ${line}\n`;
  return `${out}\n`;
}

/**
 * Feed text chunks in (split anywhere); `onMessage` gets each complete event. Comments
 * (`: keep-alive`) and unknown fields are ignored, as the spec says.
 */
export function createSseParser(onMessage: (message: SseMessage) => void): (chunk: string) => void {
  let buffer = '';
  let event = '';
  let data: string[] = [];
  let id: string | undefined;
  const dispatch = () => {
    if (data.length) onMessage({ event: event || 'message', data: data.join('\n'), ...(id !== undefined ? { id } : {}) });
    event = '';
    data = [];
    id = undefined;
  };
  return (chunk: string) => {
    buffer += chunk;
    for (;;) {
      const m = /\r\n|\r|\n/.exec(buffer);
      if (!m) return;
      // A lone \r at the very end may be the first half of \r\n: wait for the next chunk.
      if (m[0] === '\r' && m.index === buffer.length - 1) return;
      const line = buffer.slice(0, m.index);
      buffer = buffer.slice(m.index + m[0].length);
      if (line === '') {
        dispatch();
        continue;
      }
      if (line.startsWith(':')) continue;
      const colon = line.indexOf(':');
      const field = colon === -1 ? line : line.slice(0, colon);
      let value = colon === -1 ? '' : line.slice(colon + 1);
      if (value.startsWith(' ')) value = value.slice(1);
      if (field === 'event') event = value;
      else if (field === 'data') data.push(value);
      else if (field === 'id' && !value.includes('\0')) id = value;
    }
  };
}
