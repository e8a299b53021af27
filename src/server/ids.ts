import { randomFillSync } from 'node:crypto';

/**
 * Random bytes drawn in blocks: one CSPRNG call (and one hex encoding) per 512 ids instead of
 * one per id; each id takes its 12 hex characters from the block's text.
 */
const POOL_BYTES = 6 * 512;
const pool = Buffer.alloc(POOL_BYTES);
let poolHex = '';
let offset = POOL_BYTES;

/**
 * Time-sortable ids: `<prefix>_<ms since epoch, base36, 9 chars><12 hex random>`, e.g.
 * `ex_mi0k2v1s3a1b2c3d4e5f6`. Sorting ids sorts by creation time (to the millisecond).
 */
export function newId(prefix: string, now: number): string {
  if (offset + 6 > POOL_BYTES) {
    randomFillSync(pool);
    poolHex = pool.toString('hex');
    offset = 0;
  }
  const random = poolHex.slice(2 * offset, 2 * offset + 12);
  offset += 6;
  return `${prefix}_${now.toString(36).padStart(9, '0')}${random}`;
}

/** The smallest id with `prefix` made at `ms` or later: a cursor bound for "since a time". */
export function idFloor(prefix: string, ms: number): string {
  return `${prefix}_${Math.max(0, Math.floor(ms)).toString(36).padStart(9, '0')}`;
}

/** When an id from newId was made (ms since epoch), or undefined for an id of another shape. */
export function idTime(id: string): number | undefined {
  const m = /^[a-z]+_([0-9a-z]{9})[0-9a-f]{12}$/.exec(id);
  return m ? parseInt(m[1], 36) : undefined;
}
