import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  connectionEnvName,
  resolveConnection,
  resolveConnectionWithSources,
  secretValues,
  shopifyManifest,
  userEnvPath,
  DEFAULT_SHOPIFY_API_VERSION,
} from '../../src/connectors/index.js';
import type { ConnectorManifest } from '../../src/core/model.js';
import { MissingSecretError, UsageError } from '../../src/errors.js';
import { thrown } from './helpers.js';

let root: string;
beforeEach(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'alloy-creds-'));
});
afterEach(() => rm(root, { recursive: true, force: true }));

describe('resolveConnection', () => {
  it('reads the process env first, then .env, then defaults', async () => {
    await writeFile(path.join(root, '.env'), 'SHOPIFY_SHOP=dotenv.myshopify.com\nSHOPIFY_ACCESS_TOKEN="shpat_from_dotenv"\n# comment\nSHOPIFY_API_SECRET=dotenv-secret\n');
    const resolved = await resolveConnectionWithSources({
      manifest: shopifyManifest,
      env: { SHOPIFY_SHOP: 'env.myshopify.com' },
      projectRoot: root,
    });
    expect(resolved.values).toEqual({
      shop: 'env.myshopify.com',
      accessToken: 'shpat_from_dotenv',
      apiSecret: 'dotenv-secret',
      apiVersion: DEFAULT_SHOPIFY_API_VERSION,
    });
    expect(resolved.sources).toEqual({ shop: 'env', accessToken: 'dotenv', apiSecret: 'dotenv', apiVersion: 'default' });
  });

  it('a per-user file wins for that user only', async () => {
    await writeFile(path.join(root, '.env'), 'SHOPIFY_SHOP=default.myshopify.com\nSHOPIFY_ACCESS_TOKEN=shpat_default\nSHOPIFY_API_SECRET=app-secret\n');
    await mkdir(path.join(root, 'users'));
    await writeFile(path.join(root, 'users', 'acme-1.env'), 'SHOPIFY_SHOP=acme.myshopify.com\nSHOPIFY_ACCESS_TOKEN=shpat_acme\n');
    const acme = await resolveConnection({ manifest: shopifyManifest, userId: 'acme-1', env: { SHOPIFY_ACCESS_TOKEN: 'shpat_env' }, projectRoot: root });
    expect(acme).toMatchObject({ shop: 'acme.myshopify.com', accessToken: 'shpat_acme', apiSecret: 'app-secret' });
    const other = await resolveConnection({ manifest: shopifyManifest, userId: 'globex', env: {}, projectRoot: root });
    expect(other).toMatchObject({ shop: 'default.myshopify.com', accessToken: 'shpat_default' });
  });

  it('a missing required field names the variable and the file to put it in', async () => {
    const err = await thrown(() => resolveConnection({ manifest: shopifyManifest, env: { SHOPIFY_SHOP: 'x.myshopify.com' }, projectRoot: root }));
    expect(err).toBeInstanceOf(MissingSecretError);
    expect(err.code).toBe('E_MISSING_SECRET');
    expect(err.message).toContain('accessToken (SHOPIFY_ACCESS_TOKEN)');
    expect(err.message).not.toContain('SHOPIFY_API_SECRET'); // optional for actions
    expect(err.hint).toBe('Set SHOPIFY_ACCESS_TOKEN in .env in the project root, or export it in the environment.');
    const forUser = await thrown(() => resolveConnection({ manifest: shopifyManifest, userId: 'acme', env: {}, projectRoot: root }));
    expect(forUser.message).toContain('shop (SHOPIFY_SHOP), accessToken (SHOPIFY_ACCESS_TOKEN)');
    expect(forUser.hint).toContain(path.join('users', 'acme.env'));
  });

  it('an empty value counts as missing', async () => {
    await writeFile(path.join(root, '.env'), 'SHOPIFY_SHOP=\nSHOPIFY_ACCESS_TOKEN=t\n');
    const err = await thrown(() => resolveConnection({ manifest: shopifyManifest, env: {}, projectRoot: root }));
    expect(err.message).toContain('SHOPIFY_SHOP');
  });

  it('never reads a file outside users/ for an id like ../evil', async () => {
    await writeFile(path.join(root, 'evil.env'), 'SHOPIFY_ACCESS_TOKEN=stolen\n');
    await mkdir(path.join(root, 'users'));
    const conn = await resolveConnection({
      manifest: shopifyManifest,
      userId: '../evil',
      env: { SHOPIFY_SHOP: 's.myshopify.com', SHOPIFY_ACCESS_TOKEN: 'shpat_env' },
      projectRoot: root,
    });
    expect(conn.accessToken).toBe('shpat_env');
    expect(() => userEnvPath(root, '../evil')).toThrow(UsageError);
    expect(userEnvPath(root, 'acme+eu@corp.example')).toBe(path.join(root, 'users', 'acme+eu@corp.example.env'));
  });

  it('fields without env use <CONNECTOR>_<FIELD> names; secretValues lists only secret fields', async () => {
    const manifest: ConnectorManifest = {
      apiVersion: 'alloy/v1',
      kind: 'Connector',
      name: 'acme-crm',
      baseUrl: 'https://api.acme.test',
      auth: { type: 'bearer', value: '{{ connection.apiKey }}' },
      connection: { apiKey: { secret: true, required: true }, region: { default: 'eu' } },
    };
    expect(connectionEnvName(manifest, 'apiKey')).toBe('ACME_CRM_API_KEY');
    const conn = await resolveConnection({ manifest, env: { ACME_CRM_API_KEY: 'k-123' }, projectRoot: root });
    expect(conn).toEqual({ apiKey: 'k-123', region: 'eu' });
    expect(secretValues(manifest, conn)).toEqual(['k-123']);
    expect(secretValues(shopifyManifest, { shop: 's', accessToken: 'shpat_1', apiSecret: 'sec', apiVersion: '2025-10' })).toEqual(['shpat_1', 'sec']);
  });
});
