// A separate load process for the kill -9 test: sends events with fixed concurrency and
// prints one line per answer: `ACK <n> <executionId>` for a 202, `NACK <n> <status>`, or
// `ERR <n> <code>` when the connection fails (then it stops: the server is gone).
// usage: node sender.mjs <baseUrl> <from> <to> <concurrency>
import { request } from 'undici';

const [base, fromText, toText, concText] = process.argv.slice(2);
const to = Number(toText);
let next = Number(fromText);
let stop = false;

async function worker() {
  while (!stop && next < to) {
    const n = next++;
    try {
      const res = await request(`${base}/v1/run/event`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ event: 'kill.item', data: { n, sku: `sku-${n}`, qty: (n % 5) + 1 } }),
      });
      const text = await res.body.text();
      if (res.statusCode === 202) process.stdout.write(`ACK ${n} ${JSON.parse(text).executions[0].id}\n`);
      else process.stdout.write(`NACK ${n} ${res.statusCode}\n`);
    } catch (err) {
      process.stdout.write(`ERR ${n} ${err.code ?? err.message}\n`);
      stop = true;
    }
  }
}
await Promise.all(Array.from({ length: Number(concText) }, worker));
