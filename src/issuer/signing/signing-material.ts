import { createPrivateKey, X509Certificate } from 'node:crypto';
import { WardenError } from '../../shared/errors.js';
import type { TrustBundle } from '../../ca/trust-bundle.js';

/**
 * The part of a TrustBundle that crosses into a signing worker: plain strings and a number,
 * so it survives structured cloning. Each worker rebuilds its own KeyObject and certificates
 * from it (measured in bench/sign-path.ts: ≈ 1 ms per generation, paid only on a change).
 */
export interface SigningMaterial {
  readonly generation: number;
  readonly anchorsPem: string;
  readonly issuerChainPem: string;
  readonly issuerKeyPem: string;
}

export function signingMaterialOf(bundle: TrustBundle): SigningMaterial {
  return {
    generation: bundle.generation,
    anchorsPem: bundle.anchorsPem,
    issuerChainPem: bundle.issuerChainPem,
    issuerKeyPem: bundle.issuerKeyPem,
  };
}

const CERTIFICATE_BLOCK =
  /-----BEGIN CERTIFICATE-----\r?\n[A-Za-z0-9+/=\r\n]+-----END CERTIFICATE-----/g;

function certificatesIn(pem: string, what: string): X509Certificate[] {
  const blocks = pem.match(CERTIFICATE_BLOCK) ?? [];
  if (blocks.length === 0)
    throw new WardenError('ERR_TRUST_MATERIAL_INVALID', `${what} holds no certificate`);
  return blocks.map((block, i) => {
    try {
      return new X509Certificate(block);
    } catch (err) {
      throw new WardenError(
        'ERR_TRUST_MATERIAL_INVALID',
        `${what} certificate ${i + 1} cannot be parsed`,
        { cause: err },
      );
    }
  });
}

/**
 * Rebuilds a TrustBundle from material the CA already validated (in the main thread); this
 * parses but does not re-validate the chain. The key is never put in an error message.
 */
export function trustBundleFromMaterial(material: SigningMaterial): TrustBundle {
  let issuerKey;
  try {
    issuerKey = createPrivateKey(material.issuerKeyPem);
  } catch (err) {
    throw new WardenError('ERR_TRUST_MATERIAL_INVALID', 'issuer key cannot be parsed', {
      cause: err,
    });
  }
  return {
    generation: material.generation,
    anchorsPem: material.anchorsPem,
    anchors: certificatesIn(material.anchorsPem, 'trust anchors'),
    issuerChainPem: material.issuerChainPem,
    issuerChain: certificatesIn(material.issuerChainPem, 'issuer chain'),
    issuerKeyPem: material.issuerKeyPem,
    issuerKey,
  };
}
