import { Option, type Command } from 'commander';
import type { CommandSpec } from './types.js';

/** Which running `alloy serve` an operator command talks to; the key comes from ALLOY_API_KEY. */
function serveFlags(c: Command): Command {
  return c
    .addOption(new Option('--remote <name>', 'the serve named under remotes in alloy.config').env('ALLOY_REMOTE'))
    .addOption(new Option('--url <url>', 'the serve URL, instead of --remote'));
}

/** Operator commands against a running `alloy serve` (the Embedded API). */
export const serveCommands: CommandSpec[] = [
  {
    usage: 'users [action] [id]',
    // New with serve: no names from before the one scheme to keep.
    envPrefix: 'ALLOY_USERS',
    summary: 'List, create or delete the users of a running alloy serve, or mint a user token',
    options: (c) => serveFlags(c.option('--name <name>', 'create: a display name').option('--ttl <seconds>', 'token: lifetime (default 900)')),
    examples: ['ALLOY_API_KEY=… alloy users --remote prod', 'alloy users create acme-123 --remote prod', 'alloy users delete acme-123 --remote prod --json'],
    load: () => import('../commands/users.js'),
  },
  {
    usage: 'install <integration>',
    envPrefix: 'ALLOY_INSTALL',
    summary: 'Install an integration for a user on a running alloy serve (default: the published version)',
    options: (c) =>
      serveFlags(
        c
          .option('--user <id>', 'the user to install it for')
          .option('--version <n>', 'a released version instead of the published one')
          .option('--credential <app=id...>', 'the credential to use per app')
          .option('--config <name=value...>', 'config values (JSON or text)'),
      ),
    examples: ['alloy install shopify-sync --user acme-123 --credential shopify=cred_… --config tag=vip --remote prod'],
    load: () => import('../commands/install.js'),
  },
  {
    usage: 'installations',
    envPrefix: 'ALLOY_INSTALLATIONS',
    summary: 'List installations on a running alloy serve',
    options: (c) => serveFlags(c.option('--user <id>', 'only this user\'s').option('--integration <name>', 'only this integration\'s').option('--status <status>', 'active or inactive')),
    examples: ['alloy installations --integration shopify-sync --remote prod --json'],
    load: () => import('../commands/installations.js'),
  },
  {
    usage: 'upgrade <integration[@version]>',
    envPrefix: 'ALLOY_UPGRADE',
    summary: 'Upgrade installations to a version (default: the published one); running executions finish on theirs',
    options: (c) => serveFlags(c.option('--user <id>', 'only this user\'s installations').option('--all', 'every installation of the integration')),
    examples: ['alloy upgrade shopify-sync@3 --all --remote prod', 'alloy upgrade shopify-sync --user acme-123 --remote prod'],
    load: () => import('../commands/upgrade.js'),
  },
];
