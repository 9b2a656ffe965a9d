import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';
import type { AccessRule, KubeVerb } from './kube-api-server/index.js';

/** deploy/ at the repository root (tests run from dist/test/support/). */
export const DEPLOY_DIRECTORY = path.resolve(
  path.dirname(fileURLToPath(import.meta.url)),
  '../../../deploy',
);

export interface Manifest {
  readonly file: string;
  readonly index: number;
  readonly object: Record<string, unknown>;
}

/** Every YAML document of every file in deploy/, parsed strictly (errors throw, naming the file). */
export function readDeployManifests(): Manifest[] {
  const manifests: Manifest[] = [];
  for (const file of readdirSync(DEPLOY_DIRECTORY)
    .filter((f) => /\.ya?ml$/.test(f))
    .sort()) {
    const text = readFileSync(path.join(DEPLOY_DIRECTORY, file), 'utf8');
    const documents = parseAllDocuments(text, { uniqueKeys: true, strict: true });
    if (!Array.isArray(documents)) throw new Error(`${file}: not YAML documents`);
    documents.forEach((document, index) => {
      if (document.errors.length > 0)
        throw new Error(`${file} document ${index}: ${document.errors[0]?.message ?? 'invalid'}`);
      const object: unknown = document.toJS();
      if (object === null || object === undefined) return;
      manifests.push({ file, index, object: object as Record<string, unknown> });
    });
  }
  return manifests;
}

interface RbacRule {
  readonly apiGroups: string[];
  readonly resources: string[];
  readonly verbs: string[];
  readonly resourceNames?: string[];
}

/**
 * deploy/rbac.yaml as the Kubernetes API test server's access rules: the ClusterRole
 * everywhere, the Role only in `caNamespace`. Tests that give Warden exactly these rules
 * prove that what deploy/ grants is enough.
 */
export function deployedAccessRules(caNamespace: string): AccessRule[] {
  const rules: AccessRule[] = [];
  for (const { object } of readDeployManifests()) {
    if (object.kind !== 'ClusterRole' && object.kind !== 'Role') continue;
    for (const rule of object.rules as RbacRule[]) {
      rules.push({
        apiGroups: rule.apiGroups,
        resources: rule.resources,
        verbs: rule.verbs as KubeVerb[],
        ...(rule.resourceNames ? { resourceNames: rule.resourceNames } : {}),
        ...(object.kind === 'Role' ? { namespaces: [caNamespace] } : {}),
      });
    }
  }
  return rules;
}
