import { randomBytes } from 'node:crypto';

/**
 * Time-sortable ids: `<prefix>_<ms since epoch, base36, 9 chars><12 hex random>`, e.g.
 * `ex_mi0k2v1s3a1b2c3d4e5f6`. Sorting ids sorts by creation time (to the millisecond).
 */
export function newId(prefix: string, now: number): string {
  return `${prefix}_${now.toString(36).padStart(9, '0')}${randomBytes(6).toString('hex')}`;
}
