import { promises as fs } from 'node:fs';
import { z } from 'zod';
import { documentKind, parseManifestText } from './components/manifest-documents.js';
import { formatIssuePath, SecretsProblemsError, type SecretsProblem } from './problems.js';
import { NO_SECRET_SCOPES, type SecretScope, type SecretScopes } from './scoping.js';

/**
 * The part of a Dapr Configuration the secrets block reads: `spec.secrets.scopes[]`.
 * Everything else in the Configuration is left alone (other blocks parse their parts).
 */
const scopeSchema = z.looseObject({
  storeName: z.string().min(1, 'must not be empty'),
  // Dapr compares defaultAccess case-insensitively and treats anything but "deny" as allow;
  // Warden refuses any other word, so a typo cannot open a store.
  defaultAccess: z
    .string()
    .refine((v) => /^(allow|deny)$/i.test(v), 'must be "allow" or "deny"')
    .optional(),
  allowedSecrets: z.array(z.string()).optional(),
  deniedSecrets: z.array(z.string()).optional(),
});

const configurationSchema = z.looseObject({
  apiVersion: z.literal('dapr.io/v1alpha1'),
  kind: z.literal('Configuration'),
  metadata: z.looseObject({ name: z.string().min(1) }).optional(),
  spec: z
    .looseObject({
      secrets: z.looseObject({ scopes: z.array(scopeSchema).optional() }).optional(),
    })
    .optional(),
});

export interface ParsedSecretsConfiguration {
  readonly scopes: SecretScopes;
  readonly problems: SecretsProblem[];
}

/** Parses one Configuration document; every problem named with its path. */
export function parseSecretsConfiguration(document: unknown, source: string): ParsedSecretsConfiguration {
  const parsed = configurationSchema.safeParse(document);
  if (!parsed.success) {
    return {
      scopes: NO_SECRET_SCOPES,
      problems: parsed.error.issues.map((issue) => ({
        code: 'ERR_CONFIG_INVALID' as const,
        source,
        path: formatIssuePath(issue.path),
        message: issue.message,
      })),
    };
  }
  const problems: SecretsProblem[] = [];
  const scopes = new Map<string, SecretScope>();
  (parsed.data.spec?.secrets?.scopes ?? []).forEach((entry, index) => {
    if (scopes.has(entry.storeName)) {
      problems.push({
        code: 'ERR_CONFIG_INVALID',
        source,
        path: `spec.secrets.scopes[${index}].storeName`,
        store: entry.storeName,
        message: 'appears in more than one scope entry',
      });
      return;
    }
    scopes.set(
      entry.storeName,
      Object.freeze({
        storeName: entry.storeName,
        defaultAccess: entry.defaultAccess?.toLowerCase() === 'deny' ? 'deny' : 'allow',
        allowedSecrets: Object.freeze([...(entry.allowedSecrets ?? [])]),
        deniedSecrets: Object.freeze([...(entry.deniedSecrets ?? [])]),
      }),
    );
  });
  return { scopes: problems.length > 0 ? NO_SECRET_SCOPES : scopes, problems };
}

/** Reads `--config FILE`: exactly one Configuration document; throws with every problem. */
export async function loadSecretsConfiguration(file: string): Promise<SecretScopes> {
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (err) {
    throw new SecretsProblemsError([
      { code: 'ERR_CONFIG_INVALID', source: file, message: `cannot be read (${(err as NodeJS.ErrnoException).code ?? 'error'})` },
    ]);
  }
  const { documents, problems } = parseManifestText(text, file);
  if (problems.length > 0) throw new SecretsProblemsError(problems.map((p) => ({ ...p, code: 'ERR_CONFIG_INVALID' as const })));
  const configurations = documents.filter((d) => documentKind(d.document) === 'Configuration');
  if (configurations.length !== 1) {
    throw new SecretsProblemsError([
      { code: 'ERR_CONFIG_INVALID', source: file, message: `must hold exactly one Configuration document (found ${configurations.length})` },
    ]);
  }
  const only = configurations[0] as (typeof configurations)[number];
  const parsed = parseSecretsConfiguration(only.document, only.source);
  if (parsed.problems.length > 0) throw new SecretsProblemsError(parsed.problems);
  return parsed.scopes;
}
