/**
 * Nesting is bounded: JSON deeper than JSON_MAX_DEPTH is refused at ingest (400
 * E_JSON_TOO_DEEP) without recursion, nothing is stored, and every stored record stays readable.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { JSON_MAX_DEPTH, jsonTooDeep, valueTooDeep } from '../../src/core/json-depth.js';
import { parseJson, PARSE_FIRST_MAX_BYTES } from '../../src/http/body.js';
import { signIngress } from '../../src/server/client.js';
import { http } from '../server/helpers.js';
import { INGRESS_SECRET, startRuntime } from './helpers.js';

const JSON_TYPE = { 'content-type': 'application/json' };
const nested = (depth: number) => `${'['.repeat(depth)}1${']'.repeat(depth)}`;

let rt: Awaited<ReturnType<typeof startRuntime>> | undefined;
afterEach(async () => rt?.cleanup());

describe('JSON depth limit', () => {
  it('refuses an event nested 500,000 levels deep with 400 E_JSON_TOO_DEEP and stores nothing', async () => {
    rt = await startRuntime({ bodyLimit: 2 * 1024 * 1024 });
    const body = `{"event":"acme.order.requested","data":{"x":${nested(500_000)}}}`;
    const res = await http('POST', `${rt.base}/v1/run/event`, body, JSON_TYPE);
    expect([res.status, res.json.error.code]).toEqual([400, 'E_JSON_TOO_DEEP']);
    const custom = await http('POST', `${rt.base}/v1/webhooks/custom/secret-hook-name`, nested(500_000), JSON_TYPE);
    expect(custom.status).toBe(400);
    const viaTunnel = await http('POST', `${rt.ingress}/v1/run/event`, body, signIngress(JSON_TYPE, body, INGRESS_SECRET));
    expect(viaTunnel.status).toBe(400);
    expect(rt.server.log.countDeliveries()).toBe(0);
  });

  it('accepts the limit itself, and that record reads back', async () => {
    rt = await startRuntime();
    // body {event, data:{x: …}}: two levels above x.
    const body = `{"event":"acme.order.requested","data":{"x":${nested(JSON_MAX_DEPTH - 2)}}}`;
    const res = await http('POST', `${rt.base}/v1/run/event`, body, JSON_TYPE);
    expect(res.status).toBe(202);
    const got = await http('GET', `${rt.base}/v1/executions/${res.json.executions[0].id}?wait=5000`);
    expect(got.status).toBe(200);
    const over = `{"event":"acme.order.requested","data":{"x":${nested(JSON_MAX_DEPTH - 1)}}}`;
    expect((await http('POST', `${rt.base}/v1/run/event`, over, JSON_TYPE)).status).toBe(400);
  });

  it('small bodies (parsed first, depth checked on the value) and large ones (scanned first) give the same answers', () => {
    for (const size of [1_000, PARSE_FIRST_MAX_BYTES * 2]) {
      const pad = 'x'.repeat(size);
      const doc = (depth: number) => Buffer.from(`{"pad":"${pad}","x":${nested(depth - 1)}}`);
      expect(parseJson(doc(JSON_MAX_DEPTH))).toMatchObject({ pad });
      expect(() => parseJson(doc(JSON_MAX_DEPTH + 1))).toThrow(expect.objectContaining({ code: 'E_JSON_TOO_DEEP' }));
      // Too deep and not JSON (unclosed): too deep either way; merely not JSON: E_BAD_JSON.
      expect(() => parseJson(Buffer.from(`{"pad":"${pad}","x":${'['.repeat(JSON_MAX_DEPTH + 5)}`))).toThrow(expect.objectContaining({ code: 'E_JSON_TOO_DEEP' }));
      expect(() => parseJson(Buffer.from(`{"pad":"${pad}",`))).toThrow(expect.objectContaining({ code: 'E_BAD_JSON' }));
      // Brackets inside strings are text.
      expect(parseJson(Buffer.from(JSON.stringify({ pad, s: '['.repeat(1000) })))).toMatchObject({ pad });
    }
    expect(valueTooDeep(JSON.parse(nested(5)), 5)).toBe(false);
    expect(valueTooDeep(JSON.parse(nested(5)), 4)).toBe(true);
    expect(valueTooDeep(JSON.parse('{"a":{"b":[{"c":1}]}}'), 3)).toBe(true);
    expect(valueTooDeep('[[[[', 1)).toBe(false);
  });

  it('counts brackets inside strings as text, not nesting', () => {
    expect(jsonTooDeep(JSON.stringify({ s: '['.repeat(10_000) }), 4)).toBe(false);
    expect(jsonTooDeep(JSON.stringify({ s: '\\"[[[[' }), 1)).toBe(false);
    expect(jsonTooDeep(nested(5), 4)).toBe(true);
  });
});

describe('JSON depth limit in alloy serve', () => {
  it('refuses a run/event nested 500,000 levels deep with 400 E_JSON_TOO_DEEP (the shared HTTP kit checks it)', async () => {
    const { startTestServe, cleanup } = await import('../serve/helpers.js');
    const serve = await startTestServe();
    try {
      const body = `{"event":"acme.order.requested","userId":"u1","data":{"x":${nested(500_000)}}}`;
      const res = await fetch(`${serve.url}/v1/run/event`, { method: 'POST', headers: { ...JSON_TYPE, authorization: `Bearer ${serve.admin}` }, body });
      const answer = (await res.json()) as { error: { code: string } };
      expect([res.status, answer.error.code]).toEqual([400, 'E_JSON_TOO_DEEP']);
      // The limit itself still parses.
      const ok = await fetch(`${serve.url}/v1/run/event`, { method: 'POST', headers: { ...JSON_TYPE, authorization: `Bearer ${serve.admin}` }, body: `{"event":"acme.order.requested","userId":"u1","data":{"x":${nested(JSON_MAX_DEPTH - 3)}}}` });
      expect(ok.status).not.toBe(400);
    } finally {
      await serve.close();
      cleanup();
    }
  });
});

describe('JSON depth limit in the CLI (alloy emit -d, alloy run --event)', () => {
  it('refuses a file nested 100,000 levels deep with E_JSON_TOO_DEEP (exit 2); emit overflowed the stack ("internal error")', async () => {
    const { copyExample, runInProcess } = await import('../helpers/cli.js');
    const { writeFileSync } = await import('node:fs');
    const pathMod = await import('node:path');
    const { dir, cleanup } = await copyExample();
    try {
      writeFileSync(pathMod.join(dir, 'deep-array.json'), `${'['.repeat(100_000)}${']'.repeat(100_000)}`);
      writeFileSync(pathMod.join(dir, 'deep-object.json'), `${'{"a":'.repeat(100_000)}1${'}'.repeat(100_000)}`);
      const emit = await runInProcess(['emit', 'acme.order.requested', '-d', '@deep-array.json', '--to', 'http://127.0.0.1:9'], { cwd: dir });
      expect(emit.code).toBe(2);
      expect(emit.stderr).toContain('E_JSON_TOO_DEEP');
      expect(emit.stderr).not.toContain('internal error');
      // Exactly the receiver's limit: the {event, data} envelope adds one level, so emit says so
      // itself rather than sending what alloy dev would answer 400.
      writeFileSync(pathMod.join(dir, 'at-limit.json'), `${'['.repeat(JSON_MAX_DEPTH)}${']'.repeat(JSON_MAX_DEPTH)}`);
      const atLimit = await runInProcess(['emit', 'acme.order.requested', '-d', '@at-limit.json', '--to', 'http://127.0.0.1:9'], { cwd: dir });
      expect(atLimit.code).toBe(2);
      expect(atLimit.stderr).toContain(`nests deeper than ${JSON_MAX_DEPTH - 1} levels`);
      const run = await runInProcess(['run', 'shopify-sync/create-order', '--event', '@deep-object.json'], { cwd: dir });
      expect(run.code).toBe(2);
      expect(run.stderr).toContain('E_JSON_TOO_DEEP');
    } finally {
      await cleanup();
    }
  });
});
