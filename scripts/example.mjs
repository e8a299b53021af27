#!/usr/bin/env node
// `npm run example`: the bundled example (examples/shopify-sync) end to end, with embedded
// defaults and nothing to set up by hand. In a temporary copy of the project it starts a
// local fake of Shopify's Admin API and a receiver for Acme's stream (which verifies the
// Standard Webhooks signature), then drives the real `alloy` binary:
//   validate → dev → emit acme.order.requested (an order appears in "Shopify")
//   → emit shopify:orders/create (signed like Shopify; the order streams to Acme, signed)
//   → executions → replay → test → release (runs the tests) → publish → versions
//   → a changed mapping: compare (step-level diff on a recorded execution), replay --version,
//     release refused by the failing test, test --record.
//   → alloy serve (the production runtime, published v1): a user connects the shop through
//     OAuth, installs shopify-sync, and Acme's event creates an order in that user's shop.
// Exit 0 when every step did what it should, 1 otherwise.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const bin = path.join(root, 'bin', 'alloy.js');
const keep = process.argv.includes('--keep');
const { startFakeShopify } = await import(path.join(root, 'dist/testing/index.js'));
const { verifyStandardWebhook } = await import(path.join(root, 'dist/engine/index.js'));

const failures = [];
const check = (ok, what) => {
  console.log(`${ok ? '  ✔' : '  ✖'} ${what}`);
  if (!ok) failures.push(what);
};

// 1. A copy of the example, pointed at local stand-ins for Shopify and Acme.
const dir = mkdtempSync(path.join(os.tmpdir(), 'alloy-example-'));
cpSync(path.join(root, 'examples', 'shopify-sync'), dir, { recursive: true });
const fake = await startFakeShopify();
const streamSecret = `whsec_${randomBytes(24).toString('base64')}`;
const received = [];
const receiver = http.createServer((req, res) => {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    const body = Buffer.concat(chunks).toString('utf8');
    const verdict = verifyStandardWebhook(streamSecret, req.headers, body, { nowSeconds: Math.floor(Date.now() / 1000) });
    received.push({ ok: verdict.ok, body: JSON.parse(body) });
    res.writeHead(verdict.ok ? 204 : 401).end();
  });
});
await new Promise((resolve) => receiver.listen(0, '127.0.0.1', resolve));
const streamUrl = `http://127.0.0.1:${receiver.address().port}/alloy/stream`;
writeFileSync(
  path.join(dir, 'alloy.config.yaml'),
  readFileSync(path.join(dir, 'alloy.config.yaml'), 'utf8') + `# npm run example: Shopify is a local fake\napps:\n  shopify:\n    baseUrl: "${fake.url}"\n# alloy serve refuses loopback unless allowed\negress:\n  allow: ["127.0.0.1"]\n`,
);
writeFileSync(
  path.join(dir, '.env'),
  [
    `SHOPIFY_SHOP=${fake.shop}`,
    `SHOPIFY_ACCESS_TOKEN=${fake.accessToken}`,
    `SHOPIFY_API_SECRET=${randomBytes(16).toString('hex')}`,
    `ACME_STREAM_URL=${streamUrl}`,
    `ACME_STREAM_SECRET=${streamSecret}`,
    '',
  ].join('\n'),
);
console.log(`Example project copied to ${dir}`);
console.log(`Fake Shopify at ${fake.url}; Acme's stream receiver at ${streamUrl}\n`);

const env = { ...process.env, NO_COLOR: process.env.NO_COLOR ?? '', CI: 'true' };
// Asynchronous on purpose: the fake Shopify and the receiver live in this process and must
// keep answering while a command runs.
async function alloy(args, { show = true } = {}) {
  if (show) console.log(`$ alloy ${args.join(' ')}`);
  const child = spawn(process.execPath, [bin, ...args], { cwd: dir, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (b) => (stdout += b));
  child.stderr.on('data', (b) => (stderr += b));
  const code = await new Promise((resolve) => child.on('close', resolve));
  if (show) {
    const text = `${stdout}${stderr}`.trimEnd();
    if (text) console.log(text.replace(/^/gm, '  '));
  }
  return { code, stdout, stderr };
}

let dev;
let serve;
let acmeApp;
try {
  check((await alloy(['validate'])).code === 0, 'the project validates');
  const tested = await alloy(['test']);
  check(tested.code === 0 && /Tests\s+\d+ passed/.test(tested.stdout), 'the scaffold\'s tests pass (alloy test)');

  // 2. The local runtime, on any free port; it writes its address to .alloy/dev.json.
  console.log('$ alloy dev --port 0   (in the background)');
  dev = spawn(process.execPath, [bin, 'dev', '--port', '0'], { cwd: dir, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let devOutput = '';
  dev.stdout.on('data', (b) => (devOutput += b));
  dev.stderr.on('data', (b) => (devOutput += b));
  const devFile = path.join(dir, '.alloy', 'dev.json');
  for (let i = 0; i < 200 && !existsSync(devFile); i++) await new Promise((r) => setTimeout(r, 50));
  check(existsSync(devFile), 'alloy dev is listening');
  if (!existsSync(devFile)) throw new Error(`alloy dev did not start:\n${devOutput}`);

  // 3. Acme asks for an order: the create-order workflow creates it in Shopify.
  const created = await alloy(['emit', 'acme.order.requested', '-d', '@integrations/shopify-sync/fixtures/acme-order-requested.json', '--wait']);
  check(created.code === 0 && fake.orders.length === 1, `the order was created in Shopify (${fake.orders.length} order)`);

  // 4. Shopify says an order was created: order-created streams it to Acme, signed.
  const streamed = await alloy(['emit', 'shopify:orders/create', '-d', '@integrations/shopify-sync/fixtures/orders-create.json', '--wait']);
  check(streamed.code === 0, 'the signed Shopify webhook was accepted and ran');
  check(received.length === 1 && received.every((r) => r.ok), `Acme received the execution data with a valid Standard Webhooks signature (${received.length})`);

  // 5. History and replay from the durable event log.
  const list = await alloy(['executions', '--json'], { show: false });
  const executions = JSON.parse(list.stdout || '[]');
  const items = Array.isArray(executions) ? executions : (executions.executions ?? []);
  await alloy(['executions']);
  check(items.length >= 2, `the event log holds the executions (${items.length})`);
  const toReplay = items.find((e) => String(e.workflow).endsWith('order-created'));
  if (toReplay) {
    const replayed = await alloy(['replay', toReplay.id, '--wait']);
    check(replayed.code === 0 && received.length === 2, 'replaying the Shopify execution streamed it again');
  } else check(false, 'found the order-created execution to replay');

  // 6. Release and publish, as CI would.
  check((await alloy(['release', '-m', 'First release of the Shopify sync'])).code === 0, 'released v1');
  check((await alloy(['release'])).code === 0, 'a second release with no change is "up to date"');
  check((await alloy(['publish', 'shopify-sync@latest'])).code === 0, 'published v1');
  await alloy(['versions']);

  // 7. Change a mapping (the total as Shopify's string, not a number) and see what it would change before releasing it.
  const wfFile = path.join(dir, 'integrations/shopify-sync/workflows/order-created.yaml');
  writeFileSync(wfFile, readFileSync(wfFile, 'utf8').replace('total: "{{ $number(event.total_price) }}"', 'total: "{{ event.total_price }}"'));
  if (toReplay) {
    const compared = await alloy(['compare', toReplay.id]);
    check(compared.code === 0 && compared.stdout.includes('~ step summary') && compared.stdout.includes('"total": "598.94"'), 'compare shows the step-level change between v1 and the working tree on a recorded execution');
    const onV1 = await alloy(['replay', toReplay.id, '--version', '1']);
    check(onV1.code === 0, 'replay --version 1 ran the stored event on v1 (in process)');
  }
  const refused = await alloy(['release', '-m', 'total as a string']);
  check(refused.code === 1 && refused.stderr.includes('maps the Shopify order and streams it to Acme'), 'release refuses while a test fails, naming it');
  const createdId = items.find((e) => String(e.workflow).endsWith('create-order'))?.id;
  if (createdId) {
    const recorded = await alloy(['test', '--record', createdId, '--json'], { show: false });
    const file = recorded.code === 0 ? JSON.parse(recorded.stdout).file : undefined;
    check(Boolean(file) && (await alloy(['test', file])).code === 0, 'test --record wrote a test from the create-order execution, and it passes');
  } else check(false, 'found the create-order execution to record');

  // 8. The production runtime: alloy serve runs the published version for each user.
  // Acme's app, where its user is signed in: the page the OAuth callback sends the browser to
  // completes the connection with that user's token (only the user who started it may).
  // The demo page has one signed-in user; a real page completes with the visitor's own session, never a shared token.
  let signedIn;
  acmeApp = http.createServer(async (req, res) => {
    const connectToken = new URL(req.url, 'http://acme.local').searchParams.get('connectToken');
    const done = await fetch(`${serveUrlForApp}/v1/oauth/shopify/complete`, { method: 'POST', headers: { authorization: `Bearer ${signedIn}`, 'content-type': 'application/json' }, body: JSON.stringify({ connectToken }) });
    res.writeHead(done.status, { 'content-type': 'application/json', 'referrer-policy': 'no-referrer' }).end(await done.text());
  });
  await new Promise((resolve) => acmeApp.listen(0, '127.0.0.1', resolve));
  const acmeOrigin = `http://127.0.0.1:${acmeApp.address().port}`;
  let serveUrlForApp;
  const serveEnv = { ...env, SHOPIFY_API_KEY: fake.clientId, SHOPIFY_API_SECRET: fake.clientSecret, ACME_STREAM_URL: streamUrl, ACME_STREAM_SECRET: streamSecret, ALLOY_SERVE_OAUTH_REDIRECT_ORIGINS: acmeOrigin };
  const keyRun = spawn(process.execPath, [bin, 'serve', 'keys', 'create', '--role', 'admin', '--json'], { cwd: dir, env: serveEnv, stdio: ['ignore', 'pipe', 'inherit'] });
  let keyOut = '';
  keyRun.stdout.on('data', (b) => (keyOut += b));
  await new Promise((resolve) => keyRun.on('close', resolve));
  const adminKey = JSON.parse(keyOut).key;
  console.log('$ alloy serve keys create --role admin   (the key is shown once)');
  console.log('$ alloy serve --port 0   (in the background)');
  serve = spawn(process.execPath, [bin, 'serve', '--port', '0', '--json'], { cwd: dir, env: serveEnv, stdio: ['ignore', 'pipe', 'pipe'] });
  let serveErr = '';
  serve.stderr.on('data', (b) => (serveErr += b));
  const serveUrl = await new Promise((resolve, reject) => {
    let out = '';
    serve.stdout.on('data', (b) => {
      out += b;
      if (out.trim().endsWith('}')) resolve(JSON.parse(out).url);
    });
    serve.once('exit', () => reject(new Error(`alloy serve exited: ${serveErr}`)));
  });
  const api = async (method, p, body, token = adminKey) => {
    const res = await fetch(serveUrl + p, { method, headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) }, body: body ? JSON.stringify(body) : undefined });
    return { status: res.status, body: await res.json() };
  };
  check((await api('POST', '/v1/users', { id: 'acme-customer-1' })).status === 201, 'your backend created a user');
  const userToken = (await api('POST', '/v1/users/acme-customer-1/token')).body.token;
  serveUrlForApp = serveUrl;
  signedIn = userToken;
  const start = await api('POST', '/v1/oauth/shopify/start', { userId: 'acme-customer-1', account: fake.shop, redirectAfter: `${acmeOrigin}/connected` }, userToken);
  // The browser: Shopify's authorize page, alloy serve's callback, then Acme's page.
  const authorize = await fetch(start.body.authorizeUrl, { redirect: 'manual' });
  const callback = await fetch(authorize.headers.get('location'), { redirect: 'manual' });
  const page = await fetch(callback.headers.get('location'), { redirect: 'manual' });
  const credential = (await page.json()).credential;
  check(callback.status === 302 && page.status === 201 && credential?.account === fake.shop, `the user connected ${fake.shop} through OAuth (completed by Acme's page, where the user is signed in)`);
  const installation = await api('POST', '/v1/installations', { userId: 'acme-customer-1', integration: 'shopify-sync', credentials: { shopify: credential.id } }, userToken);
  check(installation.status === 201 && installation.body.version === 1, 'the user installed shopify-sync at the published version (v1)');
  const ordersBefore = fake.ordersFor(fake.shop).length;
  const data = JSON.parse(readFileSync(path.join(dir, 'integrations/shopify-sync/fixtures/acme-order-requested.json'), 'utf8'));
  const sent = await api('POST', '/v1/run/event', { event: 'acme.order.requested', userId: 'acme-customer-1', data });
  let execution;
  for (let i = 0; i < 200; i++) {
    execution = (await api('GET', `/v1/executions/${sent.body.executionIds?.[0]}`)).body;
    if (execution.status === 'succeeded' || execution.status === 'failed') break;
    await new Promise((r) => setTimeout(r, 50));
  }
  check(execution?.status === 'succeeded' && fake.ordersFor(fake.shop).length === ordersBefore + 1, `run/event created the order in the user's shop on v${execution?.version}`);
} catch (err) {
  failures.push(String(err?.message ?? err));
  console.error(err);
} finally {
  if (dev && dev.exitCode === null) {
    dev.kill('SIGINT');
    await new Promise((resolve) => dev.once('exit', resolve));
  }
  if (serve && serve.exitCode === null) {
    serve.kill('SIGTERM');
    await new Promise((resolve) => serve.once('exit', resolve));
  }
  await fake.close();
  await new Promise((resolve) => receiver.close(resolve));
  if (acmeApp) await new Promise((resolve) => acmeApp.close(resolve));
  if (!keep) rmSync(dir, { recursive: true, force: true });
}

console.log(failures.length === 0 ? '\nThe example ran end to end.' : `\n${failures.length} check(s) failed:\n- ${failures.join('\n- ')}`);
if (keep) console.log(`Kept ${dir}`);
// What a newcomer does next (from the clone, where `alloy` is not on PATH yet).
if (failures.length === 0) {
  console.log(`Next: ${keep ? '' : '`npm run example -- --keep` keeps the project to look at; '}\`node bin/alloy.js init ../my-integrations\` scaffolds your own (README.md "Install" puts \`alloy\` on PATH); the workflow format is in docs/file-format.md.`);
} else console.log(`Run \`npm run example -- --keep\` to keep the project and look at it${keep ? '' : ' (it was removed)'}.`);
process.exit(failures.length === 0 ? 0 : 1);
