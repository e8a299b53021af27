/**
 * `alloy init [dir] [--yes] [--name] [--template]`: scaffolds a project. Asks on a TTY;
 * elsewhere (pipes, CI=true) it needs --yes or both flags. Never overwrites a file: if any
 * file it would write exists, it writes nothing and names the conflicts.
 *
 * All or nothing: the scaffold is written into a temporary folder beside the target (same
 * filesystem) and renamed into place, so a failure part-way (disk full, a file limit, a
 * path that turns out to be a file) leaves no partial project. Into a folder that already
 * exists, the files are hard-linked in one by one (link never replaces a name, nor follows
 * a link there), and on failure exactly what this run created is removed again; what was
 * in the folder before is never touched.
 */
import { randomBytes } from 'node:crypto';
import { constants as fsConstants } from 'node:fs';
import { copyFile, link, lstat, mkdir, realpath, rename, rm, rmdir, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { CliContext } from '../context.js';
import { AlloyError, UsageError } from '../../errors.js';
import { closest } from '../../core/diagnostics.js';
import { planProjectFiles, TEMPLATES, type PlannedFile, type ProjectTemplate } from '../../core/templates.js';
import { FS_ERRNOS } from '../../core/fs-errors.js';

interface InitOptions {
  yes?: boolean;
  name?: string;
  template?: string;
}

const NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

function findTemplate(name: string): ProjectTemplate {
  const t = TEMPLATES.find((x) => x.name === name);
  if (t) return t;
  const guess = closest(name, TEMPLATES.map((x) => x.name));
  throw new UsageError(`unknown template "${name}"`, {
    hint: guess ? `did you mean --template ${guess}?` : `templates: ${TEMPLATES.map((x) => x.name).join(', ')}`,
  });
}

function checkName(name: string): string {
  if (!NAME_PATTERN.test(name)) {
    throw new UsageError(`invalid project name "${name}"`, { hint: 'use letters, digits, dots, dashes and underscores, e.g. --name acme-integrations' });
  }
  return name;
}

/**
 * What is in the way: a file (or anything, a dangling link too) where one would be written,
 * and a link or a file in place of a folder on the way to one (writing would follow the link
 * out of the project; a file cannot hold one).
 */
async function conflictsIn(target: string, rels: string[]): Promise<string[]> {
  const found = new Set<string>();
  const kind = new Map<string, 'link' | 'dir' | 'other' | 'none'>();
  const lkind = async (rel: string) => {
    let k = kind.get(rel);
    if (!k) {
      const st = await lstat(path.join(target, rel)).catch(() => undefined);
      k = !st ? 'none' : st.isSymbolicLink() ? 'link' : st.isDirectory() ? 'dir' : 'other';
      kind.set(rel, k);
    }
    return k;
  };
  for (const rel of rels) {
    const parts = rel.split('/');
    for (let i = 1; i < parts.length; i++) {
      const dir = parts.slice(0, i).join('/');
      // A link would lead the write out of the project; a file there cannot hold one.
      const k = await lkind(dir);
      if (k === 'link' || k === 'other') found.add(dir);
    }
    if ((await lkind(rel)) !== 'none') found.add(rel);
  }
  return [...found];
}

function shownPath(p: string, cwd: string): string {
  return path.relative(cwd, p) || '.';
}

/**
 * The folder to write into: the target when absent or a real folder; a link to a folder, named
 * by the user, is their choice and is followed once, here (links inside it are still refused);
 * a file, or a link to anything else, is refused.
 */
async function checkTarget(target: string, cwd: string): Promise<string> {
  const st = await lstat(target).catch(() => undefined);
  if (!st || st.isDirectory()) return target;
  const shown = shownPath(target, cwd);
  if (st.isSymbolicLink()) {
    const real = await realpath(target).catch(() => undefined);
    if (real && (await lstat(real)).isDirectory()) return real;
  }
  throw new AlloyError('E_INIT_CONFLICT', st.isSymbolicLink() ? `${shown} is a symbolic link to no folder` : `${shown} exists and is not a folder`, {
    hint: st.isSymbolicLink() ? 'give the folder the link should point to, or a new folder name, e.g. `alloy init my-project`' : 'choose a new or empty folder, e.g. `alloy init my-project`',
    details: { conflicts: ['.'] },
  });
}

/** Environment errors a user can fix (space, permissions, limits): said as such, not as a bug. */
// ENOENT too: init makes every missing folder itself, so one refused as missing is a
// filesystem that cannot hold new folders there (/proc, a folder removed meanwhile).
const WRITE_ERRNOS = new Set(['EACCES', 'EPERM', 'EROFS', 'ENOSPC', 'EDQUOT', 'EFBIG', 'EMFILE', 'ENFILE', 'ENOTDIR', 'EEXIST', 'ENOTEMPTY', 'EISDIR', 'ENAMETOOLONG', 'ELOOP', 'EIO', 'ENOENT']);

/** init's own words where its meaning is narrower than the shared table's (src/core/fs-errors.ts). */
const INIT_ERRNO_WORDS: Record<string, string> = {
  EEXIST: 'a file appeared where alloy init writes',
  ENOTEMPTY: 'the folder was filled meanwhile',
  ELOOP: 'a symbolic link is in the way',
  ENOENT: 'no folder can be made there',
};
/** Errors of a place taken by something else: raced (appeared meanwhile), or a file on the way. */
const RACED = new Set(['EEXIST', 'ENOTEMPTY']);
const IN_THE_WAY = new Set(['ENOTDIR', 'EISDIR', 'ELOOP']);

function writeError(err: unknown, target: string, cwd: string): unknown {
  const e = err as NodeJS.ErrnoException;
  if (err instanceof AlloyError || !e || typeof e.code !== 'string' || !WRITE_ERRNOS.has(e.code)) return err;
  const shown = shownPath(target, cwd);
  const conflict = RACED.has(e.code) || IN_THE_WAY.has(e.code);
  const hint = RACED.has(e.code)
    ? 'something appeared where alloy init writes while it ran; choose an empty folder, e.g. `alloy init my-project`'
    : IN_THE_WAY.has(e.code)
      ? `a file or link is on the way to ${shown}; choose a folder path, e.g. \`alloy init my-project\``
      : e.code === 'ENOENT'
        ? 'choose a folder on a filesystem you can write to, e.g. `alloy init my-project`'
        : 'check the free space and the permissions of the folder, then run alloy init again';
  return new AlloyError(conflict ? 'E_INIT_CONFLICT' : 'E_INIT_WRITE', `could not create the project in ${shown}: ${INIT_ERRNO_WORDS[e.code] ?? FS_ERRNOS[e.code]?.words ?? e.code} (${e.code}); nothing was left behind`, {
    hint,
    cause: err,
    details: { errno: e.code },
  });
}

/**
 * Writes `files` under `target` all or nothing (see the header). Missing folders above the
 * target are made one level at a time and removed again on failure.
 */
async function writeScaffold(target: string, files: PlannedFile[], cwd: string): Promise<void> {
  const parent = path.dirname(target);
  const madeAbove: string[] = [];
  const stagingName = `.alloy-init-${process.pid}-${randomBytes(4).toString('hex')}`;
  let staging = path.join(parent, stagingName);
  let stagingMade = false;
  const linked: string[] = [];
  const madeInside: string[] = [];
  try {
    // The folders above the target that are missing, top first.
    const missing: string[] = [];
    for (let d = parent; !(await lstat(d).catch(() => undefined)); d = path.dirname(d)) {
      missing.unshift(d);
      if (path.dirname(d) === d) break;
    }
    for (const d of missing) {
      await mkdir(d);
      madeAbove.push(d);
    }
    // 0o777 less the umask, as mkdir makes the project's folders (mkdtemp would make it 0700).
    try {
      await mkdir(staging, { mode: 0o777 });
    } catch (err) {
      // `alloy init .` in a folder whose parent is not ours to write: stage inside the
      // target instead (a hidden folder this run makes and removes; same filesystem too).
      const code = (err as NodeJS.ErrnoException).code;
      if ((code !== 'EACCES' && code !== 'EPERM' && code !== 'EROFS') || !(await lstat(target).catch(() => undefined))?.isDirectory()) throw err;
      staging = path.join(target, stagingName);
      await mkdir(staging, { mode: 0o777 });
    }
    stagingMade = true;
    for (const f of files) {
      const abs = path.join(staging, f.path);
      await mkdir(path.dirname(abs), { recursive: true });
      await writeFile(abs, f.content, { flag: 'wx' });
    }
    const existing = await lstat(target).catch(() => undefined);
    if (!existing) {
      // One step: the project appears whole or not at all. rename fails (ENOTEMPTY, EEXIST)
      // rather than replace a folder that something else filled meanwhile.
      await rename(staging, target);
      stagingMade = false;
      return;
    }
    if (!existing.isDirectory()) throw Object.assign(new Error(`${target} is not a folder`), { code: 'ENOTDIR', path: target });
    // Into an existing folder: folders made level by level (a link in the way is refused),
    // files linked in (link fails on any existing name, a dangling link too).
    const ensured = new Set<string>();
    for (const f of files) {
      const parts = f.path.split('/');
      for (let i = 1; i < parts.length; i++) {
        const rel = parts.slice(0, i).join('/');
        if (ensured.has(rel)) continue;
        const abs = path.join(target, rel);
        const st = await lstat(abs).catch(() => undefined);
        if (!st) {
          await mkdir(abs);
          madeInside.push(abs);
        } else if (!st.isDirectory()) {
          throw Object.assign(new Error(`${abs} is not a folder`), { code: st.isSymbolicLink() ? 'ELOOP' : 'ENOTDIR', path: abs });
        }
        ensured.add(rel);
      }
      const dest = path.join(target, f.path);
      try {
        await link(path.join(staging, f.path), dest);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        // A filesystem without hard links: copy, still refusing any existing name (O_EXCL).
        if (code !== 'EXDEV' && code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP') throw err;
        await copyFile(path.join(staging, f.path), dest, fsConstants.COPYFILE_EXCL);
      }
      linked.push(dest);
    }
  } catch (err) {
    // Exactly what this run made, newest first; a folder someone else filled meanwhile stays.
    for (const f of linked.reverse()) await unlink(f).catch(() => undefined);
    for (const d of madeInside.reverse()) await rmdir(d).catch(() => undefined);
    if (stagingMade) await rm(staging, { recursive: true, force: true }).catch(() => undefined);
    for (const d of madeAbove.reverse()) await rmdir(d).catch(() => undefined);
    throw writeError(err, target, cwd);
  }
  await rm(staging, { recursive: true, force: true }).catch(() => undefined);
}

export default async function initCommand(ctx: CliContext, args: string[], opts: InitOptions): Promise<number> {
  const named = path.resolve(ctx.cwd, args[0] ?? '.');
  const defaultName = path.basename(named);
  let name = opts.name;
  let templateName = opts.template;

  if (!opts.yes && (name === undefined || templateName === undefined)) {
    if (!ctx.interactive) {
      throw new UsageError('alloy init needs answers but cannot ask here (no TTY, or CI=true)', {
        hint: 'pass --yes to accept the defaults, or give --name <name> and --template <template>',
      });
    }
    const { input, select } = await import('@inquirer/prompts');
    const io = { input: ctx.io.stdin as NodeJS.ReadableStream, output: ctx.io.stdout as NodeJS.WritableStream };
    name ??= await input({ message: 'Project name', default: defaultName, validate: (v) => NAME_PATTERN.test(v) || 'letters, digits, . _ - only' }, io);
    templateName ??= await select({ message: 'Template', choices: TEMPLATES.map((t) => ({ name: t.name, value: t.name, description: t.description })) }, io);
  }
  const template = findTemplate(templateName ?? TEMPLATES[0].name);
  const projectName = checkName(name ?? defaultName);

  const files = await planProjectFiles(template, projectName);
  const target = await checkTarget(named, ctx.cwd);
  const conflicts = await conflictsIn(target, files.map((f) => f.path));
  if (conflicts.length > 0) {
    throw new AlloyError('E_INIT_CONFLICT', `${path.relative(ctx.cwd, target) || '.'} already has ${conflicts.length === 1 ? 'a file' : 'files'} alloy init would write: ${conflicts.slice(0, 5).join(', ')}${conflicts.length > 5 ? ', …' : ''}`, {
      hint: 'alloy init never overwrites files: choose an empty folder, e.g. `alloy init my-project`',
      details: { conflicts },
    });
  }

  const spinner = await ctx.spinner(`Creating ${projectName}`);
  try {
    await writeScaffold(target, files, ctx.cwd);
  } catch (err) {
    spinner.fail('Could not create the project');
    throw err;
  }
  spinner.stop();

  const shown = path.relative(ctx.cwd, target) || '.';
  if (ctx.json) {
    ctx.printJson({ ok: true, dir: target, name: projectName, template: template.name, files: files.map((f) => f.path) });
    return 0;
  }
  const c = ctx.color;
  ctx.out(`${c.green('✔')} Created ${c.bold(projectName)} in ${shown} (${files.length} files, template ${template.name})`);
  ctx.out();
  ctx.out('Next steps:');
  if (shown !== '.') ctx.out(`  cd ${shown}`);
  ctx.out('  alloy validate            # check every file');
  ctx.out('  alloy listen &            # receive and verify what the workflows stream');
  ctx.out('  alloy dev --fake shopify  # local runtime against a fake Shopify: no account needed');
  ctx.out('  alloy emit acme.order.requested -d @integrations/shopify-sync/fixtures/acme-order-requested.json --wait');
  ctx.out('For a real store: cp .env.example .env, add your Shopify credentials, run alloy dev.');
  return 0;
}
