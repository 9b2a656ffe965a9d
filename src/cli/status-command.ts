import {
  buildStatusReport,
  certificatesExpiringWithin,
  type CertificateStatus,
} from '../ca/status-report.js';
import { createTrustBundle } from '../ca/trust-material-ca.js';
import { validateTrustMaterial } from '../ca/validate.js';
import { systemClock } from '../shared/clock.js';
import { isWardenError, WardenError } from '../shared/errors.js';
import { formatFlagHelp, parseFlags, type FlagSpec, type FlagSpecs } from '../shared/flags.js';
import { buildRotationStatus, type RotationStatusReport } from '../ca/rotation/rotation-status.js';
import { inspectRotation } from '../ca/rotation/rotation-view.js';
import { formatRotationStatus, ROTATION_FLAGS, rotationPolicyFromFlags } from './rotation-flags.js';
import type { CliCommand } from './command.js';
import { readEnv } from '../shared/env.js';
import {
  stringFlag,
  TRUST_MATERIAL_FLAGS,
  TRUST_STORE_MODE_FLAGS,
  trustStoreFromFlags,
  wantsHelp,
} from './trust-material-flags.js';

const FLAGS: FlagSpecs = {
  ...TRUST_MATERIAL_FLAGS,
  ...TRUST_STORE_MODE_FLAGS,
  config: ROTATION_FLAGS.config as FlagSpec,
  'propagation-window': ROTATION_FLAGS['propagation-window'] as FlagSpec,
  'warn-days': {
    kind: 'number',
    description: 'Exit 3 when a certificate expires within this many days',
    default: '30',
  },
  output: { kind: 'string', description: 'Output format: text | json', default: 'text' },
};

/** Exit codes scripts can rely on. */
export const STATUS_EXIT = Object.freeze({ ok: 0, invalid: 1, usage: 2, expiring: 3 });

/** `warden status`: what the trust material is and when it expires. */
export const statusCommand: CliCommand = {
  name: 'status',
  summary: 'Show the trust anchors and issuer, and warn before they expire',
  async run(argv, io) {
    if (wantsHelp(argv)) {
      io.stdout.write(
        `Usage: warden status [flags]\n\n${statusCommand.summary}.\n` +
          `Exit codes: 0 fine, 1 missing or invalid material, 3 something expires within --warn-days.\n\n` +
          `${formatFlagHelp(FLAGS)}\n`,
      );
      return 0;
    }
    const flags = parseFlags(argv, FLAGS);
    const output = stringFlag(flags, 'output');
    if (output !== 'text' && output !== 'json') {
      throw new WardenError(
        'ERR_CONFIG_INVALID',
        `flag -output: "${output}" is not one of text, json`,
      );
    }
    const warnDays = flags.values['warn-days'] as number;
    if (!Number.isFinite(warnDays) || warnDays < 0) {
      throw new WardenError('ERR_CONFIG_INVALID', 'flag -warn-days must be a non-negative number');
    }
    if (flags.positionals.length > 0) {
      io.stderr.write(`warden status: unexpected argument "${flags.positionals[0]}"\n`);
      return STATUS_EXIT.usage;
    }
    const selected = trustStoreFromFlags(flags, readEnv(io.env));
    const { store } = selected;
    const where =
      selected.mode === 'standalone'
        ? { directory: selected.store.directory }
        : { namespace: selected.store.namespace, secret: selected.store.name };

    const policy = await rotationPolicyFromFlags(flags);

    let validated;
    let rotation: RotationStatusReport;
    try {
      const stored = await store.read();
      if (stored === null) {
        throw new WardenError(
          'ERR_TRUST_MATERIAL_INVALID',
          `no trust material in ${store.describe()} (create it with "warden init")`,
        );
      }
      validated = validateTrustMaterial(stored.material, {
        clock: systemClock,
        names: store.names,
      });
      // A rotation state that no longer describes the files is as wrong as invalid files.
      const view = inspectRotation(stored, {
        clock: systemClock,
        names: store.names,
        extraNames: store.extraNames,
      });
      rotation = buildRotationStatus(view, policy, systemClock.now());
    } catch (err) {
      if (!isWardenError(err)) throw err;
      if (output === 'json') {
        io.stdout.write(
          `${JSON.stringify({ valid: false, code: err.code, error: err.message })}\n`,
        );
      } else {
        io.stderr.write(`warden status: ${err.code}: ${err.message}\n`);
      }
      return STATUS_EXIT.invalid;
    }

    const report = buildStatusReport(createTrustBundle(validated, 1), systemClock);
    // During a rotation the anchors hold both roots, so both are checked; the prepared
    // next issuer is checked too, since it is what will sign next.
    const expiring = certificatesExpiringWithin(report, warnDays);
    const limit = Date.parse(report.checkedAt) + warnDays * 86_400_000;
    const nextIssuerExpiring =
      rotation.nextIssuer !== null && Date.parse(rotation.nextIssuer.notAfter) <= limit
        ? [
            {
              role: 'next issuer',
              subject: rotation.nextIssuer.subject,
              notAfter: rotation.nextIssuer.notAfter,
            },
          ]
        : [];
    const warnings = [...expiring, ...nextIssuerExpiring];
    if (output === 'json') {
      io.stdout.write(
        `${JSON.stringify({ valid: true, ...where, warnDays, expiringWithinWarnDays: warnings.length > 0, ...report, rotation }, null, 2)}\n`,
      );
    } else {
      const block = (title: string, c: CertificateStatus): string =>
        `${title}\n` +
        `  subject:      ${c.subject}\n` +
        `  SPIFFE ID:    ${c.spiffeId ?? '(none)'}\n` +
        `  public key:   ${c.publicKey}\n` +
        `  SHA-256:      ${c.sha256Fingerprint}\n` +
        `  not before:   ${c.notBefore}\n` +
        `  not after:    ${c.notAfter} (${c.daysLeft} days left)\n`;
      const parts = [
        `Trust material in ${store.describe()}\n`,
        ...report.anchors.map((a, i) =>
          block(`Trust anchor ${i + 1} of ${report.anchors.length}`, a),
        ),
        ...report.intermediates.map((c, i) => block(`Intermediate ${i + 1}`, c)),
        block('Issuer', report.issuer),
        formatRotationStatus(rotation),
      ];
      if (warnings.length > 0) {
        parts.push(
          `WARNING: expiring within ${warnDays} days: ` +
            warnings.map((c) => `${c.role} ${c.subject} (${c.notAfter})`).join('; ') +
            '\n',
        );
      }
      io.stdout.write(parts.join('\n'));
    }
    return warnings.length > 0 ? STATUS_EXIT.expiring : STATUS_EXIT.ok;
  },
};
