import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { validateServeInvocation } from '../../../src/cli/serve-flags.js';
import { loadKubernetesConfiguration } from '../../../src/shared/config/kubernetes-configuration.js';
import { readEnv } from '../../../src/shared/env.js';
import { WardenError } from '../../../src/shared/errors.js';
import { KubeApiServer } from '../../support/kube-api-server/index.js';
import {
  CA_NAMESPACE,
  randomToken,
  WARDEN_USERNAME,
} from '../../support/kube-validator-fixtures.js';
import { makeTempDir, removeTempDir } from '../../support/temp-dir.js';

/*
 * Kubernetes mode reads its Configuration resource from the CA's namespace: through
 * `warden serve`'s own path (validateServeInvocation with --kubeconfig pointing at a file,
 * the default loader) and through loadKubernetesConfiguration directly.
 */

const INLINE_JWKS = JSON.stringify({
  keys: [
    {
      kty: 'EC',
      crv: 'P-256',
      kid: 'k1',
      x: 'f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU',
      y: 'x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0',
    },
  ],
});

let server: KubeApiServer;
let dir: string;
let kubeconfigPath: string;
let readerToken: string;

beforeAll(async () => {
  server = await KubeApiServer.start({ namespaces: ['default', CA_NAMESPACE] });
  readerToken = randomToken('reader');
  server.addToken(readerToken, {
    username: WARDEN_USERNAME,
    rules: [
      {
        verbs: ['get'],
        resources: ['configurations'],
        apiGroups: ['dapr.io'],
        namespaces: [CA_NAMESPACE],
      },
    ],
  });
  dir = await makeTempDir('warden-k8s-config-');
  kubeconfigPath = path.join(dir, 'kubeconfig');
  await writeFile(kubeconfigPath, server.kubeconfigYaml(readerToken), { mode: 0o600 });
  server.store.put({
    apiVersion: 'dapr.io/v1alpha1',
    kind: 'Configuration',
    metadata: { name: 'daprsystem', namespace: CA_NAMESPACE },
    spec: {
      mtls: {
        enabled: true,
        workloadCertTTL: '12h',
        allowedClockSkew: '5m',
        controlPlaneTrustDomain: 'cluster.local',
        tokenValidators: [
          { name: 'kubernetes' },
          { name: 'jwks', options: { source: INLINE_JWKS } },
        ],
      },
      // daprd's parts of the shared CRD are not Warden's business.
      tracing: { samplingRate: '1' },
    },
  });
  server.store.put({
    apiVersion: 'dapr.io/v1alpha1',
    kind: 'Configuration',
    metadata: { name: 'broken', namespace: CA_NAMESPACE },
    spec: { mtls: { workloadCertTTL: 'a day', tokenValidators: [{ name: 'vault' }] } },
  });
});

afterAll(async () => {
  await server.close();
  await removeTempDir(dir);
});

const env = readEnv({ NAMESPACE: CA_NAMESPACE });

describe('the Configuration resource in kubernetes mode', () => {
  it('is read from the CA namespace by warden serve, named by --config (default daprsystem)', async () => {
    const result = await validateServeInvocation(
      ['--mode=kubernetes', `--kubeconfig=${kubeconfigPath}`, '--trust-domain=cluster.local'],
      env,
    );
    if (!result.ok) throw new Error(JSON.stringify(result.problems));
    const { settings } = result;
    expect(settings.configurationRef).toEqual({ kind: 'kubernetes', name: 'daprsystem' });
    expect(settings.configuration.source).toBe(`Configuration ${CA_NAMESPACE}/daprsystem`);
    expect(settings.leafProfile).toEqual({ ttlMs: 12 * 3_600_000, skewMs: 5 * 60_000 });
    expect(settings.validators.enabled.map((v) => v.name)).toEqual(['kubernetes', 'jwks']);
    expect(settings.validators.defaultName).toBe('kubernetes');
    expect(settings.validatorAudience).toBe(
      `spiffe://cluster.local/ns/${CA_NAMESPACE}/dapr-sentry`,
    );
    const reads = server.requests.filter((r) => r.resource === 'configurations');
    expect(reads.at(-1)).toMatchObject({
      method: 'GET',
      namespace: CA_NAMESPACE,
      name: 'daprsystem',
      status: 200,
    });
  });

  it('makes the kubernetes validator the default when no tokenValidators are configured', async () => {
    server.store.put({
      apiVersion: 'dapr.io/v1alpha1',
      kind: 'Configuration',
      metadata: { name: 'plain', namespace: CA_NAMESPACE },
      spec: { mtls: { enabled: true } },
    });
    const result = await validateServeInvocation(
      ['--mode=kubernetes', `--kubeconfig=${kubeconfigPath}`, '--config=plain'],
      env,
    );
    expect(result.ok && result.settings.validators).toEqual({
      enabled: [{ name: 'kubernetes' }],
      defaultName: 'kubernetes',
    });
  });

  it('reports a missing Configuration clearly', async () => {
    const result = await validateServeInvocation(
      ['--mode=kubernetes', `--kubeconfig=${kubeconfigPath}`, '--config=nowhere'],
      env,
    );
    expect(result).toMatchObject({
      ok: false,
      problems: [
        {
          message: expect.stringMatching(
            /Configuration dapr-system\/nowhere \(dapr.io\/v1alpha1\) was not found/,
          ),
        },
      ],
    });
  });

  it('reports every problem of an invalid Configuration with its path', async () => {
    const result = await validateServeInvocation(
      ['--mode=kubernetes', `--kubeconfig=${kubeconfigPath}`, '--config=broken'],
      env,
    );
    expect(result.ok).toBe(false);
    const messages = result.ok ? [] : result.problems.map((p) => `${p.path}: ${p.message}`);
    expect(messages).toEqual([
      expect.stringMatching(
        /^Configuration dapr-system\/broken: spec\.mtls\.workloadCertTTL: "a day" is not a duration/,
      ),
      expect.stringMatching(
        /^Configuration dapr-system\/broken: spec\.mtls\.tokenValidators\[0\]\.name: "vault" is not a validator/,
      ),
    ]);
  });

  it('refuses a --config that is not a resource name before calling the API', async () => {
    server.clearRequests();
    await expect(
      loadKubernetesConfiguration('Not_A_Name', {
        kubeConfig: server.kubeConfig(readerToken),
        namespace: CA_NAMESPACE,
      }),
    ).rejects.toMatchObject({
      code: 'ERR_CONFIG_INVALID',
      message: expect.stringMatching(/not a Kubernetes resource name/),
    });
    expect(server.requests).toEqual([]);
  });

  it('says which permission is missing when RBAC refuses the read', async () => {
    const other = randomToken('other');
    server.addToken(other, { username: 'system:serviceaccount:dapr-system:other', rules: [] });
    const err = await loadKubernetesConfiguration('daprsystem', {
      kubeConfig: server.kubeConfig(other),
      namespace: CA_NAMESPACE,
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WardenError);
    expect(err).toMatchObject({
      code: 'ERR_KUBERNETES_API',
      message: expect.stringMatching(/HTTP 403 Forbidden .*needs get on configurations\.dapr\.io/),
    });
  });

  it('retries a throttled read and gives up at its deadline when the API server is unreachable', async () => {
    server.failNext({
      status: 429,
      retryAfter: 0,
      path: `/apis/dapr.io/v1alpha1/namespaces/${CA_NAMESPACE}/configurations/daprsystem`,
    });
    const configuration = await loadKubernetesConfiguration('daprsystem', {
      kubeConfig: server.kubeConfig(readerToken),
      namespace: CA_NAMESPACE,
    });
    expect(configuration.mtls.workloadCertTtlMs).toBe(12 * 3_600_000);

    await server.stop();
    try {
      const err = await loadKubernetesConfiguration('daprsystem', {
        kubeConfig: server.kubeConfig(readerToken),
        namespace: CA_NAMESPACE,
        policy: { deadlineMs: 400, attemptTimeoutMs: 200 },
      }).catch((e: unknown) => e);
      expect(err).toMatchObject({
        code: 'ERR_KUBERNETES_API',
        message: expect.stringMatching(/could not be read: network error/),
      });
    } finally {
      await server.restart();
    }
  });
});
