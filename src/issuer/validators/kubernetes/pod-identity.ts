import { printable, trustDomainProblem } from '../../../shared/spiffe-id.js';
import { CONTROL_PLANE_IDS } from '../../control-plane.js';
import { DEFAULT_REQUEST_TRUST_DOMAIN } from '../../request-rules.js';

/**
 * What a pod and its Configuration entitle it to. Pure functions over the small records the
 * caches keep; reasons name the failed check.
 */

export const APP_ID_ANNOTATION = 'dapr.io/app-id';
export const CONTROL_PLANE_ANNOTATION = 'dapr.io/control-plane';
export const CONFIG_ANNOTATION = 'dapr.io/config';

/** The `dapr.io/control-plane` values Dapr knows; the id is `dapr-<value>`. */
export const CONTROL_PLANE_SERVICES: ReadonlySet<string> = new Set([
  'operator',
  'placement',
  'injector',
  'sentry',
  'scheduler',
]);

/** The part of a Pod the validator reads (the cache keeps only this). */
export interface PodRecord {
  readonly namespace: string;
  readonly name: string;
  readonly uid: string;
  readonly serviceAccountName: string | undefined;
  readonly appId: string | undefined;
  readonly controlPlane: string | undefined;
  readonly configName: string | undefined;
}

/** The part of a Dapr Configuration the validator reads. */
export interface ConfigurationRecord {
  readonly namespace: string;
  readonly name: string;
  /** `spec.accessControl.trustDomain` as found (any type): checked when used. */
  readonly trustDomain: unknown;
}

function stringField(value: unknown): string | undefined {
  return typeof value === 'string' ? value : undefined;
}

function recordOf(value: unknown): Record<string, unknown> | undefined {
  return value !== null && typeof value === 'object' && !Array.isArray(value)
    ? (value as Record<string, unknown>)
    : undefined;
}

export function projectPod(object: unknown): PodRecord | null {
  const metadata = recordOf(recordOf(object)?.metadata);
  const namespace = stringField(metadata?.namespace);
  const name = stringField(metadata?.name);
  if (!namespace || !name) return null;
  const annotations = recordOf(metadata?.annotations) ?? {};
  const spec = recordOf(recordOf(object)?.spec);
  return Object.freeze({
    namespace,
    name,
    uid: stringField(metadata?.uid) ?? '',
    serviceAccountName: stringField(spec?.serviceAccountName),
    appId: stringField(annotations[APP_ID_ANNOTATION]),
    controlPlane: stringField(annotations[CONTROL_PLANE_ANNOTATION]),
    configName: stringField(annotations[CONFIG_ANNOTATION]),
  });
}

export function projectConfiguration(object: unknown): ConfigurationRecord | null {
  const metadata = recordOf(recordOf(object)?.metadata);
  const namespace = stringField(metadata?.namespace);
  const name = stringField(metadata?.name);
  if (!namespace || !name) return null;
  const accessControl = recordOf(recordOf(recordOf(object)?.spec)?.accessControl);
  return Object.freeze({ namespace, name, trustDomain: accessControl?.trustDomain });
}

export type Judgement<T> =
  { readonly ok: true; readonly value: T } | { readonly ok: false; readonly reason: string };

export interface ExpectedIdentity {
  readonly appId: string;
  readonly controlPlane: boolean;
}

const describePod = (pod: PodRecord): string => `pod ${pod.namespace}/${pod.name}`;

/**
 * The one id a pod may have. `dapr.io/control-plane: <svc>` pods → `dapr-<svc>`, only in
 * the CA's namespace and never together with an app-id annotation (Dapr's rules). Others →
 * the `dapr.io/app-id` annotation, else the pod name. Warden adds one rule: in the CA's
 * namespace a control-plane id (dapr-operator, ...) needs the control-plane annotation, so
 * an ordinary pod there cannot obtain what sidecars trust as the operator or placement.
 */
export function expectedIdentity(pod: PodRecord, caNamespace: string): Judgement<ExpectedIdentity> {
  if (pod.controlPlane !== undefined) {
    if (pod.namespace !== caNamespace) {
      return {
        ok: false,
        reason: `control-plane ${describePod(pod)} is outside the CA namespace ${caNamespace}`,
      };
    }
    if (!CONTROL_PLANE_SERVICES.has(pod.controlPlane)) {
      return {
        ok: false,
        reason: `${describePod(pod)} names an unknown control-plane service "${printable(pod.controlPlane)}"`,
      };
    }
    if (pod.appId !== undefined) {
      return {
        ok: false,
        reason: `control-plane ${describePod(pod)} may not also carry ${APP_ID_ANNOTATION}`,
      };
    }
    return { ok: true, value: { appId: `dapr-${pod.controlPlane}`, controlPlane: true } };
  }
  if (pod.appId !== undefined && pod.appId.length === 0)
    return {
      ok: false,
      reason: `${describePod(pod)} has an empty ${APP_ID_ANNOTATION} annotation`,
    };
  const appId = pod.appId ?? pod.name;
  if (pod.namespace === caNamespace && CONTROL_PLANE_IDS.has(appId)) {
    return {
      ok: false,
      reason: `${describePod(pod)} would be ${appId}, a control-plane id, but lacks the ${CONTROL_PLANE_ANNOTATION} annotation`,
    };
  }
  return { ok: true, value: { appId, controlPlane: false } };
}

/**
 * The trust domain a pod's certificate is issued in: control-plane pods are in the control
 * plane's (the CA's own, as Dapr does); others in `spec.accessControl.trustDomain` of the
 * Configuration their `dapr.io/config` annotation names (in their namespace), `public` when
 * the annotation or the field is absent. `configuration` is the looked-up Configuration, or
 * null when the named one does not exist.
 */
export function trustDomainFor(
  pod: PodRecord,
  expected: ExpectedIdentity,
  controlPlaneTrustDomain: string,
  configuration: ConfigurationRecord | null,
): Judgement<string> {
  if (expected.controlPlane) return { ok: true, value: controlPlaneTrustDomain };
  if (pod.configName === undefined) return { ok: true, value: DEFAULT_REQUEST_TRUST_DOMAIN };
  if (configuration === null) {
    return {
      ok: false,
      reason: `Configuration "${printable(pod.configName)}" named by ${describePod(pod)}'s ${CONFIG_ANNOTATION} annotation does not exist in namespace ${pod.namespace}`,
    };
  }
  const td = configuration.trustDomain;
  if (td === undefined || td === null || td === '')
    return { ok: true, value: DEFAULT_REQUEST_TRUST_DOMAIN };
  const problem = typeof td === 'string' ? trustDomainProblem(td) : 'is not a string';
  if (problem !== null || typeof td !== 'string') {
    return {
      ok: false,
      reason: `Configuration ${configuration.namespace}/${configuration.name} has an invalid spec.accessControl.trustDomain (${problem ?? 'invalid'})`,
    };
  }
  return { ok: true, value: td };
}
