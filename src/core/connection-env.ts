/** The environment variable of a connector's connection field (read by connectors, hidden from streams by the engine). */
import type { ConnectorManifest } from './model.js';

/** The variable a field is read from: its `env`, else `<CONNECTOR>_<FIELD>` in upper snake case. */
export function connectionEnvName(manifest: ConnectorManifest, field: string): string {
  const declared = manifest.connection?.[field]?.env;
  if (declared) return declared;
  const snake = (s: string) =>
    s
      .replace(/([a-z0-9])([A-Z])/g, '$1_$2')
      .replace(/[^A-Za-z0-9]+/g, '_')
      .replace(/^_+|_+$/g, '')
      .toUpperCase();
  return `${snake(manifest.name)}_${snake(field)}`;
}

/** The upper snake case prefix of an app's own variables (`shopify` → `SHOPIFY`). */
const appPrefix = (app: string) => app.toUpperCase().replace(/[^A-Z0-9]+/g, '_');

/** The variables serve reads an app's OAuth client from (`<APP>_API_KEY` or `_CLIENT_ID`, …). */
export function appOAuthVariables(app: string): { clientId: string[]; clientSecret: string[]; scopes: string } {
  const up = appPrefix(app);
  return { clientId: [`${up}_API_KEY`, `${up}_CLIENT_ID`], clientSecret: [`${up}_API_SECRET`, `${up}_CLIENT_SECRET`], scopes: `${up}_SCOPES` };
}

/** Every variable alloy reads for an app: its connection fields' and its OAuth client's. */
export function appVariables(manifest: ConnectorManifest): string[] {
  const oauth = appOAuthVariables(manifest.name);
  return [...Object.keys(manifest.connection ?? {}).map((field) => connectionEnvName(manifest, field)), ...oauth.clientId, ...oauth.clientSecret, oauth.scopes];
}
