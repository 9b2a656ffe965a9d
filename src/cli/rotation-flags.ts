import path from 'node:path';
import { existingJwtKeyFileStore } from '../ca/jwt/jwt-key-file-store.js';
import { existingKubernetesJwtKeyStore } from '../ca/kubernetes/kubernetes-jwt-key-store.js';
import {
  jwtKeyStatus,
  jwtRotationTimings,
  type CredentialRotationContext,
  type CredentialStepResult,
  type JwtKeyStatus,
} from '../ca/rotation/credential-rotation.js';
import { rotationPolicyFromMtls, type RotationPolicy } from '../ca/rotation/rotation-policy.js';
import {
  defaultDaprConfiguration,
  loadDaprConfigurationFile,
} from '../shared/config/dapr-configuration.js';
import { silentLogger } from '../shared/logger.js';
import { JWT_FLAG_SPECS } from './jwt-flags.js';
import { buildRotationStatus, type RotationStatusReport } from '../ca/rotation/rotation-status.js';
import type { StepResult } from '../ca/rotation/rotation-steps.js';
import { inspectRotation } from '../ca/rotation/rotation-view.js';
import { systemClock, type Clock } from '../shared/clock.js';
import { parseDuration } from '../shared/duration.js';
import { isWardenError, WardenError } from '../shared/errors.js';
import {
  formatFlagHelp,
  parseFlags,
  type FlagSpec,
  type FlagSpecs,
  type ParsedFlags,
} from '../shared/flags.js';
import type { CliCommand } from './command.js';
import { readEnv, type WardenEnv } from '../shared/env.js';
import {
  stringFlag,
  TRUST_MATERIAL_FLAGS,
  TRUST_STORE_MODE_FLAGS,
  trustStoreFromFlags,
  wantsHelp,
} from './trust-material-flags.js';

/** Exit codes of the rotate commands that scripts can rely on. */
export const ROTATE_EXIT = Object.freeze({ ok: 0, failed: 1, usage: 2, refused: 4 });

/** Flags every `warden rotate` command takes. */
export const ROTATION_FLAGS: FlagSpecs = {
  ...TRUST_MATERIAL_FLAGS,
  ...TRUST_STORE_MODE_FLAGS,
  config: {
    kind: 'string',
    description:
      'Dapr Configuration YAML: spec.mtls.workloadCertTTL, allowedClockSkew, rootRotation, issuerRenewal',
  },
  'propagation-window': {
    kind: 'string',
    description:
      'How long the next root is published before activation (default workloadCertTTL + allowedClockSkew)',
  },
  // The JWT key rotates with the root when these files exist in the credentials directory.
  'jwt-key-filename': JWT_FLAG_SPECS['jwt-key-filename'] as FlagSpec,
  'jwks-filename': JWT_FLAG_SPECS['jwks-filename'] as FlagSpec,
  output: { kind: 'string', description: 'Output format: text | json', default: 'text' },
};

export const FORCE_FLAG: FlagSpecs = {
  force: {
    kind: 'boolean',
    description: 'Skip the waiting period (never the order of the phases)',
    default: 'false',
  },
};

/**
 * The policy from --config (read with the same Configuration schema as `warden serve`; Dapr's
 * defaults without it), with --propagation-window applied.
 */
export async function rotationPolicyFromFlags(flags: ParsedFlags): Promise<RotationPolicy> {
  const config = flags.values.config;
  const configuration =
    typeof config === 'string' && config.length > 0
      ? await loadDaprConfigurationFile(config)
      : defaultDaprConfiguration();
  const window = flags.values['propagation-window'];
  return rotationPolicyFromMtls(configuration.mtls, {
    propagationWindowMs:
      typeof window === 'string' ? parseDuration(window, 'flag -propagation-window') : undefined,
  });
}

/** The trust store (files or the trust Secret), the policy and, when it exists, the JWT key. */
export async function rotationContextFromFlags(
  flags: ParsedFlags,
  clock: Clock = systemClock,
  env: WardenEnv = readEnv({}),
): Promise<CredentialRotationContext> {
  const selected = trustStoreFromFlags(flags, env);
  const policy = await rotationPolicyFromFlags(flags);
  if (selected.mode === 'kubernetes') {
    // The JWT keys rotate with the root when the trust Secret holds them.
    const jwtStore = await existingKubernetesJwtKeyStore({
      kubeConfig: selected.kubeConfig,
      namespace: selected.store.namespace,
      name: selected.store.name,
      keyFilename: jwtFileName(flags, 'jwt-key-filename'),
      jwksFilename: jwtFileName(flags, 'jwks-filename'),
      maxTokenLifetimeMs: jwtRotationTimings(policy).maxTokenLifetimeMs,
      clock,
      logger: silentLogger,
    });
    return { store: selected.store, policy, clock, jwt: jwtStore ? { store: jwtStore } : null };
  }
  const { store } = selected;
  const jwtStore = await existingJwtKeyFileStore({
    dir: store.directory,
    keyFilename: jwtFileName(flags, 'jwt-key-filename'),
    jwksFilename: jwtFileName(flags, 'jwks-filename'),
    maxTokenLifetimeMs: jwtRotationTimings(policy).maxTokenLifetimeMs,
    clock,
    logger: silentLogger,
  });
  return { store, policy, clock, jwt: jwtStore ? { store: jwtStore } : null };
}

function jwtFileName(flags: ParsedFlags, name: 'jwt-key-filename' | 'jwks-filename'): string {
  const value = stringFlag(flags, name);
  if (value.length === 0 || value !== path.basename(value) || value === '.' || value === '..')
    throw new WardenError(
      'ERR_CONFIG_INVALID',
      `flag -${name}: "${value}" must be a plain file name`,
    );
  return value;
}

export function outputFlag(flags: ParsedFlags): 'text' | 'json' {
  const output = stringFlag(flags, 'output');
  if (output !== 'text' && output !== 'json') {
    throw new WardenError(
      'ERR_CONFIG_INVALID',
      `flag -output: "${output}" is not one of text, json`,
    );
  }
  return output;
}

/**
 * The common shape of prepare/activate/retire: parse flags, run the step, print what
 * happened and what comes next. A refusal exits 4 with the time the step becomes allowed.
 */
export function rotationStepCommand(spec: {
  readonly name: string;
  readonly summary: string;
  readonly details: string;
  readonly flags: FlagSpecs;
  readonly run: (
    context: CredentialRotationContext,
    flags: ParsedFlags,
  ) => Promise<CredentialStepResult>;
}): CliCommand {
  const flagSpecs: FlagSpecs = { ...ROTATION_FLAGS, ...spec.flags };
  const command: CliCommand = {
    name: spec.name,
    summary: spec.summary,
    async run(argv, io) {
      if (wantsHelp(argv)) {
        io.stdout.write(
          `Usage: warden ${spec.name} [flags]\n\n${spec.summary}.\n${spec.details}\n` +
            `Exit codes: 0 done (or already done), 1 failed, 2 usage, 4 refused for now (the message says until when).\n\n${formatFlagHelp(flagSpecs)}\n`,
        );
        return ROTATE_EXIT.ok;
      }
      const flags = parseFlags(argv, flagSpecs);
      if (flags.positionals.length > 0) {
        io.stderr.write(`warden ${spec.name}: unexpected argument "${flags.positionals[0]}"\n`);
        return ROTATE_EXIT.usage;
      }
      const output = outputFlag(flags);
      const context = await rotationContextFromFlags(flags, systemClock, readEnv(io.env));
      let result: CredentialStepResult;
      try {
        result = await spec.run(context, flags);
      } catch (err) {
        if (!isWardenError(err, 'ERR_ROTATION_REFUSED')) throw err;
        if (output === 'json') {
          io.stdout.write(
            `${JSON.stringify({ refused: true, code: err.code, error: err.message, ...err.details })}\n`,
          );
        } else {
          io.stderr.write(`warden ${spec.name}: ${err.message}\n`);
        }
        return ROTATE_EXIT.refused;
      }
      const report = statusAfter(context, result.root);
      const jwt = result.jwt
        ? {
            changed: result.jwt.changed,
            message: result.jwt.message,
            status: jwtKeyStatus(result.jwt.state, context.policy),
          }
        : null;
      if (output === 'json') {
        io.stdout.write(
          `${JSON.stringify({ step: result.step, changed: result.changed, message: result.root.message, status: report, jwt }, null, 2)}\n`,
        );
      } else {
        const line = (changed: boolean, message: string): string =>
          `${changed ? '' : 'Nothing to do: '}${message}\n`;
        io.stdout.write(
          line(result.root.changed, result.root.message) +
            (jwt ? line(jwt.changed, `JWT key: ${jwt.message}`) : '') +
            formatNextSteps(report),
        );
      }
      return ROTATE_EXIT.ok;
    },
  };
  return command;
}

function statusAfter(context: CredentialRotationContext, result: StepResult): RotationStatusReport {
  const clock = context.clock ?? systemClock;
  const view = inspectRotation(result.stored, {
    clock,
    names: context.store.names,
    extraNames: context.store.extraNames,
  });
  return buildRotationStatus(view, context.policy, clock.now());
}

export function formatNextSteps(report: RotationStatusReport): string {
  return report.nextSteps
    .map((s) => {
      if (s.step === 'renew-issuer')
        return `Next: renew-issuer (Warden renews the issuer on its own at ${s.automaticAt})\n`;
      const when = s.allowedNow ? 'allowed now' : `allowed from ${s.allowedAt}`;
      const auto = s.automaticAt ? `; Warden takes it on its own at ${s.automaticAt}` : '';
      return `Next: ${s.step} (${when}${auto})\n`;
    })
    .join('');
}

/** The JWT key section of `warden rotate status`, as text. */
export function formatJwtKeyStatus(status: JwtKeyStatus): string {
  const lines = [`JWT key: ${status.current.kid} (${status.current.alg}) signs`];
  if (status.next) {
    lines.push(
      `  next key: ${status.next.kid} (${status.next.alg}) published since ${status.next.preparedAt}, may sign from ${status.next.activationAllowedAt}`,
    );
  }
  if (status.previous) {
    lines.push(
      `  previous key: ${status.previous.kid} (${status.previous.alg}) published until its tokens expire, retirable from ${status.previous.retireAfter}`,
    );
  }
  if (status.otherPublishedKeys > 0)
    lines.push(`  other published keys (not managed by Warden): ${status.otherPublishedKeys}`);
  return `${lines.join('\n')}\n`;
}

/** `warden rotate status` and the rotation section of `warden status`, as text. */
export function formatRotationStatus(report: RotationStatusReport): string {
  const lines = [`Rotation phase: ${report.phase} (revision ${report.revision})`];
  if (report.preparedAt) lines.push(`  prepared at:  ${report.preparedAt}`);
  if (report.activatedAt) lines.push(`  activated at: ${report.activatedAt}`);
  lines.push(`  propagation window: ${report.propagationWindow}`);
  for (const r of report.roots) {
    lines.push(
      `  root (${r.role}): ${r.subject}  ${r.sha256Fingerprint}  notAfter ${r.notAfter} (${r.daysLeft} days left)`,
    );
  }
  lines.push(
    `  issuer: ${report.issuer.subject}  ${report.issuer.sha256Fingerprint}  notAfter ${report.issuer.notAfter}` +
      (report.issuer.renewAt ? `  (renewed at ${report.issuer.renewAt})` : ''),
  );
  if (report.nextIssuer) {
    lines.push(
      `  next issuer: ${report.nextIssuer.subject}  ${report.nextIssuer.sha256Fingerprint}  notAfter ${report.nextIssuer.notAfter}`,
    );
  }
  lines.push(
    `  root key: ${report.rootKeyHeld ? 'held by Warden' : (report.rootKeyNote ?? 'not held')}`,
  );
  lines.push(
    report.automatic.reason === null
      ? '  automatic rotation and issuer renewal: on'
      : `  automatic: root rotation ${report.automatic.rootRotation ? 'on' : 'off'}, issuer renewal ${report.automatic.issuerRenewal ? 'on' : 'off'} (${report.automatic.reason})`,
  );
  return `${lines.join('\n')}\n${formatNextSteps(report)}`;
}
