import { createHash, type X509Certificate } from 'node:crypto';
import {
  bitStringContent,
  contentOf,
  contextConstructedTag,
  DerCursor,
  DerError,
  DerTag,
  encodingOf,
  oidContent,
  readSingleElement,
  timeValue,
} from '../../shared/der.js';
import { WardenError } from '../../shared/errors.js';

/** The fields of a CA certificate the leaf template is built from. */
export interface IssuerCertificateFields {
  /** The subject Name exactly as encoded: becomes every leaf's issuer Name. */
  readonly subjectDer: Buffer;
  readonly notBeforeMs: number;
  readonly notAfterMs: number;
  /** The SubjectKeyIdentifier extension's key id, or SHA-1 of the key bits when absent. */
  readonly keyIdentifier: Buffer;
  readonly hasSubjectKeyIdentifier: boolean;
}

const OID_SUBJECT_KEY_IDENTIFIER = '551d0e';

/**
 * Reads what the template needs from a CA certificate's DER. The certificate comes from the
 * CA's validated trust material, so a failure here is a trust-material problem, not a
 * request problem.
 */
export function readIssuerCertificate(
  cert: X509Certificate,
  what = 'issuer certificate',
): IssuerCertificateFields {
  const der = cert.raw;
  try {
    const top = readSingleElement(der, DerTag.SEQUENCE, 'Certificate');
    const certCursor = DerCursor.inside(der, top);
    const tbsElement = certCursor.next('tbsCertificate', DerTag.SEQUENCE);
    const tbs = certCursor.enter(tbsElement, 'tbsCertificate');
    tbs.optional(contextConstructedTag(0)); // version
    tbs.next('serialNumber', DerTag.INTEGER);
    tbs.next('signature', DerTag.SEQUENCE);
    tbs.next('issuer', DerTag.SEQUENCE);
    const validityElement = tbs.next('validity', DerTag.SEQUENCE);
    const subjectElement = tbs.next('subject', DerTag.SEQUENCE);
    const spkiElement = tbs.next('subjectPublicKeyInfo', DerTag.SEQUENCE);
    tbs.optional(0x81); // issuerUniqueID
    tbs.optional(0x82); // subjectUniqueID
    const extensionsElement = tbs.optional(contextConstructedTag(3));
    tbs.finish('tbsCertificate');

    const validity = tbs.enter(validityElement, 'validity');
    const notBeforeMs = timeValue(der, validity.next('notBefore'), 'notBefore');
    const notAfterMs = timeValue(der, validity.next('notAfter'), 'notAfter');
    validity.finish('validity');

    let keyIdentifier: Buffer | undefined;
    if (extensionsElement) {
      const wrapper = tbs.enter(extensionsElement, 'extensions');
      const list = wrapper.enter(wrapper.next('extensions', DerTag.SEQUENCE), 'extensions');
      while (list.hasMore) {
        const ext = list.enter(list.next('extension', DerTag.SEQUENCE), 'extension');
        const oid = Buffer.from(oidContent(der, ext.next('extnID', DerTag.OID), 'extnID')).toString(
          'hex',
        );
        ext.optional(DerTag.BOOLEAN);
        const value = ext.next('extnValue', DerTag.OCTET_STRING);
        ext.finish('extension');
        if (oid === OID_SUBJECT_KEY_IDENTIFIER) {
          const inner = readSingleElement(
            contentOf(der, value),
            DerTag.OCTET_STRING,
            'SubjectKeyIdentifier',
          );
          const id = contentOf(contentOf(der, value), inner);
          if (id.length === 0) throw new DerError('SubjectKeyIdentifier is empty', value.start);
          keyIdentifier = Buffer.from(id);
        }
      }
    }
    const hasSubjectKeyIdentifier = keyIdentifier !== undefined;
    if (!keyIdentifier) {
      // RFC 5280 §4.2.1.2 method (1), what Go and OpenSSL compute: SHA-1 of the key bits.
      const spki = tbs.enter(spkiElement, 'subjectPublicKeyInfo');
      spki.next('algorithm', DerTag.SEQUENCE);
      const { bytes } = bitStringContent(
        der,
        spki.next('subjectPublicKey', DerTag.BIT_STRING),
        'subjectPublicKey',
      );
      keyIdentifier = createHash('sha1').update(bytes).digest();
    }
    return {
      subjectDer: Buffer.from(encodingOf(der, subjectElement)),
      notBeforeMs,
      notAfterMs,
      keyIdentifier,
      hasSubjectKeyIdentifier,
    };
  } catch (err) {
    if (err instanceof DerError)
      throw new WardenError(
        'ERR_TRUST_MATERIAL_INVALID',
        `${what} cannot be read: ${err.message}`,
        { cause: err },
      );
    throw err;
  }
}
