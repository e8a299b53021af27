/**
 * Reconnect storms: an old connection's drain peeks while the new one's drain removes the
 * same delivered entry. The file vanishing under the peek is a delivery, not a drop: no
 * phantom "unreadable" report without a `.bad` file (12,000 reconnects gave 10 such reports).
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { RelayQueue } from '../../src/tunnel/relay-queue.js';
import { tempDir } from '../tunnel/helpers.js';

let dir: string;
let cleanup: () => Promise<void>;
beforeEach(async () => ({ dir, cleanup } = await tempDir('alloy-sec-queue-')));
afterEach(async () => cleanup());

const req = (id: string) => ({
  id,
  receivedAt: new Date().toISOString(),
  method: 'POST',
  path: '/v1/webhooks/shopify',
  headers: [['x-id', id]] as [string, string][],
  body: Buffer.from('{}').toString('base64'),
});

describe('relay queue under concurrent peek and remove', () => {
  it('never counts a delivered entry as unreadable', async () => {
    const unreadable: string[] = [];
    const q = await RelayQueue.open(dir, { maxItems: 10_000, maxBytes: 1e9, maxAgeMs: 3_600_000 }, { onUnreadable: (_n, file, why) => unreadable.push(`${file}: ${why}`) });
    for (let i = 0; i < 300; i++) {
      await q.enqueue('alice', req(`r${i}`));
      const item = (await q.peek('alice'))!;
      // The new connection's drain acknowledges (remove) while the old one peeks again.
      // Peeks start at staggered points so one reads just after the unlink, before remove() returns.
      const later = async (ticks: number) => {
        for (let t = 0; t < ticks; t++) await new Promise((r) => setImmediate(r));
        return q.peek('alice');
      };
      await Promise.all([q.remove('alice', item.seq), q.peek('alice'), later(0), later(1), later(2), later(3)]);
    }
    const bad = (await readdir(path.join(dir, 'alice'))).filter((f) => f.endsWith('.bad'));
    expect({ unreadable, dropped: q.dropped('alice').unreadable, bad }).toEqual({ unreadable: [], dropped: 0, bad: [] });
    expect(q.pending('alice')).toBe(0);
  });
});
