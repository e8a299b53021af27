import { describe, expect, it } from 'vitest';
import { commands } from '../../src/cli/registry/index.js';
import { runBin, runInProcess, STACK_LINE } from '../helpers/cli.js';
import { colorLevel } from '../../src/cli/context.js';

describe('CLI manners', () => {
  it('--help lists every registered command with its summary', async () => {
    const r = await runInProcess(['--help']);
    expect(r.code).toBe(0);
    expect(commands.length).toBeGreaterThanOrEqual(3);
    for (const spec of commands) {
      const name = spec.usage.split(' ')[0];
      expect(r.stdout).toMatch(new RegExp(`^  ${name}\\b`, 'm'));
    }
  });

  it('<cmd> --help shows the command options and examples', async () => {
    const r = await runInProcess(['validate', '--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('--fail-on-warn');
    expect(r.stdout).toContain('$ alloy validate');
  });

  it('--version prints the package version (built binary)', async () => {
    const { version } = (await import('../../package.json', { with: { type: 'json' } })).default as { version: string };
    const r = await runBin(['--version']);
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toBe(version);
  });

  it('suggests the nearest command and flag, exit 2', async () => {
    const cmd = await runInProcess(['valdate']);
    expect(cmd.code).toBe(2);
    expect(cmd.stderr).toContain('Did you mean validate?');
    const flag = await runInProcess(['validate', '--fail-on-wrn']);
    expect(flag.code).toBe(2);
    expect(flag.stderr).toContain('Did you mean --fail-on-warn?');
  });

  it('user errors print no stack trace; ALLOY_DEBUG=1 shows it', async () => {
    const plain = await runBin(['validate'], { cwd: '/' });
    expect(plain.code).toBe(2);
    expect(plain.stderr).toContain('E_NO_PROJECT');
    expect(plain.stderr).toContain('alloy init');
    expect(plain.stderr).not.toMatch(STACK_LINE);
    const debug = await runBin(['validate'], { cwd: '/', env: { ALLOY_DEBUG: '1' } });
    expect(debug.stderr).toMatch(STACK_LINE);
  });

  it('--json errors are JSON on stdout and nothing else', async () => {
    const r = await runBin(['validate', '--json'], { cwd: '/' });
    expect(r.code).toBe(2);
    const body = JSON.parse(r.stdout) as { ok: boolean; error: { code: string; hint: string } };
    expect(body.ok).toBe(false);
    expect(body.error.code).toBe('E_NO_PROJECT');
  });

  it('--json usage mistakes (unknown flag or command) are JSON on stdout too, exit 2', async () => {
    for (const [args, env] of [[['validate', '--json', '--fail-on-wrn'], {}], [['valdate', '--json'], {}], [['validate', '--fail-on-wrn'], { ALLOY_JSON: '1' }]] as const) {
      const r = await runInProcess([...args], { env });
      expect(r.code).toBe(2);
      const body = JSON.parse(r.stdout) as { ok: boolean; error: { code: string; message: string; hint: string } };
      expect(body.ok).toBe(false);
      expect(body.error.code).toBe('E_USAGE');
      expect(body.error.message).toMatch(/^unknown (option|command)/);
      expect(body.error.hint).toMatch(/Did you mean/);
    }
    // Without --json, stdout stays empty and the message is on stderr, as before.
    const plain = await runInProcess(['validate', '--fail-on-wrn'], { env: { ALLOY_JSON: '0' } });
    expect(plain.stdout).toBe('');
    expect(plain.stderr).toContain("unknown option '--fail-on-wrn'");
  });

  it('servers read their flags from their own variables, so one ALLOY_PORT cannot move them all', async () => {
    const dev = await runInProcess(['dev', '--help']);
    const relay = await runInProcess(['relay', '--help']);
    expect(dev.stdout).toContain('ALLOY_DEV_PORT');
    expect(relay.stdout).toContain('ALLOY_RELAY_PORT');
    expect(dev.stdout + relay.stdout).not.toMatch(/\bALLOY_PORT\b/);
    // no flag shows two variables
    for (const text of [dev.stdout, relay.stdout]) expect(text).not.toMatch(/env ALLOY_[A-Z_]+[^\n]*\(env:/);
  });

  it('alloy logs with nothing to show says so (it printed nothing, exit 0), and --json stays empty', async () => {
    const { mkdtemp, rm } = await import('node:fs/promises');
    const os = await import('node:os');
    const path = await import('node:path');
    const dir = await mkdtemp(path.join(os.tmpdir(), 'alloy-logs-'));
    try {
      expect((await runInProcess(['init', 'p', '--yes'], { cwd: dir })).code).toBe(0);
      // An event log with nothing finished in it (alloy dev ran, nothing was sent).
      const { openEventLog } = await import('../../src/server/event-log.js');
      const { mkdirSync } = await import('node:fs');
      mkdirSync(path.join(dir, 'p', '.alloy'), { mode: 0o700 });
      openEventLog({ file: path.join(dir, 'p', '.alloy', 'dev.sqlite') }).close();
      const r = await runInProcess(['logs'], { cwd: path.join(dir, 'p') });
      expect(r.code).toBe(0);
      expect(r.stdout).toBe('');
      expect(r.stderr).toContain('no finished executions yet');
      const j = await runInProcess(['logs', '--json'], { cwd: path.join(dir, 'p') });
      expect(j.stdout).toBe('');
      expect(j.stderr).toBe('');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('what the filesystem refuses (a file named .alloy) is E_FS naming the path, exit 1, not "a bug in alloy"', async () => {
    const { mkdtemp, rm, writeFile } = await import('node:fs/promises');
    const os = await import('node:os');
    const path = await import('node:path');
    const dir = await mkdtemp(path.join(os.tmpdir(), 'alloy-efs-'));
    try {
      expect((await runInProcess(['init', 'p', '--yes'], { cwd: dir })).code).toBe(0);
      await writeFile(path.join(dir, 'p', '.alloy'), '');
      const r = await runInProcess(['release', '--skip-tests'], { cwd: path.join(dir, 'p') });
      expect(r.code).toBe(1);
      expect(r.stderr).toContain('E_FS');
      expect(r.stderr).toContain('.alloy/');
      expect(r.stderr).toContain('ENOTDIR');
      expect(r.stderr).not.toContain('internal error');
      expect(r.stderr).not.toMatch(STACK_LINE);
      const j = await runInProcess(['release', '--skip-tests', '--json'], { cwd: path.join(dir, 'p') });
      expect(JSON.parse(j.stdout).error).toMatchObject({ code: 'E_FS', details: { errno: 'ENOTDIR' } });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('colours follow NO_COLOR, FORCE_COLOR and the TTY', () => {
    expect(colorLevel({ write: () => true, isTTY: true }, {})).toBe(1);
    expect(colorLevel({ write: () => true, isTTY: true }, { NO_COLOR: '1' })).toBe(0);
    expect(colorLevel({ write: () => true, isTTY: false }, {})).toBe(0);
    expect(colorLevel({ write: () => true, isTTY: false }, { FORCE_COLOR: '1' })).toBe(1);
    expect(colorLevel({ write: () => true, isTTY: true }, {}, true)).toBe(0);
  });

  it('piped output has no escape codes, FORCE_COLOR output has them', async () => {
    const plain = await runBin(['validate', 'test/fixtures/invalid/unknown-key-step.yaml'], { env: { NO_COLOR: '' } });
    expect(plain.stdout).not.toContain('\u001b[');
    const forced = await runBin(['validate', 'test/fixtures/invalid/unknown-key-step.yaml'], { env: { NO_COLOR: '', FORCE_COLOR: '1' } });
    expect(forced.stdout).toContain('\u001b[');
  });
});

describe('untrusted text on a terminal', () => {
  it('the spinner (ora, on a TTY) shows control sequences in its texts escaped, as every human line', async () => {
    const { createContext } = await import('../../src/cli/context.js');
    const { PassThrough } = await import('node:stream');
    let written = '';
    const stderr = Object.assign(new PassThrough(), { isTTY: true, columns: 80, rows: 24, cursorTo: () => true, clearLine: () => true, moveCursor: () => true });
    stderr.on('data', (d: Buffer) => (written += d.toString()));
    const ctx = createContext({ stdout: { write: () => true, isTTY: true }, stderr, env: { TERM: 'xterm' }, cwd: process.cwd() });
    const hostile = 'step x\u001b]0;pwned\u0007';
    const s = await ctx.spinner(hostile);
    s.update(`${hostile} again`);
    s.succeed(`${hostile} done`);
    await new Promise((r) => setImmediate(r));
    expect(written).toContain('\\x1b]0;pwned\\x07 done');
    expect(written).not.toContain('\u001b]0;pwned');
  });
});
