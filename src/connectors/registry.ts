/** Connectors by name: the built-ins (`shopify`, `http`) plus the project's connectors/*.yaml. */
import { UsageError } from '../errors.js';
import type { ConnectorManifest } from '../core/model.js';
import { createDeclarativeConnector } from './declarative.js';
import { createHttpConnector } from './http-connector.js';
import { createShopifyConnector } from './shopify/index.js';
import type { ConnectorRegistry, ConnectorRuntime } from './types.js';

export interface ConnectorRegistryOptions {
  userConnectors?: ConnectorManifest[];
  /** Replace or add runtimes by name (tests). */
  overrides?: ConnectorRuntime[];
}

export function createConnectorRegistry(options: ConnectorRegistryOptions = {}): ConnectorRegistry {
  const byName = new Map<string, ConnectorRuntime>();
  for (const runtime of [createShopifyConnector(), createHttpConnector()]) byName.set(runtime.manifest.name, runtime);
  for (const manifest of options.userConnectors ?? []) {
    if (byName.has(manifest.name)) {
      throw new UsageError(`connector "${manifest.name}" is built in; a user connector cannot replace it`, {
        code: 'E_CONNECTOR_NAME',
        hint: `Rename the connector in connectors/${manifest.name}.yaml (e.g. "${manifest.name}-custom").`,
      });
    }
    byName.set(manifest.name, createDeclarativeConnector(manifest));
  }
  for (const runtime of options.overrides ?? []) byName.set(runtime.manifest.name, runtime);
  return {
    get: (name) => byName.get(name),
    names: () => [...byName.keys()].sort(),
  };
}
