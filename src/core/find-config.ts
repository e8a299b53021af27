/**
 * Finding the project: the config file from a folder upward. Apart from project.ts (which
 * loads and checks every definition, and imports the schema and expression machinery) so the
 * commands that only need the project root (executions, logs, replay, emit) start fast.
 */
import path from 'node:path';
import { AlloyError, EXIT_USAGE } from '../errors.js';

export const CONFIG_FILES = [
  'alloy.config.yaml',
  'alloy.config.yml',
  'alloy.config.json',
  'alloy.config.js',
  'alloy.config.mjs',
  '.alloyrc',
  '.alloyrc.json',
  '.alloyrc.yaml',
  '.alloyrc.yml',
  '.alloyrc.js',
  '.alloyrc.mjs',
  'package.json',
];

export interface FoundConfig {
  root: string;
  /** Absolute path of the config file. */
  filepath: string;
  /** The config object as loaded (before validation). */
  config: unknown;
}

/**
 * cosmiconfig reads a candidate whole, whatever it is: a committed `alloy.config.yaml` that is
 * a named pipe blocked every command for ever, a link to /dev/zero read without end. So the
 * search places are looked at first, from `cwd` up to the first regular config file, and one
 * that exists but is not a regular file is refused.
 */
async function refuseOddConfigFiles(cwd: string): Promise<void> {
  const { stat } = await import('node:fs/promises');
  for (let dir = path.resolve(cwd); ; dir = path.dirname(dir)) {
    const infos = await Promise.all(CONFIG_FILES.map((name) => stat(path.join(dir, name)).catch(() => undefined)));
    let found = false;
    let projectTop = false;
    for (let i = 0; i < CONFIG_FILES.length; i++) {
      const info = infos[i];
      if (!info) continue;
      const file = path.join(dir, CONFIG_FILES[i]);
      // What would block or never end a whole-file read; a folder so named is skipped, as cosmiconfig does.
      if (info.isFIFO() || info.isCharacterDevice() || info.isBlockDevice() || info.isSocket()) {
        throw new AlloyError('E_CONFIG_LOAD', `could not load the project config: ${file} is not a regular file`, {
          hint: `make it a regular file, or remove it`,
          exitCode: EXIT_USAGE,
          details: { path: file },
        });
      }
      if (!info.isFile()) continue;
      if (CONFIG_FILES[i] === 'package.json') projectTop = true;
      else found = true;
    }
    // cosmiconfig's 'project' strategy stops at the first folder holding a package.json.
    if (found || projectTop || path.dirname(dir) === dir) return;
  }
}

/** Finds the project config from `cwd` upward (cosmiconfig, same search places as docs). */
export async function findConfig(cwd: string): Promise<FoundConfig | undefined> {
  await refuseOddConfigFiles(cwd);
  const { cosmiconfig } = await import('cosmiconfig');
  const [{ parse }, { YAML_OPTIONS }] = await Promise.all([import('yaml'), import('./yaml-core.js')]);
  // Never throw while searching: a broken file is still "the config", reported with positions later.
  // Read as the definitions are (yaml-core.ts): the store and serve commands use this value, and it
  // took `%YAML 1.1` forms (`yes`, dates) the validated config does not.
  const lenientYaml = (_file: string, content: string) => {
    try {
      return parse(content, YAML_OPTIONS) ?? {};
    } catch {
      return { __unparsable: true };
    }
  };
  const explorer = cosmiconfig('alloy', {
    searchPlaces: CONFIG_FILES,
    searchStrategy: 'project',
    loaders: { '.yaml': lenientYaml, '.yml': lenientYaml, '.json': lenientYaml, noExt: lenientYaml },
    cache: false,
  });
  let result;
  try {
    result = await explorer.search(cwd);
  } catch (err) {
    throw new AlloyError('E_CONFIG_LOAD', `could not load the project config: ${(err as Error).message}`, {
      hint: 'fix the syntax of alloy.config.* (or .alloyrc*)',
      exitCode: EXIT_USAGE,
    });
  }
  if (!result || result.isEmpty) return undefined;
  return { root: path.dirname(result.filepath), filepath: result.filepath, config: result.config };
}

export function noProjectError(cwd: string): AlloyError {
  return new AlloyError('E_NO_PROJECT', `no alloy project in ${cwd} or any folder above it`, {
    hint: 'run `alloy init` to create one, or point at one with -C <dir>',
    exitCode: EXIT_USAGE,
  });
}
