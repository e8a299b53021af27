import { Option } from 'commander';
import type { CommandSpec } from './types.js';

export const testingCommands: CommandSpec[] = [
  {
    usage: 'test [paths...]',
    summary: 'Run the workflow tests (tests/*.test.yaml) in process through the engine, with no network',
    options: (c) =>
      c
        .option('-t, --filter <text>', 'only tests whose "<integration>/<workflow> > <name>" or file contains this')
        .option('-u, --update', 'rewrite snapshots that differ')
        .option('--reporter <name>', 'default, or junit (JUnit XML on stdout)')
        .option('--bail', 'stop after the first failed test')
        // Not ALLOY_RECORD: that one is `alloy dev --record`.
        .addOption(new Option('--record <execution-id>', 'write a test file from a stored execution (event, answers, outputs)').env('ALLOY_TEST_RECORD')),
    examples: [
      'alloy test',
      'alloy test integrations/shopify-sync/tests/create-order.test.yaml --filter retries',
      'alloy test --reporter junit > junit.xml',
      'alloy test --record ex_0mi0k2v1s3a1b2c3d4e5f6',
    ],
    load: () => import('../commands/test.js'),
  },
  {
    usage: 'compare <target> [a] [b]',
    summary: 'Run a stored execution (or a fixture) on two versions and show what changes, step by step',
    options: (c) =>
      c
        .option('--workflow <workflow>', 'with a fixture file: the workflow it is for')
        .option('--all', '<target> is a workflow: compare every stored execution of it and summarise')
        .option('--since <time>', 'with --all: only executions since an ISO time or a duration ago (24h, 7d)')
        .option('--to <url>', 'the runtime URL (default: .alloy/dev.json, else the log file)')
        .option('--store <dir|url>', 'the store to read versions from (default: the project\'s)')
        .option('--remote <name>', 'a remote store named in the config'),
    examples: [
      'alloy compare ex_0mi0k2v1s3a1b2c3d4e5f6                 # published (else latest) vs the working tree',
      'alloy compare ex_0mi0k2v1s3a1b2c3d4e5f6 2 3',
      'alloy compare integrations/shopify-sync/fixtures/orders-create.json --workflow shopify-sync/order-created',
      'alloy compare --all shopify-sync/create-order --since 7d',
    ],
    load: () => import('../commands/compare.js'),
  },
];
