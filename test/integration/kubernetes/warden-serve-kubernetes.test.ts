import { X509Certificate } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { generateTrustMaterial } from '../../../src/ca/generate.js';
import { generateKeyAndCsr } from '../../../src/issuer/sidecar/workload-csr.js';
import { KubeApiServer } from '../../support/kube-api-server/index.js';
import { configMapData, putSecretKeys, secretData } from '../../support/kube-trust-fixtures.js';
import { createSentryTestClient } from '../../support/sentry-proto-client.js';
import { makeTempDir, removeTempDir } from '../../support/temp-dir.js';
import { waitUntil } from '../../support/wait-for.js';
import { runWarden, startWardenServe, type ServeChild } from '../../support/warden-process.js';

/*
 * The real `warden serve --mode kubernetes` executable against the Kubernetes API test server,
 * through a kubeconfig file. The kubernetes token validator comes from another block; until it
 * is merged this run enables the insecure validator through a Configuration file.
 */

const NAMESPACE = 'warden-system';
const SENTRY_ID = `spiffe://cluster.local/ns/${NAMESPACE}/dapr-sentry`;
const CONFIGURATION = `apiVersion: dapr.io/v1alpha1
kind: Configuration
metadata:
  name: daprsystem
spec:
  mtls:
    enabled: true
    tokenValidators:
      - name: insecure
`;

async function metric(port: number, series: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? Number.NaN : Number(line.slice(series.length + 1));
}

async function healthz(port: number): Promise<number> {
  return (await fetch(`http://127.0.0.1:${port}/healthz`)).status;
}

describe('warden serve --mode kubernetes (child process, test API server)', () => {
  let server: KubeApiServer;
  let dir: string;
  let kubeconfig: string;
  let config: string;
  let serve: ServeChild;
  const token = `warden-sa-token-${Math.random().toString(36).slice(2)}`;

  beforeAll(async () => {
    server = await KubeApiServer.start({ bookmarkIntervalMs: 200 });
    server.addToken(token, {
      username: `system:serviceaccount:${NAMESPACE}:dapr-sentry`,
      rules: 'all',
    });
    server.store.put({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: NAMESPACE } });
    dir = await makeTempDir('warden-k8s-serve-');
    kubeconfig = path.join(dir, 'kubeconfig.yaml');
    config = path.join(dir, 'configuration.yaml');
    await writeFile(kubeconfig, server.kubeconfigYaml(token), { mode: 0o600 });
    await writeFile(config, CONFIGURATION);
    serve = await startWardenServe({
      cwd: dir,
      args: [
        '--mode',
        'kubernetes',
        '--kubeconfig',
        kubeconfig,
        '--config',
        config,
        '--trust-domain',
        'cluster.local',
        '--listen-address',
        '127.0.0.1',
        '--log-level',
        'debug',
      ],
      env: { NAMESPACE, POD_NAME: 'dapr-sentry-0' },
    });
  });
  afterAll(async () => {
    await serve?.stop('SIGKILL');
    await server.close();
    await removeTempDir(dir);
  });

  it('generates the trust Secret and ConfigMap, becomes ready and signs with that issuer', async () => {
    const data = secretData(server, NAMESPACE);
    expect(data['ca.crt']).toContain('BEGIN CERTIFICATE');
    expect(data['issuer.key']).toContain('PRIVATE KEY');
    expect(data['root.key']).toContain('PRIVATE KEY');
    expect(configMapData(server, NAMESPACE)?.['ca.crt']).toBe(data['ca.crt']);
    await waitUntil(async () => (await healthz(serve.healthzPort)) === 200, '/healthz 200');

    const client = createSentryTestClient({
      address: serve.grpcAddress,
      anchorsPem: data['ca.crt'] as string,
      expectedSpiffeId: SENTRY_ID,
    });
    try {
      const response = await client.sign({
        id: 'orders',
        namespace: 'shop',
        token_validator: 'INSECURE',
        certificate_signing_request: Buffer.from(generateKeyAndCsr('ecdsa-p256').csrPem),
      });
      const leaf = new X509Certificate(response.workload_certificate);
      expect(leaf.subjectAltName).toBe('URI:spiffe://public/ns/shop/orders');
      expect(leaf.verify(new X509Certificate(data['issuer.crt'] as string).publicKey)).toBe(true);
    } finally {
      client.close();
    }
  });

  it('holds the leader Lease under its pod name and publishes the anchors in every namespace', async () => {
    await waitUntil(
      () =>
        (
          server.store.get('leases', NAMESPACE, 'warden-leader') as
            { spec?: { holderIdentity?: string } } | undefined
        )?.spec?.holderIdentity === 'dapr-sentry-0',
      'the lease',
    );
    const anchors = secretData(server, NAMESPACE)['ca.crt'];
    await waitUntil(
      () =>
        ['default', 'kube-system', NAMESPACE].every(
          (ns) => configMapData(server, ns, 'dapr-root-ca.crt')?.['ca.crt'] === anchors,
        ),
      'anchors ConfigMaps',
    );
    expect(await metric(serve.metricsPort, 'warden_leader')).toBe(1);
  });

  it('counts a refused Secret update in warden_trust_reload_failures_total and keeps serving', async () => {
    const other = (await generateTrustMaterial({ trustDomain: 'cluster.local' })).material;
    const good = secretData(server, NAMESPACE)['issuer.key'] as string;
    putSecretKeys(server, NAMESPACE, { 'issuer.key': other.issuerKeyPem });
    await waitUntil(
      async () => (await metric(serve.metricsPort, 'warden_trust_reload_failures_total')) >= 1,
      'the refusal to be counted',
    );
    expect(await healthz(serve.healthzPort)).toBe(200);
    putSecretKeys(server, NAMESPACE, { 'issuer.key': good });
  });

  it('never writes the token to its logs, and releases the Lease on SIGTERM', async () => {
    const exit = await serve.stop('SIGTERM');
    expect(exit.code).toBe(0);
    const lease = server.store.get('leases', NAMESPACE, 'warden-leader') as {
      spec?: { holderIdentity?: string };
    };
    expect(lease.spec?.holderIdentity).toBeUndefined();
    expect(serve.stderr()).not.toContain(token);
    expect(serve.stderr()).not.toContain('PRIVATE KEY');
  });

  it('refuses to start, with a clear message, when the API server is down', async () => {
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
        '--config',
        config,
        '--port',
        '0',
        '--healthz-port',
        '0',
        '--metrics-port',
        '0',
        '--workers',
        '1',
      ],
      { cwd: dir, env: { NAMESPACE } },
    );
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('ERR_TRUST_MATERIAL_IO');
    expect(run.stderr).toContain(`dapr-trust-bundle" in namespace "${NAMESPACE}"`);
    expect(run.stderr).toContain(`${down.url} is unreachable`);
  });
});
