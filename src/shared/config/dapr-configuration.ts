import { X509Certificate } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { parseDocument } from 'yaml';
import { z } from 'zod';
import { parseDuration } from '../duration.js';
import { WardenError } from '../errors.js';
import { printable, trustDomainProblem } from '../spiffe-id.js';
import { formatConfigProblems, type ConfigProblem } from './config-problems.js';
import {
  DEFAULT_ALLOWED_CLOCK_SKEW,
  DEFAULT_CONTROL_PLANE_TRUST_DOMAIN,
  DEFAULT_JWKS_MIN_REFRESH_INTERVAL,
  DEFAULT_JWKS_REQUEST_TIMEOUT,
  DEFAULT_ISSUER_RENEWAL,
  DEFAULT_ROOT_ROTATION,
  DEFAULT_WORKLOAD_CERT_TTL,
  MAX_CONFIGURATION_BYTES,
  deepFreeze,
  defaultDaprConfiguration,
  type DaprConfiguration,
  type TokenValidatorSettings,
} from './dapr-configuration-settings.js';

/**
 * Dapr's `Configuration` resource (apiVersion dapr.io/v1alpha1), the part Warden reads:
 * `spec.mtls`, plus Warden's additions `spec.mtls.rootRotation` and
 * `spec.mtls.issuerRenewal` (docs/rotation.md). The CRD is shared with daprd, so fields
 * Warden does not know are ignored everywhere except inside a token validator's `options`
 * and inside Warden's own additions, where a typo would silently change what is checked
 * or when the root rotates and is therefore an error. `warden serve` and the `warden rotate`
 * commands read the same file with this one schema.
 */

export type {
  RootRotationSettings,
  IssuerRenewalSettings,
  JwksValidatorSettings,
  TokenValidatorSettings,
  TokenValidatorSettingsName,
  MtlsSettings,
  DaprConfiguration,
} from './dapr-configuration-settings.js';
export {
  DEFAULT_WORKLOAD_CERT_TTL,
  DEFAULT_ALLOWED_CLOCK_SKEW,
  DEFAULT_CONTROL_PLANE_TRUST_DOMAIN,
  DEFAULT_JWKS_MIN_REFRESH_INTERVAL,
  DEFAULT_JWKS_REQUEST_TIMEOUT,
  MAX_CONFIGURATION_BYTES,
  DEFAULT_ROOT_ROTATION,
  DEFAULT_ISSUER_RENEWAL,
  defaultDaprConfiguration,
};

function typeOf(input: unknown): string {
  if (input === null) return 'null';
  if (Array.isArray(input)) return 'a list';
  return typeof input === 'object' ? 'a mapping' : `a ${typeof input}`;
}

function typedError(expected: string) {
  return (issue: { input?: unknown }): string =>
    issue.input === undefined ? 'is required' : `must be ${expected}, not ${typeOf(issue.input)}`;
}

const text = () => z.string({ error: typedError('a string') });

/** A Go duration string, checked with src/shared/duration.ts, with a lower bound. */
function duration(defaultText: string, allowZero: boolean) {
  return text()
    .optional()
    .transform((value, ctx) => {
      const source = value ?? defaultText;
      let ms: number;
      try {
        ms = parseDuration(source);
      } catch {
        ctx.addIssue({
          code: 'custom',
          message: `"${printable(source)}" is not a duration (use Go syntax such as 24h, 15m, 1h30m)`,
        });
        return z.NEVER;
      }
      if (ms < 0 || (!allowZero && ms === 0)) {
        ctx.addIssue({
          code: 'custom',
          message: `"${printable(source)}" must be ${allowZero ? 'zero or more' : 'more than zero'}`,
        });
        return z.NEVER;
      }
      return ms;
    });
}

/** A Go duration with no default: undefined when absent (or null in YAML). */
function optionalDuration() {
  return text()
    .nullish()
    .transform((value, ctx) => {
      if (value === undefined || value === null) return undefined;
      let ms: number;
      try {
        ms = parseDuration(value);
      } catch {
        ctx.addIssue({
          code: 'custom',
          message: `"${printable(value)}" is not a duration (use Go syntax such as 24h, 15m, 1h30m)`,
        });
        return z.NEVER;
      }
      if (ms < 0) {
        ctx.addIssue({ code: 'custom', message: `"${printable(value)}" must be zero or more` });
        return z.NEVER;
      }
      return ms;
    });
}

/** A fraction of a certificate's lifetime, strictly between 0 and 1. */
const fraction = () =>
  z
    .number({ error: typedError('a number') })
    .optional()
    .refine((n) => n === undefined || (Number.isFinite(n) && n > 0 && n < 1), {
      message: 'must be a number between 0 and 1 (exclusive)',
    });

const flag = () => z.boolean({ error: typedError('true or false') }).optional();

// Strict: these are Warden's own fields, so an unknown one is a typo, not daprd's business.
const rootRotationSchema = z.strictObject(
  {
    enabled: flag(),
    prepareAtFraction: fraction(),
    activateAtFraction: fraction(),
    propagationWindow: optionalDuration(),
  },
  { error: typedError('a mapping') },
);

const issuerRenewalSchema = z.strictObject(
  { enabled: flag(), renewAtFraction: fraction() },
  { error: typedError('a mapping') },
);

const jwksOptionsSchema = z.strictObject(
  {
    source: text().refine((s) => s.trim().length > 0, { message: 'is empty' }),
    caCertificate: text()
      .optional()
      .superRefine((pem, ctx) => {
        if (pem === undefined) return;
        try {
          new X509Certificate(pem);
        } catch {
          ctx.addIssue({ code: 'custom', message: 'is not a PEM certificate' });
        }
      }),
    minRefreshInterval: duration(DEFAULT_JWKS_MIN_REFRESH_INTERVAL, false),
    requestTimeout: duration(DEFAULT_JWKS_REQUEST_TIMEOUT, false),
  },
  { error: typedError('a mapping') },
);

// insecure and kubernetes take no options: anything given there is a mistake.
const noOptionsSchema = z.strictObject({}, { error: typedError('a mapping') });

const tokenValidatorSchema = z
  .object(
    {
      name: z.enum(['insecure', 'kubernetes', 'jwks'], {
        error: (issue) =>
          issue.input === undefined
            ? 'is required'
            : `"${printable(String(issue.input))}" is not a validator (use insecure, kubernetes or jwks)`,
      }),
      options: z.unknown().optional(),
    },
    { error: typedError('a mapping') },
  )
  .transform((entry, ctx): TokenValidatorSettings => {
    // `options:` left empty in YAML is null: the same as no options.
    const input = entry.options ?? {};
    const addOptionIssues = (issues: readonly z.core.$ZodIssue[]): void => {
      for (const issue of issues) {
        ctx.addIssue({ ...issue, path: ['options', ...issue.path] } as Parameters<
          typeof ctx.addIssue
        >[0]);
      }
    };
    if (entry.name !== 'jwks') {
      const parsed = noOptionsSchema.safeParse(input);
      if (!parsed.success) {
        addOptionIssues(parsed.error.issues);
        return z.NEVER;
      }
      return { name: entry.name };
    }
    const parsed = jwksOptionsSchema.safeParse(input);
    if (!parsed.success) {
      addOptionIssues(parsed.error.issues);
      return z.NEVER;
    }
    return {
      name: 'jwks',
      options: {
        source: parsed.data.source,
        caCertificate: parsed.data.caCertificate,
        minRefreshIntervalMs: parsed.data.minRefreshInterval,
        requestTimeoutMs: parsed.data.requestTimeout,
      },
    };
  });

const mtlsSchema = z.object(
  {
    enabled: z.boolean({ error: typedError('true or false') }).optional(),
    workloadCertTTL: duration(DEFAULT_WORKLOAD_CERT_TTL, false),
    allowedClockSkew: duration(DEFAULT_ALLOWED_CLOCK_SKEW, true),
    controlPlaneTrustDomain: text()
      .optional()
      .superRefine((td, ctx) => {
        if (td === undefined) return;
        const problem = trustDomainProblem(td);
        if (problem) ctx.addIssue({ code: 'custom', message: `"${printable(td)}" ${problem}` });
      }),
    sentryAddress: text()
      .optional()
      .refine((s) => s === undefined || s.trim().length > 0, { message: 'is empty' }),
    tokenValidators: z.array(tokenValidatorSchema, { error: typedError('a list') }).optional(),
    rootRotation: rootRotationSchema.nullish(),
    issuerRenewal: issuerRenewalSchema.nullish(),
  },
  { error: typedError('a mapping') },
);

const configurationSchema = z.object(
  {
    apiVersion: z.literal('dapr.io/v1alpha1', {
      error: (issue) =>
        issue.input === undefined
          ? 'is required'
          : `"${printable(String(issue.input))}" is not dapr.io/v1alpha1`,
    }),
    kind: z.literal('Configuration', {
      error: (issue) =>
        issue.input === undefined
          ? 'is required'
          : `"${printable(String(issue.input))}" is not Configuration`,
    }),
    metadata: z.object({ name: text().optional() }, { error: typedError('a mapping') }).optional(),
    spec: z.object({ mtls: mtlsSchema.optional() }, { error: typedError('a mapping') }).optional(),
  },
  { error: typedError('a mapping') },
);

/**
 * Validator names listed twice. Checked on the raw document, outside the schema, because zod
 * skips refinements once an entry has another problem and every problem is reported at once.
 */
function duplicateValidatorProblems(document: unknown): ConfigProblem[] {
  const list = (document as { spec?: { mtls?: { tokenValidators?: unknown } } } | null)?.spec?.mtls
    ?.tokenValidators;
  if (!Array.isArray(list)) return [];
  const seen = new Set<string>();
  const problems: ConfigProblem[] = [];
  for (const [index, entry] of list.entries()) {
    const name = (entry as { name?: unknown } | null)?.name;
    if (typeof name !== 'string') continue;
    if (seen.has(name)) {
      problems.push({
        path: `spec.mtls.tokenValidators[${index}].name`,
        message: `"${printable(name)}" is listed more than once`,
      });
    }
    seen.add(name);
  }
  return problems;
}

/**
 * activateAtFraction must come after prepareAtFraction, defaults included. Checked on the raw
 * document for the same reason as duplicateValidatorProblems, and only when both fractions
 * are themselves valid (a bad one is already reported by the schema).
 */
function rotationOrderProblems(document: unknown): ConfigProblem[] {
  const rotation = (document as { spec?: { mtls?: { rootRotation?: unknown } } } | null)?.spec?.mtls
    ?.rootRotation as { prepareAtFraction?: unknown; activateAtFraction?: unknown } | null;
  if (rotation === null || typeof rotation !== 'object') return [];
  const valid = (value: unknown, fallback: number): number | null => {
    if (value === undefined) return fallback;
    return typeof value === 'number' && value > 0 && value < 1 ? value : null;
  };
  const prepare = valid(rotation.prepareAtFraction, DEFAULT_ROOT_ROTATION.prepareAtFraction);
  const activate = valid(rotation.activateAtFraction, DEFAULT_ROOT_ROTATION.activateAtFraction);
  if (prepare === null || activate === null || activate > prepare) return [];
  return [
    {
      path: 'spec.mtls.rootRotation.activateAtFraction',
      message: `${activate} must be greater than prepareAtFraction (${prepare})`,
    },
  ];
}

function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const part of path) {
    if (typeof part === 'number') out += `[${part}]`;
    else out += out.length === 0 ? String(part) : `.${String(part)}`;
  }
  return out;
}

/** Turns an already-parsed document (YAML/JSON object) into settings, or lists every problem. */
export function interpretDaprConfiguration(
  document: unknown,
  source: string,
):
  | { ok: true; configuration: DaprConfiguration }
  | { ok: false; problems: readonly ConfigProblem[] } {
  const parsed = configurationSchema.safeParse(document);
  const duplicates = [...duplicateValidatorProblems(document), ...rotationOrderProblems(document)];
  if (!parsed.success || duplicates.length > 0) {
    const schemaProblems = parsed.success
      ? []
      : parsed.error.issues.flatMap((issue): ConfigProblem[] => {
          if (issue.code === 'unrecognized_keys') {
            return issue.keys.map((key) => ({
              path: formatPath([...issue.path, key]),
              message: 'is not a known field',
            }));
          }
          return [{ path: formatPath(issue.path), message: issue.message }];
        });
    return { ok: false, problems: [...schemaProblems, ...duplicates] };
  }
  const mtls = parsed.data.spec?.mtls;
  const configuration: DaprConfiguration = {
    name: parsed.data.metadata?.name,
    source,
    mtls: {
      enabled: mtls?.enabled ?? false,
      workloadCertTtlMs: mtls?.workloadCertTTL ?? parseDuration(DEFAULT_WORKLOAD_CERT_TTL),
      allowedClockSkewMs: mtls?.allowedClockSkew ?? parseDuration(DEFAULT_ALLOWED_CLOCK_SKEW),
      controlPlaneTrustDomain: mtls?.controlPlaneTrustDomain ?? DEFAULT_CONTROL_PLANE_TRUST_DOMAIN,
      sentryAddress: mtls?.sentryAddress,
      tokenValidators: mtls?.tokenValidators ?? [],
      rootRotation: {
        enabled: mtls?.rootRotation?.enabled ?? DEFAULT_ROOT_ROTATION.enabled,
        prepareAtFraction:
          mtls?.rootRotation?.prepareAtFraction ?? DEFAULT_ROOT_ROTATION.prepareAtFraction,
        activateAtFraction:
          mtls?.rootRotation?.activateAtFraction ?? DEFAULT_ROOT_ROTATION.activateAtFraction,
        propagationWindowMs:
          mtls?.rootRotation?.propagationWindow ?? DEFAULT_ROOT_ROTATION.propagationWindowMs,
      },
      issuerRenewal: {
        enabled: mtls?.issuerRenewal?.enabled ?? DEFAULT_ISSUER_RENEWAL.enabled,
        renewAtFraction:
          mtls?.issuerRenewal?.renewAtFraction ?? DEFAULT_ISSUER_RENEWAL.renewAtFraction,
      },
    },
  };
  return { ok: true, configuration: deepFreeze(configuration) };
}

/** Alias expansions allowed in a Configuration: it needs none; this bounds "billion laughs". */
const MAX_YAML_ALIASES = 50;

/**
 * Parses Configuration YAML. Throws ERR_CONFIG_INVALID listing every problem with its path,
 * e.g. `spec.mtls.workloadCertTTL: "abc" is not a duration`.
 */
export function parseDaprConfiguration(yamlText: string, source: string): DaprConfiguration {
  const document = parseDocument(yamlText, { uniqueKeys: true, prettyErrors: true });
  if (document.errors.length > 0) {
    const problems = document.errors.map((err) => {
      const line = err.linePos?.[0];
      const message = (err.message.split('\n')[0] ?? err.message).replace(
        / at line \d+, column \d+:?$/,
        '',
      );
      return { path: line ? `line ${line.line}, column ${line.col}` : '(document)', message };
    });
    throw new WardenError('ERR_CONFIG_INVALID', formatConfigProblems(source, problems));
  }
  let value: unknown;
  try {
    value = document.toJS({ maxAliasCount: MAX_YAML_ALIASES });
  } catch (err) {
    // yaml throws a ReferenceError for an alias bomb; it must be a reported problem, not a crash.
    if (!(err instanceof ReferenceError)) throw err;
    throw new WardenError(
      'ERR_CONFIG_INVALID',
      formatConfigProblems(source, [
        {
          path: '(document)',
          message: `expands more than ${MAX_YAML_ALIASES} YAML aliases (refused as a resource-exhaustion attack)`,
        },
      ]),
    );
  }
  const result = interpretDaprConfiguration(value, source);
  if (!result.ok)
    throw new WardenError('ERR_CONFIG_INVALID', formatConfigProblems(source, result.problems));
  return result.configuration;
}

export async function loadDaprConfigurationFile(path: string): Promise<DaprConfiguration> {
  let yamlText: string;
  try {
    if ((await stat(path)).size > MAX_CONFIGURATION_BYTES) {
      throw new WardenError(
        'ERR_CONFIG_INVALID',
        `${path}: the Configuration file is larger than ${MAX_CONFIGURATION_BYTES} bytes`,
      );
    }
    yamlText = await readFile(path, 'utf8');
  } catch (err) {
    if (err instanceof WardenError) throw err;
    const code = (err as NodeJS.ErrnoException).code ?? 'error';
    throw new WardenError(
      'ERR_CONFIG_INVALID',
      `${path}: cannot read the Configuration file (${code})`,
      { cause: err },
    );
  }
  return parseDaprConfiguration(yamlText, path);
}
