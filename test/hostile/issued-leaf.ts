import 'reflect-metadata';
import { webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';
import type { WireSignResponse } from '../support/sentry-proto-client.js';

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

/** The only extensions a Warden leaf carries (rules 5-8, 15). */
const LEAF_EXTENSIONS = [
  '2.5.29.14', // subjectKeyIdentifier
  '2.5.29.15', // keyUsage
  '2.5.29.17', // subjectAltName
  '2.5.29.19', // basicConstraints
  '2.5.29.35', // authorityKeyIdentifier
  '2.5.29.37', // extKeyUsage
].sort();

/**
 * The DER of a CSR PEM read the way RFC 7468's lax grammar (and Go's pem.Decode) reads it:
 * whitespace inside the base64 ignored. Null when there is no CERTIFICATE REQUEST block.
 */
export function laxCsrDer(pem: string): Buffer | null {
  const match =
    /-----BEGIN CERTIFICATE REQUEST-----([\s\S]*?)-----END CERTIFICATE REQUEST-----/.exec(pem);
  return match ? Buffer.from((match[1] as string).replace(/\s+/g, ''), 'base64') : null;
}

export interface DecidedIdentity {
  readonly spiffeId: string;
  readonly dnsNames: readonly string[];
  /** The CSR that was sent: the leaf must carry its public key and nothing else from it. */
  readonly csrPem: string;
  readonly anchorsPem: string;
}

function certificatesIn(pem: string): x509.X509Certificate[] {
  return (pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? []).map(
    (block) => new x509.X509Certificate(block),
  );
}

/**
 * Returns the problems with an issued chain (empty when none): the leaf must carry exactly the
 * decided SPIFFE ID and DNS names, an empty subject, only Warden's extensions, cA false, the
 * CSR's public key, and chain to the anchors. Parsed with @peculiar/x509, not Warden's code.
 */
export async function leafProblems(
  response: WireSignResponse,
  expected: DecidedIdentity,
): Promise<string[]> {
  const problems: string[] = [];
  const chain = certificatesIn(response.workload_certificate.toString('utf8'));
  const [leaf, issuer] = chain;
  if (!leaf || !issuer) return [`expected leaf and issuer, got ${chain.length} certificates`];
  const san = leaf.getExtension(x509.SubjectAlternativeNameExtension);
  const names = san?.names.toJSON() ?? [];
  const uris = names.filter((n) => n.type === 'url').map((n) => n.value);
  const dns = names.filter((n) => n.type === 'dns').map((n) => n.value);
  const others = names.filter((n) => n.type !== 'url' && n.type !== 'dns');
  if (JSON.stringify(uris) !== JSON.stringify([expected.spiffeId]))
    problems.push(`URI SANs ${JSON.stringify(uris)}, expected only ${expected.spiffeId}`);
  if (JSON.stringify([...dns].sort()) !== JSON.stringify([...expected.dnsNames].sort()))
    problems.push(`DNS SANs ${JSON.stringify(dns)}, expected ${JSON.stringify(expected.dnsNames)}`);
  if (others.length > 0) problems.push(`other SANs ${JSON.stringify(others)}`);
  if (leaf.subject !== '') problems.push(`subject "${leaf.subject}" is not empty`);
  const oids = leaf.extensions.map((e) => e.type).sort();
  if (JSON.stringify(oids) !== JSON.stringify(LEAF_EXTENSIONS))
    problems.push(`extensions ${JSON.stringify(oids)}`);
  const basic = leaf.getExtension(x509.BasicConstraintsExtension);
  if (!basic || basic.ca) problems.push('basicConstraints missing or cA true');
  const usage = leaf.getExtension(x509.KeyUsagesExtension);
  if (
    !usage ||
    (usage.usages & (x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign)) !== 0
  )
    problems.push('keyUsage missing or allows certificate signing');
  const eku = leaf.getExtension(x509.ExtendedKeyUsageExtension);
  const ekuList = (eku?.usages ?? []).map(String).sort();
  if (JSON.stringify(ekuList) !== JSON.stringify(['1.3.6.1.5.5.7.3.1', '1.3.6.1.5.5.7.3.2']))
    problems.push(`extKeyUsage ${JSON.stringify(ekuList)}`);
  const csrDer = laxCsrDer(expected.csrPem);
  if (!csrDer) return [...problems, 'the request carried no CERTIFICATE REQUEST block'];
  const csr = new x509.Pkcs10CertificateRequest(csrDer);
  if (!Buffer.from(leaf.publicKey.rawData).equals(Buffer.from(csr.publicKey.rawData)))
    problems.push("the leaf's public key is not the CSR's");
  if (!(await leaf.verify({ publicKey: issuer.publicKey, signatureOnly: true })))
    problems.push('the leaf does not verify under the issuer');
  const anchors = certificatesIn(expected.anchorsPem);
  let anchored = false;
  for (const anchor of anchors) {
    if (await issuer.verify({ publicKey: anchor.publicKey, signatureOnly: true })) anchored = true;
  }
  if (!anchored) problems.push('the issuer does not verify under any anchor');
  if (leaf.notAfter.getTime() > issuer.notAfter.getTime())
    problems.push('the leaf outlives its issuer');
  return problems;
}
