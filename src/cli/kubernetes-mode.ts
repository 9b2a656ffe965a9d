import { hostname } from 'node:os';
import path, { delimiter } from 'node:path';
import type { Registry } from 'prom-client';
import { startKubernetesCa, type KubernetesCa } from '../ca/kubernetes/kubernetes-ca.js';
import type { Clock } from '../shared/clock.js';
import { loadKubeConfig } from '../shared/kube-client.js';
import type { Logger } from '../shared/logger.js';
import type { ServeSettings } from './serve-flags.js';

export interface KubernetesModeDependencies {
  readonly clock: Clock;
  readonly logger: Logger;
  /** The metrics server's registry: distribution, leader and reload-failure metrics go there. */
  readonly registry: Registry;
}

/** This replica in leader election: POD_NAME, else host name and pid (unique on one host). */
export function leaderIdentity(podName: string | undefined): string {
  return podName ?? `${hostname()}_${process.pid}`;
}

/**
 * `warden serve --mode kubernetes`: the CA on the trust Secret, with its watch, leader
 * election and the anchors distributor, from ServeSettings. The kubeconfig is --kubeconfig
 * (or env KUBECONFIG), else the pod's service account.
 */
export function startKubernetesModeCa(
  settings: ServeSettings,
  deps: KubernetesModeDependencies,
): Promise<KubernetesCa> {
  // settings.kubeconfig is --kubeconfig, else env KUBECONFIG, which may list several files.
  const several = settings.kubeconfig?.includes(delimiter) ?? false;
  const kubeConfig = loadKubeConfig({
    kubeconfigPath: several ? undefined : settings.kubeconfig,
    kubeconfigEnv: several ? settings.kubeconfig : undefined,
    inCluster: settings.kubernetes.inCluster,
  });
  const identity = leaderIdentity(settings.kubernetes.podName);
  deps.logger.info(
    {
      namespace: settings.namespace,
      trustBundle: settings.kubernetes.trustBundleName,
      anchorsConfigMap: settings.kubernetes.anchorsConfigMapName,
      anchorsNamespaceSelector: settings.kubernetes.anchorsNamespaceSelector ?? '(all)',
      identity,
      server: kubeConfig.getCurrentCluster()?.server,
    },
    'kubernetes mode: trust material in the cluster',
  );
  return startKubernetesCa({
    kubeConfig,
    namespace: settings.namespace,
    trustBundleName: settings.kubernetes.trustBundleName,
    names: {
      anchors: path.basename(settings.credentials.caFile),
      issuerChain: path.basename(settings.credentials.certificateFile),
      issuerKey: path.basename(settings.credentials.keyFile),
    },
    anchorsConfigMapName: settings.kubernetes.anchorsConfigMapName,
    anchorsNamespaceSelector: settings.kubernetes.anchorsNamespaceSelector,
    identity,
    trustDomain: settings.trustDomain,
    keyAlgorithm: settings.keyAlgorithm,
    rootTtlMs: settings.rootTtlMs,
    issuerTtlMs: settings.issuerTtlMs,
    clock: deps.clock,
    logger: deps.logger,
    registry: deps.registry,
  });
}
