/**
 * Secret stores may take their own metadata from another store (a Vault token kept in a
 * file store). Each store reads from at most one store (`auth.secretStore`), so the graph
 * has out-degree ≤ 1 and a cycle is found by walking each chain once.
 */

/** store name → the store its metadata references are read from (undefined: none). */
export type StoreDependencies = ReadonlyMap<string, string | undefined>;

/** Every cycle, each listed from its alphabetically first member, in a stable order. */
export function findStoreCycles(dependencies: StoreDependencies): string[][] {
  const cycles: string[][] = [];
  const state = new Map<string, 'visiting' | 'done'>();
  for (const start of [...dependencies.keys()].sort()) {
    if (state.has(start)) continue;
    const chain: string[] = [];
    let node: string | undefined = start;
    while (node !== undefined && dependencies.has(node) && !state.has(node)) {
      state.set(node, 'visiting');
      chain.push(node);
      node = dependencies.get(node);
    }
    if (node !== undefined && state.get(node) === 'visiting') {
      const cycle = chain.slice(chain.indexOf(node));
      const first = cycle.indexOf([...cycle].sort()[0] as string);
      cycles.push([...cycle.slice(first), ...cycle.slice(0, first)]);
    }
    for (const member of chain) state.set(member, 'done');
  }
  return cycles;
}

/** `a → b → a`. */
export function formatCycle(cycle: readonly string[]): string {
  return [...cycle, cycle[0]].map((name) => `"${name}"`).join(' → ');
}
