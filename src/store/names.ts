import { BadStoreInputError } from './errors.js';

/** Same rule as schemas/integration.schema.json `name`; it is also a safe path segment. */
export const INTEGRATION_NAME = /^[a-z0-9][a-z0-9-]{0,63}$/;

export function assertIntegrationName(name: string): string {
  if (!INTEGRATION_NAME.test(name)) {
    throw new BadStoreInputError(
      `"${name}" is not a valid integration name`,
      'Integration names are lowercase letters, digits and dashes (at most 64), as in integration.yaml.',
    );
  }
  return name;
}

export function assertVersionNumber(version: number): number {
  if (!Number.isSafeInteger(version) || version < 1) {
    throw new BadStoreInputError(`"${version}" is not a version number`, 'Versions are whole numbers from 1: use int@3.');
  }
  return version;
}
