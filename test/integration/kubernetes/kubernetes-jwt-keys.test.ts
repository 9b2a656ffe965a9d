import { PassThrough } from 'node:stream';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import * as k8s from '@kubernetes/client-node';
import { createLocalJWKSet, jwtVerify, type JSONWebKeySet } from 'jose';
import { startKubernetesCa, type KubernetesCa } from '../../../src/ca/kubernetes/kubernetes-ca.js';
import { KubernetesJwtKeyStore } from '../../../src/ca/kubernetes/kubernetes-jwt-key-store.js';
import { runCli } from '../../../src/cli/run.js';
import { openJwtIssuance, type JwtIssuance } from '../../../src/issuer/jwt/jwt-issuance.js';
import { systemClock } from '../../../src/shared/clock.js';
import { silentLogger } from '../../../src/shared/logger.js';
import { KubeApiServer } from '../../support/kube-api-server/index.js';
import { configMapData, secretData } from '../../support/kube-trust-fixtures.js';
import { makeTempDir, removeTempDir } from '../../support/temp-dir.js';
import { waitFor } from '../../support/wait-for.js';

/*
 * Kubernetes mode with --jwt-enabled, as warden serve wires it: three replicas (a
 * Kubernetes-mode CA each, and JWT issuance over the trust Secret, reloaded by the Secret
 * watch) start together on an empty namespace and must end up with one JWT key.
 */

const CA_NAMESPACE = 'warden-system';
const TTL_MS = 5 * 60_000;
const SKEW_MS = 15 * 60_000;
const SPIFFE_ID = 'spiffe://cluster.local/ns/shop/orders';

interface Replica {
  readonly ca: KubernetesCa;
  readonly jwt: JwtIssuance;
  readonly unsubscribe: () => void;
}

async function startReplica(server: KubeApiServer, identity: string): Promise<Replica> {
  const kubeConfig = server.kubeConfig();
  const ca = await startKubernetesCa({
    kubeConfig,
    namespace: CA_NAMESPACE,
    identity,
    trustDomain: 'cluster.local',
    retry: { baseDelayMs: 20 },
    clock: systemClock,
    logger: silentLogger,
  });
  const jwt = await openJwtIssuance({
    store: new KubernetesJwtKeyStore({
      kubeConfig,
      namespace: CA_NAMESPACE,
      algorithm: 'RS256',
      maxTokenLifetimeMs: TTL_MS + SKEW_MS,
      clock: systemClock,
      retry: { baseDelayMs: 20 },
    }),
    credentialsDir: '/nonexistent',
    keyFilename: 'jwt.key',
    jwksFilename: 'jwks.json',
    algorithm: 'RS256',
    keyId: undefined,
    issuer: undefined,
    ttlMs: TTL_MS,
    skewMs: SKEW_MS,
    clock: systemClock,
    logger: silentLogger,
  });
  const unsubscribe = ca.onSecretChange(() => jwt.reload());
  return { ca, jwt, unsubscribe };
}

function mint(replica: Replica): string {
  return replica.jwt.minter.mint({
    spiffeId: SPIFFE_ID,
    trustDomain: 'cluster.local',
    audiences: [],
    notAfter: new Date(Date.now() + 3_600_000),
  }).jwt;
}

function jwksOf(replica: Replica): JSONWebKeySet {
  return replica.jwt.keys.current().publishedJwks as unknown as JSONWebKeySet;
}

const kidsOf = (jwks: { keys: readonly { kid?: string }[] }): string[] =>
  jwks.keys.map((k) => k.kid ?? '').sort();

describe('JWT keys in the trust Secret (kubernetes mode, --jwt-enabled)', () => {
  let server: KubeApiServer;
  let replicas: Replica[] = [];
  let dir: string;

  beforeAll(async () => {
    server = await KubeApiServer.start({ bookmarkIntervalMs: 200 });
    await server
      .kubeConfig()
      .makeApiClient(k8s.CoreV1Api)
      .createNamespace({ body: { metadata: { name: CA_NAMESPACE } } });
    dir = await makeTempDir();
  });
  afterAll(async () => {
    for (const r of replicas) r.unsubscribe();
    await Promise.all(replicas.map((r) => r.ca.close()));
    await server.close();
    await removeTempDir(dir);
  });

  it('three replicas starting together agree on one kid, stored once in the Secret', async () => {
    replicas = await Promise.all(
      ['warden-0', 'warden-1', 'warden-2'].map((id) => startReplica(server, id)),
    );
    const kids = new Set(replicas.map((r) => r.jwt.keys.current().signingKey.kid));
    expect(kids.size).toBe(1);
    const data = secretData(server, CA_NAMESPACE);
    expect(data['jwt.key']).toContain('BEGIN PRIVATE KEY');
    expect(kidsOf(JSON.parse(data['jwks.json'] as string) as { keys: { kid: string }[] })).toEqual(
      [...kids],
    );
    expect(JSON.parse(data['jwt-rotation.json'] as string)).toBeTruthy();
    // The ConfigMap mirrors jwks.json (the Secret watch publishes it), never the private key.
    await waitFor(
      () => (configMapData(server, CA_NAMESPACE)?.['jwks.json'] === data['jwks.json'] ? true : undefined),
      10_000,
      'jwks.json in the ConfigMap',
    );
    expect(configMapData(server, CA_NAMESPACE)?.['jwt.key']).toBeUndefined();
  });

  it('a token minted by one replica verifies (jose) against the JWKS of another and of the ConfigMap', async () => {
    const [a, b, c] = replicas as [Replica, Replica, Replica];
    const token = mint(a);
    for (const jwks of [
      jwksOf(b),
      jwksOf(c),
      JSON.parse(configMapData(server, CA_NAMESPACE)?.['jwks.json'] as string) as JSONWebKeySet,
    ]) {
      const { payload } = await jwtVerify(token, createLocalJWKSet(jwks), {
        audience: 'cluster.local',
      });
      expect(payload.sub).toBe(SPIFFE_ID);
    }
  });

  it('warden rotate --mode kubernetes rotates the JWT key in the Secret; every replica follows through its watch', async () => {
    const kubeconfig = path.join(dir, 'kubeconfig.yaml');
    await writeFile(kubeconfig, server.kubeconfigYaml(), { mode: 0o600 });
    const cli = async (...argv: string[]): Promise<{ code: number; stdout: string }> => {
      const stdout = new PassThrough();
      let out = '';
      stdout.on('data', (d: Buffer) => (out += d.toString()));
      const code = await runCli(
        [...argv, '--mode', 'kubernetes', '--kubeconfig', kubeconfig],
        { stdout, stderr: new PassThrough(), env: { NAMESPACE: CA_NAMESPACE } },
      );
      return { code, stdout: out };
    };
    const first = replicas[0]?.jwt.keys.current().signingKey.kid as string;
    const token = mint(replicas[1] as Replica);

    const prepared = await cli('rotate', 'prepare');
    expect(prepared.code).toBe(0);
    expect(prepared.stdout).toContain('JWT key: published the next JWT key');
    const next = (await waitFor(() => {
      const published = kidsOf(jwksOf(replicas[2] as Replica));
      return published.length === 2 ? published.find((k) => k !== first) : undefined;
    }, 10_000, 'the next JWT key at every replica')) as string;
    for (const r of replicas) expect(kidsOf(jwksOf(r))).toEqual([first, next].sort());

    expect((await cli('rotate', 'activate', '--force')).code).toBe(0);
    await waitFor(
      () =>
        replicas.every((r) => r.jwt.keys.current().signingKey.kid === next) ? true : undefined,
      10_000,
      'every replica signing with the next JWT key',
    );
    // The old key stays published: a token it signed still verifies at every replica.
    for (const r of replicas)
      await expect(
        jwtVerify(token, createLocalJWKSet(jwksOf(r)), { audience: 'cluster.local' }),
      ).resolves.toBeTruthy();
    const status = await cli('rotate', 'status');
    expect(status.stdout).toContain(`JWT key: ${next} (RS256) signs`);
    expect(status.stdout).toContain(`previous key: ${first}`);
    await waitFor(
      () =>
        kidsOf(JSON.parse(configMapData(server, CA_NAMESPACE)?.['jwks.json'] ?? '{"keys":[]}') as {
          keys: { kid: string }[];
        }).join() === [first, next].sort().join()
          ? true
          : undefined,
      10_000,
      'the ConfigMap publishing both JWT keys',
    );
  });
});
