/**
 * Reading dotenv files (`.env`, `users/<id>.env`): parsed by node:util parseEnv, never
 * executed. A cloned project may commit `.env` as a link to `/dev/zero` or as a named pipe:
 * read as a plain file, the first grows without end and the second blocks the command for
 * ever. So the file is opened without blocking, must be a regular file (a link to one is
 * fine) of at most 1 MiB, and anything else is a clear E_ENV_FILE, not an internal error.
 */
import { parseEnv } from 'node:util';
import { AlloyError } from '../errors.js';
import { NotRegularFileError, readRegularFile } from './regular-file.js';

export const MAX_ENV_FILE_BYTES = 1024 * 1024;

function envFileError(shown: string, why: string, hint: string): AlloyError {
  return new AlloyError('E_ENV_FILE', `cannot read ${shown}: ${why}`, { hint, details: { path: shown } });
}

/** The file's text, or undefined when it does not exist. `shown` names it in errors. */
export async function readEnvText(file: string, shown = file): Promise<string | undefined> {
  try {
    return (await readRegularFile(file, MAX_ENV_FILE_BYTES)).toString('utf8');
  } catch (err) {
    const notText = `make ${shown} a regular text file of NAME=value lines, or remove it`;
    if (err instanceof NotRegularFileError) {
      if (err.kind === 'folder') throw envFileError(shown, 'it is a folder', notText);
      if (err.kind === 'special') throw envFileError(shown, 'not a regular file (a device, a pipe or a socket)', notText);
      throw envFileError(shown, `it is ${err.size} bytes; env files are limited to ${MAX_ENV_FILE_BYTES}`, `keep ${shown} to NAME=value lines`);
    }
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    if (code === 'EACCES' || code === 'EPERM') throw envFileError(shown, 'permission denied', `make it readable by this user (chmod 600 "${shown}" as its owner)`);
    if (code === 'ELOOP') throw envFileError(shown, 'too many levels of symbolic links', `replace it with a regular file`);
    throw err;
  }
}

/** The variables of a dotenv file (values never undefined), or undefined when it does not exist. */
export async function readEnvFile(file: string, shown = file): Promise<Record<string, string> | undefined> {
  const text = await readEnvText(file, shown);
  if (text === undefined) return undefined;
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(parseEnv(text))) if (v !== undefined) out[k] = v;
  return out;
}
