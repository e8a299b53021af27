import { Option } from 'commander';
import type { CommandSpec } from './types.js';

/** The local runtime: `dev` serves the working tree; the others talk to it (or read its log). */
export const runtimeCommands: CommandSpec[] = [
  {
    usage: 'dev',
    summary: 'Run the working tree locally: event API, webhook ingress, durable event log, hot reload',
    envPrefix: 'ALLOY_DEV',
    options: (c) =>
      c
        .option('-p, --port <port>', 'port to listen on (default 4000, config dev.port; 0 for any free port)')
        .option('--host <host>', 'interface to bind (default 127.0.0.1, config dev.host)')
        .option('--fresh', 'forget the event log history before starting')
        .option('--record [dir]', 'also save every accepted delivery as a fixture (default .alloy/recordings)')
        .option('--concurrency <n>', 'executions run at the same time (default 16)')
        .option('--max-queued <n>', 'queued executions past which deliveries get 503 + Retry-After (default 1024)')
        .option('--fake <app>', 'start a local fake of the app and point its connector and credentials at it for this run (shopify; config dev.fakes)')
        .option('--tunnel [provider]', 'expose the ingress routes publicly: relay, cloudflared or ngrok (bare --tunnel: relay when --tunnel-url is set, else cloudflared)')
        .option('--tunnel-url <url>', 'relay address, e.g. wss://relay.example.com')
        .option('--tunnel-name <name>', 'stable relay tunnel name'),
    legacyEnv: { '--tunnel-url': 'ALLOY_RELAY_URL', '--tunnel-name': 'ALLOY_TUNNEL_NAME' },
    examples: ['alloy dev', 'alloy dev --fake shopify', 'alloy dev -p 4001 --fresh -v', 'alloy dev --record', 'alloy dev --tunnel relay --tunnel-url wss://relay.example.com'],
    load: () => import('../commands/dev.js'),
  },
  {
    usage: 'emit [event]',
    summary: 'Send a custom event, or `shopify:<topic>` as Shopify would (signed), to the running alloy dev',
    options: (c) =>
      c
        .option('-d, --data <json|@file|@->', 'the event data (JSON, a file, or standard input)')
        .option('--user <id>', 'the user (tenant) the event is for')
        .option('--shop <domain>', 'shopify: X-Shopify-Shop-Domain (default SHOPIFY_SHOP or alloy-dev.myshopify.com)')
        .option('--api-version <version>', 'shopify: X-Shopify-API-Version')
        .option('--fixture <file>', 'resend a delivery recorded by `alloy dev --record`, re-signed')
        .option('--to <url>', 'the runtime URL (default: read from .alloy/dev.json)')
        .option('--wait', 'wait for the executions: exit 0 on success, 1 on failure')
        .option('--timeout <duration>', 'how long --wait waits (default 30s)'),
    examples: [
      'alloy emit acme.order.requested -d @integrations/shopify-sync/fixtures/acme-order-requested.json --wait',
      'alloy emit shopify:orders/create -d @order.json --shop acme.myshopify.com',
      'alloy emit --fixture .alloy/recordings/<file>.json',
    ],
    load: () => import('../commands/emit.js'),
  },
  {
    usage: 'executions [id]',
    summary: 'List executions from the event log, or show one with its step trace',
    options: (c) =>
      c
        .option('--status <status>', 'queued, running, succeeded, failed or filtered')
        .option('--workflow <name>', '<integration>/<workflow> or a workflow name')
        .option('--limit <n>', 'how many (default 20)')
        .option('--to <url>', 'the runtime URL (default: .alloy/dev.json, else the log file)')
        .addOption(new Option('--remote <name>', 'a running alloy serve named under remotes in alloy.config (key from ALLOY_API_KEY)').env('ALLOY_REMOTE'))
        .option('--user <id>', 'with --remote: only this user\'s executions'),
    examples: ['alloy executions --status failed', 'ALLOY_API_KEY=… alloy executions --remote prod --user acme-123', 'alloy executions ex_0mi0k2v1s3a1b2c3d4e5f6 -v', 'alloy executions --json'],
    load: () => import('../commands/executions.js'),
  },
  {
    usage: 'replay <id>',
    summary: 'Run an execution again from its stored event, on the current definitions',
    options: (c) =>
      c
        .option('--wait', 'wait for the new execution: exit 0 on success, 1 on failure')
        // Its own variable: a general ALLOY_VERSION (a CLI pin in CI) must not turn every replay into this.
        .addOption(new Option('--version <v>', 'run the stored event on a released version (3, latest, published) in process, the app answering as recorded').env('ALLOY_REPLAY_VERSION'))
        .option('--timeout <duration>', 'how long --wait waits (default 30s)')
        .option('--to <url>', 'the runtime URL (default: read from .alloy/dev.json)'),
    examples: ['alloy replay ex_0mi0k2v1s3a1b2c3d4e5f6 --wait', 'alloy replay ex_0mi0k2v1s3a1b2c3d4e5f6 --version 2'],
    load: () => import('../commands/replay.js'),
  },
  {
    usage: 'listen',
    summary: 'Receive workflow stream deliveries locally, verify their Standard Webhooks signature and print each',
    envPrefix: 'ALLOY_LISTEN',
    options: (c) =>
      c
        .option('--port <port>', 'port on 127.0.0.1 (default 4100, where the scaffold streams; 0 for any free port)')
        .option('--secret <whsec>', "verify with this secret (default: the project's stream secrets, as alloy dev signs)")
        .option('--out <file>', 'also append each delivery to this file as a JSON line'),
    examples: ['alloy listen &', 'alloy listen --port 4200 --secret "$ACME_STREAM_SECRET" --out deliveries.jsonl'],
    load: () => import('../commands/listen.js'),
  },
  {
    usage: 'logs',
    summary: 'Print finished executions from the event log; -f follows the running alloy dev',
    options: (c) =>
      c
        .option('-f, --follow', 'keep printing new lines until interrupted')
        .option('-n, --lines <n>', 'how many past lines (default 50)')
        .option('--to <url>', 'the runtime URL (default: .alloy/dev.json, else the log file)'),
    examples: ['alloy logs', 'alloy logs -f'],
    load: () => import('../commands/logs.js'),
  },
];
