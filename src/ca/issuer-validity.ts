import type { TrustBundle } from './trust-bundle.js';

/**
 * Whether a bundle's issuer chain can sign at `at`: every certificate of the chain is inside
 * its validity window. The signer refuses outside it (a leaf may not outlive its issuer,
 * rule 9); /healthz uses this so that an expired issuer, or a clock that jumped before the
 * issuer's notBefore, shows as "not ready" instead of a CA that looks healthy and signs nothing.
 */
export function issuerChainValidAt(bundle: TrustBundle, at: Date): boolean {
  const ms = at.getTime();
  if (bundle.issuerChain.length === 0) return false;
  return bundle.issuerChain.every(
    (cert) => ms >= Date.parse(cert.validFrom) && ms < Date.parse(cert.validTo),
  );
}
