/**
 * The one way tests read third-party fixtures: the copies bundled in this repository under
 * fixtures/third-party/ (provenance and hashes in its README). The directory is the one the
 * shipped fake Shopify reads, so tests and the package see the same bytes.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { FIXTURES_DIR } from '../../src/testing/fake-shopify.js';

export const THIRD_PARTY_FIXTURES = FIXTURES_DIR;

/** Absolute path of a bundled fixture, e.g. thirdPartyFixture('shopify/orders-create.json'). */
export function thirdPartyFixture(rel: string): string {
  return path.join(THIRD_PARTY_FIXTURES, ...rel.split('/'));
}

/** A bundled fixture's raw bytes. */
export function readThirdPartyFixture(rel: string): Buffer {
  return readFileSync(thirdPartyFixture(rel));
}

/** A bundled JSON fixture, parsed. */
export function thirdPartyJson<T = any>(rel: string): T {
  return JSON.parse(readThirdPartyFixture(rel).toString('utf8')) as T;
}
