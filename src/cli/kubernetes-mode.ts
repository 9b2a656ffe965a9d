import { hostname } from 'node:os';
import path from 'node:path';
import type { KubeConfig } from '@kubernetes/client-node';
import type { Registry } from 'prom-client';
import { startKubernetesCa, type KubernetesCa } from '../ca/kubernetes/kubernetes-ca.js';
import type { Clock } from '../shared/clock.js';
import type { Logger } from '../shared/logger.js';
import type { ServeSettings } from './serve-flags.js';

export interface KubernetesModeDependencies {
  /** The API server (--kubeconfig, KUBECONFIG, else the pod's service account). */
  readonly kubeConfig: KubeConfig;
  readonly clock: Clock;
  readonly logger: Logger;
  /** The metrics server's registry: the distribution and leader metrics go there. */
  readonly registry: Registry;
}

/** This replica in leader election: POD_NAME, else host name and pid (unique on one host). */
export function leaderIdentity(podName: string | undefined): string {
  return podName ?? `${hostname()}_${process.pid}`;
}

/**
 * `warden serve --mode kubernetes`: the CA on the trust Secret, with its watch, leader
 * election and the anchors distributor, from ServeSettings. Expiry warnings, reload-failure
 * metrics and automatic rotation are the trust lifecycle's, as in standalone mode.
 */
export function startKubernetesModeCa(
  settings: ServeSettings,
  deps: KubernetesModeDependencies,
): Promise<KubernetesCa> {
  const identity = leaderIdentity(settings.kubernetes.podName);
  deps.logger.info(
    {
      namespace: settings.namespace,
      trustBundle: settings.kubernetes.trustBundleName,
      anchorsConfigMap: settings.kubernetes.anchorsConfigMapName,
      anchorsNamespaceSelector: settings.kubernetes.anchorsNamespaceSelector ?? '(all)',
      identity,
      server: deps.kubeConfig.getCurrentCluster()?.server,
    },
    'kubernetes mode: trust material in the cluster',
  );
  return startKubernetesCa({
    kubeConfig: deps.kubeConfig,
    namespace: settings.namespace,
    trustBundleName: settings.kubernetes.trustBundleName,
    names: {
      anchors: path.basename(settings.credentials.caFile),
      issuerChain: path.basename(settings.credentials.certificateFile),
      issuerKey: path.basename(settings.credentials.keyFile),
    },
    rootKeyName: settings.rotation.rootKeyFilename,
    keepRootKey: settings.rotation.keepRootKey,
    // The trust monitor owns the expiry warning (with its metric), as in standalone mode.
    expiryWarningDays: 0,
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
