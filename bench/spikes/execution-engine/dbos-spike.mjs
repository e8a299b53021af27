// DBOS Transact 5.x spike (docs/decisions/0003-execution-engine.md): N trivial workflows of one
// checkpointed step, enqueued by a DBOSClient, run by P worker processes. Modes: `plain` (a
// queue with workerConcurrency), `partitioned` (partitionConcurrency 2 per shop key: DBOS's
// cross-process per-key bound). minPollingIntervalMs 50 (default 1000 caps a queue at
// one dispatch round per second). Prints workflows/s from the first step to the last end.
//   node dbos-spike.mjs [jobs=3000] [procs=1] [mode=plain|partitioned] [shops=100]
import { fork } from 'node:child_process';
import { DBOS, DBOSClient } from '@dbos-inc/dbos-sdk';
import pg from 'pg';

const PG_URL = process.env.PGURL ?? 'postgres://postgres@127.0.0.1:5432/test';
const [, , jobsArg = '3000', procsArg = '1', mode = 'plain', shopsArg = '100', role, schemaArg, idx] = process.argv;
const JOBS = Number(jobsArg), PROCS = Number(procsArg), SHOPS = Number(shopsArg);
const QUEUE = 'spike';
const queueParams = mode === 'partitioned' ? { workerConcurrency: 50, partitionConcurrency: 2, minPollingIntervalMs: 50 } : { workerConcurrency: 50, minPollingIntervalMs: 50 };

let done = 0, first = 0, last = 0;
const step = DBOS.registerStep(async (n) => n + 1, { name: 'trivialStep' });
const wf = DBOS.registerWorkflow(async (n) => {
  if (!first) first = Date.now();
  const r = await step(n);
  done++;
  last = Date.now();
  return r;
}, { name: 'trivialWorkflow' });

async function worker(schema) {
  DBOS.setConfig({ name: 'spike', systemDatabaseUrl: PG_URL, systemDatabaseSchemaName: schema, applicationVersion: 'spike-1', executorID: `w${idx}`, logLevel: 'error', systemDatabasePoolSize: 8 });
  await DBOS.launch();
  // Database-backed queues are registered after launch (DBOS 5).
  await DBOS.registerQueue(QUEUE, { ...queueParams, onConflict: 'always_update' });
  process.send('ready');
  const timer = setInterval(() => process.send({ done, first, last }), 250);
  process.on('message', async (m) => {
    if (m === 'stop') {
      clearInterval(timer);
      process.send({ done, first, last, final: true });
      await DBOS.shutdown();
      process.exit(0);
    }
  });
}

async function main() {
  const schema = `spike_dbos_${process.pid}`;
  // The first worker creates the system schema; the client then enqueues.
  const kids = [];
  for (let i = 0; i < PROCS; i++) {
    const k = fork(process.argv[1], [jobsArg, procsArg, mode, shopsArg, 'worker', schema, String(i)]);
    await new Promise((r) => k.once('message', r));
    kids.push(k);
  }
  const state = kids.map(() => ({ done: 0, first: 0, last: 0 }));
  kids.forEach((k, i) => k.on('message', (m) => typeof m === 'object' && (state[i] = m)));
  const client = await DBOSClient.create({ systemDatabaseUrl: PG_URL, systemDatabaseSchemaName: schema, applicationName: 'spike' });
  const t0 = Date.now();
  for (let i = 0; i < JOBS; i += 50) {
    await Promise.all(Array.from({ length: Math.min(50, JOBS - i) }, (_, k) =>
      client.enqueue({ queueName: QUEUE, workflowName: 'trivialWorkflow', appVersion: 'spike-1', queuePartitionKey: mode === 'partitioned' ? `shop${(i + k) % SHOPS}` : undefined }, i + k)));
  }
  const enqueueSecs = (Date.now() - t0) / 1000;
  const deadline = Date.now() + 180_000;
  while (state.reduce((a, s) => a + s.done, 0) < JOBS && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
  const total = state.reduce((a, s) => a + s.done, 0);
  const firstAt = Math.min(...state.map((s) => s.first).filter(Boolean));
  const lastAt = Math.max(...state.map((s) => s.last));
  console.log(JSON.stringify({ engine: 'DBOS 5.3.0', mode, jobs: JOBS, procs: PROCS, done: total, enqueueSecs, seconds: (lastAt - firstAt) / 1000, jobsPerSec: Math.round(total / ((lastAt - firstAt) / 1000)), perProcess: state.map((s) => s.done) }));
  await client.destroy();
  kids.forEach((k) => k.send('stop'));
  await Promise.all(kids.map((k) => new Promise((r) => k.once('exit', r))));
  const c = new pg.Client(PG_URL);
  await c.connect();
  await c.query(`DROP SCHEMA ${schema} CASCADE`);
  await c.end();
}

if (role === 'worker') await worker(schemaArg);
else await main();
