import { WardenError, type ErrorCode } from '../shared/errors.js';

/**
 * One thing wrong with the resources: a malformed manifest, an unresolvable reference, a
 * store that would not start. Loading and resolution collect every problem before failing,
 * so a user fixes them all in one pass. Fields name where the problem is; none ever holds
 * a secret value.
 */
export interface SecretsProblem {
  readonly code: ErrorCode;
  readonly message: string;
  /** The manifest file (and `#n` document). */
  readonly source?: string;
  /** Where in the document, e.g. `spec.metadata[1].secretKeyRef.name`. */
  readonly path?: string;
  readonly component?: string;
  /** The metadata item name, e.g. `redisPassword`. */
  readonly field?: string;
  readonly store?: string;
  readonly secret?: string;
  readonly key?: string;
}

export function formatProblem(problem: SecretsProblem): string {
  const where: string[] = [];
  if (problem.source) where.push(problem.path ? `${problem.source} (${problem.path})` : problem.source);
  else if (problem.path) where.push(problem.path);
  const what: string[] = [];
  if (problem.component) what.push(`component "${problem.component}"`);
  if (problem.field) what.push(`field "${problem.field}"`);
  if (problem.store) what.push(`store "${problem.store}"`);
  if (problem.secret) what.push(`secret "${problem.secret}"`);
  if (problem.key) what.push(`key "${problem.key}"`);
  const prefix = [...where, what.join(' ')].filter((s) => s.length > 0).join(': ');
  return `${prefix.length > 0 ? `${prefix}: ` : ''}${problem.message} [${problem.code}]`;
}

/** Thrown when loading or resolving fails: carries every problem, not just the first. */
export class SecretsProblemsError extends WardenError {
  readonly problems: readonly SecretsProblem[];

  constructor(problems: readonly SecretsProblem[]) {
    if (problems.length === 0) throw new TypeError('SecretsProblemsError needs at least one problem');
    const first = problems[0] as SecretsProblem;
    const lines = problems.map((p) => `  - ${formatProblem(p)}`);
    super(first.code, `${problems.length} problem${problems.length === 1 ? '' : 's'}:\n${lines.join('\n')}`, {
      details: { problems: problems.length },
    });
    this.name = 'SecretsProblemsError';
    this.problems = Object.freeze([...problems]);
  }
}

/** Renders a zod issue path as `spec.metadata[1].name`. */
export function formatIssuePath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const segment of path) {
    if (typeof segment === 'number') out += `[${segment}]`;
    else out += out.length === 0 ? String(segment) : `.${String(segment)}`;
  }
  return out.length === 0 ? '(document)' : out;
}
