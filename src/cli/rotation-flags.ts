import { readRotationPolicyFile } from '../ca/mtls-config.js';
import { DEFAULT_ROTATION_POLICY, type RotationPolicy } from '../ca/rotation/rotation-policy.js';
import type { RotationContext, StepResult } from '../ca/rotation/rotation-steps.js';
import { buildRotationStatus, type RotationStatusReport } from '../ca/rotation/rotation-status.js';
import { inspectRotation } from '../ca/rotation/rotation-view.js';
import { systemClock, type Clock } from '../shared/clock.js';
import { parseDuration } from '../shared/duration.js';
import { isWardenError, WardenError } from '../shared/errors.js';
import { formatFlagHelp, parseFlags, type FlagSpecs, type ParsedFlags } from '../shared/flags.js';
import type { CliCommand } from './command.js';
import {
  fileTrustStoreFromFlags,
  stringFlag,
  TRUST_MATERIAL_FLAGS,
  wantsHelp,
} from './trust-material-flags.js';

/** Exit codes of the rotate commands that scripts can rely on. */
export const ROTATE_EXIT = Object.freeze({ ok: 0, failed: 1, usage: 2, refused: 4 });

/** Flags every `warden rotate` command takes. */
export const ROTATION_FLAGS: FlagSpecs = {
  ...TRUST_MATERIAL_FLAGS,
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
  output: { kind: 'string', description: 'Output format: text | json', default: 'text' },
};

export const FORCE_FLAG: FlagSpecs = {
  force: {
    kind: 'boolean',
    description: 'Skip the waiting period (never the order of the phases)',
    default: 'false',
  },
};

/** The policy from --config (or Dapr's defaults), with --propagation-window applied. */
export async function rotationPolicyFromFlags(flags: ParsedFlags): Promise<RotationPolicy> {
  const config = flags.values.config;
  let policy =
    typeof config === 'string' && config.length > 0
      ? await readRotationPolicyFile(config)
      : DEFAULT_ROTATION_POLICY;
  const window = flags.values['propagation-window'];
  if (typeof window === 'string') {
    policy = { ...policy, propagationWindowMs: parseDuration(window, 'flag -propagation-window') };
  }
  return policy;
}

export async function rotationContextFromFlags(
  flags: ParsedFlags,
  clock: Clock = systemClock,
): Promise<RotationContext> {
  return {
    store: fileTrustStoreFromFlags(flags),
    policy: await rotationPolicyFromFlags(flags),
    clock,
  };
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
  readonly run: (context: RotationContext, flags: ParsedFlags) => Promise<StepResult>;
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
      const context = await rotationContextFromFlags(flags);
      let result: StepResult;
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
      const report = statusAfter(context, result);
      if (output === 'json') {
        io.stdout.write(
          `${JSON.stringify({ step: result.step, changed: result.changed, message: result.message, status: report }, null, 2)}\n`,
        );
      } else {
        io.stdout.write(
          `${result.changed ? '' : 'Nothing to do: '}${result.message}\n${formatNextSteps(report)}`,
        );
      }
      return ROTATE_EXIT.ok;
    },
  };
  return command;
}

function statusAfter(context: RotationContext, result: StepResult): RotationStatusReport {
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
