/**
 * `alloy emit --fixture` signs with the local secrets, so the fixture's "path" must be one of
 * the runtime's ingress routes: a fixture naming another host (a signing oracle for whoever
 * wrote it) is refused before anything is signed or sent.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { requireBuild, runAlloy, startSink, writeTree } from './helpers.js';
import { tempDir } from '../server/helpers.js';

const files = {
  'alloy.config.yaml': 'apiVersion: alloy/v1\nkind: Project\nname: fx\n',
  '.env': 'ACME_SECRET=local-hmac-secret\n',
  'integrations/demo/integration.yaml': 'apiVersion: alloy/v1\nkind: Integration\nname: demo\napp: shopify\n',
  'integrations/demo/workflows/hook.yaml':
    'apiVersion: alloy/v1\nkind: Workflow\nname: hook\ntrigger:\n  webhook: acme\n  verify: { scheme: hmac-sha256, header: x-acme-signature, secret: "{{ secrets.ACME_SECRET }}" }\nsteps:\n  - id: pick\n    uses: transform\n    with: { id: "{{ event.id }}" }\n',
};

const fixture = (p: string) => JSON.stringify({ alloyFixture: 1, source: 'webhook:acme', name: 'acme', method: 'POST', path: p, headers: { 'content-type': 'application/json' }, body: '{"id":1}' });

describe('alloy emit --fixture', () => {
  let tmp: ReturnType<typeof tempDir>;
  let runtime: Awaited<ReturnType<typeof startSink>>;
  let evil: Awaited<ReturnType<typeof startSink>>;
  beforeAll(async () => {
    requireBuild();
    tmp = tempDir();
    writeTree(tmp.dir, files);
    runtime = await startSink();
    evil = await startSink();
  });
  afterAll(async () => {
    await runtime?.close();
    await evil?.close();
    tmp?.cleanup();
  });

  it('refuses a fixture whose path names another host (exit 2, names the file) and sends nothing', async () => {
    for (const [i, p] of [`${evil.url}/collect`, `//${evil.url.slice('http://'.length)}/collect`, '/v1/executions', '/v1/webhooks/custom/../../collect'].entries()) {
      const file = `evil-${i}.json`;
      writeFileSync(path.join(tmp.dir, file), fixture(p));
      const r = await runAlloy(tmp.dir, ['emit', '--fixture', file, '--to', runtime.url]);
      expect(r.exitCode, `${p}: ${r.stderr}`).toBe(2);
      expect(r.stderr).toContain('E_FIXTURE_PATH');
      expect(r.stderr).toContain(file);
    }
    expect(evil.requests).toEqual([]);
    expect(runtime.requests).toEqual([]);
  });

  it('sends a fixture with an ingress path to the runtime, re-signed', async () => {
    writeFileSync(path.join(tmp.dir, 'good.json'), fixture('/v1/webhooks/custom/acme'));
    const r = await runAlloy(tmp.dir, ['emit', '--fixture', 'good.json', '--to', runtime.url, '--json']);
    // The stand-in answers 2xx but not as alloy does: emit says so instead of crashing.
    expect(r.exitCode, r.stderr).toBe(1);
    expect(JSON.parse(r.stdout).error.code).toBe('E_NOT_ALLOY');
    expect(r.stderr).not.toMatch(/internal error/);
    expect(runtime.requests.map((q) => q.path)).toEqual(['/v1/webhooks/custom/acme']);
    expect(runtime.requests[0].headers['x-acme-signature']).toMatch(/^[0-9a-f]{64}$/);
    expect(evil.requests).toEqual([]);
  });
});
