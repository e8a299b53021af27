import type { CommandSpec } from './types.js';

export const engineCommands: CommandSpec[] = [
  {
    usage: 'run <workflow>',
    summary: 'Run a workflow once for an event and print a step trace (or the plan with --dry-run)',
    options: (c) =>
      c
        .option('--event <event>', 'the trigger event: JSON, @file.json, or @- for stdin')
        .option('--user <id>', "the user (tenant) whose connections to use (users/<id>.env)")
        .option('--dry-run', 'print the plan and resolved inputs; call nothing'),
    examples: [
      'alloy run shopify-sync/create-order --event @integrations/shopify-sync/fixtures/acme-order-requested.json',
      'alloy run shopify-sync/order-created --event @- --dry-run < order.json',
      'alloy run shopify-sync/create-order --event @order.json --user acme --json',
    ],
    load: () => import('../commands/run.js'),
  },
];
