/**
 * Secret config values of every JSON type are redacted from what the engine records: a number,
 * and the leaves of an object or array (a workflow reads `{{ config.creds.key }}`), not only a
 * whole string value.
 */
import { describe, expect, it } from 'vitest';
import type { IntegrationDef } from '../../src/core/model.js';
import { createRedactor, REDACTED } from '../../src/engine/index.js';
import { openConfig, sealConfig } from '../../src/serve/config-values.js';
import { makeKeyring, parseMasterKey } from '../../src/serve/crypto.js';
import type { InstallationRecord } from '../../src/serve/state/types.js';

const keyring = makeKeyring([parseMasterKey(Buffer.alloc(32, 9).toString('base64'), 'test')]);

const def = {
  apiVersion: 'alloy/v1',
  kind: 'Integration',
  name: 'cfg',
  app: 'shopify',
  config: {
    pin: { type: 'integer', secret: true },
    creds: { type: 'object', secret: true, properties: { key: { type: 'string' }, list: { type: 'array' } } },
    flag: { type: 'boolean', secret: true },
    label: { type: 'string' },
  },
} as unknown as IntegrationDef;

function installation(values: Record<string, unknown>): InstallationRecord {
  return { id: 'inst_1', config: sealConfig(keyring, 'inst_1', values) } as unknown as InstallationRecord;
}

describe('secret config values', () => {
  it('redacts a secret number and every leaf of a secret object wherever a step echoes it', () => {
    const { secretValues } = openConfig(keyring, installation({ pin: 98765432, creds: { key: 'OBJ-KEY-123', list: ['LIST-SECRET-1', 424242] }, flag: true, label: 'visible-label' }), def);
    const r = createRedactor(Object.values(secretValues));
    const out = r.value({ echoPin: 98765432, pinText: 'pin 98765432', key: 'OBJ-KEY-123', inText: 'x OBJ-KEY-123 y', list: ['LIST-SECRET-1', 424242], label: 'visible-label', other: 12, ok: 'true' });
    expect(out).toEqual({ echoPin: REDACTED, pinText: `pin ${REDACTED}`, key: REDACTED, inText: `x ${REDACTED} y`, list: [REDACTED, REDACTED], label: 'visible-label', other: 12, ok: 'true' });
  });

  it('a secret boolean does not make every "true" in a record secret', () => {
    const { secretValues } = openConfig(keyring, installation({ flag: true }), def);
    expect(createRedactor(Object.values(secretValues)).value({ a: 'true', b: 'it is true' })).toEqual({ a: 'true', b: 'it is true' });
  });
});
