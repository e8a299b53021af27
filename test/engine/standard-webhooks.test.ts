import { describe, expect, it } from 'vitest';
import { signStandardWebhook, standardWebhookHeaders, verifyStandardWebhook } from '../../src/engine/standard-webhooks.js';
import { thirdPartyJson } from '../helpers/fixtures.js';

const vector = thirdPartyJson('standard-webhooks/vector.json') as { secret: string; msg_id: string; timestamp: number; payload: string; expected_signature: string; tolerance_seconds: number };

describe('Standard Webhooks', () => {
  it('reproduces the reference library vector exactly', () => {
    expect(signStandardWebhook(vector.secret, vector.msg_id, vector.timestamp, vector.payload)).toBe(vector.expected_signature);
  });

  it('verifies the vector and rejects a changed body, id or timestamp', () => {
    const headers = {
      'webhook-id': vector.msg_id,
      'webhook-timestamp': String(vector.timestamp),
      'webhook-signature': vector.expected_signature,
    };
    const now = { nowSeconds: vector.timestamp + 10 };
    expect(verifyStandardWebhook(vector.secret, headers, vector.payload, now)).toEqual({ ok: true });
    expect(verifyStandardWebhook(vector.secret, headers, vector.payload.replace('2432', '2433'), now).ok).toBe(false);
    expect(verifyStandardWebhook(vector.secret, { ...headers, 'webhook-id': 'msg_other' }, vector.payload, now).ok).toBe(false);
    const shifted = { ...headers, 'webhook-timestamp': String(vector.timestamp + 1) };
    expect(verifyStandardWebhook(vector.secret, shifted, vector.payload, now)).toEqual({ ok: false, reason: 'no webhook-signature matches' });
  });

  it('enforces the timestamp tolerance both ways', () => {
    const h = standardWebhookHeaders(vector.secret, 'msg_1', 1_000_000, '{}');
    const tol = vector.tolerance_seconds;
    expect(verifyStandardWebhook(vector.secret, h, '{}', { nowSeconds: 1_000_000 + tol }).ok).toBe(true);
    expect(verifyStandardWebhook(vector.secret, h, '{}', { nowSeconds: 1_000_000 + tol + 1 }).reason).toMatch(/webhook-timestamp/);
    expect(verifyStandardWebhook(vector.secret, h, '{}', { nowSeconds: 1_000_000 - tol - 1 }).ok).toBe(false);
  });

  it('accepts any of several space-separated signatures and ignores other versions', () => {
    const h = standardWebhookHeaders(vector.secret, 'msg_2', 2000, 'body');
    const other = signStandardWebhook('whsec_' + Buffer.from('another key').toString('base64'), 'msg_2', 2000, 'body');
    const sig = `v2,${h['webhook-signature'].slice(3)} ${other} v1,short ${h['webhook-signature']}`;
    expect(verifyStandardWebhook(vector.secret, { ...h, 'webhook-signature': sig }, 'body', { nowSeconds: 2000 }).ok).toBe(true);
    expect(verifyStandardWebhook(vector.secret, { ...h, 'webhook-signature': `${other} v1,short` }, 'body', { nowSeconds: 2000 }).ok).toBe(false);
  });

  it('names the missing header', () => {
    expect(verifyStandardWebhook(vector.secret, {}, '', { nowSeconds: 0 }).reason).toBe('missing webhook-id header');
    expect(verifyStandardWebhook(vector.secret, { 'webhook-id': 'x', 'webhook-timestamp': '1' }, '', { nowSeconds: 1 }).reason).toBe(
      'missing webhook-signature header',
    );
  });
});
