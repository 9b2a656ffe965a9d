import { X509Certificate } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import * as k8s from '@kubernetes/client-node';
import { startKubernetesCa, type KubernetesCa } from '../../../src/ca/kubernetes/kubernetes-ca.js';
import { runCli } from '../../../src/cli/run.js';
import { systemClock } from '../../../src/shared/clock.js';
import { silentLogger } from '../../../src/shared/logger.js';
import { KubeApiServer } from '../../support/kube-api-server/index.js';
import { configMapData, secretData } from '../../support/kube-trust-fixtures.js';
import { makeTempDir, removeTempDir } from '../../support/temp-dir.js';
import { waitFor } from '../../support/wait-for.js';

/*
 * `warden rotate prepare|activate|retire|status` and `warden status` with --mode kubernetes,
 * run in-process through runCli against the Kubernetes API test server (a kubeconfig file, env
 * NAMESPACE, as an operator runs them), on the Secret a running Kubernetes-mode CA created;
 * that CA picks every step up through its Secret watch.
 */

const CA_NAMESPACE = 'warden-system';

interface CliResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

const fingerprints = (pem: string): string[] =>
  (pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----\n?/g) ?? []).map(
    (block) => new X509Certificate(block).fingerprint256,
  );

describe('warden rotate and warden status in kubernetes mode', () => {
  let server: KubeApiServer;
  let dir: string;
  let kubeconfig: string;
  let ca: KubernetesCa;

  /** `warden <command> --mode kubernetes --kubeconfig FILE <flags>` (later flags win). */
  async function cli(command: string, ...flags: string[]): Promise<CliResult> {
    const stdout = new PassThrough();
    const stderr = new PassThrough();
    let out = '';
    let err = '';
    stdout.on('data', (d: Buffer) => (out += d.toString()));
    stderr.on('data', (d: Buffer) => (err += d.toString()));
    const code = await runCli(
      [...command.split(' '), '--mode', 'kubernetes', '--kubeconfig', kubeconfig, ...flags],
      {
        stdout,
        stderr,
        env: { NAMESPACE: CA_NAMESPACE },
      },
    );
    return { code, stdout: out, stderr: err };
  }

  const secretAnchors = (): string[] =>
    fingerprints(secretData(server, CA_NAMESPACE)['ca.crt'] ?? '');

  async function caReaches(generation: number, anchors: string[]): Promise<void> {
    await waitFor(
      () =>
        ca.current().generation === generation &&
        JSON.stringify(fingerprints(ca.current().anchorsPem)) === JSON.stringify(anchors)
          ? true
          : undefined,
      10_000,
      `the running CA at generation ${generation}`,
    );
  }

  beforeAll(async () => {
    server = await KubeApiServer.start({ bookmarkIntervalMs: 200 });
    await server
      .kubeConfig()
      .makeApiClient(k8s.CoreV1Api)
      .createNamespace({ body: { metadata: { name: CA_NAMESPACE } } });
    dir = await makeTempDir();
    kubeconfig = path.join(dir, 'kubeconfig.yaml');
    await writeFile(kubeconfig, server.kubeconfigYaml(), { mode: 0o600 });
    ca = await startKubernetesCa({
      kubeConfig: server.kubeConfig(),
      namespace: CA_NAMESPACE,
      identity: 'warden-0',
      trustDomain: 'cluster.local',
      retry: { baseDelayMs: 20 },
      clock: systemClock,
      logger: silentLogger,
    });
    await waitFor(() => (ca.ready() ? true : undefined), 10_000, 'the CA ready');
  });
  afterAll(async () => {
    await ca?.close();
    await server?.close();
    await removeTempDir(dir);
  });

  it('prepares, activates and retires on the trust Secret; the running CA follows each step', async () => {
    const firstRoot = secretAnchors();
    expect(firstRoot).toHaveLength(1);
    const firstIssuer = secretData(server, CA_NAMESPACE)['issuer.crt'];
    expect(ca.current().generation).toBe(1);

    const idle = await cli('rotate status');
    expect(idle).toMatchObject({ code: 0, stderr: '' });
    expect(idle.stdout).toContain('Rotation phase: idle');
    expect(idle.stdout).toContain('root key: held by Warden');

    const prepared = await cli('rotate prepare');
    expect(prepared).toMatchObject({ code: 0, stderr: '' });
    expect(prepared.stdout).toContain('prepared: the next root');
    const both = secretAnchors();
    expect(both).toHaveLength(2);
    expect(both[0]).toBe(firstRoot[0]);
    await caReaches(2, both);
    // The ConfigMap follows the Secret.
    expect(fingerprints(configMapData(server, CA_NAMESPACE)?.['ca.crt'] ?? '')).toEqual(both);

    const status = await cli('status');
    expect(status.code).toBe(0);
    expect(status.stdout).toContain(`Secret "dapr-trust-bundle" in namespace "${CA_NAMESPACE}"`);
    expect(status.stdout).toContain('Rotation phase: prepared');
    expect(status.stdout).toContain('Trust anchor 2 of 2');
    const statusJson = JSON.parse((await cli('status', '--output', 'json')).stdout) as {
      namespace: string;
      secret: string;
      rotation: { phase: string };
    };
    expect(statusJson).toMatchObject({
      namespace: CA_NAMESPACE,
      secret: 'dapr-trust-bundle',
      rotation: { phase: 'prepared' },
    });

    // Same refusal as with files: exit 4 with the time it becomes allowed; nothing changes.
    const early = await cli('rotate activate');
    expect(early.code).toBe(4);
    expect(early.stderr).toMatch(/activate refused: .*allowed from \d{4}-/);
    expect(secretData(server, CA_NAMESPACE)['issuer.crt']).toBe(firstIssuer);

    const activated = await cli('rotate activate', '--force');
    expect(activated).toMatchObject({ code: 0, stderr: '' });
    const newIssuer = secretData(server, CA_NAMESPACE)['issuer.crt'] as string;
    expect(newIssuer).not.toBe(firstIssuer);
    await caReaches(3, both);
    expect(ca.current().issuerChainPem).toBe(newIssuer);
    expect((await cli('rotate status')).stdout).toContain('Rotation phase: activated');

    const early2 = await cli('rotate retire');
    expect(early2.code).toBe(4);
    expect(secretAnchors()).toEqual(both);

    const retired = await cli('rotate retire', '--force');
    expect(retired).toMatchObject({ code: 0, stderr: '' });
    expect(secretAnchors()).toEqual([both[1]]);
    await caReaches(4, [both[1] as string]);
    expect((await cli('rotate status')).stdout).toContain('Rotation phase: idle');
  });

  it('refuses an unknown --mode and names a missing Secret', async () => {
    const bad = await cli('rotate status', '--mode', 'cluster');
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('flag -mode: "cluster" is not standalone or kubernetes');
    const missing = await cli('status', '--trust-bundle-name', 'no-such-bundle');
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('no trust material in Kubernetes Secret "no-such-bundle"');
  });
});
