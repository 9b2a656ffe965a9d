import { generateTrustMaterial } from '../ca/generate.js';
import { isKeyAlgorithm, KEY_ALGORITHMS } from '../ca/key-algorithm.js';
import { buildStatusReport, type CertificateStatus } from '../ca/status-report.js';
import { createTrustBundle } from '../ca/trust-material-ca.js';
import { validateTrustMaterial } from '../ca/validate.js';
import { systemClock } from '../shared/clock.js';
import { parseDuration } from '../shared/duration.js';
import { WardenError } from '../shared/errors.js';
import { formatFlagHelp, parseFlags, type FlagSpecs } from '../shared/flags.js';
import type { CliCommand } from './command.js';
import {
  fileTrustStoreFromFlags,
  stringFlag,
  TRUST_MATERIAL_FLAGS,
  wantsHelp,
} from './trust-material-flags.js';

const FLAGS: FlagSpecs = {
  ...TRUST_MATERIAL_FLAGS,
  'trust-domain': {
    kind: 'string',
    description: 'Trust domain named in the root and issuer',
    default: 'localhost',
  },
  'key-algorithm': {
    kind: 'string',
    description: `Key algorithm: ${KEY_ALGORITHMS.join(' | ')}`,
    default: 'ecdsa-p256',
  },
  'root-ttl': { kind: 'string', description: 'Lifetime of the root certificate', default: '8760h' },
  'issuer-ttl': {
    kind: 'string',
    description: 'Lifetime of the issuer certificate (never past the root)',
    default: '8760h',
  },
  'keep-root-key': {
    kind: 'boolean',
    description:
      'Keep the root private key (--root-key-filename) so Warden can renew the issuer and rotate the root',
    default: 'true',
  },
};

/** `warden init`: create a root and an issuer in the credentials directory, then exit. */
export const initCommand: CliCommand = {
  name: 'init',
  summary: 'Create trust material (root, issuer) in the credentials directory',
  async run(argv, io) {
    if (wantsHelp(argv)) {
      io.stdout.write(
        `Usage: warden init [flags]\n\n${initCommand.summary}. Refuses if material exists.\n\n${formatFlagHelp(FLAGS)}\n`,
      );
      return 0;
    }
    const flags = parseFlags(argv, FLAGS);
    if (flags.positionals.length > 0) {
      io.stderr.write(`warden init: unexpected argument "${flags.positionals[0]}"\n`);
      return 2;
    }
    const keyAlgorithm = stringFlag(flags, 'key-algorithm');
    if (!isKeyAlgorithm(keyAlgorithm)) {
      throw new WardenError(
        'ERR_CONFIG_INVALID',
        `flag -key-algorithm: "${keyAlgorithm}" is not one of ${KEY_ALGORITHMS.join(', ')}`,
      );
    }
    const rootTtlMs = parseDuration(stringFlag(flags, 'root-ttl'), 'flag -root-ttl');
    const issuerTtlMs = parseDuration(stringFlag(flags, 'issuer-ttl'), 'flag -issuer-ttl');
    const store = fileTrustStoreFromFlags(flags);

    const refuse = (): number => {
      io.stderr.write(
        `warden init: trust material already exists in ${store.describe()}; refusing to replace it ` +
          `(inspect it with "warden status", or remove the files to start over)\n`,
      );
      return 1;
    };
    if ((await store.load()) !== null) return refuse();
    const generated = await generateTrustMaterial({
      trustDomain: stringFlag(flags, 'trust-domain'),
      keyAlgorithm,
      rootTtlMs,
      issuerTtlMs,
      clock: systemClock,
    });
    const keepRootKey = flags.values['keep-root-key'] !== false;
    const extras = keepRootKey ? { rootKey: generated.root.privateKeyPem } : {};
    if ((await store.create(generated.material, extras)) === 'exists') return refuse();

    const report = buildStatusReport(
      createTrustBundle(validateTrustMaterial(generated.material), 1),
      systemClock,
    );
    const line = (what: string, c: CertificateStatus): string =>
      `  ${what.padEnd(7)} ${c.subject}  ${c.sha256Fingerprint}  notAfter ${c.notAfter}\n`;
    io.stdout.write(
      `Created trust material in ${store.directory}:\n` +
        report.anchors.map((a) => line('root', a)).join('') +
        line('issuer', report.issuer) +
        // Say where the root key is (or that it is gone), so nobody looks for it later.
        (keepRootKey
          ? `  The root private key is in ${store.extraNames.rootKey} (0600): Warden uses it to renew the issuer and rotate the root.\n` +
            '  Move it offline (and accept manual rotation) if your policy keeps root keys away from the CA.\n'
          : '  The root private key was not stored: the issuer cannot be renewed under this root, and rotation needs "warden rotate".\n'),
    );
    return 0;
  },
};
