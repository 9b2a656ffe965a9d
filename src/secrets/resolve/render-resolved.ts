import { stringify } from 'yaml';
import type { ResolvedComponent } from './resolve-components.js';

/** What a secret value is printed as unless the caller asks to reveal it. */
export const MASK = '****';

export type ResolvedOutputFormat = 'yaml' | 'json';

/**
 * The Component manifest as it was written, with every secretKeyRef/envRef item given its
 * `value` (masked unless `reveal`). The reference stays beside the value, as in a Component
 * Dapr has processed, so the printout still says where each value came from.
 */
export function renderResolvedManifest(resolved: ResolvedComponent, reveal: boolean): Record<string, unknown> {
  const manifest = structuredClone(resolved.component.manifest) as Record<string, unknown> & {
    spec: Record<string, unknown> & { metadata?: Record<string, unknown>[] };
  };
  const byName = new Map(resolved.metadata.map((item) => [item.name, item]));
  if (manifest.spec.metadata) {
    manifest.spec.metadata = manifest.spec.metadata.map((item) => {
      const resolvedItem = byName.get(item.name as string);
      if (!resolvedItem || resolvedItem.source === 'value') return item;
      const value = reveal ? resolvedItem.value : MASK;
      if (resolvedItem.source === 'secretKeyRef') return { name: item.name, value, secretKeyRef: resolvedItem.secretKeyRef };
      return { name: item.name, value, envRef: resolvedItem.envRef };
    });
  }
  return manifest;
}

/** The printout of `warden secrets resolve`: YAML documents separated by `---`, or a JSON array. */
export function formatResolvedComponents(
  components: readonly ResolvedComponent[],
  options: { reveal: boolean; output: ResolvedOutputFormat },
): string {
  const manifests = components.map((c) => renderResolvedManifest(c, options.reveal));
  if (options.output === 'json') return `${JSON.stringify(manifests, null, 2)}\n`;
  return manifests.map((m) => stringify(m, { lineWidth: 0 })).join('---\n');
}
