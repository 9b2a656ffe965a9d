import { WardenError } from './errors.js';

export type FlagKind = 'string' | 'boolean' | 'number' | 'list';

export interface FlagSpec {
  readonly kind: FlagKind;
  readonly description: string;
  /** Default as the user would type it; shown in --help. */
  readonly default?: string;
}

export type FlagSpecs = Readonly<Record<string, FlagSpec>>;
export type FlagValue = string | boolean | number | readonly string[];

export interface ParsedFlags {
  readonly values: Readonly<Record<string, FlagValue | undefined>>;
  /** Flags the user actually gave (so defaults can depend on other flags). */
  readonly given: ReadonlySet<string>;
  readonly positionals: readonly string[];
}

/**
 * Parses flags the way Go's `flag` package does (Dapr Sentry's flags are Go flags): `-name`
 * and `--name` are the same, values as `--name value` or `--name=value`, booleans as
 * `--name` or `--name=false`. Lists repeat or use commas. Unknown flags are errors, and
 * every problem is reported at once.
 */
export function parseFlags(argv: readonly string[], specs: FlagSpecs): ParsedFlags {
  const values: Record<string, FlagValue | undefined> = {};
  const given = new Set<string>();
  const positionals: string[] = [];
  const problems: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (arg === '--') {
      positionals.push(...argv.slice(i + 1));
      break;
    }
    if (!arg.startsWith('-') || arg === '-') {
      positionals.push(arg);
      continue;
    }
    const body = arg.replace(/^--?/, '');
    const eq = body.indexOf('=');
    const name = eq === -1 ? body : body.slice(0, eq);
    const spec = specs[name];
    if (!spec) {
      problems.push(`unknown flag -${name}`);
      continue;
    }
    let raw: string | undefined = eq === -1 ? undefined : body.slice(eq + 1);
    if (spec.kind === 'boolean') {
      if (raw === undefined) {
        values[name] = true;
      } else if (/^(true|1|t|TRUE|True)$/.test(raw)) {
        values[name] = true;
      } else if (/^(false|0|f|FALSE|False)$/.test(raw)) {
        values[name] = false;
      } else {
        problems.push(`flag -${name}: "${raw}" is not a boolean`);
      }
      given.add(name);
      continue;
    }
    if (raw === undefined) {
      const next = argv[i + 1];
      if (next === undefined) {
        problems.push(`flag -${name} needs a value`);
        continue;
      }
      raw = next;
      i++;
    }
    given.add(name);
    if (spec.kind === 'number') {
      const n = Number(raw);
      if (raw.trim() === '' || !Number.isFinite(n)) problems.push(`flag -${name}: "${raw}" is not a number`);
      else values[name] = n;
    } else if (spec.kind === 'list') {
      const prev = (values[name] as readonly string[] | undefined) ?? [];
      values[name] = [...prev, ...raw.split(',').map((s) => s.trim()).filter((s) => s.length > 0)];
    } else {
      values[name] = raw;
    }
  }
  for (const [name, spec] of Object.entries(specs)) {
    if (values[name] !== undefined || spec.default === undefined) continue;
    if (spec.kind === 'boolean') values[name] = spec.default === 'true';
    else if (spec.kind === 'number') values[name] = Number(spec.default);
    else if (spec.kind === 'list') values[name] = spec.default.split(',').filter((s) => s.length > 0);
    else values[name] = spec.default;
  }
  if (problems.length > 0) {
    throw new WardenError('ERR_CONFIG_INVALID', problems.join('; '));
  }
  return { values, given, positionals };
}

export function formatFlagHelp(specs: FlagSpecs): string {
  return Object.entries(specs)
    .map(([name, spec]) => {
      const def = spec.default === undefined ? '' : ` (default ${spec.default === '' ? '""' : spec.default})`;
      const arg = spec.kind === 'boolean' ? '' : spec.kind === 'number' ? ' <n>' : ' <value>';
      return `  --${name}${arg}\n      ${spec.description}${def}`;
    })
    .join('\n');
}
