import { createFileTrustStore, type FileTrustMaterialStore } from '../ca/file-trust-store.js';
import { WardenError } from '../shared/errors.js';
import type { FlagSpecs, ParsedFlags } from '../shared/flags.js';

/** Dapr Sentry's credential flags, shared by the commands that touch the trust files. */
export const TRUST_MATERIAL_FLAGS: FlagSpecs = {
  'issuer-credentials': {
    kind: 'string',
    description: 'Directory holding the trust anchors, issuer certificate and issuer key',
    default: './.warden/credentials',
  },
  'issuer-ca-filename': {
    kind: 'string',
    description: 'File name of the trust anchors (roots)',
    default: 'ca.crt',
  },
  'issuer-certificate-filename': {
    kind: 'string',
    description: 'File name of the issuer certificate (then any intermediates)',
    default: 'issuer.crt',
  },
  'issuer-key-filename': {
    kind: 'string',
    description: 'File name of the issuer private key',
    default: 'issuer.key',
  },
  'root-key-filename': {
    kind: 'string',
    description: 'File name of the root private key Warden keeps when it generated the root',
    default: 'root.key',
  },
};

export function stringFlag(flags: ParsedFlags, name: string): string {
  const value = flags.values[name];
  if (typeof value !== 'string')
    throw new TypeError(`flag --${name} is not a string flag with a default`);
  return value;
}

export function fileTrustStoreFromFlags(flags: ParsedFlags): FileTrustMaterialStore {
  const directory = stringFlag(flags, 'issuer-credentials');
  if (directory.length === 0)
    throw new WardenError('ERR_CONFIG_INVALID', 'flag -issuer-credentials must not be empty');
  return createFileTrustStore({
    directory,
    names: {
      anchors: stringFlag(flags, 'issuer-ca-filename'),
      issuerChain: stringFlag(flags, 'issuer-certificate-filename'),
      issuerKey: stringFlag(flags, 'issuer-key-filename'),
    },
    rootKeyName: stringFlag(flags, 'root-key-filename'),
  });
}

/** True when argv asks for a command's help instead of running it. */
export function wantsHelp(argv: readonly string[]): boolean {
  return argv.some((a) => a === '--help' || a === '-help' || a === '-h');
}
