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
        .option('--record <execution-id>', 'write a test file from a stored execution (event, answers, outputs)'),
    examples: [
      'alloy test',
      'alloy test integrations/shopify-sync/tests/create-order.test.yaml --filter retries',
      'alloy test --reporter junit > junit.xml',
      'alloy test --record ex_0mi0k2v1s3a1b2c3d4e5f6',
    ],
    load: () => import('../commands/test.js'),
  },
];
