export {
  KUBERNETES_SECRET_STORE_TYPE,
  createKubernetesSecretStore,
  type KubernetesSecretStore,
  type KubernetesSecretStoreContext,
} from './kubernetes-secret-store.js';
export {
  parseKubernetesStoreOptions,
  type KubernetesStoreOptions,
} from './kubernetes-store-options.js';
