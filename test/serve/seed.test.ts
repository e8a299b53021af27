/** The seed flow in-process (see seed-flow.ts). */
import { seedFlow } from './seed-flow.js';
import { startTestServe } from './helpers.js';

seedFlow('in-process', async ({ settings, env, oauthRedirectOrigins }) => {
  const s = await startTestServe({ settings, env, oauthRedirectOrigins });
  return { url: s.url, admin: s.admin, store: s.store, key: s.key, close: s.close };
});
