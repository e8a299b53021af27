/**
 * The seed flow against the built binary (`npm run build` first): `alloy serve keys create`
 * and `alloy serve` spawned in a temp project whose config points Shopify at the fake.
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { stringify } from 'yaml';
import { LocalStore } from '../../src/store/lib.js';
import { seedFlow } from './seed-flow.js';
import { tempDir } from './helpers.js';
import { runAlloy, spawnServe } from './binary.js';

seedFlow('built binary', async ({ settings, env, oauthRedirectOrigins }) => {
  const project = tempDir('alloy-serve-project-');
  writeFileSync(path.join(project, 'alloy.config.yaml'), stringify({ apiVersion: 'alloy/v1', kind: 'Project', name: 'serve-e2e', apps: settings, egress: { allow: ['127.0.0.1'] }, serve: { oauth: { redirectOrigins: oauthRedirectOrigins } } }));
  const data = path.join(project, 'data');
  const storeDir = path.join(project, 'store');
  const fullEnv = { ...env, ALLOY_MASTER_KEY: Buffer.alloc(32, 1).toString('base64') };
  const key = async (role: string) => {
    const r = await runAlloy(['serve', 'keys', 'create', '--role', role, '--data', data, '--json'], project, fullEnv);
    if (r.code !== 0) throw new Error(`keys create failed: ${r.stderr}`);
    return JSON.parse(r.stdout).key as string;
  };
  const admin = await key('admin');
  const store = new LocalStore(storeDir);
  await store.init();
  const served = await spawnServe(['--data', data, '--store', storeDir], project, fullEnv);
  return { url: served.url, admin, store, key, close: () => served.stop() };
}, 90_000);
