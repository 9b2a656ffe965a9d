import { z } from 'zod';

/**
 * The Dapr Component manifest (`dapr.io/v1alpha1`), as far as Warden reads it. Unknown
 * top-level, metadata and spec fields are kept (so a printed manifest keeps its shape); a
 * metadata item is strict, because a typo such as `secretKeyref` would otherwise turn a
 * password into an empty string.
 */

/** Component names end up in URL paths and log lines: letters, digits, ".", "-", "_". */
const COMPONENT_NAME = /^[A-Za-z0-9]([A-Za-z0-9._-]{0,251}[A-Za-z0-9])?$/;

export const componentNameSchema = z
  .string()
  .regex(COMPONENT_NAME, 'must be 1-253 letters, digits, ".", "-" or "_", starting and ending with a letter or digit');

export const secretKeyRefSchema = z.strictObject({
  name: z.string(),
  key: z.string().optional(),
});

export const metadataItemSchema = z.strictObject({
  name: z.string().min(1, 'must not be empty'),
  value: z.unknown().optional(),
  secretKeyRef: secretKeyRefSchema.optional(),
  envRef: z.string().optional(),
});

export const componentSchema = z.looseObject({
  apiVersion: z.literal('dapr.io/v1alpha1'),
  kind: z.literal('Component'),
  metadata: z.looseObject({
    name: componentNameSchema,
    namespace: z.string().min(1).optional(),
  }),
  spec: z.looseObject({
    type: z.string().regex(/^[a-z0-9]+(\.[a-z0-9-]+)+$/, 'must look like "state.redis" or "secretstores.local.file"'),
    version: z.string().optional(),
    ignoreErrors: z.boolean().optional(),
    initTimeout: z.string().optional(),
    metadata: z.array(metadataItemSchema).optional(),
  }),
  auth: z
    .looseObject({
      secretStore: componentNameSchema.optional(),
    })
    .optional(),
  scopes: z.array(z.string().min(1)).optional(),
});

export type SecretKeyRef = z.infer<typeof secretKeyRefSchema>;
export type MetadataItem = z.infer<typeof metadataItemSchema>;
export type ComponentManifest = z.infer<typeof componentSchema>;

/** A validated Component and where it came from. */
export interface LoadedComponent {
  /** File path (with `#n` for the n-th YAML document when a file holds several) or a caller label. */
  readonly source: string;
  readonly manifest: ComponentManifest;
}

/** A Component whose `spec.type` starts with `secretstores.`. */
export type SecretStoreComponent = LoadedComponent;

export function componentName(component: LoadedComponent): string {
  return component.manifest.metadata.name;
}

export function componentType(component: LoadedComponent): string {
  return component.manifest.spec.type;
}

export function isSecretStoreComponent(component: LoadedComponent): boolean {
  return component.manifest.spec.type.startsWith('secretstores.');
}

/**
 * Dapr serialises an unused `secretKeyRef` as `{name: "", key: ""}` (a Go struct, not a
 * pointer), so manifests read back from a cluster carry it; it means "no reference".
 */
export function effectiveSecretKeyRef(item: MetadataItem): SecretKeyRef | undefined {
  const ref = item.secretKeyRef;
  if (!ref) return undefined;
  if (ref.name === '' && (ref.key === undefined || ref.key === '')) return undefined;
  return ref;
}

/** Dapr: a `value` is any JSON; strings are used as they are, anything else as its JSON text. */
export function metadataValueToString(value: unknown): string {
  if (value === undefined || value === null) return '';
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  return JSON.stringify(value);
}
