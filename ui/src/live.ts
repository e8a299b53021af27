/**
 * One event-stream connection for the whole page; views subscribe to what they show.
 * Each (re)connection is announced as a synthetic `open` message: views re-read then, so
 * nothing that happened while the stream was down (or before it first opened) is missed.
 */
import type { SseMessage } from '../../src/net/sse.js';
import type { Api } from './api.js';

type Listener = (m: SseMessage) => void;

export function createLive(api: Api, onState: (connected: boolean) => void) {
  const listeners = new Set<Listener>();
  const send = (m: SseMessage) => {
    for (const l of listeners) l(m);
  };
  const stop = api.subscribe(send, (connected) => {
    onState(connected);
    if (connected) send({ event: 'open', data: '' });
  });
  return {
    /** Ends the stream (signing out). */
    close: stop,
    on(l: Listener): () => void {
      listeners.add(l);
      return () => listeners.delete(l);
    },
  };
}

export type Live = ReturnType<typeof createLive>;
