// Preloaded into serve processes by `cluster-bench --count` (node --import): counts the
// statements each process sends through node-postgres, by statement (its prepared name or its
// first words), with the time each took (client: sent -> answered, after any wait for the
// connection's previous statement; pool: including the wait for a pooled connection), and
// writes the figures so far to $ALLOY_PG_COUNT_DIR/<pid>.json on SIGUSR2.
// A measuring aid only: nothing of alloy loads it.
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';

const dir = process.env.ALLOY_PG_COUNT_DIR;
let pg;
try {
  const require = createRequire(path.join(process.env.ALLOY_PG_COUNT_ROOT ?? process.cwd(), 'x.js'));
  pg = require('pg');
} catch {
  pg = undefined;
}
if (pg && dir) {
  const counts = new Map(); // key -> [n, clientMs, poolMs]
  const keyOf = (q) => {
    const name = typeof q === 'object' && q ? q.name : undefined;
    const text = typeof q === 'string' ? q : q?.text ?? '';
    return name ? `[${name}]` : text.replace(/\s+/g, ' ').trim().slice(0, 70);
  };
  const add = (k, i, v) => {
    let c = counts.get(k);
    if (!c) counts.set(k, (c = [0, 0, 0]));
    c[i] += v;
  };
  const timed = (fn, i, counting) =>
    function (q, ...rest) {
      const k = keyOf(q);
      if (counting) add(k, 0, 1);
      const t0 = performance.now();
      const last = rest[rest.length - 1];
      if (typeof last === 'function') {
        rest[rest.length - 1] = function (...a) {
          add(k, i, performance.now() - t0);
          return last.apply(this, a);
        };
        return fn.call(this, q, ...rest);
      }
      const r = fn.call(this, q, ...rest);
      if (r && typeof r.then === 'function') r.then(() => add(k, i, performance.now() - t0), () => add(k, i, performance.now() - t0));
      return r;
    };
  pg.Client.prototype.query = timed(pg.Client.prototype.query, 1, true);
  pg.Pool.prototype.query = timed(pg.Pool.prototype.query, 2, false);
  process.on('SIGUSR2', () => writeFileSync(path.join(dir, `${process.pid}.json`), JSON.stringify(Object.fromEntries(counts))));
}
