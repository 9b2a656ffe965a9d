import { badRequest } from './status.js';

/**
 * Label selectors (equality- and set-based) and field selectors, parsed and matched as
 * apimachinery does for the forms clients send: `a=b`, `a==b`, `a!=b`, `a in (x,y)`,
 * `a notin (x)`, `a`, `!a`, `a>1`, `a<1`; fields `f=v`, `f==v`, `f!=v`.
 */
export type LabelRequirement =
  | { readonly key: string; readonly op: 'in' | 'notin'; readonly values: readonly string[] }
  | { readonly key: string; readonly op: 'exists' | '!' }
  | { readonly key: string; readonly op: 'gt' | 'lt'; readonly value: number };

export type LabelSelector = readonly LabelRequirement[];

const KEY =
  /^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/;
const VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;

function splitTopLevel(input: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let current = '';
  for (const ch of input) {
    if (ch === '(') depth += 1;
    if (ch === ')') depth -= 1;
    if (ch === ',' && depth === 0) {
      parts.push(current);
      current = '';
    } else {
      current += ch;
    }
  }
  parts.push(current);
  return parts;
}

function checkKey(key: string, raw: string): string {
  if (!KEY.test(key))
    throw badRequest(`unable to parse requirement: invalid label key "${key}" in "${raw}"`);
  return key;
}

function checkValue(value: string, raw: string): string {
  if (value.length > 63 || !VALUE.test(value))
    throw badRequest(`unable to parse requirement: invalid label value "${value}" in "${raw}"`);
  return value;
}

export function parseLabelSelector(input: string | null | undefined): LabelSelector {
  if (input === null || input === undefined || input.trim() === '') return [];
  const requirements: LabelRequirement[] = [];
  for (const rawPart of splitTopLevel(input)) {
    const raw = rawPart.trim();
    if (raw === '')
      throw badRequest(`unable to parse requirement: empty requirement in "${input}"`);
    let m: RegExpMatchArray | null;
    if ((m = raw.match(/^!\s*([^\s=!<>(),]+)$/))) {
      requirements.push({ key: checkKey(m[1] as string, raw), op: '!' });
    } else if ((m = raw.match(/^([^\s=!<>(),]+)\s+(in|notin)\s*\(([^()]*)\)$/))) {
      const values = (m[3] as string).split(',').map((v) => checkValue(v.trim(), raw));
      requirements.push({ key: checkKey(m[1] as string, raw), op: m[2] as 'in' | 'notin', values });
    } else if ((m = raw.match(/^([^\s=!<>(),]+)\s*(==|=|!=)\s*([^\s=!<>(),]*)$/))) {
      const key = checkKey(m[1] as string, raw);
      const value = checkValue(m[3] as string, raw);
      requirements.push({ key, op: m[2] === '!=' ? 'notin' : 'in', values: [value] });
    } else if ((m = raw.match(/^([^\s=!<>(),]+)\s*([<>])\s*(-?\d+)$/))) {
      requirements.push({
        key: checkKey(m[1] as string, raw),
        op: m[2] === '>' ? 'gt' : 'lt',
        value: Number(m[3]),
      });
    } else if ((m = raw.match(/^([^\s=!<>(),]+)$/))) {
      requirements.push({ key: checkKey(m[1] as string, raw), op: 'exists' });
    } else {
      throw badRequest(
        `unable to parse requirement: found '${raw}', expected: in, notin, =, ==, !=, gt, lt`,
      );
    }
  }
  return requirements;
}

export function labelsMatch(
  selector: LabelSelector,
  labels: Readonly<Record<string, string>> | undefined,
): boolean {
  const l = labels ?? {};
  return selector.every((r) => {
    const has = Object.prototype.hasOwnProperty.call(l, r.key);
    const value = l[r.key];
    switch (r.op) {
      case 'exists':
        return has;
      case '!':
        return !has;
      case 'in':
        return has && r.values.includes(value as string);
      case 'notin':
        return !has || !r.values.includes(value as string);
      case 'gt':
        return has && Number.isInteger(Number(value)) && Number(value) > r.value;
      case 'lt':
        return has && Number.isInteger(Number(value)) && Number(value) < r.value;
      default:
        return false;
    }
  });
}

export interface FieldRequirement {
  readonly field: string;
  readonly op: '=' | '!=';
  readonly value: string;
}

export type FieldSelector = readonly FieldRequirement[];

export function parseFieldSelector(
  input: string | null | undefined,
  supported: readonly string[],
): FieldSelector {
  if (input === null || input === undefined || input.trim() === '') return [];
  const requirements: FieldRequirement[] = [];
  for (const rawPart of input.split(',')) {
    const raw = rawPart.trim();
    const m = raw.match(/^([^=!]+?)\s*(==|=|!=)\s*(.*)$/);
    if (!m) throw badRequest(`invalid selector: '${input}'; can't understand '${raw}'`);
    const field = (m[1] as string).trim();
    if (!supported.includes(field)) throw badRequest(`field label not supported: ${field}`);
    requirements.push({
      field,
      op: m[2] === '!=' ? '!=' : '=',
      value: (m[3] as string).replace(/\\(.)/g, '$1'),
    });
  }
  return requirements;
}

function fieldValue(obj: Record<string, unknown>, path: string): string {
  let cur: unknown = obj;
  for (const part of path.split('.')) {
    if (cur === null || typeof cur !== 'object') return '';
    cur = (cur as Record<string, unknown>)[part];
  }
  return cur === undefined || cur === null ? '' : String(cur);
}

export function fieldsMatch(selector: FieldSelector, obj: Record<string, unknown>): boolean {
  return selector.every((r) => (fieldValue(obj, r.field) === r.value) === (r.op === '='));
}

/** The single name a `metadata.name=x` selector pins, which RBAC treats as the resourceName. */
export function pinnedName(selector: FieldSelector): string | undefined {
  const byName = selector.filter((r) => r.field === 'metadata.name' && r.op === '=');
  return selector.length === 1 && byName.length === 1 ? byName[0]?.value : undefined;
}
