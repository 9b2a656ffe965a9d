import {
  bitStringContent,
  contentOf,
  contextConstructedTag,
  DerCursor,
  DerTag,
  oidContent,
  readSingleElement,
  smallInteger,
  type DerElement,
} from '../shared/der.js';

/**
 * The two extensions a CA certificate's checks need and Node's X509Certificate does not
 * expose: keyUsage and basicConstraints' pathLenConstraint (RFC 5280 §4.2.1.3, §4.2.1.9).
 *
 * Read with the strict DER reader rather than @peculiar/x509, whose object model, ASN.1
 * schemas and reflect-metadata cost ≈ 150 ms of CPU to load (issue 7: cold start); the
 * certificate has already been parsed by OpenSSL (X509Certificate) when this runs.
 */

/** keyUsage bits as flags, bit 0 (digitalSignature) = 1 … bit 8 (decipherOnly) = 256. */
export const KeyUsageFlag = {
  digitalSignature: 1,
  nonRepudiation: 2,
  keyEncipherment: 4,
  dataEncipherment: 8,
  keyAgreement: 16,
  keyCertSign: 32,
  cRLSign: 64,
  encipherOnly: 128,
  decipherOnly: 256,
} as const;

export interface CaExtensions {
  /** keyUsage as KeyUsageFlag bits; null when absent; 'unreadable' when malformed. */
  readonly keyUsage: number | null | 'unreadable';
  /** basicConstraints pathLenConstraint; undefined when absent or unreadable. */
  readonly pathLength: number | undefined;
}

const OID_KEY_USAGE = '551d0f';
const OID_BASIC_CONSTRAINTS = '551d13';

/** The extnValue OCTET STRING of the first extension with each OID (certificate order). */
function findExtensions(der: Uint8Array): Map<string, Uint8Array> {
  const found = new Map<string, Uint8Array>();
  const top = readSingleElement(der, DerTag.SEQUENCE, 'Certificate');
  const certificate = DerCursor.inside(der, top);
  const tbs = certificate.enter(
    certificate.next('tbsCertificate', DerTag.SEQUENCE),
    'tbsCertificate',
  );
  tbs.optional(contextConstructedTag(0)); // version
  tbs.next('serialNumber', DerTag.INTEGER);
  tbs.next('signature', DerTag.SEQUENCE);
  tbs.next('issuer', DerTag.SEQUENCE);
  tbs.next('validity', DerTag.SEQUENCE);
  tbs.next('subject', DerTag.SEQUENCE);
  tbs.next('subjectPublicKeyInfo', DerTag.SEQUENCE);
  tbs.optional(0x81); // issuerUniqueID
  tbs.optional(0x82); // subjectUniqueID
  const extensions: DerElement | undefined = tbs.optional(contextConstructedTag(3));
  if (!extensions) return found;
  const wrapper = tbs.enter(extensions, 'extensions');
  const list = wrapper.enter(wrapper.next('extensions', DerTag.SEQUENCE), 'extensions');
  while (list.hasMore) {
    const extension = list.enter(list.next('extension', DerTag.SEQUENCE), 'extension');
    const oid = Buffer.from(
      oidContent(der, extension.next('extnID', DerTag.OID), 'extnID'),
    ).toString('hex');
    extension.optional(DerTag.BOOLEAN); // critical
    const value = extension.next('extnValue', DerTag.OCTET_STRING);
    extension.finish('extension');
    if (!found.has(oid)) found.set(oid, contentOf(der, value));
  }
  return found;
}

function keyUsageFlags(value: Uint8Array): number {
  const element = readSingleElement(value, DerTag.BIT_STRING, 'keyUsage');
  const { bytes } = bitStringContent(value, element, 'keyUsage');
  let flags = 0;
  for (let bit = 0; bit < 9 && bit < bytes.length * 8; bit++) {
    if (((bytes[bit >> 3] as number) & (0x80 >> (bit & 7))) !== 0) flags |= 1 << bit;
  }
  return flags;
}

function pathLengthOf(value: Uint8Array): number | undefined {
  const element = readSingleElement(value, DerTag.SEQUENCE, 'basicConstraints');
  const constraints = DerCursor.inside(value, element);
  constraints.optional(DerTag.BOOLEAN); // cA
  const pathLength = constraints.optional(DerTag.INTEGER);
  constraints.finish('basicConstraints');
  return pathLength ? smallInteger(value, pathLength, 'pathLenConstraint') : undefined;
}

/** Reads keyUsage and pathLenConstraint from a certificate's DER; never throws. */
export function readCaExtensions(der: Uint8Array): CaExtensions {
  let extensions: Map<string, Uint8Array>;
  try {
    extensions = findExtensions(der);
  } catch {
    return { keyUsage: 'unreadable', pathLength: undefined };
  }
  let keyUsage: CaExtensions['keyUsage'] = null;
  const usage = extensions.get(OID_KEY_USAGE);
  if (usage) {
    try {
      keyUsage = keyUsageFlags(usage);
    } catch {
      keyUsage = 'unreadable';
    }
  }
  let pathLength: number | undefined;
  const constraints = extensions.get(OID_BASIC_CONSTRAINTS);
  if (constraints) {
    try {
      pathLength = pathLengthOf(constraints);
    } catch {
      pathLength = undefined;
    }
  }
  return { keyUsage, pathLength };
}
