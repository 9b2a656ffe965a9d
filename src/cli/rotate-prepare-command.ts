import { createFileTrustStore } from '../ca/file-trust-store.js';
import { isKeyAlgorithm, KEY_ALGORITHMS } from '../ca/key-algorithm.js';
import type { NextCredentials } from '../ca/rotation/rotation-plan.js';
import { prepareCredentials } from '../ca/rotation/credential-rotation.js';
import type { MintingOptions } from '../ca/rotation/rotation-steps.js';
import { parseDuration } from '../shared/duration.js';
import { WardenError } from '../shared/errors.js';
import type { ParsedFlags } from '../shared/flags.js';
import { rotationStepCommand } from './rotation-flags.js';
import { stringFlag } from './trust-material-flags.js';

/** `warden rotate prepare`: publish the next root beside the current one. */
export const rotatePrepareCommand = rotationStepCommand({
  name: 'rotate prepare',
  summary: 'Make the next root and issuer and publish the next root beside the current one',
  details:
    'Signing continues with the current issuer. With --from-dir, the next ca.crt (one root), issuer.crt and\n' +
    'issuer.key (and optionally the root key) are imported from an operator instead of generated.\n' +
    'With JWT key files (jwt.key, jwks.json) in the directory, a next JWT key is published in jwks.json too.\n' +
    'Running it again once prepared changes nothing.',
  flags: {
    'from-dir': {
      kind: 'string',
      description:
        'Import the next root, issuer and key from this directory (same file-name flags)',
    },
    'trust-domain': {
      kind: 'string',
      description: 'Trust domain of generated material (default: the current one)',
    },
    'key-algorithm': {
      kind: 'string',
      description: `Key algorithm: ${KEY_ALGORITHMS.join(' | ')} (default: the current issuer's)`,
    },
    'root-ttl': {
      kind: 'string',
      description: "Lifetime of the next root (default: the current root's)",
    },
    'issuer-ttl': {
      kind: 'string',
      description: "Lifetime of the next issuer (default: the current issuer's)",
    },
  },
  async run(context, flags) {
    const fromDir = flags.values['from-dir'];
    if (typeof fromDir === 'string') {
      return prepareCredentials(context, { from: await importNext(fromDir, flags) });
    }
    return prepareCredentials({ ...context, minting: mintingFromFlags(flags) });
  },
});

function mintingFromFlags(flags: ParsedFlags): MintingOptions {
  const text = (name: string): string | undefined => {
    const value = flags.values[name];
    return typeof value === 'string' ? value : undefined;
  };
  const keyAlgorithm = text('key-algorithm');
  if (keyAlgorithm !== undefined && !isKeyAlgorithm(keyAlgorithm)) {
    throw new WardenError(
      'ERR_CONFIG_INVALID',
      `flag -key-algorithm: "${keyAlgorithm}" is not one of ${KEY_ALGORITHMS.join(', ')}`,
    );
  }
  const rootTtl = text('root-ttl');
  const issuerTtl = text('issuer-ttl');
  return {
    trustDomain: text('trust-domain'),
    keyAlgorithm,
    rootTtlMs: rootTtl === undefined ? undefined : parseDuration(rootTtl, 'flag -root-ttl'),
    issuerTtlMs: issuerTtl === undefined ? undefined : parseDuration(issuerTtl, 'flag -issuer-ttl'),
  };
}

/** The operator's next material, read with the same file names as the credentials. */
async function importNext(directory: string, flags: ParsedFlags): Promise<NextCredentials> {
  const source = createFileTrustStore({
    directory,
    names: {
      anchors: stringFlag(flags, 'issuer-ca-filename'),
      issuerChain: stringFlag(flags, 'issuer-certificate-filename'),
      issuerKey: stringFlag(flags, 'issuer-key-filename'),
    },
    rootKeyName: stringFlag(flags, 'root-key-filename'),
  });
  const stored = await source.read();
  if (stored === null) {
    throw new WardenError(
      'ERR_TRUST_MATERIAL_INVALID',
      `no next trust material in ${source.describe()}`,
    );
  }
  return {
    rootPem: stored.material.anchorsPem,
    rootKeyPem: stored.extras.rootKey ?? null,
    issuerChainPem: stored.material.issuerChainPem,
    issuerKeyPem: stored.material.issuerKeyPem,
  };
}
