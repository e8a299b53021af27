import { Option, type Command } from 'commander';
import type { CommandSpec } from './types.js';

/** --store / --remote on every command that reads or writes a store. */
function storeFlags(c: Command): Command {
  return c
    .addOption(new Option('--store <dir|url>', 'use this store (a directory or an `alloy serve` URL) instead of the project\'s').env('ALLOY_STORE'))
    .addOption(new Option('--remote <name>', 'use the remote store named in alloy.config (token from ALLOY_TOKEN)').env('ALLOY_REMOTE'));
}

export const storeCommands: CommandSpec[] = [
  {
    usage: 'release [integrations...]',
    summary: 'Make an immutable version of each integration whose definitions changed',
    options: (c) =>
      storeFlags(
        c
          .option('-m, --message <message>', 'release message')
          .option('--dry-run', 'show which workflows would change; write nothing')
          .option('--skip-tests', 'release without running `alloy test` first (recorded in the version message)'),
      ),
    examples: ['alloy release -m "map phone numbers"', 'alloy release --skip-tests -m "hotfix"', 'alloy release shopify-sync --dry-run', 'ALLOY_TOKEN=… alloy release --remote origin --json'],
    load: () => import('../commands/release.js'),
  },
  {
    usage: 'publish <integration@version>',
    summary: 'Point the live version of an integration at a released version',
    options: (c) => storeFlags(c.option('-m, --message <message>', 'why (kept in the publish log)')),
    examples: ['alloy publish shopify-sync@3', 'alloy publish shopify-sync@latest -m "go live"'],
    load: () => import('../commands/publish.js'),
  },
  {
    usage: 'rollback <integration>',
    summary: 'Publish the previously published version again (or --to a version); asks first on a TTY',
    // --to and --yes came after ALLOY_<COMMAND>_<FLAG>: no old names (ALLOY_TO is emit's and
    // replay's URL, ALLOY_YES init's; read here they picked the version or skipped the question).
    legacyEnv: { '--to': null, '--yes': null },
    options: (c) =>
      storeFlags(
        c
          .option('--to <version>', 'roll back to this released version instead of the previous one')
          .option('-m, --message <message>', 'why (kept in the publish log)')
          .option('-y, --yes', 'do not ask for confirmation'),
      ),
    examples: ['alloy rollback shopify-sync', 'alloy rollback shopify-sync --to 3 -m "v5 breaks refunds" --yes'],
    load: () => import('../commands/rollback.js'),
  },
  {
    usage: 'deployments [integration]',
    summary: 'List the publish log: when, who, from → to, message',
    options: (c) => storeFlags(c),
    examples: ['alloy deployments', 'alloy deployments shopify-sync --json'],
    load: () => import('../commands/deployments.js'),
  },
  {
    usage: 'versions [integration]',
    summary: 'List released versions (the published one marked)',
    options: (c) => storeFlags(c.option('--limit <n>', 'only the newest n versions')),
    examples: ['alloy versions', 'alloy versions shopify-sync --json'],
    load: () => import('../commands/versions.js'),
  },
  {
    usage: 'show <integration@version> [workflow]',
    summary: 'Print a released definition as YAML',
    options: (c) => storeFlags(c),
    examples: ['alloy show shopify-sync@3', 'alloy show shopify-sync@published create-order'],
    load: () => import('../commands/show.js'),
  },
  {
    usage: 'diff [a] [b]',
    summary: 'Step-level diff: working tree against latest (default) or published, or two versions',
    options: (c) => storeFlags(c.option('--exit-code', 'exit 1 when there are differences')),
    examples: ['alloy diff', 'alloy diff @published', 'alloy diff shopify-sync@3 shopify-sync@5'],
    load: () => import('../commands/diff.js'),
  },
  {
    usage: 'status',
    summary: 'Per integration: latest and published versions, and unreleased changes',
    options: (c) => storeFlags(c),
    load: () => import('../commands/status.js'),
  },
  {
    usage: 'fsck',
    summary: 'Verify every object and ref of the store; report each problem',
    options: (c) => storeFlags(c),
    examples: ['alloy fsck', 'alloy fsck --store /srv/alloy-store --json'],
    load: () => import('../commands/fsck.js'),
  },
  {
    usage: 'serve [action...]',
    envPrefix: 'ALLOY_SERVE',
    summary: 'Run published integrations for your users (the Embedded API) and serve the store; `serve keys create|list|delete|rotate` manage keys; `serve migrate` migrates a PostgreSQL database',
    options: (c) =>
      c
        .option('--port <port>', 'port (default 4200; 0 picks a free one)')
        .option('--host <host>', 'interface to bind (default 127.0.0.1)')
        .addOption(new Option('--store <dir|url>', 'store the published versions come from (default: the project\'s store.path)').env('ALLOY_STORE'))
        .option('--data <dir>', 'data folder: the serve database and master key file (default: .alloy/serve in the project)')
        .option('--database <url>', 'keep the state in PostgreSQL (postgres://…), shared by every serve process, instead of SQLite in the data folder (config serve.database)')
        .option('--schema <name>', 'with --database: the PostgreSQL schema for alloy\'s tables (default alloy; config serve.schema)')
        .option('--public-url <url>', 'URL apps reach this server at (OAuth redirect URIs)')
        .option('--oauth-redirect-origins <origins>', 'comma-separated origins an OAuth flow\'s redirectAfter may be on (without it only a localhost page; config serve.oauth.redirectOrigins)')
        .option('--role <role>', 'serve: api (take API traffic, enqueue), worker (run executions) or all (default); keys create: admin, ingest or read')
        .option('--concurrency <n>', 'executions this process runs at once (default 64)')
        .option('--max-connections <n>', 'open connections at most; more are closed at once (default 1024)')
        .option('--recover-after <seconds>', 'with --database: hand a silent (killed) worker\'s executions to another after this many seconds (default 30)')
        .option('--name <name>', 'keys create: a label for the key'),
    examples: [
      'alloy serve keys create --role admin --data /srv/alloy',
      'ALLOY_MASTER_KEY=$(cat /run/secrets/alloy-master) alloy serve --data /srv/alloy --store /srv/alloy-store',
      'ALLOY_SERVE_TOKENS="read:$READ_TOKEN,write:$WRITE_TOKEN" alloy serve --port 4200 --store /srv/alloy-store',
      'alloy serve keys rotate --data /srv/alloy',
      'ALLOY_MASTER_KEY=… alloy serve --database postgres://alloy@db.internal/alloy --store /srv/alloy-store',
      'alloy serve migrate --database postgres://alloy@db.internal/alloy',
      'ALLOY_MASTER_KEY=… alloy serve --role worker --port 0 --database postgres://alloy@db.internal/alloy --store /srv/alloy-store',
    ],
    load: () => import('../commands/serve.js'),
  },
];
