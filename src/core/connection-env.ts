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
