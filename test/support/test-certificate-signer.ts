import 'reflect-metadata';
import { randomBytes, webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';
import type { TrustBundle, TrustSource } from '../../src/ca/trust-bundle.js';
import type {
  CertificateSigner,
  IssuedCertificate,
  WorkloadCertificateRequest,
} from '../../src/issuer/certificate-signer.js';
import type { Clock } from '../../src/shared/clock.js';
import { WardenError } from '../../src/shared/errors.js';
import { EC_P256 } from './test-pki.js';

/**
 * A CertificateSigner test double built on @peculiar/x509: it signs with whatever the trust
 * source currently holds, so the edge can be tested before (and independently of) the real
 * signing path. It verifies the CSR signature and takes only its public key.
 */
export interface TestSignerOptions {
  readonly trustSource: TrustSource;
  readonly clock: Clock;
  readonly ttlMs?: number;
  readonly skewMs?: number;
}

export class TestCertificateSigner implements CertificateSigner {
  readonly requests: WorkloadCertificateRequest[] = [];
  /** When set, sign() rejects with this value (after recording the request). */
  failWith: unknown = undefined;
  /** When set, sign() waits for this promise before answering (in-flight tests). */
  gate: Promise<void> | null = null;
  /** Resolves each time sign() is entered (lets a test wait until a call is in flight). */
  onEnter: (() => void) | null = null;
  readonly #options: TestSignerOptions;

  constructor(options: TestSignerOptions) {
    this.#options = options;
  }

  async sign(request: WorkloadCertificateRequest): Promise<IssuedCertificate> {
    this.requests.push(request);
    this.onEnter?.();
    if (this.gate) await this.gate;
    if (this.failWith !== undefined) throw this.failWith;
    const bundle: TrustBundle = this.#options.trustSource.current();
    let csr: x509.Pkcs10CertificateRequest;
    try {
      csr = new x509.Pkcs10CertificateRequest(Buffer.from(request.csrPem).toString('utf8'));
    } catch (err) {
      throw new WardenError('ERR_CSR_INVALID', 'the CSR is not a PEM certificate request', {
        cause: err,
      });
    }
    if (!(await csr.verify()))
      throw new WardenError('ERR_CSR_SIGNATURE', 'the CSR signature does not verify');
    const issuerCert = new x509.X509Certificate(bundle.issuerChainPem);
    const signingKey = await webcrypto.subtle.importKey(
      'pkcs8',
      bundle.issuerKey.export({ format: 'der', type: 'pkcs8' }),
      EC_P256,
      false,
      ['sign'],
    );
    const now = this.#options.clock.now().getTime();
    const notBefore = new Date(now - (this.#options.skewMs ?? 15 * 60_000));
    const notAfter = new Date(now + (this.#options.ttlMs ?? 24 * 3_600_000));
    const serial = randomBytes(16);
    serial[0] = (serial[0] as number) & 0x7f;
    const leaf = await x509.X509CertificateGenerator.create({
      serialNumber: serial.toString('hex'),
      issuer: issuerCert.subject,
      notBefore,
      notAfter,
      signingAlgorithm: EC_P256,
      publicKey: csr.publicKey,
      signingKey,
      extensions: [
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
        new x509.ExtendedKeyUsageExtension([
          x509.ExtendedKeyUsage.serverAuth,
          x509.ExtendedKeyUsage.clientAuth,
        ]),
        new x509.SubjectAlternativeNameExtension(
          [
            { type: 'url', value: request.spiffeId },
            ...request.dnsNames.map((value) => ({ type: 'dns' as const, value })),
          ],
          true,
        ),
      ],
    });
    return {
      certificateChainPem: `${leaf.toString('pem')}\n${bundle.issuerChainPem.trim()}\n`,
      trustAnchorsPem: bundle.anchors.map((a) => a.toString()),
      notBefore: leaf.notBefore,
      notAfter: leaf.notAfter,
      serialHex: leaf.serialNumber.toLowerCase(),
      generation: bundle.generation,
    };
  }

  async close(): Promise<void> {}
}
