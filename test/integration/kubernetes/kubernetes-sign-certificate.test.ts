import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { status as GrpcStatus } from '@grpc/grpc-js';
import { startFileCa, type FileCa } from '../../../src/ca/file-ca.js';
import {
  createSentryServer,
  registerIssuerReadiness,
  type SentryServer,
} from '../../../src/issuer/grpc/sentry-server.js';
import { createSigningPool, type SigningPool } from '../../../src/issuer/signing/signing-pool.js';
import { generateKeyAndCsr } from '../../../src/issuer/sidecar/workload-csr.js';
import {
  createValidatorRegistry,
  type ValidatorRegistry,
} from '../../../src/issuer/validator-registry.js';
import { createKubernetesValidator } from '../../../src/issuer/validators/kubernetes/kubernetes-validator.js';
import { Readiness, startHealthServer } from '../../../src/shared/health-server.js';
import type { HttpListener } from '../../../src/shared/http-listener.js';
import { KubeApiServer } from '../../support/kube-api-server/index.js';
import {
  CA_NAMESPACE,
  CONTROL_PLANE_TRUST_DOMAIN,
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
import { captureLog, type CapturedLog } from '../../support/log-capture.js';
import {
  createSentryTestClient,
  signError,
  type SentryTestClient,
} from '../../support/sentry-proto-client.js';
import { makeTempDir, removeTempDir } from '../../support/temp-dir.js';
import { waitUntil } from '../../support/wait-for.js';

/*
 * SignCertificate end to end in kubernetes mode, as far as this block reaches: the file CA
 * (the Secret-backed trust material is another block), the signing pool, the kubernetes
 * validator against the Kubernetes API test server, the gRPC/TLS edge and /healthz; the
 * client is built only from the .proto and presents a pod's service-account token, as
 * daprd does.
 */

const SENTRY_ID = `spiffe://${CONTROL_PLANE_TRUST_DOMAIN}/ns/${CA_NAMESPACE}/dapr-sentry`;

interface Stack {
  kube: KubeApiServer;
  dir: string;
  ca: FileCa;
  signer: SigningPool;
  validators: ValidatorRegistry;
  grpc: SentryServer;
  health: HttpListener;
  client: SentryTestClient;
  log: CapturedLog;
}

let stack: Stack;
let orders: TestPod;

beforeAll(async () => {
  const log = captureLog();
  const kube = await KubeApiServer.start({ namespaces: ['default', CA_NAMESPACE, 'shop'] });
  const wardenToken = randomToken('warden');
  kube.addToken(wardenToken, { username: WARDEN_USERNAME, rules: VALIDATOR_RULES });
  putConfiguration(kube, 'shop', 'appconfig', { accessControl: { trustDomain: 'example.org' } });
  orders = putPod(kube, {
    namespace: 'shop',
    name: 'orders-5f6c',
    annotations: { 'dapr.io/app-id': 'orders', 'dapr.io/config': 'appconfig' },
  });

  const dir = await makeTempDir('warden-k8s-e2e-');
  const ca = await startFileCa({
    credentialsDir: dir,
    trustDomain: CONTROL_PLANE_TRUST_DOMAIN,
    logger: log.logger,
  });
  const signer = createSigningPool({
    source: ca,
    profile: { ttlMs: 3_600_000, skewMs: 60_000 },
    workers: 1,
    logger: log.logger,
  });
  await signer.ready();
  const validator = createKubernetesValidator({
    kubeConfig: kube.kubeConfig(wardenToken),
    caNamespace: CA_NAMESPACE,
    audience: SENTRY_AUDIENCE,
    controlPlaneTrustDomain: CONTROL_PLANE_TRUST_DOMAIN,
    logger: log.logger,
    maxCacheDisconnectMs: 0,
    reviewPolicy: { deadlineMs: 1_500, attemptTimeoutMs: 600 },
  });
  const validators = createValidatorRegistry([validator], 'kubernetes');
  await validators.startAll();
  await validator.whenSynced();
  const grpc = await createSentryServer({
    signer,
    trustSource: ca,
    validators,
    tls: { trustDomain: CONTROL_PLANE_TRUST_DOMAIN },
    caNamespace: CA_NAMESPACE,
    listenAddress: '127.0.0.1',
    port: 0,
    logger: log.logger,
  });
  const readiness = new Readiness();
  readiness.register('trust-material', () => ca.ready());
  registerIssuerReadiness(readiness, grpc, validators);
  const health = await startHealthServer({ readiness, listenAddress: '127.0.0.1', port: 0 });
  const anchorsPem = await readFile(path.join(dir, 'ca.crt'), 'utf8');
  const client = createSentryTestClient({
    address: `127.0.0.1:${grpc.port}`,
    anchorsPem,
    expectedSpiffeId: SENTRY_ID,
  });
  stack = { kube, dir, ca, signer, validators, grpc, health, client, log };
});

afterAll(async () => {
  stack.kube.clearFaults();
  stack.client.close();
  await stack.grpc.close(0);
  await stack.validators.closeAll();
  await stack.signer.close();
  await stack.health.close();
  await stack.ca.close();
  await stack.kube.close();
  await removeTempDir(stack.dir);
});

function leafOf(pem: Buffer): X509Certificate {
  const first = pem
    .toString('utf8')
    .match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/);
  return new X509Certificate((first as RegExpMatchArray)[0]);
}

function csr(): Buffer {
  return Buffer.from(generateKeyAndCsr('ed25519').csrPem);
}

async function healthz(): Promise<number> {
  return (await fetch(`http://127.0.0.1:${stack.health.port}/healthz`)).status;
}

describe('SignCertificate in kubernetes mode (client from the .proto, token from a pod)', () => {
  it("issues the pod its SPIFFE ID in its Configuration's trust domain, whatever trust_domain it sends", async () => {
    const response = await stack.client.sign({
      id: 'orders',
      namespace: 'shop',
      trust_domain: 'ignored.example',
      token: podToken(stack.kube, orders),
      token_validator: 'KUBERNETES',
      certificate_signing_request: csr(),
    });
    const leaf = leafOf(response.workload_certificate);
    expect(leaf.subjectAltName).toBe('URI:spiffe://example.org/ns/shop/orders');
    expect(await healthz()).toBe(200);
  });

  it('answers a request that names no validator (UNKNOWN) with the kubernetes validator, the mode default', async () => {
    const response = await stack.client.sign({
      id: 'orders',
      namespace: 'shop',
      token: podToken(stack.kube, orders),
      certificate_signing_request: csr(),
    });
    expect(leafOf(response.workload_certificate).subjectAltName).toBe(
      'URI:spiffe://example.org/ns/shop/orders',
    );
  });

  it('gives the sidecar injector its control-plane id and the webhook DNS name', async () => {
    const injector = putPod(stack.kube, {
      namespace: CA_NAMESPACE,
      name: 'dapr-sidecar-injector-6b8d',
      serviceAccount: 'dapr-injector',
      annotations: { 'dapr.io/control-plane': 'injector' },
    });
    const response = await stack.client.sign({
      id: 'dapr-injector',
      namespace: CA_NAMESPACE,
      token: podToken(stack.kube, injector),
      certificate_signing_request: csr(),
    });
    const leaf = leafOf(response.workload_certificate);
    expect(leaf.subjectAltName?.split(', ').sort()).toEqual(
      [
        `DNS:dapr-sidecar-injector.${CA_NAMESPACE}.svc`,
        `URI:spiffe://cluster.local/ns/${CA_NAMESPACE}/dapr-injector`,
      ].sort(),
    );
  });

  it("never issues the CA's own identity, even to a pod annotated as sentry", async () => {
    const impostor = putPod(stack.kube, {
      namespace: CA_NAMESPACE,
      name: 'dapr-sentry-x',
      serviceAccount: 'dapr-sentry',
      annotations: { 'dapr.io/control-plane': 'sentry' },
    });
    const err = await signError(
      stack.client.sign({
        id: 'dapr-sentry',
        namespace: CA_NAMESPACE,
        token: podToken(stack.kube, impostor),
        certificate_signing_request: csr(),
      }),
    );
    expect(err.code).toBe(GrpcStatus.PERMISSION_DENIED);
  });

  it('denies another app id with PERMISSION_DENIED saying why, and without the token', async () => {
    const token = podToken(stack.kube, orders);
    const err = await signError(
      stack.client.sign({
        id: 'payments',
        namespace: 'shop',
        token,
        certificate_signing_request: csr(),
      }),
    );
    expect(err.code).toBe(GrpcStatus.PERMISSION_DENIED);
    expect(err.details).toMatch(/app-id mismatch/);
    expect(err.details).not.toContain(token);
  });

  it('answers UNAVAILABLE, never a certificate, and /healthz 503 while the API server is down', async () => {
    const token = podToken(stack.kube, orders);
    await stack.kube.stop();
    try {
      const err = await signError(
        stack.client.sign({
          id: 'orders',
          namespace: 'shop',
          token,
          certificate_signing_request: csr(),
        }),
      );
      expect(err.code).toBe(GrpcStatus.UNAVAILABLE);
      await waitUntil(async () => (await healthz()) === 503, '/healthz to report not ready');
    } finally {
      await stack.kube.restart();
    }
    await waitUntil(async () => (await healthz()) === 200, '/healthz to recover');
    const response = await stack.client.sign({
      id: 'orders',
      namespace: 'shop',
      token,
      certificate_signing_request: csr(),
    });
    expect(leafOf(response.workload_certificate).subjectAltName).toBe(
      'URI:spiffe://example.org/ns/shop/orders',
    );
  });

  it('keeps every token out of the log', () => {
    const text = stack.log.text();
    for (const token of issuedTokens) expect(text).not.toContain(token);
  });
});
