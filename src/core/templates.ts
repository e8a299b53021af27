/**
 * Project templates for `alloy init`. A template is an example project shipped in
 * examples/, so the scaffold and the bundled example are one source kept valid by tests.
 */
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { EXAMPLES_DIR } from '../package-paths.js';

export interface ProjectTemplate {
  name: string;
  description: string;
  dir: string;
  /** The project name used inside the template, replaced by the user's. */
  placeholderName: string;
}

export const TEMPLATES: ProjectTemplate[] = [
  {
    name: 'shopify-sync',
    description: 'Bi-directional Shopify sync: Acme order requests → Shopify orders, Shopify orders → Acme API',
    dir: path.join(EXAMPLES_DIR, 'shopify-sync'),
    placeholderName: 'shopify-sync-example',
  },
];

/** npm never packs files named .gitignore, so the scaffold's ignore list lives here. */
export const PROJECT_GITIGNORE = `# alloy: local store and dev state, like .git
.alloy/
# secrets
.env
users/
`;

export interface PlannedFile {
  /** Path relative to the target folder, forward slashes. */
  path: string;
  content: string;
}

/** The files `init` would write: pure apart from reading the template. */
export async function planProjectFiles(template: ProjectTemplate, projectName: string): Promise<PlannedFile[]> {
  const files: PlannedFile[] = [];
  for (const rel of await listFiles(template.dir)) {
    if (path.basename(rel) === '.gitignore' || rel.startsWith('.alloy/') || path.basename(rel) === '.env') continue;
    let content = await readFile(path.join(template.dir, rel), 'utf8');
    if (rel === 'alloy.config.yaml' || rel === 'README.md') content = content.split(template.placeholderName).join(projectName);
    files.push({ path: rel, content });
  }
  files.push({ path: '.gitignore', content: PROJECT_GITIGNORE });
  return files.sort((a, b) => a.path.localeCompare(b.path));
}

async function listFiles(dir: string, prefix = ''): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const rel = prefix ? `${prefix}/${entry.name}` : entry.name;
    if (entry.isDirectory()) {
      if (entry.name === '.alloy' || entry.name === 'node_modules') continue;
      out.push(...(await listFiles(path.join(dir, entry.name), rel)));
    } else if (entry.isFile()) out.push(rel);
  }
  return out;
}
