import { CustomObjectsApi, type KubeConfig } from '@kubernetes/client-node';
import { WardenError } from '../errors.js';
import { isDns1123Label, isDns1123Subdomain } from '../kube-names.js';
import { callKubeWithRetry, describeKubeFailure, type KubeRetryPolicy } from '../kube-retry.js';
import { printable } from '../spiffe-id.js';
import { formatConfigProblems } from './config-problems.js';
import { interpretDaprConfiguration, type DaprConfiguration } from './dapr-configuration.js';

/**
 * Kubernetes mode reads the control plane's Configuration resource (dapr.io/v1alpha1
 * `configurations`, `--config`, default `daprsystem`) from the CA's namespace, through
 * client-node, and interprets it with the same schema as a Configuration file.
 */

export interface KubernetesConfigurationSource {
  readonly kubeConfig: KubeConfig;
  /** The CA's namespace (env NAMESPACE). */
  readonly namespace: string;
  /** Retries for an unreachable or throttling API server (default: 10 s overall). */
  readonly policy?: KubeRetryPolicy;
}

const DEFAULT_POLICY: KubeRetryPolicy = Object.freeze({
  deadlineMs: 10_000,
  attemptTimeoutMs: 3_000,
  backoffCapMs: 2_000,
});

export async function loadKubernetesConfiguration(
  name: string,
  source: KubernetesConfigurationSource,
): Promise<DaprConfiguration> {
  const where = `Configuration ${source.namespace}/${name}`;
  if (!isDns1123Subdomain(name)) {
    throw new WardenError(
      'ERR_CONFIG_INVALID',
      `--config "${printable(name)}" is not a Kubernetes resource name`,
    );
  }
  if (!isDns1123Label(source.namespace)) {
    throw new WardenError(
      'ERR_CONFIG_INVALID',
      `NAMESPACE "${printable(source.namespace)}" is not a Kubernetes namespace name`,
    );
  }
  const api = source.kubeConfig.makeApiClient(CustomObjectsApi);
  const result = await callKubeWithRetry(
    (options) =>
      api.getNamespacedCustomObject(
        {
          group: 'dapr.io',
          version: 'v1alpha1',
          plural: 'configurations',
          namespace: source.namespace,
          name,
        },
        options,
      ) as Promise<unknown>,
    source.policy ?? DEFAULT_POLICY,
  );
  if (!result.ok) {
    const { failure } = result;
    if (failure.kind === 'status' && failure.code === 404) {
      throw new WardenError(
        'ERR_CONFIG_INVALID',
        `${where} (dapr.io/v1alpha1) was not found: create it (see deploy/configuration.yaml) or name another with --config`,
      );
    }
    if (failure.kind === 'status' && (failure.code === 401 || failure.code === 403)) {
      throw new WardenError(
        'ERR_KUBERNETES_API',
        `${where} could not be read: ${describeKubeFailure(failure)} (Warden's service account needs get on configurations.dapr.io)`,
      );
    }
    throw new WardenError(
      'ERR_KUBERNETES_API',
      `${where} could not be read: ${describeKubeFailure(failure)}${result.deadlineExceeded ? ' (gave up at the deadline)' : ''}`,
    );
  }
  const interpreted = interpretDaprConfiguration(result.value, where);
  if (!interpreted.ok)
    throw new WardenError('ERR_CONFIG_INVALID', formatConfigProblems(where, interpreted.problems));
  return interpreted.configuration;
}
