import type { CommandSpec } from './types.js';

export const foundationCommands: CommandSpec[] = [
  {
    usage: 'init [dir]',
    summary: 'Scaffold a new alloy project (never overwrites a file)',
    options: (c) =>
      c
        .option('-y, --yes', 'accept defaults without prompting')
        .option('--name <name>', 'project name (default: the folder name)')
        .option('--template <template>', 'project template (shopify-sync)'),
    examples: ['alloy init my-integrations', 'alloy init demo --yes --template shopify-sync'],
    load: () => import('../commands/init.js'),
  },
  {
    usage: 'validate [paths...]',
    summary: 'Check every file against the schemas and their meaning; report all problems',
    options: (c) => c.option('--fail-on-warn', 'exit 2 on warnings too'),
    examples: ['alloy validate', 'alloy validate integrations/shopify-sync --json'],
    load: () => import('../commands/validate.js'),
  },
  {
    usage: 'inspect [target]',
    summary: 'Show what the project defines: integrations, workflows, triggers and steps',
    examples: ['alloy inspect', 'alloy inspect shopify-sync/create-order --json'],
    load: () => import('../commands/inspect.js'),
  },
];
