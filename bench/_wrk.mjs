// wrk, the one external load generator of the HTTP benches, and the measurements around it:
// a runner that parses wrk's report (p50/p99, status counts printed by the script's done()),
// a Lua script writer, a process's CPU seconds from /proc/<pid>/stat, and a counting
// destination for targets that POST onward. Used by serve-bench.mjs and runtime-bench.mjs.
import { fork, spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';

const CLK_TCK = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout?.trim()) || 100;

/** Exits with a clear message when wrk or /proc is missing. */
export function requireWrk(bench) {
  if (spawnSync('wrk', ['--version'], { stdio: 'ignore' }).error) {
    console.error(
      `${bench} needs wrk, the HTTP load generator, and it is not installed.\n` +
        '  Debian/Ubuntu: sudo apt-get update && sudo apt-get install -y wrk\n' +
        '  macOS:         brew install wrk\n' +
        'then run `npm run bench` again.',
    );
    process.exit(1);
  }
  if (!existsSync('/proc/self/stat')) {
    console.error(`${bench} reads server CPU from /proc/<pid>/stat: run it on Linux.`);
    process.exit(1);
  }
}

/** CPU seconds (user + system) of a process so far, from /proc/<pid>/stat. */
export function cpuSeconds(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // After "(comm)": utime is field 14, stime 15 (1-based over the whole line).
  return (Number(fields[11]) + Number(fields[12])) / CLK_TCK;
}

/** Writes a wrk script whose thread prints `STATUS <code> <count>` lines when it finishes. */
export function wrkScript(dir, name, requestLua, { delayMs } = {}) {
  const file = path.join(dir, `${name}.lua`);
  writeFileSync(
    file,
    `${requestLua}
statuses = {}
function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end
${delayMs ? `function delay() return ${delayMs} end` : ''}
local threads = {}
function setup(thread) table.insert(threads, thread) end
function done(summary, latency, requests)
  for _, t in ipairs(threads) do
    local s = t:get("statuses")
    for code, n in pairs(s) do io.write(string.format("STATUS %d %d\\n", code, n)) end
  end
end
`,
  );
  return file;
}

/** Runs wrk (one thread) against `url` with `script`; its request count, p50/p99 (ms) and status counts. */
export function runWrk(url, script, { durationS, connections, env }) {
  return new Promise((resolve, reject) => {
    // Through bash, whose `times` prints the CPU its child (wrk) used: the load generator shares
    // the 2 cores with the target, so its cost per request is part of the budget a ratio sits in.
    const args = ['-t', '1', '-c', String(connections), '-d', `${durationS}s`, '--latency', '--timeout', '10s', '-s', script, url];
    const p = spawn('bash', ['-c', 'wrk "$@"; rc=$?; times >&2; exit $rc', 'wrk', ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, ...env },
    });
    let out = '';
    p.stdout.on('data', (d) => (out += d));
    p.stderr.on('data', (d) => (out += d));
    p.on('error', reject);
    p.on('exit', (code) => {
      if (code !== 0) return reject(new Error(`wrk exited ${code}:\n${out}`));
      const num = (re) => out.match(re)?.[1];
      const ms = (text) => {
        const m = text?.match(/^([\d.]+)(us|ms|s|m)$/);
        if (!m) return NaN;
        const v = Number(m[1]);
        return m[2] === 'us' ? v / 1000 : m[2] === 'ms' ? v : m[2] === 's' ? v * 1000 : v * 60000;
      };
      const errors = out.match(/Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/);
      const statuses = {};
      for (const line of out.match(/^STATUS (\d+) (\d+)$/gm) ?? []) {
        const [, s, n] = line.split(' ');
        statuses[s] = (statuses[s] ?? 0) + Number(n);
      }
      resolve({
        requests: Number(num(/(\d+) requests in/)),
        non2xx: Number(num(/Non-2xx or 3xx responses: (\d+)/) ?? 0),
        socketErrors: errors ? errors.slice(1).reduce((a, b) => a + Number(b), 0) : 0,
        p50: ms(num(/^\s+50%\s+(\S+)\s*$/m)),
        p99: ms(num(/^\s+99%\s+(\S+)\s*$/m)),
        statuses,
        // `times` prints the shell's user/sys, then its children's: the last such line is wrk's.
        wrkCpuS: (() => {
          const t = [...out.matchAll(/^(\d+)m([\d.]+)s (\d+)m([\d.]+)s$/gm)].at(-1);
          return t ? Number(t[1]) * 60 + Number(t[2]) + Number(t[3]) * 60 + Number(t[4]) : NaN;
        })(),
        raw: out,
      });
    });
  });
}

/** A local destination for benches whose targets POST onward: answers 200 and counts arrivals. */
export async function startDestination() {
  let count = 0;
  let last = 0;
  const server = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      count++;
      last = performance.now();
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{"ok":true}');
    });
  });
  server.keepAliveTimeout = 10_000;
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    get count() {
      return count;
    },
    get last() {
      return last;
    },
    reset: () => {
      count = 0;
      last = 0;
    },
    close: () => new Promise((r) => { server.closeAllConnections(); server.close(r); }),
  };
}

/** Waits until `dest` has counted `n` arrivals, or fails after `ms`. */
export async function waitForCount(dest, n, ms) {
  const deadline = Date.now() + ms;
  while (dest.count < n) {
    if (Date.now() > deadline) throw new Error(`only ${dest.count}/${n} executions completed`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/**
 * A bench target in its own process (a `_*-target.mjs` script speaking the ready / reset /
 * stats / stop messages): resolves with its url, pid, the ready message's other fields
 * (`ready`), and those calls.
 */
export function forkTarget(script, args, { env = {}, execArgv = [] } = {}) {
  const child = fork(script, args, { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], env: { ...process.env, ...env }, execArgv });
  const ask = (type) => new Promise((r) => { child.once('message', r); child.send({ type }); });
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('message', (m) => {
      if (m.type !== 'ready') return reject(new Error(`unexpected ${JSON.stringify(m)}`));
      resolve({
        url: m.url,
        ready: m,
        pid: child.pid,
        reset: () => ask('reset'),
        stats: () => ask('stats'),
        stop: () => new Promise((r) => { child.once('exit', r); child.send({ type: 'stop' }); }),
      });
    });
  });
}
