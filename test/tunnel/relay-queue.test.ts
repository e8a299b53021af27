import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mkdir, readFile, readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { RelayQueue } from '../../src/tunnel/relay-queue.js';
import { tempDir } from './helpers.js';

let dir: string;
let cleanup: () => Promise<void>;
beforeEach(async () => ({ dir, cleanup } = await tempDir('alloy-queue-')));
afterEach(async () => cleanup());

const req = (id: string, at: number, body = 'x') => ({
  id,
  receivedAt: new Date(at).toISOString(),
  method: 'POST',
  path: '/v1/webhooks/shopify',
  headers: [['x-id', id]] as [string, string][],
  body: Buffer.from(body).toString('base64'),
});

const limits = { maxItems: 3, maxBytes: 1_000_000, maxAgeMs: 60_000 };

describe('RelayQueue', () => {
  it('keeps order, survives reopening, and deletes only what is removed', async () => {
    let now = 1_000_000;
    const q = await RelayQueue.open(dir, limits, { now: () => now });
    // Concurrent enqueues still land in call order.
    const results = await Promise.all(['a', 'b', 'c'].map((id) => q.enqueue('alice', req(id, now))));
    expect(results.map((r) => r.ok)).toEqual([true, true, true]);
    expect(q.pending('alice')).toBe(3);
    const first = await q.peek('alice');
    expect(first?.id).toBe('a');
    await q.remove('alice', first!.seq);

    const reopened = await RelayQueue.open(dir, limits, { now: () => now });
    expect(reopened.pending('alice')).toBe(2);
    expect((await reopened.peek('alice'))?.id).toBe('b');
    expect(Buffer.from((await reopened.peek('alice'))!.body, 'base64').toString()).toBe('x');
    // New items continue the sequence after the ones on disk.
    now += 1;
    expect((await reopened.enqueue('alice', req('d', now))).ok).toBe(true);
    const ids: string[] = [];
    for (let item = await reopened.peek('alice'); item; item = await reopened.peek('alice')) {
      ids.push(item.id);
      await reopened.remove('alice', item.seq);
    }
    expect(ids).toEqual(['b', 'c', 'd']);
  });

  it('refuses over the count and byte bounds and records each refusal durably', async () => {
    const q = await RelayQueue.open(dir, { ...limits, maxBytes: 700 }, { now: () => 5 });
    expect((await q.enqueue('bob', req('1', 5))).ok).toBe(true);
    const big = await q.enqueue('bob', req('2', 5, 'y'.repeat(600)));
    expect(big).toEqual({ ok: false, reason: 'bytes' });
    expect((await q.enqueue('bob', req('3', 5))).ok).toBe(true);
    expect((await q.enqueue('bob', req('4', 5))).ok).toBe(true);
    expect(await q.enqueue('bob', req('5', 5))).toEqual({ ok: false, reason: 'items' });
    expect(q.dropped('bob')).toEqual({ overflow: 2, expired: 0, unreadable: 0 });
    const reopened = await RelayQueue.open(dir, limits, { now: () => 5 });
    expect(reopened.dropped('bob')).toEqual({ overflow: 2, expired: 0, unreadable: 0 });
    // Acknowledging subtracts only what was seen.
    await reopened.acknowledgeDropped('bob', { overflow: 1, expired: 0 });
    expect(reopened.dropped('bob')).toEqual({ overflow: 1, expired: 0, unreadable: 0 });
    expect(reopened.dropped('nobody')).toEqual({ overflow: 0, expired: 0, unreadable: 0 });
  });

  it('drops expired requests, counts them and says so', async () => {
    let now = 0;
    const expired: Array<[string, number]> = [];
    const q = await RelayQueue.open(dir, limits, { now: () => now, onExpired: (n, c) => expired.push([n, c]) });
    await q.enqueue('alice', req('old1', 0));
    await q.enqueue('alice', req('old2', 10));
    now = 30_000;
    await q.enqueue('alice', req('fresh', now));
    now = 60_020; // cutoff 20: both old ones are past it
    expect((await q.peek('alice'))?.id).toBe('fresh');
    expect(expired).toEqual([['alice', 2]]);
    expect(q.dropped('alice')).toEqual({ overflow: 0, expired: 2, unreadable: 0 });
    expect(q.pending('alice')).toBe(1);
  });

  it('discards half-written temp files left by a crash', async () => {
    const q = await RelayQueue.open(dir, limits);
    await q.enqueue('alice', req('a', Date.now()));
    await writeFile(path.join(dir, 'alice', '0000000000000002-1.json.123.abc.tmp'), '{"trunc');
    const reopened = await RelayQueue.open(dir, limits);
    expect(reopened.pending('alice')).toBe(1);
    expect((await readdir(path.join(dir, 'alice'))).filter((f) => f.endsWith('.tmp'))).toEqual([]);
  });

  it('moves an unreadable entry aside (.bad, kept), counts it as dropped, says so once, and goes on with the next', async () => {
    const unreadable: Array<[string, string]> = [];
    const q = await RelayQueue.open(dir, limits, { onUnreadable: (name, file) => unreadable.push([name, file]) });
    await q.enqueue('alice', req('a', Date.now()));
    await q.enqueue('alice', req('b', Date.now()));
    const [first] = (await readdir(path.join(dir, 'alice'))).filter((f) => f.endsWith('.json')).sort();
    const text = await readFile(path.join(dir, 'alice', first), 'utf8');
    await writeFile(path.join(dir, 'alice', first), text.slice(0, 40)); // truncated: not JSON

    expect((await q.peek('alice'))?.id).toBe('b');
    expect((await q.peek('alice'))?.id).toBe('b');
    expect(unreadable).toEqual([['alice', `${first}.bad`]]);
    expect(q.pending('alice')).toBe(1);
    expect(q.dropped('alice')).toEqual({ overflow: 0, expired: 0, unreadable: 1 });
    // Kept for inspection, byte for byte, under a name the queue never loads again.
    expect(await readFile(path.join(dir, 'alice', `${first}.bad`), 'utf8')).toBe(text.slice(0, 40));
    const reopened = await RelayQueue.open(dir, limits);
    expect(reopened.pending('alice')).toBe(1);
    expect(reopened.dropped('alice')).toEqual({ overflow: 0, expired: 0, unreadable: 1 });
    await reopened.acknowledgeDropped('alice', { overflow: 0, expired: 0, unreadable: 1 });
    expect(reopened.dropped('alice')).toEqual({ overflow: 0, expired: 0, unreadable: 0 });
  });

  it('treats valid JSON that is not a queued request as unreadable too', async () => {
    const q = await RelayQueue.open(dir, limits);
    await q.enqueue('alice', req('a', Date.now()));
    const [first] = (await readdir(path.join(dir, 'alice'))).filter((f) => f.endsWith('.json'));
    await writeFile(path.join(dir, 'alice', first), '{"id": 42}');
    expect(await q.peek('alice')).toBeUndefined();
    expect(q.dropped('alice').unreadable).toBe(1);
    expect((await readdir(path.join(dir, 'alice'))).sort()).toEqual([`${first}.bad`, 'dropped.json']);
  });

  it('fails (and moves nothing) when the unreadable entry cannot be moved aside', async () => {
    const q = await RelayQueue.open(dir, limits);
    await q.enqueue('alice', req('a', Date.now()));
    const [first] = (await readdir(path.join(dir, 'alice'))).filter((f) => f.endsWith('.json'));
    await writeFile(path.join(dir, 'alice', first), '{"trunc');
    // A non-empty directory where the .bad file would go: rename fails (EISDIR/ENOTEMPTY), even as root.
    await mkdir(path.join(dir, 'alice', `${first}.bad`, 'x'), { recursive: true });
    await expect(q.peek('alice')).rejects.toThrow();
    expect(q.pending('alice')).toBe(1);
    expect(await readFile(path.join(dir, 'alice', first), 'utf8')).toBe('{"trunc');
  });
});
