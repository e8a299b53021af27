/**
 * Reading a file of event data (`alloy emit -d @file`, `alloy run --event @file`, `alloy
 * compare <fixture>.json`, a test's `fixture:`, a project's fixture) without trusting what it is.
 */
import { NotRegularFileError, readRegularFile } from './regular-file.js';

/** Event and data files are read whole; past this they are refused rather than filling memory. */
export const MAX_DATA_FILE_BYTES = 64 * 1024 * 1024;

/**
 * A file of event data (`-d @file`, `--event @file`, a project's fixture): a regular file (a
 * link to one is fine) of at most MAX_DATA_FILE_BYTES. A cloned project's fixture may be a
 * named pipe (blocked for ever) or a link to /dev/zero (read until memory ran out): opened
 * without blocking and refused at once, with an error whose message says so (no `code`).
 */
export async function readDataFile(file: string): Promise<Buffer> {
  try {
    return await readRegularFile(file, MAX_DATA_FILE_BYTES);
  } catch (err) {
    if (err instanceof NotRegularFileError && err.kind === 'too-large') throw new Error(`it is ${err.size} bytes; event files are limited to ${MAX_DATA_FILE_BYTES}`);
    throw err;
  }
}
