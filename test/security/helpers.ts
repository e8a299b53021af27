/** A runtime server on 127.0.0.1 with a few workflows, for the security tests. */
import path from 'node:path';
import { openEventLog } from '../../src/server/event-log.js';
import { indexDefinitions } from '../../src/server/definitions.js';
import { createRuntimeServer, type RuntimeServer, type RuntimeServerOptions } from '../../src/server/runtime-server.js';
import { fakeExecutor, projectOf, tempDir, workflow } from '../server/helpers.js';

export const SHOPIFY_SECRET = 'shpss_security_suite_secret';
export const INGRESS_SECRET = 'whsec_c2VjdXJpdHktc3VpdGUtaW5ncmVzcy1zZWNyZXQ=';
export const STD_SECRET = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';

export const workflows = [
  workflow('create-order', { event: 'acme.order.requested' }),
  workflow('order-created', { app: 'shopify', event: 'orders/create' }),
  workflow('hook-open', { webhook: 'secret-hook-name' }),
  workflow('hook-std', { webhook: 'std-hook', verify: { scheme: 'standard-webhooks', secret: '{{ secrets.ACME_STD_SECRET }}' } }),
];

export async function startRuntime(extra: Partial<RuntimeServerOptions> = {}): Promise<{ server: RuntimeServer; base: string; ingress: string; dir: string; cleanup(): Promise<void> }> {
  const tmp = tempDir('alloy-sec-');
  const server = createRuntimeServer({
    log: openEventLog({ file: path.join(tmp.dir, 'dev.sqlite') }),
    definitions: indexDefinitions(projectOf(tmp.dir, workflows)),
    executor: fakeExecutor().executor,
    secrets: { SHOPIFY_API_SECRET: SHOPIFY_SECRET, ACME_STD_SECRET: STD_SECRET },
    ingressSecret: INGRESS_SECRET,
    ...extra,
  });
  const base = await server.listen();
  const ingress = await server.listenIngress();
  return {
    server,
    base,
    ingress,
    dir: tmp.dir,
    async cleanup() {
      await server.close();
      tmp.cleanup();
    },
  };
}
