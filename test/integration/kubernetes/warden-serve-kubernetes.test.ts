import { X509Certificate } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { generateTrustMaterial } from '../../../src/ca/generate.js';
import { generateKeyAndCsr } from '../../../src/issuer/sidecar/workload-csr.js';
import { KubeApiServer } from '../../support/kube-api-server/index.js';
import { configMapData, putSecretKeys, secretData } from '../../support/kube-trust-fixtures.js';
import {
  CA_NAMESPACE,
  issuedTokens,
  podToken,
  putConfiguration,
  putPod,
  randomToken,
  SENTRY_AUDIENCE,
  VALIDATOR_RULES,
  WARDEN_USERNAME,
  type TestPod,
} from '../../support/kube-validator-fixtures.js';
import { createSentryTestClient } from '../../support/sentry-proto-client.js';
import { makeTempDir, removeTempDir } from '../../support/temp-dir.js';
import { waitUntil } from '../../support/wait-for.js';
import { runWarden, startWardenServe, type ServeChild } from '../../support/warden-process.js';

/*
 * The real `warden serve --mode kubernetes` executable against the Kubernetes API test server,
 * through a kubeconfig file whose token has exactly the rules deploy/rbac.yaml grants: the
 * Configuration comes from the cluster, the kubernetes validator checks a pod's
 * service-account token, and the trust material lives in the Secret.
 */

async function metric(port: number, series: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? Number.NaN : Number(line.slice(series.length + 1));
}

async function healthz(port: number): Promise<number> {
  return (await fetch(`http://127.0.0.1:${port}/healthz`)).status;
}

function leaseHolder(server: KubeApiServer): string | undefined {
  const lease = server.store.get('leases', CA_NAMESPACE, 'warden-leader') as
    { spec?: { holderIdentity?: string } } | undefined;
  return lease?.spec?.holderIdentity;
}

describe('warden serve --mode kubernetes (child process, test API server, deploy/ RBAC)', () => {
  let server: KubeApiServer;
  let dir: string;
  let kubeconfig: string;
  let serve: ServeChild;
  let orders: TestPod;
  const token = randomToken('warden');

  beforeAll(async () => {
    server = await KubeApiServer.start({
      bookmarkIntervalMs: 200,
      namespaces: ['default', 'kube-system', CA_NAMESPACE, 'shop'],
    });
    server.addToken(token, { username: WARDEN_USERNAME, rules: VALIDATOR_RULES });
    putConfiguration(server, CA_NAMESPACE, 'daprsystem', { mtls: { enabled: true } });
    putConfiguration(server, 'shop', 'appconfig', {
      accessControl: { trustDomain: 'example.org' },
    });
    orders = putPod(server, {
      namespace: 'shop',
      name: 'orders-5f6c',
      annotations: { 'dapr.io/app-id': 'orders', 'dapr.io/config': 'appconfig' },
    });
    dir = await makeTempDir('warden-k8s-serve-');
    kubeconfig = path.join(dir, 'kubeconfig.yaml');
    await writeFile(kubeconfig, server.kubeconfigYaml(token), { mode: 0o600 });
    serve = await startWardenServe({
      cwd: dir,
      args: [
        '--mode',
        'kubernetes',
        '--kubeconfig',
        kubeconfig,
        '--trust-domain',
        'cluster.local',
        '--listen-address',
        '127.0.0.1',
        '--log-level',
        'debug',
      ],
      env: { NAMESPACE: CA_NAMESPACE, POD_NAME: 'dapr-sentry-0' },
    });
  });
  afterAll(async () => {
    await serve?.stop('SIGKILL');
    await server.close();
    await removeTempDir(dir);
  });

  it('generates the trust Secret and ConfigMap, becomes ready and signs a pod’s identity with that issuer', async () => {
    const data = secretData(server, CA_NAMESPACE);
    expect(data['ca.crt']).toContain('BEGIN CERTIFICATE');
    expect(data['issuer.key']).toContain('PRIVATE KEY');
    expect(data['root.key']).toContain('PRIVATE KEY');
    expect(configMapData(server, CA_NAMESPACE)?.['ca.crt']).toBe(data['ca.crt']);
    await waitUntil(async () => (await healthz(serve.healthzPort)) === 200, '/healthz 200');

    const client = createSentryTestClient({
      address: serve.grpcAddress,
      anchorsPem: data['ca.crt'] as string,
      expectedSpiffeId: SENTRY_AUDIENCE,
    });
    try {
      const response = await client.sign({
        id: 'orders',
        namespace: 'shop',
        token: podToken(server, orders),
        token_validator: 'KUBERNETES',
        certificate_signing_request: Buffer.from(generateKeyAndCsr('ecdsa-p256').csrPem),
      });
      const leaf = new X509Certificate(response.workload_certificate);
      expect(leaf.subjectAltName).toBe('URI:spiffe://example.org/ns/shop/orders');
      expect(leaf.verify(new X509Certificate(data['issuer.crt'] as string).publicKey)).toBe(true);
    } finally {
      client.close();
    }
  });

  it('holds the leader Lease under its pod name and publishes the anchors in every namespace', async () => {
    await waitUntil(() => leaseHolder(server) === 'dapr-sentry-0', 'the lease');
    const anchors = secretData(server, CA_NAMESPACE)['ca.crt'];
    await waitUntil(
      () =>
        ['default', 'kube-system', 'shop', CA_NAMESPACE].every(
          (ns) => configMapData(server, ns, 'dapr-root-ca.crt')?.['ca.crt'] === anchors,
        ),
      'anchors ConfigMaps',
    );
    expect(await metric(serve.metricsPort, 'warden_leader')).toBe(1);
  });

  it('counts a refused Secret update in warden_trust_reload_failures_total and keeps serving', async () => {
    const other = (await generateTrustMaterial({ trustDomain: 'cluster.local' })).material;
    const good = secretData(server, CA_NAMESPACE)['issuer.key'] as string;
    putSecretKeys(server, CA_NAMESPACE, { 'issuer.key': other.issuerKeyPem });
    await waitUntil(
      async () => (await metric(serve.metricsPort, 'warden_trust_reload_failures_total')) >= 1,
      'the refusal to be counted',
    );
    expect(await healthz(serve.healthzPort)).toBe(200);
    putSecretKeys(server, CA_NAMESPACE, { 'issuer.key': good });
  });

  it('never writes a token or a key to its logs, and releases the Lease on SIGTERM', async () => {
    const exit = await serve.stop('SIGTERM');
    expect(exit.code).toBe(0);
    expect(leaseHolder(server)).toBeUndefined();
    for (const t of issuedTokens) expect(serve.stderr()).not.toContain(t);
    expect(serve.stderr()).not.toContain('PRIVATE KEY');
  });

  it('refuses to start (exit 1, saying why) when the API server is down', async () => {
    const down = await KubeApiServer.start();
    const downConfig = path.join(dir, 'down.yaml');
    await writeFile(downConfig, down.kubeconfigYaml(), { mode: 0o600 });
    await down.close();
    const run = await runWarden(
      [
        'serve',
        '--mode',
        'kubernetes',
        '--kubeconfig',
        downConfig,
        '--port',
        '0',
        '--healthz-port',
        '0',
        '--metrics-port',
        '0',
        '--workers',
        '1',
      ],
      { cwd: dir, env: { NAMESPACE: CA_NAMESPACE } },
    );
    // The Configuration is the first thing read from the cluster (its loader gives up at its
    // deadline); the trust material's own refusal is tested in kubernetes-ha.test.ts.
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('ECONNREFUSED');
    expect(run.stdout).toBe('');
  });
});
