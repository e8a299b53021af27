import type { CommandSpec } from './types.js';

export const tunnelCommands: CommandSpec[] = [
  {
    usage: 'relay',
    summary: 'Run the self-hostable tunnel relay: stable public webhook URLs for each developer',
    envPrefix: 'ALLOY_RELAY',
    options: (c) =>
      c
        .option('-p, --port <port>', 'port to listen on (default 4300)')
        .option('--host <host>', 'interface to bind (default 127.0.0.1; put a TLS proxy in front)')
        .option('--data <dir>', 'where queued requests are kept (default .alloy/relay)')
        .option('--tokens-file <file>', 'developer tokens, one name:token a line (else env ALLOY_RELAY_TOKENS)')
        .option('--public-url <url>', 'public base URL shown to developers, e.g. https://relay.example.com')
        .option('--max-body <size>', 'largest request body accepted (default 5mb; 413 above)')
        .option('--timeout <duration>', 'how long a developer has to answer (default 30s; 504 after)')
        .option('--queue-max <n>', 'most requests kept per developer while offline (default 1000)')
        .option('--queue-max-bytes <size>', 'most bytes kept per developer while offline (default 64mb)')
        .option('--queue-ttl <duration>', 'how long a queued request is kept (default 48h)'),
    examples: [
      'ALLOY_RELAY_TOKENS="alice:$(openssl rand -hex 24)" alloy relay --port 4300',
      'alloy relay --host 127.0.0.1 --public-url https://relay.example.com --tokens-file /etc/alloy/relay-tokens',
    ],
    load: () => import('../commands/relay.js'),
  },
];
