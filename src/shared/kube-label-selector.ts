/**
 * Syntax check of a Kubernetes label selector (apimachinery labels.Parse): comma-separated
 * requirements `k`, `!k`, `k=v`, `k==v`, `k!=v`, `k in (a,b)`, `k notin (a)`, `k>1`, `k<1`.
 * Catching a typo at start-up beats a 400 from every list call later.
 */
const PREFIX = '(?:[a-z0-9](?:[-a-z0-9]*[a-z0-9])?(?:\\.[a-z0-9](?:[-a-z0-9]*[a-z0-9])?)*/)?';
const NAME = '[A-Za-z0-9](?:[-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?';
const KEY = `${PREFIX}${NAME}`;
const VALUE = `(?:${NAME})?`;
const REQUIREMENT = [
  new RegExp(`^!\\s*${KEY}$`),
  new RegExp(`^${KEY}$`),
  new RegExp(`^${KEY}\\s*(?:==|!=|=)\\s*${VALUE}$`),
  new RegExp(`^${KEY}\\s+(?:in|notin)\\s*\\(\\s*${VALUE}(?:\\s*,\\s*${VALUE})*\\s*\\)$`),
  new RegExp(`^${KEY}\\s*[<>]\\s*-?\\d+$`),
];

/** Null when `selector` parses, else what is wrong with it. */
export function labelSelectorProblem(selector: string): string | null {
  if (selector.trim().length === 0) return 'is empty';
  const requirements: string[] = [];
  let depth = 0;
  let current = '';
  for (const char of selector) {
    if (char === '(') depth += 1;
    if (char === ')') depth -= 1;
    if (depth < 0) return 'has an unbalanced ")"';
    if (char === ',' && depth === 0) {
      requirements.push(current);
      current = '';
    } else current += char;
  }
  if (depth !== 0) return 'has an unbalanced "("';
  requirements.push(current);
  for (const requirement of requirements) {
    const text = requirement.trim();
    if (!REQUIREMENT.some((re) => re.test(text)))
      return `"${text}" is not a label requirement (key, !key, key=value, key!=value, key in (a,b), key notin (a,b))`;
  }
  return null;
}
