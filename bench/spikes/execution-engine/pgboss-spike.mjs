// pg-boss 10 spike (docs/decisions/0003-execution-engine.md): N trivial jobs, completed by P
// worker processes each running a fetch loop (batch fetch, one complete per job, refetch
// at once while jobs come back). Modes: `standard` (no key), `singleton` (one active job per
// shop key: pg-boss's cross-process per-key bound). Prints jobs/s from the first fetch to
// the last completion, and what the workers saw.
//   node pgboss-spike.mjs [jobs=3000] [procs=1] [mode=standard|singleton] [shops=100]
import { fork } from 'node:child_process';
import PgBoss from 'pg-boss';

const PG_URL = process.env.PGURL ?? 'postgres://postgres@127.0.0.1:5432/test';
const [, , jobsArg = '3000', procsArg = '1', mode = 'standard', shopsArg = '100', role, schemaArg] = process.argv;
const JOBS = Number(jobsArg), PROCS = Number(procsArg), SHOPS = Number(shopsArg);
const QUEUE = 'spike';

async function worker(schema) {
  const boss = new PgBoss({ connectionString: PG_URL, schema, supervise: false, schedule: false, migrate: false, max: 4 });
  await boss.start();
  let done = 0, emptyFetches = 0, first = 0;
  process.on('message', async (m) => {
    if (m !== 'go') return;
    const deadline = Date.now() + 120_000;
    while (Date.now() < deadline) {
      const jobs = await boss.fetch(QUEUE, { batchSize: 50 });
      if (!first && jobs.length) first = Date.now();
      if (jobs.length === 0) {
        emptyFetches++;
        const left = await boss.getQueueSize(QUEUE, { before: 'completed' });
        if (left === 0) break;
        await new Promise((r) => setTimeout(r, 20));
        continue;
      }
      // Trivial work; each job completed on its own (an execution ends on its own time).
      await Promise.all(jobs.map((j) => boss.complete(QUEUE, j.id)));
      done += jobs.length;
    }
    process.send({ done, emptyFetches, first, last: Date.now() });
    await boss.stop({ graceful: false, wait: false });
    process.exit(0);
  });
  process.send('ready');
}

async function main() {
  const schema = `spike_boss_${process.pid}`;
  const boss = new PgBoss({ connectionString: PG_URL, schema, supervise: false, schedule: false });
  await boss.start();
  await boss.createQueue(QUEUE, { name: QUEUE, policy: mode === 'singleton' ? 'singleton' : 'standard' });
  for (let i = 0; i < JOBS; i += 500) {
    const batch = [];
    for (let k = i; k < Math.min(JOBS, i + 500); k++) batch.push({ name: QUEUE, data: { n: k }, singletonKey: mode === 'singleton' ? `shop${k % SHOPS}` : undefined });
    await boss.insert(batch);
  }
  const kids = Array.from({ length: PROCS }, () => fork(process.argv[1], [jobsArg, procsArg, mode, shopsArg, 'worker', schema]));
  await Promise.all(kids.map((k) => new Promise((r) => k.once('message', r))));
  const results = await Promise.all(kids.map((k) => new Promise((r) => { k.on('message', (m) => m !== 'ready' && r(m)); k.send('go'); })));
  const first = Math.min(...results.map((r) => r.first).filter(Boolean));
  const last = Math.max(...results.map((r) => r.last));
  const done = results.reduce((a, r) => a + r.done, 0);
  const emptyFetches = results.reduce((a, r) => a + r.emptyFetches, 0);
  console.log(JSON.stringify({ engine: 'pg-boss 10.4.2', mode, jobs: JOBS, procs: PROCS, done, seconds: (last - first) / 1000, jobsPerSec: Math.round(done / ((last - first) / 1000)), emptyFetches }));
  await boss.stop({ graceful: false, wait: false });
  const pg = (await import('pg')).default;
  const c = new pg.Client(PG_URL);
  await c.connect();
  await c.query(`DROP SCHEMA ${schema} CASCADE`);
  await c.end();
}

if (role === 'worker') await worker(schemaArg);
else await main();
