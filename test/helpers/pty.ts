/** Running the built binary on a real terminal: util-linux `script` gives it a pty. */
import { execFileSync } from 'node:child_process';
import { execa, type ResultPromise } from 'execa';

export const hasScript = (() => {
  try {
    execFileSync('script', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

/** Starts `command` in a pty; `seen(text)` resolves once the output contains it. */
export function inPty(command: string, cwd: string, env: NodeJS.ProcessEnv = {}): { child: ResultPromise; output: () => string; seen: (text: string) => Promise<void> } {
  const child = execa('script', ['-qefc', command, '/dev/null'], {
    cwd,
    env: { CI: '', NO_COLOR: '1', TERM: 'xterm', COLUMNS: '100', LINES: '30', ...env },
    extendEnv: true,
    reject: false,
    timeout: 20_000,
  });
  let output = '';
  child.stdout!.on('data', (b: Buffer) => (output += b.toString()));
  const seen = (text: string) =>
    new Promise<void>((resolve) => {
      const check = () => (output.includes(text) ? resolve() : setTimeout(check, 25));
      check();
    });
  return { child, output: () => output, seen };
}
