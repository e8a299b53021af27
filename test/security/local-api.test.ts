/**
 * A web page cannot drive the local API: a foreign Host (DNS rebinding) is refused, state-
 * changing routes need JSON (a cross-site form cannot send it without a preflight), a
 * committed non-loopback dev.host is refused, and .alloy/ is 0700 with 0600 files.
 */
import { mkdtempSync, rmSync, statSync, readdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { http } from '../server/helpers.js';
import { devHost } from '../../src/cli/commands/dev.js';
import { loadOrCreateIngressSecret, loadOrCreateStreamSecret, prepareDevLogFile, writeDevInfo } from '../../src/server/dev-state.js';
import { openEventLog } from '../../src/server/event-log.js';
import { allowedHost } from '../../src/server/runtime-server.js';
import { startRuntime } from './helpers.js';

const JSON_TYPE = { 'content-type': 'application/json' };

describe('Host and content-type checks', () => {
  let rt: Awaited<ReturnType<typeof startRuntime>>;
  beforeEach(async () => (rt = await startRuntime()));
  afterEach(async () => rt.cleanup());

  it('refuses a foreign Host (DNS rebinding) on every API route, and serves loopback names', async () => {
    await http('POST', `${rt.base}/v1/run/event`, JSON.stringify({ event: 'acme.order.requested', data: {} }), JSON_TYPE);
    for (const route of ['/v1/executions', '/v1/logs', '/healthz']) {
      const res = await http('GET', `${rt.base}${route}`, undefined, { host: 'attacker.example' });
      expect([route, res.status, res.json.error.code]).toEqual([route, 403, 'E_HOST_NOT_ALLOWED']);
      expect(res.text).not.toContain('acme.order.requested');
    }
    const port = new URL(rt.base).port;
    for (const host of [`localhost:${port}`, `127.0.0.1:${port}`, `[::1]:${port}`, `app.localhost:${port}`]) {
      expect((await http('GET', `${rt.base}/v1/executions`, undefined, { host })).status).toBe(200);
    }
  });

  it('refuses a cross-site form POST (replay, events) that is not JSON', async () => {
    const accepted = await http('POST', `${rt.base}/v1/run/event`, JSON.stringify({ event: 'acme.order.requested', data: {} }), JSON_TYPE);
    const id = accepted.json.executions[0].id;
    const form = await http('POST', `${rt.base}/v1/executions/${id}/replay`, 'a=1', { 'content-type': 'application/x-www-form-urlencoded' });
    expect([form.status, form.json.error.code]).toEqual([415, 'E_UNSUPPORTED_MEDIA_TYPE']);
    const plain = await http('POST', `${rt.base}/v1/executions/${id}/replay`, '{}', { 'content-type': 'text/plain' });
    expect(plain.status).toBe(415);
    expect(rt.server.log.listExecutions({ limit: 10 })).toHaveLength(1);
    expect((await http('POST', `${rt.base}/v1/executions/${id}/replay`, '{}', JSON_TYPE)).status).toBe(202);
  });

  it('allowedHost: loopback names, IP literals and the configured host only', () => {
    expect(allowedHost('attacker.example:4000', '127.0.0.1')).toBe(false);
    expect(allowedHost('localhost.attacker.example', undefined)).toBe(false);
    expect(allowedHost('dev.box:4000', 'dev.box')).toBe(true);
    expect(allowedHost('192.168.1.20:4000', '0.0.0.0')).toBe(true);
  });
});

describe('binding beyond loopback', () => {
  it('a committed dev.host 0.0.0.0 alone is refused with a hint; --host is honoured', () => {
    let err: any;
    try {
      devHost(undefined, '0.0.0.0');
    } catch (e) {
      err = e;
    }
    expect([err?.code, err?.exitCode, err?.hint]).toEqual(['E_DEV_HOST', 2, expect.stringContaining('alloy dev --host 0.0.0.0')]);
    expect(devHost('0.0.0.0', '127.0.0.1')).toBe('0.0.0.0');
    expect(devHost(undefined, undefined)).toBe('127.0.0.1');
    expect(devHost(undefined, 'localhost')).toBe('localhost');
  });
});

describe('.alloy is private', () => {
  let root: string;
  beforeEach(() => (root = mkdtempSync(path.join(os.tmpdir(), 'alloy-sec-perm-'))));
  afterEach(() => rmSync(root, { recursive: true, force: true }));

  it('creates .alloy 0700 and its files 0600, the event log with its -wal and -shm included', async () => {
    loadOrCreateStreamSecret(root);
    loadOrCreateIngressSecret(root);
    writeDevInfo(root, { url: 'http://127.0.0.1:1', pid: process.pid, startedAt: new Date().toISOString() });
    const log = openEventLog({ file: prepareDevLogFile(root) });
    await log.appendDelivery({ id: 'dl_1', source: 'event', name: 'x', receivedAt: Date.now(), headers: {}, body: Buffer.from('{}'), verification: 'none' }, []);
    const dir = path.join(root, '.alloy');
    expect(statSync(dir).mode & 0o777).toBe(0o700);
    const files = readdirSync(dir);
    expect(files).toEqual(expect.arrayContaining(['dev.sqlite', 'dev.sqlite-wal', 'stream-secret', 'ingress-secret', 'dev.json']));
    for (const f of files) expect([f, statSync(path.join(dir, f)).mode & 0o777]).toEqual([f, 0o600]);
    log.close();
  });
});
