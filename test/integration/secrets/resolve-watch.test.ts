import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { createSecretsResolveCommand } from '../../../src/cli/secrets-resolve.js';
import { memoryIo } from '../../support/cli-io.js';
import { KubeApiServer } from '../../support/kube-api-server/index.js';
import { makeTempDir } from '../../support/temp-directory.js';
import { VaultTestServer } from '../../support/vault-test-server.js';
import { waitFor } from '../../support/wait-for.js';

/*
 * Rotation reaching `warden secrets resolve --watch`: a Secret updated in the Kubernetes API
 * test server (seen through the store's watch cache) and a new KV v2 version in the Vault
 * test server (seen by the store's version checks) each print a new resolution.
 */

const REDIS_COMPONENT = (store: string): string => `apiVersion: dapr.io/v1alpha1
kind: Component
metadata:
  name: redis
spec:
  type: state.redis
  metadata:
  - name: redisHost
    value: localhost:6379
  - name: redisPassword
    secretKeyRef:
      name: redis
      key: redis-password
auth:
  secretStore: ${store}
`;

interface Watching {
  out(): string;
  err(): string;
  stop(): Promise<number>;
}

/** Runs `secrets resolve --watch --reveal -o json` in-process until stop(). */
function watch(resources: string): Watching {
  let stop!: () => void;
  const stopped = new Promise<void>((resolve) => (stop = resolve));
  const io = memoryIo({});
  const running = createSecretsResolveCommand({ untilShutdown: () => stopped }).run(
    ['--resources-path', resources, '--watch', '--reveal', '-o', 'json', '--log-level', 'info'],
    io,
  );
  return {
    out: () => io.out(),
    err: () => io.err(),
    stop: async () => {
      stop();
      return running;
    },
  };
}

/** The redisPassword values of every resolution printed so far, in order. */
function printedPasswords(out: string): string[] {
  // -o json prints one array per resolution, one after the other
  const values: string[] = [];
  for (const match of out.matchAll(/"name": "redisPassword",\s*"value": "([^"]*)"/g))
    values.push(match[1] as string);
  return values;
}

describe('secrets resolve --watch prints again when a referenced secret rotates', () => {
  let dir: { path: string; remove(): Promise<void> };
  let kube: KubeApiServer;
  let vault: VaultTestServer;

  beforeAll(async () => {
    dir = await makeTempDir('resolve-watch');
    kube = await KubeApiServer.start({ bookmarkIntervalMs: 200 });
    vault = await VaultTestServer.start();
  });
  afterAll(async () => {
    await kube?.close();
    await vault?.close();
    await dir?.remove();
  });

  it('Kubernetes: a Secret update seen by the watch-backed cache', async () => {
    const token = 'resolve-watch-reader';
    kube.addToken(token, {
      username: 'system:serviceaccount:apps:daprd',
      rules: [{ verbs: ['get', 'list', 'watch'], resources: ['secrets'], apiGroups: [''] }],
    });
    const put = (password: string): void => {
      kube.store.put({
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: { name: 'redis', namespace: 'apps' },
        stringData: { 'redis-password': password },
      });
    };
    put('kube-pw-1');
    const kubeconfig = path.join(dir.path, 'kubeconfig');
    await writeFile(kubeconfig, kube.kubeconfigYaml(token), { mode: 0o600 });
    const resources = path.join(dir.path, 'kube');
    await mkdir(resources);
    await writeFile(
      path.join(resources, 'store.yaml'),
      `apiVersion: dapr.io/v1alpha1
kind: Component
metadata:
  name: kubernetes
spec:
  type: secretstores.kubernetes
  version: v1
  metadata:
  - name: kubeconfigPath
    value: ${kubeconfig}
  - name: defaultNamespace
    value: apps
  - name: cacheMode
    value: watch
`,
    );
    await writeFile(path.join(resources, 'redis.yaml'), REDIS_COMPONENT('kubernetes'));
    const running = watch(resources);
    try {
      await waitFor(
        () => (printedPasswords(running.out()).length === 1 ? true : undefined),
        10_000,
        'the first resolution',
      );
      expect(printedPasswords(running.out())).toEqual(['kube-pw-1']);
      put('kube-pw-2');
      await waitFor(
        () => (printedPasswords(running.out()).length === 2 ? true : undefined),
        10_000,
        `the second resolution (stderr: ${running.err()})`,
      );
      expect(printedPasswords(running.out())).toEqual(['kube-pw-1', 'kube-pw-2']);
      expect(running.err()).toContain('a referenced secret changed; resolved again');
    } finally {
      expect(await running.stop()).toBe(0);
    }
    expect(running.err()).not.toContain(token);
  }, 30_000);

  it('Vault: a new KV v2 version seen by the version checks', async () => {
    vault.setKv('secret', 'dapr/redis', { 'redis-password': 'vault-pw-1' });
    const token = vault.addToken({ policies: ['dapr-read'] });
    const caFile = path.join(dir.path, 'vault-ca.crt');
    await writeFile(caFile, vault.caPem);
    const resources = path.join(dir.path, 'vault');
    await mkdir(resources);
    await writeFile(
      path.join(resources, 'store.yaml'),
      `apiVersion: dapr.io/v1alpha1
kind: Component
metadata:
  name: vault
spec:
  type: secretstores.hashicorp.vault
  version: v1
  metadata:
  - name: vaultAddr
    value: ${vault.url}
  - name: caCert
    value: ${caFile}
  - name: vaultToken
    value: ${token}
  - name: versionCheckInterval
    value: 100ms
`,
    );
    await writeFile(path.join(resources, 'redis.yaml'), REDIS_COMPONENT('vault'));
    const running = watch(resources);
    try {
      await waitFor(
        () => (printedPasswords(running.out()).length === 1 ? true : undefined),
        10_000,
        'the first resolution',
      );
      await waitFor(
        () => (vault.requests('secret/metadata/dapr/redis').length > 0 ? true : undefined),
        10_000,
        'a version check',
      );
      vault.setKv('secret', 'dapr/redis', { 'redis-password': 'vault-pw-2' });
      await waitFor(
        () => (printedPasswords(running.out()).length === 2 ? true : undefined),
        10_000,
        `the second resolution (stderr: ${running.err()})`,
      );
      expect(printedPasswords(running.out())).toEqual(['vault-pw-1', 'vault-pw-2']);
      // the checks read metadata, never the value, while nothing changes
      vault.clearLog();
      await waitFor(
        () => (vault.requests('secret/metadata/dapr/redis').length >= 2 ? true : undefined),
        10_000,
        'more version checks',
      );
      expect(vault.requests('secret/data/')).toEqual([]);
      expect(printedPasswords(running.out())).toHaveLength(2);
    } finally {
      expect(await running.stop()).toBe(0);
    }
    // nothing polls once the watcher is gone
    vault.clearLog();
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(vault.requests('secret/metadata/')).toEqual([]);
    expect(running.err()).not.toContain(token);
  }, 30_000);
});
