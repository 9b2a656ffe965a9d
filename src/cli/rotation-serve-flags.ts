import { DEFAULT_TRUST_EXTRA_NAMES } from '../ca/trust-store.js';
import {
  rotationPolicyFromMtls,
  rotationPolicyProblems,
  type RotationPolicy,
} from '../ca/rotation/rotation-policy.js';
import type { ConfigProblem } from '../shared/config/config-problems.js';
import type { DaprConfiguration } from '../shared/config/dapr-configuration.js';
import { parseDuration } from '../shared/duration.js';
import type { FlagSpecs, ParsedFlags } from '../shared/flags.js';

/**
 * `warden serve` flags for root-key custody, automatic rotation and expiry warnings. The
 * rotation ones mirror Warden's `spec.mtls` additions, for clusters whose Configuration CRD
 * prunes fields it does not know; a flag that is given wins over the Configuration.
 */
export const ROTATION_SERVE_FLAG_SPECS: FlagSpecs = Object.freeze({
  'root-key-filename': {
    kind: 'string',
    description:
      'File name of the root private key Warden keeps when it generated the root (needed for automatic rotation)',
    default: DEFAULT_TRUST_EXTRA_NAMES.rootKey,
  },
  'keep-root-key': {
    kind: 'boolean',
    description:
      'Keep the key of a root Warden generates, so that it can renew the issuer and rotate the root on its own',
    default: 'true',
  },
  'root-rotation': {
    kind: 'boolean',
    description:
      'Rotate the root automatically when Warden holds its key (default: spec.mtls.rootRotation.enabled, else true)',
  },
  'issuer-renewal': {
    kind: 'boolean',
    description:
      'Renew the issuer under the same root automatically (default: spec.mtls.issuerRenewal.enabled, else true)',
  },
  'propagation-window': {
    kind: 'string',
    description:
      'How long the next root is published before activation (default: spec.mtls.rootRotation.propagationWindow, else workloadCertTTL + allowedClockSkew)',
  },
  'expiry-warning-days': {
    kind: 'number',
    description:
      'Warn (log and warden_trust_certificates_expiring_soon) when a root or the issuer expires within this many days',
    default: '30',
  },
});

export interface RotationServeSettings {
  /** The Configuration's rotation policy with the flags above applied. */
  readonly policy: RotationPolicy;
  /** --root-key-filename, in the credentials directory. */
  readonly rootKeyFilename: string;
  readonly keepRootKey: boolean;
  readonly expiryWarningDays: number;
}

/**
 * The rotation settings from the flags and the Configuration. `takenFileNames` are the other
 * files of the credentials directory (flag name → file name), which root.key must not reuse.
 */
export function collectRotationServeSettings(
  flags: ParsedFlags,
  configuration: DaprConfiguration,
  takenFileNames: Readonly<Record<string, string>>,
): { ok: true; settings: RotationServeSettings } | { ok: false; problems: ConfigProblem[] } {
  const problems: ConfigProblem[] = [];
  const problem = (flag: string, message: string): void => {
    problems.push({ path: `--${flag}`, message });
  };
  const text = (name: string): string | undefined => {
    const value = flags.values[name];
    return typeof value === 'string' ? value : undefined;
  };
  const bool = (name: string): boolean | undefined => {
    const value = flags.values[name];
    return typeof value === 'boolean' ? value : undefined;
  };

  const rootKeyFilename = text('root-key-filename') ?? DEFAULT_TRUST_EXTRA_NAMES.rootKey;
  const clashingFlag = Object.entries(takenFileNames).find(([, name]) => name === rootKeyFilename);
  const rotationFiles = Object.entries(DEFAULT_TRUST_EXTRA_NAMES)
    .filter(([extra]) => extra !== 'rootKey')
    .map(([, name]) => name);
  if (!isPlainFileName(rootKeyFilename)) {
    problem('root-key-filename', `"${rootKeyFilename}" is not a plain file name`);
  } else if (clashingFlag) {
    problem('root-key-filename', `"${rootKeyFilename}" is also the name of --${clashingFlag[0]}`);
  } else if (rotationFiles.includes(rootKeyFilename) || rootKeyFilename.startsWith('.warden')) {
    problem('root-key-filename', `"${rootKeyFilename}" is reserved for Warden's rotation files`);
  }

  const days = flags.values['expiry-warning-days'];
  const expiryWarningDays = typeof days === 'number' ? days : 30;
  if (!Number.isFinite(expiryWarningDays) || expiryWarningDays < 0)
    problem('expiry-warning-days', `${expiryWarningDays} is not a number of days (0 or more)`);

  let propagationWindowMs: number | undefined;
  const window = text('propagation-window');
  if (window !== undefined) {
    try {
      propagationWindowMs = parseDuration(window);
      if (propagationWindowMs < 0)
        problem('propagation-window', `"${window}" must be zero or more`);
    } catch {
      problem('propagation-window', `"${window}" is not a duration (use Go syntax such as 24h15m)`);
    }
  }

  const policy = rotationPolicyFromMtls(configuration.mtls, {
    rootRotationEnabled: bool('root-rotation'),
    issuerRenewalEnabled: bool('issuer-renewal'),
    propagationWindowMs,
  });
  // The Configuration schema checks each field; this catches what only the whole shows.
  for (const message of rotationPolicyProblems(policy))
    problems.push({ path: 'rotation policy', message });

  if (problems.length > 0) return { ok: false, problems };
  return {
    ok: true,
    settings: Object.freeze({
      policy,
      rootKeyFilename,
      keepRootKey: bool('keep-root-key') ?? true,
      expiryWarningDays,
    }),
  };
}

function isPlainFileName(name: string): boolean {
  return name.length > 0 && name !== '.' && name !== '..' && !/[/\\\0]/.test(name);
}
