/**
 * Who made a release and from what: author (ALLOY_AUTHOR, else git config user, else the
 * OS user), git commit (GITHUB_SHA, CI_COMMIT_SHA, else `git rev-parse HEAD`) and CI run
 * (GitHub Actions GITHUB_RUN_ID, GitLab CI CI_PIPELINE_ID). Everything is passed in: the
 * environment, the working directory and the command runner.
 */
import os from 'node:os';
import type { ReleaseProvenance } from './objects.js';

export type RunCommand = (file: string, args: string[], cwd: string) => Promise<string | undefined>;

export const runGit: RunCommand = async (file, args, cwd) => {
  try {
    const { execa } = await import('execa');
    const r = await execa(file, args, { cwd, reject: false, timeout: 5_000, stdin: 'ignore' });
    return r.exitCode === 0 ? String(r.stdout).trim() || undefined : undefined;
  } catch {
    return undefined;
  }
};

export interface DetectedProvenance {
  author: string;
  provenance: ReleaseProvenance;
}

export async function detectProvenance(env: NodeJS.ProcessEnv, cwd: string, run: RunCommand = runGit): Promise<DetectedProvenance> {
  let author = env.ALLOY_AUTHOR?.trim();
  if (!author) {
    const name = env.GIT_AUTHOR_NAME ?? (await run('git', ['config', 'user.name'], cwd));
    const email = env.GIT_AUTHOR_EMAIL ?? (await run('git', ['config', 'user.email'], cwd));
    if (name) author = email ? `${name} <${email}>` : name;
  }
  if (!author && env.GITHUB_ACTOR) author = env.GITHUB_ACTOR;
  if (!author && env.GITLAB_USER_LOGIN) author = env.GITLAB_USER_LOGIN;
  if (!author) {
    try {
      author = os.userInfo().username;
    } catch {
      author = 'unknown';
    }
  }

  const provenance: ReleaseProvenance = {};
  const commit = env.GITHUB_SHA || env.CI_COMMIT_SHA || (await run('git', ['rev-parse', 'HEAD'], cwd));
  if (commit && /^[0-9a-f]{7,64}$/i.test(commit)) provenance.commit = commit.toLowerCase();
  if (env.GITHUB_RUN_ID) {
    const url =
      env.GITHUB_SERVER_URL && env.GITHUB_REPOSITORY
        ? `${env.GITHUB_SERVER_URL}/${env.GITHUB_REPOSITORY}/actions/runs/${env.GITHUB_RUN_ID}`
        : undefined;
    provenance.ci = { provider: 'github-actions', run: env.GITHUB_RUN_ID, ...(url ? { url } : {}) };
  } else if (env.CI_PIPELINE_ID) {
    provenance.ci = { provider: 'gitlab-ci', run: env.CI_PIPELINE_ID, ...(env.CI_PIPELINE_URL ? { url: env.CI_PIPELINE_URL } : {}) };
  }
  return { author, provenance };
}
