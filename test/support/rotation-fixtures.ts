import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { CaCredential } from '../../src/ca/generate.js';
import type { TrustBundle } from '../../src/ca/trust-bundle.js';
import { mintCertificate } from './pki-fixtures.js';
import { openssl } from './openssl.js';

/**
 * A workload leaf in Warden's SVID profile signed by `bundle`'s issuer, as the signing pool
 * would sign it (that pool is built elsewhere): notBefore = now - skew, notAfter = now + ttl
 * (never past the issuer).
 */
export function signWorkloadLeaf(
  bundle: Pick<TrustBundle, 'issuerChainPem' | 'issuerKeyPem' | 'issuerChain'>,
  spiffeId: string,
  now: Date,
  ttlMs: number,
  skewMs = 15 * 60_000,
): Promise<CaCredential> {
  const issuerNotAfter = Date.parse(bundle.issuerChain[0]?.validTo ?? '');
  return mintCertificate({
    subject: '',
    signer: { certificatePem: bundle.issuerChainPem, privateKeyPem: bundle.issuerKeyPem },
    key: 'ecdsa-p256',
    ca: false,
    notBefore: new Date(now.getTime() - skewMs),
    notAfter: new Date(Math.min(now.getTime() + ttlMs, issuerNotAfter)),
    uris: [spiffeId],
    extKeyUsage: [x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth],
  });
}

export interface VerifyResult {
  readonly ok: boolean;
  readonly output: string;
}

let counter = 0;

/**
 * `openssl verify -x509_strict` of leaf + chain against the anchors, at a chosen instant
 * (-attime), so simulated time can be checked by an implementation that is not ours.
 */
export async function opensslVerifyAt(
  workDir: string,
  anchorsPem: string,
  chainPem: string,
  leafPem: string,
  at: Date,
): Promise<VerifyResult> {
  const n = ++counter;
  const anchors = path.join(workDir, `anchors-${n}.pem`);
  const chain = path.join(workDir, `chain-${n}.pem`);
  const leaf = path.join(workDir, `leaf-${n}.pem`);
  await writeFile(anchors, anchorsPem);
  await writeFile(chain, chainPem);
  await writeFile(leaf, leafPem);
  const result = await openssl([
    'verify',
    '-x509_strict',
    '-attime',
    String(Math.floor(at.getTime() / 1000)),
    '-CAfile',
    anchors,
    '-untrusted',
    chain,
    leaf,
  ]);
  return { ok: result.code === 0, output: `${result.stdout}${result.stderr}` };
}
