/**
 * One error class per store failure, each with a stable code and a hint that names the fix
 * (cf. isomorphic-git's src/errors/*). All extend StoreError from src/errors.ts so the CLI's
 * one error handler prints them without a stack trace.
 */
import { EXIT_FAILURE, EXIT_USAGE, StoreError } from '../errors.js';

export { StoreError };

/** An object file whose bytes no longer hash to its name, or that does not parse. */
export class CorruptObjectError extends StoreError {
  constructor(
    readonly objectId: string,
    readonly file: string,
    reason: string,
  ) {
    super('E_STORE_CORRUPT', `object ${objectId} is corrupt (${reason}): ${file}`, {
      hint: 'The file was changed after it was written. Restore it from a backup or another store (objects never change), then run `alloy fsck`.',
      details: { object: objectId, file, reason },
    });
  }
}

/** A ref or release names an object that is not in the store. */
export class MissingObjectError extends StoreError {
  constructor(
    readonly objectId: string,
    where: string,
  ) {
    super('E_STORE_MISSING_OBJECT', `object ${objectId} is missing from the store (${where})`, {
      hint: 'Run `alloy fsck` to list every problem; copy the object from another store that has it.',
      details: { object: objectId, where },
    });
  }
}

/** versions/<n> already exists: released versions are never rewritten. */
export class VersionExistsError extends StoreError {
  constructor(
    readonly integration: string,
    readonly version: number,
  ) {
    super('E_STORE_VERSION_EXISTS', `${integration} v${version} already exists; a released version is never rewritten`, {
      hint: 'Re-run `alloy release`: it compares against the newest version and makes the next one.',
      details: { integration, version },
    });
  }
}

/** Another release made the version this one meant to create (remote stores, no shared lock). */
export class RaceLostError extends StoreError {
  constructor(
    readonly integration: string,
    readonly version: number,
  ) {
    super(
      'E_STORE_RACE_LOST',
      `another release created ${integration} v${version} while this one was running; nothing was changed by this run`,
      {
        hint: 'Re-run `alloy release`: it will compare against the new latest version and release only if your definitions differ.',
        details: { integration, version },
      },
    );
  }
}

/** The published pointer moved since it was read (compare-and-swap failed). */
export class PublishConflictError extends StoreError {
  constructor(
    readonly integration: string,
    readonly expected: string | null,
    readonly actual: string | null,
  ) {
    super('E_STORE_PUBLISH_CONFLICT', `the published version of ${integration} changed while this command ran`, {
      hint: 'Someone else published at the same time. Check `alloy versions` and re-run the command.',
      details: { integration, expected, actual },
    });
  }
}

/** A lock file is held by a live process (or a recent one) past the wait bound. */
export class LockTimeoutError extends StoreError {
  constructor(
    readonly file: string,
    holder: string,
  ) {
    super('E_STORE_LOCKED', `the store is locked by ${holder}: ${file}`, {
      hint: 'Another alloy command is writing this store; wait for it. If no alloy process is running, delete the lock file.',
      details: { file },
    });
  }
}

/** The holder's lock was broken as stale (it was too slow) and may now be someone else's. */
export class LockLostError extends StoreError {
  constructor(readonly file: string) {
    super('E_STORE_LOCK_LOST', `this process no longer holds the lock ${file} (it was judged stale and broken); nothing more was written`, {
      hint: 'Another alloy command took over the lock; check the result with `alloy status` and re-run the command.',
      details: { file },
    });
  }
}

/** A version / integration / workflow that does not exist in the store. */
export class StoreNotFoundError extends StoreError {
  constructor(message: string, hint: string) {
    super('E_STORE_NOT_FOUND', message, { hint, exitCode: EXIT_FAILURE });
  }
}

/** `int@ver` strings, integration names and other user input the store can't accept. */
export class BadStoreInputError extends StoreError {
  constructor(message: string, hint: string) {
    super('E_STORE_BAD_INPUT', message, { hint, exitCode: EXIT_USAGE });
  }
}

export interface SecretFinding {
  file: string;
  /** JSON pointer of the field, e.g. `/stream/secret`. */
  field: string;
  /** What it looks like (never the value). */
  kind: string;
}

/** Definitions hold values that look like credentials; they must never reach a stored object. */
export class LiteralSecretError extends StoreError {
  constructor(readonly findings: SecretFinding[]) {
    const first = findings[0];
    super(
      'E_LITERAL_SECRET',
      findings.length === 1
        ? `${first.file}: field ${first.field} holds what looks like a ${first.kind}; refusing to release it`
        : `${findings.length} fields hold what look like literal secrets; refusing to release them`,
      {
        hint: 'Replace the value with a reference such as "{{ secrets.NAME }}" and keep the value in .env or your secret manager.',
        exitCode: EXIT_USAGE,
        details: { findings },
      },
    );
  }
}

/** The remote store answered with an error (auth, limits, validation), or could not be reached. */
export class RemoteStoreError extends StoreError {
  constructor(
    code: string,
    message: string,
    readonly status: number | undefined,
    hint: string,
  ) {
    super(code, message, { hint, details: status === undefined ? undefined : { status } });
  }
}

/** A rollback with no version to go back to (nothing published, or only one version ever published). */
export class NothingToRollBackError extends StoreError {
  constructor(message: string, hint: string) {
    super('E_ROLLBACK_NOTHING', message, { hint, exitCode: EXIT_FAILURE });
  }
}
