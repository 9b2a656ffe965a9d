import 'reflect-metadata';
import { describe, expect, it } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { generateKeyPairSync, X509Certificate } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as x509 from '@peculiar/x509';
import { buildServingCsrPem } from '../../../src/issuer/grpc/serving-csr.js';
import {
  sentryDnsNames,
  sentrySpiffeId,
  servingRenewalTime,
  ServingCertificate,
} from '../../../src/issuer/grpc/serving-certificate.js';
import { createSentryMetrics } from '../../../src/issuer/metrics.js';
import { ManualClock } from '../../../src/shared/clock.js';
import { silentLogger } from '../../../src/shared/logger.js';
import { MutableTrustSource } from '../../support/mutable-trust-source.js';
import { TestCertificateSigner } from '../../support/test-certificate-signer.js';
import { createTestIssuer, createTestRoot, trustBundleOf } from '../../support/test-pki.js';

const HOUR = 3_600_000;

async function setup() {
  const clock = new ManualClock(Date.now());
  const root = await createTestRoot();
  const trust = new MutableTrustSource(await trustBundleOf(root, await createTestIssuer(root), 1));
  const signer = new TestCertificateSigner({
    trustSource: trust,
    clock,
    ttlMs: 24 * HOUR,
    skewMs: 15 * 60_000,
  });
  const metrics = createSentryMetrics();
  const serving = new ServingCertificate({
    signer,
    trustSource: trust,
    trustDomain: 'localhost',
    namespace: 'warden',
    clock,
    logger: silentLogger,
    metrics,
    checkIntervalMs: 3_600_000,
  });
  return { clock, root, trust, signer, metrics, serving };
}

describe('serving certificate', () => {
  it('asks the signer for the CA SPIFFE ID and the four DNS names, with a fresh CSR', async () => {
    const { serving, signer } = await setup();
    await serving.start();
    serving.stop();
    const request = signer.requests[0]!;
    expect(request.spiffeId).toBe('spiffe://localhost/ns/warden/dapr-sentry');
    expect(request.dnsNames).toEqual([
      'localhost',
      'dapr-sentry',
      'dapr-sentry.warden.svc',
      'dapr-sentry.warden.svc.cluster.local',
    ]);
    const csr = new x509.Pkcs10CertificateRequest(Buffer.from(request.csrPem).toString('ascii'));
    expect(await csr.verify()).toBe(true);
  });

  it('renews at half its lifetime by the injected clock, not before', async () => {
    const { serving, clock, signer } = await setup();
    const first = await serving.start();
    serving.stop();
    const due = servingRenewalTime(first);
    expect(due.getTime()).toBe(
      first.notBefore.getTime() + (first.notAfter.getTime() - first.notBefore.getTime()) / 2,
    );

    clock.set(due.getTime() - 1000);
    expect(await serving.renewIfDue()).toBe(false);
    expect(signer.requests).toHaveLength(1);
    clock.set(due.getTime());
    expect(await serving.renewIfDue()).toBe(true);
    const second = serving.current()!;
    expect(second.serialHex).not.toBe(first.serialHex);
    expect(second.privateKeyPem).not.toBe(first.privateKeyPem); // a new key every time
  });

  it('renews when the trust material changes, and tells its listeners', async () => {
    const { serving, trust, root } = await setup();
    await serving.start();
    const seen: number[] = [];
    serving.onChange((m) => seen.push(m.generation));
    trust.replace(await trustBundleOf(root, await createTestIssuer(root), 2));
    for (let i = 0; i < 100 && seen.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
    serving.stop();
    expect(seen).toEqual([2]);
    expect(serving.current()!.generation).toBe(2);
    expect(trust.listenerCount()).toBe(0); // stop() unsubscribes
  });

  it('keeps the current certificate and counts the failure when renewal fails', async () => {
    const { serving, signer, metrics } = await setup();
    const first = await serving.start();
    serving.stop();
    signer.failWith = new Error('issuer unavailable');
    expect(await serving.renew('test')).toBe(false);
    expect(serving.current()).toBe(first);
    expect(await metrics.registry.metrics()).toContain(
      'dapr_sentry_servercert_issue_failed_total 1',
    );
  });

  it('refuses to start without a certificate', async () => {
    const { serving, signer } = await setup();
    signer.failWith = new Error('no issuer');
    await expect(serving.start()).rejects.toThrow(/cannot issue the gRPC serving certificate/);
  });

  it('runs one more issuance when asked again during one (a trust change is never lost)', async () => {
    const { serving, signer } = await setup();
    await serving.start();
    serving.stop();
    let release!: () => void;
    signer.gate = new Promise<void>((r) => (release = r));
    const a = serving.renew('one');
    const b = serving.renew('two');
    const c = serving.renew('three');
    release();
    await Promise.all([a, b, c]);
    signer.gate = null;
    expect(signer.requests).toHaveLength(3); // start + the running one + exactly one more
  });

  it('builds its names from validated parts', () => {
    expect(sentrySpiffeId('cluster.local', 'dapr-system')).toBe(
      'spiffe://cluster.local/ns/dapr-system/dapr-sentry',
    );
    expect(() => sentrySpiffeId('cluster.local', 'a/b')).toThrow();
    expect(sentryDnsNames('x')).toContain('dapr-sentry.x.svc.cluster.local');
  });
});

describe('serving CSR builder', () => {
  it('makes a PKCS#10 request that @peculiar/x509 and openssl both verify', async () => {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    const pem = buildServingCsrPem(privateKey);
    const csr = new x509.Pkcs10CertificateRequest(pem);
    expect(await csr.verify()).toBe(true);
    expect(csr.subject).toBe('');
    expect(
      Buffer.from(csr.publicKey.rawData).equals(publicKey.export({ format: 'der', type: 'spki' })),
    ).toBe(true);

    const dir = mkdtempSync(path.join(tmpdir(), 'warden-csr-'));
    try {
      writeFileSync(path.join(dir, 'req.pem'), pem);
      const out = execFileSync(
        'openssl',
        ['req', '-in', path.join(dir, 'req.pem'), '-verify', '-noout'],
        { stdio: 'pipe' },
      );
      expect(out.toString()).toBe('');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses keys other than an EC P-256 private key', () => {
    expect(() => buildServingCsrPem(generateKeyPairSync('ed25519').privateKey)).toThrow(TypeError);
    expect(() =>
      buildServingCsrPem(generateKeyPairSync('ec', { namedCurve: 'secp384r1' }).privateKey),
    ).toThrow(TypeError);
    expect(() =>
      buildServingCsrPem(generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).publicKey),
    ).toThrow(TypeError);
  });

  it('the issued serving chain pairs with its key (TLS would accept it)', async () => {
    const { serving } = await setup();
    const material = await serving.start();
    serving.stop();
    const leaf = new X509Certificate(material.certificateChainPem);
    expect(
      leaf.checkPrivateKey((await import('node:crypto')).createPrivateKey(material.privateKeyPem)),
    ).toBe(true);
  });
});
