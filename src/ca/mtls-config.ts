import { promises as fs } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { parseDuration } from '../shared/duration.js';
import { WardenError } from '../shared/errors.js';
import {
  DEFAULT_ROTATION_POLICY,
  rotationPolicyProblems,
  type RotationPolicy,
} from './rotation/rotation-policy.js';

/*
 * A small, focused reader of the parts of a Dapr Configuration (file or CRD body) that
 * rotation depends on. A full Configuration schema is being written elsewhere; this one
 * reads only:
 *   spec.mtls.workloadCertTTL      Go duration (Dapr default 24h)
 *   spec.mtls.allowedClockSkew     Go duration (Dapr default 15m)
 * and the Warden additions (Dapr ignores unknown fields in a file; note that a CRD with a
 * structural schema may prune them, in which case the equivalent flags apply):
 *   spec.mtls.rootRotation.enabled             boolean (default true)
 *   spec.mtls.rootRotation.prepareAtFraction   number in (0,1) (default 0.5)
 *   spec.mtls.rootRotation.activateAtFraction  number in (0,1) (default 5/6)
 *   spec.mtls.rootRotation.propagationWindow   Go duration (default workloadCertTTL + allowedClockSkew)
 *   spec.mtls.issuerRenewal.enabled            boolean (default true)
 *   spec.mtls.issuerRenewal.renewAtFraction    number in (0,1) (default 2/3)
 * Every problem is reported at once, each with its path.
 */

export const MAX_CONFIGURATION_BYTES = 1024 * 1024;

const ROOT_ROTATION_FIELDS = [
  'enabled',
  'prepareAtFraction',
  'activateAtFraction',
  'propagationWindow',
];
const ISSUER_RENEWAL_FIELDS = ['enabled', 'renewAtFraction'];

/** Reads the rotation policy from a Configuration YAML file. */
export async function readRotationPolicyFile(file: string): Promise<RotationPolicy> {
  let text: string;
  try {
    const stat = await fs.stat(file);
    if (stat.size > MAX_CONFIGURATION_BYTES)
      throw new WardenError(
        'ERR_CONFIG_INVALID',
        `${file} is larger than ${MAX_CONFIGURATION_BYTES} bytes`,
      );
    text = await fs.readFile(file, 'utf8');
  } catch (err) {
    if (err instanceof WardenError) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    throw new WardenError(
      'ERR_CONFIG_INVALID',
      `cannot read the Configuration ${file}${code ? `: ${code}` : ''}`,
      { cause: err },
    );
  }
  return parseRotationPolicy(text, file);
}

/** The rotation policy from Configuration YAML text (defaults for everything absent). */
export function parseRotationPolicy(text: string, source = 'Configuration'): RotationPolicy {
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (err) {
    throw new WardenError('ERR_CONFIG_INVALID', `${source} is not valid YAML`, { cause: err });
  }
  const problems: string[] = [];
  const objectAt = (value: unknown, where: string): Record<string, unknown> | undefined => {
    if (value === undefined || value === null) return undefined;
    if (typeof value !== 'object' || Array.isArray(value)) {
      problems.push(`${where} must be a mapping`);
      return undefined;
    }
    return value as Record<string, unknown>;
  };
  const root = objectAt(doc, '(document)');
  if (root?.kind !== undefined && root.kind !== 'Configuration')
    problems.push(`kind must be Configuration, not ${JSON.stringify(root.kind)}`);
  const mtls = objectAt(objectAt(root?.spec, 'spec')?.mtls, 'spec.mtls');

  const duration = (value: unknown, where: string, fallback: number): number => {
    if (value === undefined || value === null) return fallback;
    if (typeof value !== 'string') {
      problems.push(`${where} must be a Go duration string such as 24h`);
      return fallback;
    }
    try {
      return parseDuration(value, where);
    } catch (err) {
      problems.push((err as Error).message);
      return fallback;
    }
  };
  const bool = (value: unknown, where: string, fallback: boolean): boolean => {
    if (value === undefined || value === null) return fallback;
    if (typeof value !== 'boolean') {
      problems.push(`${where} must be true or false`);
      return fallback;
    }
    return value;
  };
  const number = (value: unknown, where: string, fallback: number): number => {
    if (value === undefined || value === null) return fallback;
    if (typeof value !== 'number') {
      problems.push(`${where} must be a number`);
      return fallback;
    }
    return value;
  };
  const unknownFields = (
    section: Record<string, unknown> | undefined,
    known: string[],
    where: string,
  ): void => {
    for (const field of Object.keys(section ?? {})) {
      if (!known.includes(field))
        problems.push(`${where}.${field} is not a known field (known: ${known.join(', ')})`);
    }
  };

  const defaults = DEFAULT_ROTATION_POLICY;
  const rotation = objectAt(mtls?.rootRotation, 'spec.mtls.rootRotation');
  const renewal = objectAt(mtls?.issuerRenewal, 'spec.mtls.issuerRenewal');
  unknownFields(rotation, ROOT_ROTATION_FIELDS, 'spec.mtls.rootRotation');
  unknownFields(renewal, ISSUER_RENEWAL_FIELDS, 'spec.mtls.issuerRenewal');
  const policy: RotationPolicy = {
    workloadCertTtlMs: duration(
      mtls?.workloadCertTTL,
      'spec.mtls.workloadCertTTL',
      defaults.workloadCertTtlMs,
    ),
    allowedClockSkewMs: duration(
      mtls?.allowedClockSkew,
      'spec.mtls.allowedClockSkew',
      defaults.allowedClockSkewMs,
    ),
    propagationWindowMs:
      rotation?.propagationWindow === undefined || rotation.propagationWindow === null
        ? null
        : duration(rotation.propagationWindow, 'spec.mtls.rootRotation.propagationWindow', 0),
    rootRotation: {
      enabled: bool(
        rotation?.enabled,
        'spec.mtls.rootRotation.enabled',
        defaults.rootRotation.enabled,
      ),
      prepareAtFraction: number(
        rotation?.prepareAtFraction,
        'spec.mtls.rootRotation.prepareAtFraction',
        defaults.rootRotation.prepareAtFraction,
      ),
      activateAtFraction: number(
        rotation?.activateAtFraction,
        'spec.mtls.rootRotation.activateAtFraction',
        defaults.rootRotation.activateAtFraction,
      ),
    },
    issuerRenewal: {
      enabled: bool(
        renewal?.enabled,
        'spec.mtls.issuerRenewal.enabled',
        defaults.issuerRenewal.enabled,
      ),
      renewAtFraction: number(
        renewal?.renewAtFraction,
        'spec.mtls.issuerRenewal.renewAtFraction',
        defaults.issuerRenewal.renewAtFraction,
      ),
    },
  };
  if (problems.length === 0) {
    problems.push(...rotationPolicyProblems(policy).map((p) => `spec.mtls.${p}`));
  }
  if (problems.length > 0) {
    throw new WardenError('ERR_CONFIG_INVALID', `${source}: ${problems.join('; ')}`, {
      details: { problems: problems.length },
    });
  }
  return deepFreeze(policy);
}

function deepFreeze(policy: RotationPolicy): RotationPolicy {
  return Object.freeze({
    ...policy,
    rootRotation: Object.freeze({ ...policy.rootRotation }),
    issuerRenewal: Object.freeze({ ...policy.issuerRenewal }),
  });
}
