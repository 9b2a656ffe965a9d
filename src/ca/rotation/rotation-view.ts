import { createPrivateKey, X509Certificate, type KeyObject } from 'node:crypto';
import type { Clock } from '../../shared/clock.js';
import { WardenError } from '../../shared/errors.js';
import { certificateValidity } from '../certificate-facts.js';
import { parsePemBlocks, toPem } from '../pem.js';
import type { TrustMaterialNames } from '../trust-material.js';
import {
  DEFAULT_TRUST_EXTRA_NAMES,
  type StoredTrust,
  type TrustExtraNames,
} from '../trust-store.js';
import {
  findTrustMaterialProblems,
  validateTrustMaterial,
  type ValidatedTrustMaterial,
} from '../validate.js';
import type { Validity } from './rotation-policy.js';
import { IDLE_ROTATION_STATE, parseRotationState, type RotationState } from './rotation-state.js';

/** The prepared next root and issuer (phase prepared only). */
export interface PreparedSlot {
  readonly root: X509Certificate;
  /** The next root's key when Warden holds it (generated, or imported with root.key). */
  readonly rootKeyPem: string | null;
  readonly issuerChainPem: string;
  readonly issuerKeyPem: string;
  readonly issuer: X509Certificate;
}

/** A store snapshot, validated and cross-checked against its rotation state. */
export interface RotationView {
  readonly stored: StoredTrust;
  readonly material: ValidatedTrustMaterial;
  readonly state: RotationState;
  /** The anchor that signs the issuer chain: the root everything is signed under now. */
  readonly activeRoot: X509Certificate;
  readonly issuer: X509Certificate;
  /** The active root's private key, only when root.key exists and matches the active root. */
  readonly rootKeyPem: string | null;
  /** Why there is no usable root key (a BYO root, a key that does not match), or null. */
  readonly rootKeyNote: string | null;
  readonly next: PreparedSlot | null;
  /** The root being replaced, while it is still among the anchors (prepared, activated). */
  readonly retiringRoot: X509Certificate | null;
}

export interface InspectOptions {
  readonly clock: Clock;
  readonly names?: TrustMaterialNames;
  readonly extraNames?: TrustExtraNames;
}

export function validityOf(cert: X509Certificate): Validity {
  return certificateValidity(cert);
}

/** Rule: a certificate is issued by `parent` when names chain and the signature verifies. */
export function signedBy(child: X509Certificate, parent: X509Certificate): boolean {
  try {
    return child.checkIssued(parent) && child.verify(parent.publicKey);
  } catch {
    return false;
  }
}

export function keyMatches(cert: X509Certificate, keyPem: string): boolean {
  let key: KeyObject;
  try {
    key = createPrivateKey(keyPem);
  } catch {
    return false;
  }
  try {
    return cert.checkPrivateKey(key);
  } catch {
    return false;
  }
}

export function certificatePem(cert: X509Certificate): string {
  return toPem('CERTIFICATE', cert.raw);
}

/**
 * Validates the stored material (ERR_TRUST_MATERIAL_INVALID) and checks that the rotation
 * state describes it (ERR_ROTATION_STATE, listing every disagreement and how to get out).
 */
export function inspectRotation(stored: StoredTrust, options: InspectOptions): RotationView {
  const extraNames = options.extraNames ?? DEFAULT_TRUST_EXTRA_NAMES;
  const state =
    stored.extras.rotationState === undefined
      ? IDLE_ROTATION_STATE
      : parseRotationState(stored.extras.rotationState, extraNames.rotationState);
  const { material, expiredRetiringRoot } = validateForRotation(stored, state, options);
  const issuer = material.issuerChain[0] as X509Certificate;
  const top = material.issuerChain[material.issuerChain.length - 1] as X509Certificate;
  // validateTrustMaterial guarantees one anchor signs the top of the chain.
  const activeRoot = material.anchors.find((a) => signedBy(top, a)) as X509Certificate;
  const anchorWith = (fingerprint: string | null): X509Certificate | null =>
    fingerprint === null
      ? null
      : (material.anchors.find((a) => a.fingerprint256 === fingerprint) ?? null);

  let rootKeyPem: string | null = null;
  let rootKeyNote: string | null = null;
  const rootKeyText = stored.extras.rootKey;
  if (rootKeyText === undefined) {
    rootKeyNote = `no ${extraNames.rootKey}: Warden does not hold the root key (a bring-your-own root)`;
  } else if (!keyMatches(activeRoot, rootKeyText)) {
    rootKeyNote = `${extraNames.rootKey} does not match the active root ${activeRoot.fingerprint256}; it is ignored`;
  } else {
    rootKeyPem = rootKeyText;
  }

  const problems: string[] = [];
  let next: PreparedSlot | null = null;
  let retiringRoot: X509Certificate | null = null;
  if (state.phase === 'prepared') {
    if (state.retiringRootFingerprint !== activeRoot.fingerprint256) {
      problems.push(
        `the issuer no longer chains to the root being replaced (${state.retiringRootFingerprint}) but to ${activeRoot.fingerprint256}`,
      );
    }
    retiringRoot = anchorWith(state.retiringRootFingerprint);
    const nextRoot = anchorWith(state.nextRootFingerprint);
    const chainPem = stored.extras.nextIssuerChain;
    const keyPem = stored.extras.nextIssuerKey;
    if (!nextRoot) {
      problems.push(
        `${options.names?.anchors ?? 'ca.crt'} no longer holds the prepared next root ${state.nextRootFingerprint}`,
      );
    }
    if (chainPem === undefined || keyPem === undefined) {
      problems.push(
        `${extraNames.nextIssuerChain} and ${extraNames.nextIssuerKey} must both exist`,
      );
    }
    if (nextRoot && chainPem !== undefined && keyPem !== undefined) {
      const slotProblems = findTrustMaterialProblems(
        { anchorsPem: certificatePem(nextRoot), issuerChainPem: chainPem, issuerKeyPem: keyPem },
        {
          clock: options.clock,
          names: {
            anchors: 'the next root',
            issuerChain: extraNames.nextIssuerChain,
            issuerKey: extraNames.nextIssuerKey,
          },
        },
      );
      problems.push(...slotProblems);
      const nextRootKey = stored.extras.nextRootKey;
      if (nextRootKey !== undefined && !keyMatches(nextRoot, nextRootKey)) {
        problems.push(`${extraNames.nextRootKey} does not match the prepared next root`);
      }
      if (slotProblems.length === 0) {
        const slot = validateTrustMaterial(
          { anchorsPem: certificatePem(nextRoot), issuerChainPem: chainPem, issuerKeyPem: keyPem },
          { clock: options.clock },
        );
        next = {
          root: nextRoot,
          rootKeyPem: nextRootKey ?? null,
          issuerChainPem: chainPem,
          issuerKeyPem: keyPem,
          issuer: slot.issuerChain[0] as X509Certificate,
        };
      }
    }
  } else if (state.phase === 'activated') {
    if (state.retiringRootFingerprint === activeRoot.fingerprint256) {
      problems.push(
        `the issuer still chains to the root being retired (${activeRoot.fingerprint256})`,
      );
    }
    retiringRoot = expiredRetiringRoot ?? anchorWith(state.retiringRootFingerprint);
  }
  if (problems.length > 0) {
    const slotFiles = [
      extraNames.nextRootKey,
      extraNames.nextIssuerChain,
      extraNames.nextIssuerKey,
    ];
    throw new WardenError(
      'ERR_ROTATION_STATE',
      `the rotation state (${extraNames.rotationState}, phase ${state.phase}) does not match the trust material: ` +
        `${problems.join('; ')}. The material was probably changed by hand; to abandon the rotation, ` +
        `remove ${extraNames.rotationState} and ${slotFiles.join(', ')} (and the next root from the anchors if it is there)`,
    );
  }
  return Object.freeze({
    stored,
    material,
    state,
    activeRoot,
    issuer,
    rootKeyPem,
    rootKeyNote,
    next,
    retiringRoot,
  });
}

/**
 * The material validated as the CA validates it, with one exception: in the activated
 * phase, a root being retired that has expired meanwhile (nobody retired it in time, e.g.
 * the CA was down) is left out, so that its expiry cannot block its own retirement. The
 * CA itself still refuses such material until `retire` removes the root.
 */
function validateForRotation(
  stored: StoredTrust,
  state: RotationState,
  options: InspectOptions,
): { material: ValidatedTrustMaterial; expiredRetiringRoot: X509Certificate | null } {
  const validate = (anchorsPem: string): ValidatedTrustMaterial =>
    validateTrustMaterial(
      { ...stored.material, anchorsPem },
      { clock: options.clock, names: options.names },
    );
  try {
    return { material: validate(stored.material.anchorsPem), expiredRetiringRoot: null };
  } catch (err) {
    if (state.phase !== 'activated') throw err;
    const parsed = parsePemBlocks(stored.material.anchorsPem);
    if (!parsed.ok) throw err;
    const certs = parsed.blocks.flatMap((b) => {
      try {
        return [new X509Certificate(b.der)];
      } catch {
        return [];
      }
    });
    const retiring = certs.find((c) => c.fingerprint256 === state.retiringRootFingerprint);
    if (!retiring || validityOf(retiring).notAfter.getTime() >= options.clock.now().getTime())
      throw err;
    const rest = certs.filter((c) => c !== retiring);
    if (rest.length === 0 || rest.length !== parsed.blocks.length - 1) throw err;
    return { material: validate(rest.map(certificatePem).join('')), expiredRetiringRoot: retiring };
  }
}
