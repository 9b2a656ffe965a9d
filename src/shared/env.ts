/**
 * The only module that reads process.env. Everything else receives these values.
 * A function, not constants, so tests and child processes can pass their own env.
 */
export interface WardenEnv {
  /** The CA's namespace (Dapr Sentry reads NAMESPACE). */
  readonly namespace: string;
  /** True when running inside a Kubernetes pod. */
  readonly inCluster: boolean;
  readonly kubeconfig: string | undefined;
  readonly vaultAddr: string | undefined;
  /** POD_NAME (the Downward API's metadata.name): this replica's identity in leader election. */
  readonly podName: string | undefined;
  readonly raw: Readonly<Record<string, string | undefined>>;
}

export function readEnv(env: NodeJS.ProcessEnv = process.env): WardenEnv {
  return Object.freeze({
    namespace: env.NAMESPACE && env.NAMESPACE.length > 0 ? env.NAMESPACE : 'default',
    inCluster: Boolean(env.KUBERNETES_SERVICE_HOST && env.KUBERNETES_SERVICE_PORT),
    kubeconfig: env.KUBECONFIG && env.KUBECONFIG.length > 0 ? env.KUBECONFIG : undefined,
    vaultAddr: env.VAULT_ADDR && env.VAULT_ADDR.length > 0 ? env.VAULT_ADDR : undefined,
    podName: env.POD_NAME && env.POD_NAME.length > 0 ? env.POD_NAME : undefined,
    raw: Object.freeze({ ...env }),
  });
}
