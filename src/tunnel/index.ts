/**
 * Public URLs for `alloy dev --tunnel [provider]`. The runtime starts a loopback listener
 * that serves only the ingress routes and hands its URL here; this module exposes it
 * through the self-hosted relay, cloudflared or ngrok. Only ingress paths
 * (`POST /v1/run/event`, `POST /v1/webhooks/...`) ever pass, whichever provider is used.
 *
 * The webhook URL for an app is `${publicUrl}/v1/webhooks/<app>` (e.g. `/v1/webhooks/shopify`).
 */
import { AlloyError, MissingSecretError, UsageError } from '../errors.js';
import { connectRelay, type TunnelLogger } from './relay-client.js';
import { startIngressGate } from './ingress-gate.js';
import { startProvider } from './providers.js';
import { isValidTunnelName } from './ingress-paths.js';

export type TunnelProvider = 'relay' | 'cloudflared' | 'ngrok';
export const TUNNEL_PROVIDERS: readonly TunnelProvider[] = ['relay', 'cloudflared', 'ngrok'];

export interface StartTunnelOptions {
  provider: TunnelProvider;
  /** The loopback ingress listener, e.g. http://127.0.0.1:51234. */
  localUrl: string;
  /** relay only: wss://relay.example.com (default: env ALLOY_RELAY_URL). */
  relayUrl?: string;
  /** relay only: the stable tunnel name (default: env ALLOY_TUNNEL_NAME, else the token's name). */
  name?: string;
  /** relay only: the developer's token (default: env ALLOY_RELAY_TOKEN). Never logged. */
  token?: string;
  logger: TunnelLogger;
  env?: NodeJS.ProcessEnv;
  signal?: AbortSignal;
  /** cloudflared/ngrok: how long to wait for the public URL (default 30 s). */
  startTimeoutMs?: number;
}

export interface Tunnel {
  provider: TunnelProvider;
  /** Base public URL; append an ingress path: `${publicUrl}/v1/webhooks/shopify`. */
  publicUrl: string;
  close(): Promise<void>;
  /**
   * relay: 'lost' {delayMs}, 'restored' {publicUrl}, 'dropped' {overflow, expired},
   * 'request' {method, path, status, queued, durationMs}, 'fatal' (AlloyError: token refused,
   * or the name was taken over). cloudflared/ngrok: 'exit' {exitCode}.
   */
  on?(event: string, fn: (arg: any) => void): void;
}

export async function startTunnel(options: StartTunnelOptions): Promise<Tunnel> {
  const env = options.env ?? process.env;
  if (!TUNNEL_PROVIDERS.includes(options.provider)) {
    throw new UsageError(`unknown tunnel provider "${String(options.provider)}"`, {
      code: 'E_TUNNEL_PROVIDER',
      hint: `Use one of: ${TUNNEL_PROVIDERS.join(', ')}.`,
    });
  }
  if (options.provider === 'relay') {
    const relayUrl = options.relayUrl ?? env.ALLOY_RELAY_URL;
    if (!relayUrl) {
      throw new UsageError('--tunnel relay needs the relay address', {
        code: 'E_TUNNEL_URL',
        hint: 'Pass --tunnel-url wss://relay.example.com (or set ALLOY_DEV_TUNNEL_URL).',
      });
    }
    const token = options.token ?? env.ALLOY_RELAY_TOKEN;
    if (!token) {
      throw new MissingSecretError(
        'ALLOY_RELAY_TOKEN is not set',
        'Set ALLOY_RELAY_TOKEN to the token the relay operator gave you (listed for your name in the relay\'s ALLOY_RELAY_TOKENS).',
      );
    }
    const name = options.name ?? env.ALLOY_TUNNEL_NAME;
    if (name !== undefined && !isValidTunnelName(name)) {
      throw new UsageError(`tunnel name "${name}" must be lower-case letters, digits and dashes`, {
        code: 'E_TUNNEL_NAME',
        hint: 'Pass e.g. --tunnel-name alice (the name your relay token was issued for).',
      });
    }
    const tunnel = await connectRelay({ relayUrl, token, name, localUrl: options.localUrl, logger: options.logger, signal: options.signal });
    return { provider: 'relay', publicUrl: tunnel.publicUrl, close: tunnel.close, on: tunnel.on };
  }

  // Third-party programs forward every path: put the ingress gate in front of the listener.
  const gate = await startIngressGate({ localUrl: options.localUrl });
  try {
    const tunnel = await startProvider(options.provider, {
      localUrl: gate.url,
      logger: options.logger,
      env: options.env,
      signal: options.signal,
      timeoutMs: options.startTimeoutMs,
    });
    return {
      provider: options.provider,
      publicUrl: tunnel.publicUrl,
      close: async () => {
        await tunnel.close();
        await gate.close();
      },
      on: tunnel.on,
    };
  } catch (err) {
    await gate.close();
    throw err instanceof AlloyError ? err : new AlloyError('E_TUNNEL_START', (err as Error).message, { cause: err });
  }
}

export { startRelayServer, type RelayServer, type RelayServerOptions, type RelayLogger } from './relay-server.js';
export { parseRelayTokens, type RelayTokens } from './relay-tokens.js';
export { connectRelay, relayConnectUrl, backoffDelay, type RelayTunnel, type RelayClientOptions, type TunnelLogger } from './relay-client.js';
export { startProvider, parseCloudflaredLine, parseNgrokLine, type ProviderName } from './providers.js';
export { startIngressGate } from './ingress-gate.js';
export { isIngressPath, checkIngressTarget, isValidTunnelName } from './ingress-paths.js';
export { RelayQueue, DEFAULT_QUEUE_LIMITS, type QueueLimits } from './relay-queue.js';
