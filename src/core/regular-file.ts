/**
 * Reading a file a cloned project may have planted as something else (`.env`, an event
 * fixture): a named pipe blocks a plain read for ever and a link to /dev/zero reads without
 * end. So the file is opened without blocking and must be a regular file (a link to one is
 * fine) within a size limit, checked on the open handle before anything is read.
 */
import { constants as fsConstants } from 'node:fs';
import { open } from 'node:fs/promises';

/** Why readRegularFile refused a file that exists; no `code`, so callers tell it from an errno error. */
export class NotRegularFileError extends Error {
  constructor(
    readonly kind: 'folder' | 'special' | 'too-large',
    readonly size = 0,
    readonly maxBytes = 0,
  ) {
    super(kind === 'folder' ? 'not a regular file (a folder)' : kind === 'special' ? 'not a regular file (a pipe, a device or a socket)' : `it is ${size} bytes; the limit is ${maxBytes}`);
    this.name = 'NotRegularFileError';
  }
}

/**
 * The bytes of `file`, a regular file of at most `maxBytes`. Throws NotRegularFileError for a
 * folder, a pipe, a device, a socket or a larger file; the errno error of a failed open as it is.
 */
export async function readRegularFile(file: string, maxBytes: number): Promise<Buffer> {
  // O_NONBLOCK: opening a named pipe returns at once instead of waiting for a writer.
  const handle = await open(file, fsConstants.O_RDONLY | (fsConstants.O_NONBLOCK ?? 0));
  try {
    const info = await handle.stat();
    if (!info.isFile()) throw new NotRegularFileError(info.isDirectory() ? 'folder' : 'special');
    if (info.size > maxBytes) throw new NotRegularFileError('too-large', info.size, maxBytes);
    const bytes = Buffer.alloc(info.size);
    let read = 0;
    while (read < bytes.length) {
      const { bytesRead } = await handle.read(bytes, read, bytes.length - read, read);
      if (bytesRead === 0) break;
      read += bytesRead;
    }
    return bytes.subarray(0, read);
  } catch (err) {
    // Where a folder opens but stat did not say so, the read does.
    if ((err as NodeJS.ErrnoException).code === 'EISDIR') throw new NotRegularFileError('folder');
    throw err;
  } finally {
    await handle.close();
  }
}
