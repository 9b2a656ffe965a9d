import path from 'node:path';
import { createFileTrustStore, type FileTrustMaterialStore } from '../ca/file-trust-store.js';
import {
  createKubernetesTrustStore,
  DEFAULT_TRUST_BUNDLE_NAME,
  type KubernetesTrustMaterialStore,
} from '../ca/kubernetes/kubernetes-trust-store.js';
import type { WardenEnv } from '../shared/env.js';
import { WardenError } from '../shared/errors.js';
import type { FlagSpecs, ParsedFlags } from '../shared/flags.js';
import { loadKubeConfig } from '../shared/kube-client.js';
import { silentLogger } from '../shared/logger.js';

/** Dapr Sentry's credential flags, shared by the commands that touch the trust files. */
export const TRUST_MATERIAL_FLAGS: FlagSpecs = {
  'issuer-credentials': {
    kind: 'string',
    description: 'Directory holding the trust anchors, issuer certificate and issuer key',
    default: './.warden/credentials',
  },
  'issuer-ca-filename': {
    kind: 'string',
    description: 'File name of the trust anchors (roots)',
    default: 'ca.crt',
  },
  'issuer-certificate-filename': {
    kind: 'string',
    description: 'File name of the issuer certificate (then any intermediates)',
    default: 'issuer.crt',
  },
  'issuer-key-filename': {
    kind: 'string',
    description: 'File name of the issuer private key',
    default: 'issuer.key',
  },
  'root-key-filename': {
    kind: 'string',
    description: 'File name of the root private key Warden keeps when it generated the root',
    default: 'root.key',
  },
};

export function stringFlag(flags: ParsedFlags, name: string): string {
  const value = flags.values[name];
  if (typeof value !== 'string')
    throw new TypeError(`flag --${name} is not a string flag with a default`);
  return value;
}

export function fileTrustStoreFromFlags(flags: ParsedFlags): FileTrustMaterialStore {
  const directory = stringFlag(flags, 'issuer-credentials');
  if (directory.length === 0)
    throw new WardenError('ERR_CONFIG_INVALID', 'flag -issuer-credentials must not be empty');
  return createFileTrustStore({
    directory,
    names: {
      anchors: stringFlag(flags, 'issuer-ca-filename'),
      issuerChain: stringFlag(flags, 'issuer-certificate-filename'),
      issuerKey: stringFlag(flags, 'issuer-key-filename'),
    },
    rootKeyName: stringFlag(flags, 'root-key-filename'),
  });
}

/**
 * Where the operator commands (`warden rotate *`, `warden status`) find the trust material:
 * the files (standalone) or, as `warden serve --mode kubernetes` keeps it, the trust Secret
 * in the CA namespace (env NAMESPACE).
 */
export const TRUST_STORE_MODE_FLAGS: FlagSpecs = {
  mode: {
    kind: 'string',
    description:
      'standalone (the files in --issuer-credentials) or kubernetes (the trust Secret in env NAMESPACE); default kubernetes inside a pod, else standalone',
  },
  kubeconfig: {
    kind: 'string',
    description: 'Kubeconfig file for kubernetes mode outside a cluster (default: env KUBECONFIG)',
  },
  'trust-bundle-name': {
    kind: 'string',
    description: 'Kubernetes mode: name of the Secret (and ConfigMap) holding the trust material',
    default: DEFAULT_TRUST_BUNDLE_NAME,
  },
};

export type SelectedTrustStore =
  | { readonly mode: 'standalone'; readonly store: FileTrustMaterialStore }
  | {
      readonly mode: 'kubernetes';
      readonly store: KubernetesTrustMaterialStore;
      readonly kubeConfig: ReturnType<typeof loadKubeConfig>;
    };

/** --mode as `warden serve` reads it: kubernetes inside a pod unless given. */
export function trustStoreModeFromFlags(
  flags: ParsedFlags,
  env: WardenEnv,
): 'standalone' | 'kubernetes' {
  const value = flags.values.mode;
  if (value === undefined) return env.inCluster ? 'kubernetes' : 'standalone';
  if (value === 'standalone' || value === 'kubernetes') return value;
  throw new WardenError(
    'ERR_CONFIG_INVALID',
    `flag -mode: "${String(value)}" is not standalone or kubernetes`,
  );
}

/**
 * The trust store the flags name. In kubernetes mode the --issuer-*-filename and
 * --root-key-filename flags name the Secret's data keys, as in `warden serve`.
 */
export function trustStoreFromFlags(flags: ParsedFlags, env: WardenEnv): SelectedTrustStore {
  if (trustStoreModeFromFlags(flags, env) === 'standalone')
    return { mode: 'standalone', store: fileTrustStoreFromFlags(flags) };
  const flagPath = flags.values.kubeconfig;
  const kubeconfigPath = typeof flagPath === 'string' && flagPath !== '' ? flagPath : undefined;
  const kubeConfig = loadKubeConfig({
    kubeconfigPath,
    inCluster: kubeconfigPath === undefined && env.kubeconfig === undefined && env.inCluster,
    kubeconfigEnv: env.kubeconfig,
  });
  const store = createKubernetesTrustStore({
    kubeConfig,
    namespace: env.namespace,
    name: stringFlag(flags, 'trust-bundle-name'),
    names: {
      anchors: path.basename(stringFlag(flags, 'issuer-ca-filename')),
      issuerChain: path.basename(stringFlag(flags, 'issuer-certificate-filename')),
      issuerKey: path.basename(stringFlag(flags, 'issuer-key-filename')),
    },
    rootKeyName: path.basename(stringFlag(flags, 'root-key-filename')),
    logger: silentLogger,
  });
  return { mode: 'kubernetes', store, kubeConfig };
}

/** True when argv asks for a command's help instead of running it. */
export function wantsHelp(argv: readonly string[]): boolean {
  return argv.some((a) => a === '--help' || a === '-help' || a === '-h');
}
