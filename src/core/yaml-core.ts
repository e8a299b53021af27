/**
 * The YAML 1.2 core schema as alloy reads it, shared by every YAML reader of a project: the
 * positioned parser (source-file.ts), the js-yaml fast path (its scalars come from
 * CORE_SCALARS) and the config search (find-config.ts). No js-yaml here: the config search
 * stays light to import.
 */
import { isScalar, type Tags } from 'yaml';

/**
 * The YAML 1.2 core schema's scalars (yaml.org/spec/1.2.2, 10.3.2), the one resolver of both
 * parsing paths: a plain scalar is null, a boolean, an integer or a float when its text fits
 * that tag's regular expression (tried in this order), else a string; an explicit core tag
 * (`!!int "7"`) takes the same texts. Left to themselves the paths disagreed: js-yaml's
 * "core" takes YAML 1.1 forms (`0b11`, `-0x1F`, `-0o17`, `!!int 1_000`) and refuses `-.5`,
 * and the `yaml` package switches to YAML 1.1 (`yes`, timestamps) under `%YAML 1.1`.
 */
export const CORE_SCALARS = {
  null: { what: 'null, ~ or nothing', test: /^(?:null|Null|NULL|~|)$/, value: () => null },
  bool: { what: 'true or false', test: /^(?:true|True|TRUE|false|False|FALSE)$/, value: (t: string) => t[0] === 't' || t[0] === 'T' },
  int: {
    what: 'an integer such as 12, -3, 0o14 or 0xC',
    test: /^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$/,
    // `+ 0`: an integer has no sign of zero (`-0` is 0; `-0.0`, a float, stays -0).
    value: (t: string) => (t.startsWith('0o') ? parseInt(t.slice(2), 8) : t.startsWith('0x') ? parseInt(t.slice(2), 16) : Number(t) + 0),
  },
  float: {
    what: 'a number such as 1, 1.5, -2e3, .inf or .nan',
    test: /^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$/,
    value: (t: string) => (/^[-+]?\.inf$/i.test(t) ? (t.startsWith('-') ? -Infinity : Infinity) : /^\.nan$/i.test(t) ? NaN : Number(t)),
  },
} satisfies Record<string, { what: string; test: RegExp; value(text: string): unknown }>;

/** What an untagged plain scalar is, as the core schema resolves it (exported for tests). */
export function resolvePlainScalar(text: string): unknown {
  for (const t of Object.values(CORE_SCALARS)) if (t.test.test(text)) return t.value(text);
  return text;
}

export const CORE_TAG_PREFIX = 'tag:yaml.org,2002:';
export const CORE_SCALAR_ENTRIES = Object.entries(CORE_SCALARS);

/**
 * The `yaml` package's form. `default: true` with `test`: the tag resolves untagged plain
 * scalars; the same tag again without `test` serves explicit tags, where a value that does not
 * fit is a located error (E_YAML_TAG) rather than a string.
 */
const CORE_TAGS_FOR_YAML = [
  // A null key is the property "null", as js-yaml (String(null)) has it; the package made it "".
  { tag: CORE_TAG_PREFIX + 'null', default: 'key' as const, test: CORE_SCALARS.null.test, resolve: () => 'null' },
  ...CORE_SCALAR_ENTRIES.map(([name, t]) => ({ tag: CORE_TAG_PREFIX + name, default: true as const, test: t.test, resolve: (text: string) => t.value(text) })),
  ...CORE_SCALAR_ENTRIES.map(([name, t]) => ({
    tag: CORE_TAG_PREFIX + name,
    resolve(text: string, onError: (message: string) => void): unknown {
      if (t.test.test(text)) return t.value(text);
      onError(`${JSON.stringify(text.length > 40 ? `${text.slice(0, 40)}…` : text)} does not fit its tag !!${name}: expected ${t.what}`);
      return text;
    },
  })),
];

/**
 * Positioned parsing options (also the config search's). `schema: 'core'`, its scalar tags replaced by the ones above
 * (the string, map and seq tags stay): named, it also holds under a `%YAML 1.1` directive.
 * `resolveKnownTags: false`: the YAML 1.1 tags the parser would otherwise resolve when named
 * (`!!binary`, `!!set`, `!!omap`, `!!timestamp`) make values JSON cannot hold (a byte array, a
 * Set that is stored as `{}`); they are reported as E_YAML_TAG, as the fast path refuses them.
 */
export const YAML_OPTIONS = {
  // Keys are compared as the property names they become: `2` and `"2"`, `null` and `"null"` are one key
  // (js-yaml refuses them; the package kept the last value silently).
  uniqueKeys: (a: unknown, b: unknown) => a === b || (isScalar(a) && isScalar(b) && String(a.value) === String(b.value)),
  prettyErrors: false,
  strict: true,
  schema: 'core',
  resolveKnownTags: false,
  customTags: (tags: Tags) => [...tags.filter((t) => typeof t === 'object' && ['map', 'seq', 'str'].includes(t.tag.slice(CORE_TAG_PREFIX.length))), ...CORE_TAGS_FOR_YAML],
} as const;
