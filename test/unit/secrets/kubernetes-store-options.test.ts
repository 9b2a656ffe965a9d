import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from '@jest/globals';
import {
  createKubernetesSecretStore,
  parseKubernetesStoreOptions,
} from '../../../src/secrets/stores/kubernetes/index.js';
import { systemClock } from '../../../src/shared/clock.js';
import { readEnv } from '../../../src/shared/env.js';
import { WardenError } from '../../../src/shared/errors.js';
import { silentLogger } from '../../../src/shared/logger.js';

function problem(fn: () => unknown): WardenError {
  try {
    fn();
  } catch (err) {
    if (err instanceof WardenError) return err;
    throw err;
  }
  throw new Error('expected a WardenError');
}

describe('secretstores.kubernetes metadata', () => {
  it('defaults to no cache, a 10s request timeout and 3 retries', () => {
    expect(parseKubernetesStoreOptions({})).toEqual({
      defaultNamespace: undefined,
      kubeconfigPath: undefined,
      cacheMode: 'none',
      requestTimeoutMs: 10_000,
      maxRetries: 3,
      ignoredFields: [],
    });
  });

  it("reads Dapr's field names and Warden's additions", () => {
    expect(
      parseKubernetesStoreOptions({
        defaultNamespace: 'apps',
        kubeconfigPath: '/k/config',
        cacheMode: 'watch',
        requestTimeout: '2s',
        maxRetries: '0',
        other: 'x',
        cacheTTL: '30s', // the resolver's field: known, not reported as ignored
      }),
    ).toEqual({
      defaultNamespace: 'apps',
      kubeconfigPath: '/k/config',
      cacheMode: 'watch',
      requestTimeoutMs: 2000,
      maxRetries: 0,
      ignoredFields: ['other'],
    });
  });

  it('reports every problem at once, each naming its field', () => {
    const err = problem(() =>
      parseKubernetesStoreOptions({
        defaultNamespace: 'Bad_NS',
        cacheMode: 'always',
        requestTimeout: 'soon',
        maxRetries: '99',
      }),
    );
    expect(err.code).toBe('ERR_SECRET_STORE_CONFIG');
    for (const field of ['defaultNamespace', 'cacheMode', 'requestTimeout', 'maxRetries'])
      expect(err.message).toContain(field);
  });

  it.each([
    [
      'a kubeconfig file that does not exist',
      { kubeconfigPath: '/nonexistent/warden/kubeconfig' },
      {},
      'ENOENT',
    ],
  ])(
    'refuses %s with ERR_SECRET_STORE_CONFIG',
    (_what, metadata: Record<string, string>, env: Record<string, string>, fragment) => {
      const err = problem(() =>
        createKubernetesSecretStore(metadata, {
          logger: silentLogger,
          clock: systemClock,
          env: readEnv(env),
        }),
      );
      expect(err.code).toBe('ERR_SECRET_STORE_CONFIG');
      expect(err.message).toContain(fragment);
    },
  );

  it('refuses cacheMode watch when neither NAMESPACE nor defaultNamespace names a namespace to watch', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'warden-kube-options-'));
    try {
      const path = join(dir, 'kubeconfig.yaml');
      await writeFile(
        path,
        'apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: https://127.0.0.1:1\nusers:\n- name: u\n  user: {}\ncontexts:\n- name: x\n  context: {cluster: c, user: u}\ncurrent-context: x\n',
      );
      const err = problem(() =>
        createKubernetesSecretStore(
          { kubeconfigPath: path, cacheMode: 'watch' },
          { logger: silentLogger, clock: systemClock, env: readEnv({}) },
        ),
      );
      expect(err.code).toBe('ERR_SECRET_STORE_CONFIG');
      expect(err.message).toContain('cacheMode watch needs a valid namespace');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
