/** One event-stream connection for the whole page; views subscribe to what they show. */
import type { SseMessage } from '../../src/net/sse.js';
import type { Api } from './api.js';

type Listener = (m: SseMessage) => void;

export function createLive(api: Api, onState: (connected: boolean) => void) {
  const listeners = new Set<Listener>();
  api.subscribe((m) => {
    for (const l of listeners) l(m);
  }, onState);
  return {
    on(l: Listener): () => void {
      listeners.add(l);
      return () => listeners.delete(l);
    },
  };
}

export type Live = ReturnType<typeof createLive>;
