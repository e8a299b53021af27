/**
 * `alloy init [dir] [--yes] [--name] [--template]`: scaffolds a project. Asks on a TTY;
 * elsewhere (pipes, CI=true) it needs --yes or both flags. Never overwrites a file: if any
 * file it would write exists, it writes nothing and names the conflicts.
 */
import { lstat, mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { CliContext } from '../context.js';
import { AlloyError, UsageError } from '../../errors.js';
import { closest } from '../../core/diagnostics.js';
import { planProjectFiles, TEMPLATES, type ProjectTemplate } from '../../core/templates.js';

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
 * and a link in place of a folder on the way to one (writing would follow it out of the project).
 */
async function conflictsIn(target: string, rels: string[]): Promise<string[]> {
  const found = new Set<string>();
  const kind = new Map<string, 'link' | 'other' | 'none'>();
  const lkind = async (rel: string) => {
    let k = kind.get(rel);
    if (!k) {
      const st = await lstat(path.join(target, rel)).catch(() => undefined);
      k = !st ? 'none' : st.isSymbolicLink() ? 'link' : 'other';
      kind.set(rel, k);
    }
    return k;
  };
  for (const rel of rels) {
    const parts = rel.split('/');
    for (let i = 1; i < parts.length; i++) {
      const dir = parts.slice(0, i).join('/');
      if ((await lkind(dir)) === 'link') found.add(dir);
    }
    if ((await lkind(rel)) !== 'none') found.add(rel);
  }
  return [...found];
}

export default async function initCommand(ctx: CliContext, args: string[], opts: InitOptions): Promise<number> {
  const target = path.resolve(ctx.cwd, args[0] ?? '.');
  const defaultName = path.basename(target);
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
  const conflicts = await conflictsIn(target, files.map((f) => f.path));
  if (conflicts.length > 0) {
    throw new AlloyError('E_INIT_CONFLICT', `${path.relative(ctx.cwd, target) || '.'} already has ${conflicts.length === 1 ? 'a file' : 'files'} alloy init would write: ${conflicts.slice(0, 5).join(', ')}${conflicts.length > 5 ? ', …' : ''}`, {
      hint: 'alloy init never overwrites files: choose an empty folder, e.g. `alloy init my-project`',
      details: { conflicts },
    });
  }

  const spinner = await ctx.spinner(`Creating ${projectName}`);
  try {
    for (const f of files) {
      const abs = path.join(target, f.path);
      await mkdir(path.dirname(abs), { recursive: true });
      // 'wx': fail rather than overwrite if a file appeared since the check.
      await writeFile(abs, f.content, { flag: 'wx' });
    }
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
