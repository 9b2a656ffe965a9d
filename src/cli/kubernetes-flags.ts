import {
  DEFAULT_ANCHORS_CONFIGMAP_NAME,
  DEFAULT_TRUST_BUNDLE_NAME,
} from '../ca/kubernetes/kubernetes-names.js';
import type { ConfigProblem } from '../shared/config/config-problems.js';
import type { WardenEnv } from '../shared/env.js';
import type { FlagSpecs, ParsedFlags } from '../shared/flags.js';
import { labelSelectorProblem } from '../shared/kube-label-selector.js';
import { isDns1123Subdomain } from '../shared/kube-names.js';
import { printable } from '../shared/spiffe-id.js';

/** `warden serve` flags of Kubernetes mode's trust material and anchors distribution. */
export const KUBERNETES_FLAG_SPECS: FlagSpecs = {
  'trust-bundle-name': {
    kind: 'string',
    description:
      'Kubernetes mode: name of the Secret holding the trust material and of the ConfigMap publishing its anchors, in the CA namespace',
    default: DEFAULT_TRUST_BUNDLE_NAME,
  },
  'anchors-configmap-name': {
    kind: 'string',
    description:
      'Kubernetes mode: name of the ConfigMap (key ca.crt) that publishes the trust anchors in every namespace',
    default: DEFAULT_ANCHORS_CONFIGMAP_NAME,
  },
  'anchors-namespace-selector': {
    kind: 'string',
    description:
      'Kubernetes mode: label selector of the namespaces that get the anchors ConfigMap (default: every namespace)',
  },
};

/** Kubernetes mode's settings (present in every mode; used only in kubernetes mode). */
export interface KubernetesSettings {
  readonly trustBundleName: string;
  readonly anchorsConfigMapName: string;
  readonly anchorsNamespaceSelector: string | undefined;
  /** POD_NAME: this replica's identity in leader election (host name and pid when unset). */
  readonly podName: string | undefined;
}

export function collectKubernetesSettings(
  flags: ParsedFlags,
  env: WardenEnv,
  _mode: string,
): { settings: KubernetesSettings; problems: readonly ConfigProblem[] } {
  const problems: ConfigProblem[] = [];
  const str = (name: string): string | undefined => {
    const value = flags.values[name];
    return typeof value === 'string' ? value : undefined;
  };
  const trustBundleName = str('trust-bundle-name') ?? DEFAULT_TRUST_BUNDLE_NAME;
  const anchorsConfigMapName = str('anchors-configmap-name') ?? DEFAULT_ANCHORS_CONFIGMAP_NAME;
  for (const [flag, value] of [
    ['trust-bundle-name', trustBundleName],
    ['anchors-configmap-name', anchorsConfigMapName],
  ] as const) {
    if (!isDns1123Subdomain(value))
      problems.push({
        path: `--${flag}`,
        message: `"${printable(value)}" is not a valid Kubernetes object name (lowercase RFC 1123 subdomain)`,
      });
  }
  const selector = str('anchors-namespace-selector');
  if (selector !== undefined && selector.trim() !== '') {
    const problem = labelSelectorProblem(selector);
    if (problem)
      problems.push({
        path: '--anchors-namespace-selector',
        message: `"${printable(selector)}" ${problem}`,
      });
  }
  return {
    settings: Object.freeze({
      trustBundleName,
      anchorsConfigMapName,
      anchorsNamespaceSelector:
        selector === undefined || selector.trim() === '' ? undefined : selector,
      podName: env.podName,
    }),
    problems,
  };
}
