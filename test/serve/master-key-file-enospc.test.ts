/**
 * Creating the master key file when the disk is full at its fsync: the error reaches the
 * caller and no temp file holding the new key stays in the data folder (it did: only a failed
 * link removed it). fsync is made to fail as a full disk makes it.
 */
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it, vi } from 'vitest';

vi.mock('node:fs', async (importOriginal) => {
  const actual = await importOriginal<typeof import('node:fs')>();
  const fsyncSync = () => {
    throw Object.assign(new Error('ENOSPC: no space left on device, fsync'), { code: 'ENOSPC' });
  };
  return { ...actual, fsyncSync, default: { ...actual, fsyncSync } };
});
const { loadKeyring } = await import('../../src/serve/crypto.js');

describe('master key file creation on a full disk', () => {
  it('fails with the error and leaves no temp file holding a key', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'alloy-key-enospc-'));
    try {
      expect(() => loadKeyring({}, path.join(dir, 'master.keys'))).toThrow(/ENOSPC/);
      expect(readdirSync(dir)).toEqual([]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
