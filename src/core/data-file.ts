/**
 * Reading a file of event data (`alloy emit -d @file`, `alloy run --event @file`, `alloy compare
 * <fixture>.json`, a test's `fixture:`, a project's
 * fixture) without trusting what it is.
 */
import { constants as fsConstants } from 'node:fs';
import { open } from 'node:fs/promises';

/** Event and data files are read whole; past this they are refused rather than filling memory. */
export const MAX_DATA_FILE_BYTES = 64 * 1024 * 1024;

/**
 * A file of event data (`-d @file`, `--event @file`, a project's fixture): a regular file (a
 * link to one is fine) of at most MAX_DATA_FILE_BYTES. A cloned project's fixture may be a
 * named pipe (blocked for ever) or a link to /dev/zero (read until memory ran out): opened
 * without blocking and refused at once, with an error whose message says so (no `code`).
 */
export async function readDataFile(file: string): Promise<Buffer> {
  // O_NONBLOCK: opening a named pipe returns at once instead of waiting for a writer.
  const handle = await open(file, fsConstants.O_RDONLY | (fsConstants.O_NONBLOCK ?? 0));
  try {
    const info = await handle.stat();
    if (!info.isFile()) throw new Error(info.isDirectory() ? 'not a regular file (a folder)' : 'not a regular file (a pipe, a device or a socket)');
    if (info.size > MAX_DATA_FILE_BYTES) throw new Error(`it is ${info.size} bytes; event files are limited to ${MAX_DATA_FILE_BYTES}`);
    const bytes = Buffer.alloc(info.size);
    let read = 0;
    while (read < bytes.length) {
      const { bytesRead } = await handle.read(bytes, read, bytes.length - read, read);
      if (bytesRead === 0) break;
      read += bytesRead;
    }
    return bytes.subarray(0, read);
  } finally {
    await handle.close();
  }
}
