/** One configuration problem: where (a dotted path, a flag, an env var) and what. */
export interface ConfigProblem {
  readonly path: string;
  readonly message: string;
}

export function formatConfigProblem(problem: ConfigProblem): string {
  return problem.path.length > 0 ? `${problem.path}: ${problem.message}` : problem.message;
}

/** Every problem on its own line, after the source they came from. */
export function formatConfigProblems(source: string, problems: readonly ConfigProblem[]): string {
  const noun = problems.length === 1 ? 'problem' : 'problems';
  return `${source}: ${problems.length} ${noun}:\n${problems.map((p) => `  ${formatConfigProblem(p)}`).join('\n')}`;
}
