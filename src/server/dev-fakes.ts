/**
 * `alloy dev --fake shopify` (or `dev.fakes: [shopify]` in the config): starts the fake
 * Shopify that ships in src/testing in the same process, on 127.0.0.1 with a free port, and
 * points the shopify connector at it for that run only: `apps.shopify.baseUrl` becomes the
 * fake's URL and the connection's variables (SHOPIFY_SHOP, SHOPIFY_ACCESS_TOKEN,
 * SHOPIFY_API_SECRET) take the fake's values over the environment and `.env`. Nothing is
 * written to the project's files; the fake keeps its orders in memory.
 *
 * The webhook secret is derived from the project's dev stream secret, so `alloy emit
 * shopify:<topic>` (which reads `fakes` in .alloy/dev.json) signs with the same one without
 * it ever being stored or printed.
 */
import { createHmac, randomBytes } from 'node:crypto';
import type { LoadedProject } from '../core/project-types.js';
import type { AppSettings } from '../core/model.js';
import { UsageError } from '../errors.js';

/** Apps alloy can fake locally. */
export const DEV_FAKES = ['shopify'] as const;
export type DevFakeName = (typeof DEV_FAKES)[number];

/** The shop domain the fake Shopify answers as (and `alloy emit` sends as). */
export const FAKE_SHOPIFY_SHOP = 'alloy-dev.myshopify.com';

export interface DevFakes {
  names: DevFakeName[];
  /** Variables that win over the environment and .env for this run. */
  env: Record<string, string>;
  /** Per-app settings merged over the project's `apps` on every load. */
  apps: Record<string, AppSettings>;
  /** What the banner prints, one row per fake. */
  rows: { label: string; value: string; note: string }[];
  /** Where each fake listens, for --json and dev.json. */
  urls: Record<string, string>;
  close(): Promise<void>;
}

/** `--fake a,b` (repeatable) or the config's `dev.fakes`: known names, each once. */
export function parseFakeNames(values: unknown): DevFakeName[] {
  const list = (Array.isArray(values) ? values : values === undefined || values === false ? [] : [values])
    .flatMap((v) => String(v).split(','))
    .map((v) => v.trim().toLowerCase())
    .filter(Boolean);
  for (const name of list) {
    if (!(DEV_FAKES as readonly string[]).includes(name)) {
      throw new UsageError(`alloy cannot fake "${name}"`, { code: 'E_FAKE_UNKNOWN', hint: `apps alloy can fake: ${DEV_FAKES.join(', ')} (e.g. --fake shopify)` });
    }
  }
  return [...new Set(list)] as DevFakeName[];
}

/** The fake Shopify's webhook secret for a project: derived from its dev stream secret. */
export function fakeShopifySecret(streamSecret: string): string {
  return `shpss_${createHmac('sha256', streamSecret).update('alloy dev --fake shopify: webhook secret').digest('hex').slice(0, 32)}`;
}

export async function startDevFakes(names: DevFakeName[], options: { streamSecret: string }): Promise<DevFakes> {
  const fakes: DevFakes = { names, env: {}, apps: {}, rows: [], urls: {}, close: async () => {} };
  const closers: (() => Promise<void>)[] = [];
  fakes.close = async () => {
    await Promise.all(closers.map((c) => c().catch(() => {})));
  };
  if (names.includes('shopify')) {
    // Loaded only when asked for: the fake reads its bundled fixtures at start.
    const { startFakeShopify } = await import('../testing/fake-shopify.js');
    const accessToken = `shpat_fake_${randomBytes(16).toString('hex')}`;
    const fake = await startFakeShopify({ accessToken, shop: FAKE_SHOPIFY_SHOP });
    closers.push(() => fake.close());
    fakes.env.SHOPIFY_SHOP = fake.shop;
    fakes.env.SHOPIFY_ACCESS_TOKEN = accessToken;
    fakes.env.SHOPIFY_API_SECRET = fakeShopifySecret(options.streamSecret);
    fakes.apps.shopify = { baseUrl: fake.url };
    fakes.urls.shopify = fake.url;
    fakes.rows.push({ label: 'fake shopify', value: fake.url, note: `shop ${fake.shop}; the shopify connector and SHOPIFY_* point here for this run` });
  }
  return fakes;
}

/**
 * For `alloy emit` while `alloy dev --fake shopify` runs: the shop and webhook secret the
 * runtime expects, over whatever the environment says (which points at the real store).
 */
export async function fakeShopifyEmitEnv(root: string): Promise<Record<string, string>> {
  const { loadOrCreateStreamSecret } = await import('./dev-state.js');
  return { SHOPIFY_API_SECRET: fakeShopifySecret(loadOrCreateStreamSecret(root).secret), SHOPIFY_SHOP: FAKE_SHOPIFY_SHOP };
}

/** The project as this run sees it: the fakes' app settings over the config's. */
export function withFakeApps(project: LoadedProject, apps: Record<string, AppSettings>): LoadedProject {
  if (Object.keys(apps).length === 0) return project;
  const merged: Record<string, AppSettings> = { ...(project.config.apps ?? {}) };
  for (const [app, settings] of Object.entries(apps)) merged[app] = { ...merged[app], ...settings };
  return { ...project, config: { ...project.config, apps: merged } };
}
