import { describe, expect, it } from '@jest/globals';
import { readdirSync } from 'node:fs';
import { SERVE_FLAGS, validateServeInvocation } from '../../../src/cli/serve-flags.js';
import {
  interpretDaprConfiguration,
  defaultDaprConfiguration,
} from '../../../src/shared/config/dapr-configuration.js';
import { readEnv } from '../../../src/shared/env.js';
import { parseFlags } from '../../../src/shared/flags.js';
import {
  DEPLOY_DIRECTORY,
  readDeployManifests,
  type Manifest,
} from '../../support/deploy-manifests.js';

/*
 * deploy/ checked as data: every document parses, the kinds and fields the install needs are
 * there, RBAC is exactly the least-privilege table below, the pod is hardened, and the
 * Deployment's flags, ports and probes agree with what Warden itself accepts and serves.
 */

type Json = Record<string, unknown>;
const manifests = readDeployManifests();
const CA_NAMESPACE = 'dapr-system';

function only(kind: string, name?: string): Json {
  const found = manifests.filter(
    (m) =>
      m.object.kind === kind && (name === undefined || (m.object.metadata as Json).name === name),
  );
  if (found.length !== 1)
    throw new Error(`expected one ${kind}${name ? ` ${name}` : ''}, found ${found.length}`);
  return (found[0] as Manifest).object;
}

const deployment = only('Deployment', 'dapr-sentry');
const podTemplate = (deployment.spec as Json).template as Json;
const podSpec = podTemplate.spec as Json;
const container = (podSpec.containers as Json[])[0] as Json;
const podLabels = (podTemplate.metadata as Json).labels as Record<string, string>;

function selects(selector: Record<string, string>, labels: Record<string, string>): boolean {
  return Object.entries(selector).every(([k, v]) => labels[k] === v);
}

describe('deploy/: files and kinds', () => {
  it('parses every document of every file, and kustomization.yaml lists every other file', () => {
    const files = readdirSync(DEPLOY_DIRECTORY)
      .filter((f) => /\.ya?ml$/.test(f))
      .sort();
    const kustomization = only('Kustomization');
    expect(kustomization.namespace).toBe(CA_NAMESPACE);
    expect([...(kustomization.resources as string[])].sort()).toEqual(
      files.filter((f) => f !== 'kustomization.yaml'),
    );
    for (const { file, object } of manifests) {
      expect([file, typeof object.apiVersion, typeof object.kind]).toEqual([
        file,
        'string',
        'string',
      ]);
      if (object.kind !== 'Kustomization')
        expect([file, typeof (object.metadata as Json)?.name]).toEqual([file, 'string']);
    }
  });

  it('has every kind the install needs', () => {
    const kinds = manifests
      .map((m) => `${m.object.apiVersion as string} ${m.object.kind as string}`)
      .sort();
    expect(kinds).toEqual(
      [
        'apps/v1 Deployment',
        'dapr.io/v1alpha1 Configuration',
        'kustomize.config.k8s.io/v1beta1 Kustomization',
        'policy/v1 PodDisruptionBudget',
        'rbac.authorization.k8s.io/v1 ClusterRole',
        'rbac.authorization.k8s.io/v1 ClusterRoleBinding',
        'rbac.authorization.k8s.io/v1 Role',
        'rbac.authorization.k8s.io/v1 RoleBinding',
        'v1 Service',
        'v1 ServiceAccount',
      ].sort(),
    );
  });

  it('names no namespace on any object (the kustomization places them)', () => {
    for (const { file, object } of manifests)
      expect([file, (object.metadata as Json | undefined)?.namespace]).toEqual([file, undefined]);
  });
});

describe('deploy/: RBAC is exactly the least-privilege table', () => {
  function rulesOf(kind: 'ClusterRole' | 'Role'): string[] {
    const role = only(kind, 'warden-sentry');
    const rows: string[] = [];
    for (const rule of role.rules as Json[]) {
      for (const group of rule.apiGroups as string[])
        for (const resource of rule.resources as string[])
          for (const verb of rule.verbs as string[]) {
            const names = (rule.resourceNames as string[] | undefined) ?? ['*'];
            for (const name of names) rows.push(`${group || 'core'} ${resource} ${verb} ${name}`);
          }
    }
    return rows.sort();
  }

  it('grants cluster-wide only token reviews, the caches, namespaces and the anchors ConfigMaps', () => {
    expect(rulesOf('ClusterRole')).toEqual(
      [
        'authentication.k8s.io tokenreviews create *',
        'core pods get *',
        'core pods list *',
        'core pods watch *',
        'dapr.io configurations get *',
        'dapr.io configurations list *',
        'dapr.io configurations watch *',
        'core namespaces list *',
        'core namespaces watch *',
        'core configmaps create *',
        'core configmaps get dapr-root-ca.crt',
        'core configmaps list dapr-root-ca.crt',
        'core configmaps watch dapr-root-ca.crt',
        'core configmaps update dapr-root-ca.crt',
      ].sort(),
    );
  });

  it('grants in the CA namespace only the trust bundle by name, creation, and the election lease', () => {
    expect(rulesOf('Role')).toEqual(
      [
        ...['secrets', 'configmaps'].flatMap((r) =>
          ['get', 'list', 'watch', 'update', 'patch'].map(
            (v) => `core ${r} ${v} dapr-trust-bundle`,
          ),
        ),
        'core secrets create *',
        'core configmaps create *',
        'coordination.k8s.io leases get *',
        'coordination.k8s.io leases create *',
        'coordination.k8s.io leases update *',
      ].sort(),
    );
  });

  it('uses no wildcard verb, resource or API group anywhere', () => {
    for (const { object } of manifests.filter((m) =>
      ['ClusterRole', 'Role'].includes(m.object.kind as string),
    )) {
      for (const rule of object.rules as Json[]) {
        for (const field of ['apiGroups', 'resources', 'verbs', 'resourceNames'])
          expect(
            ((rule[field] as string[] | undefined) ?? []).filter((v) => v.includes('*')),
          ).toEqual([]);
        expect(rule.nonResourceURLs).toBeUndefined();
      }
    }
  });

  it('binds both roles to the dapr-sentry service account in the CA namespace', () => {
    for (const [binding, role] of [
      ['ClusterRoleBinding', 'ClusterRole'],
      ['RoleBinding', 'Role'],
    ] as const) {
      const object = only(binding, 'warden-sentry');
      expect(object.roleRef).toEqual({
        apiGroup: 'rbac.authorization.k8s.io',
        kind: role,
        name: 'warden-sentry',
      });
      expect(object.subjects).toEqual([
        { kind: 'ServiceAccount', name: 'dapr-sentry', namespace: CA_NAMESPACE },
      ]);
    }
    expect(podSpec.serviceAccountName as string).toBe(
      (only('ServiceAccount').metadata as Json).name,
    );
  });
});

describe('deploy/: the Deployment', () => {
  it('runs three replicas, spread across nodes by anti-affinity, selected by its own labels', () => {
    const spec = deployment.spec as Json;
    expect(spec.replicas).toBe(3);
    expect(selects((spec.selector as Json).matchLabels as Record<string, string>, podLabels)).toBe(
      true,
    );
    const antiAffinity = (podSpec.affinity as Json).podAntiAffinity as Json;
    const terms = [
      ...((antiAffinity.requiredDuringSchedulingIgnoredDuringExecution as Json[] | undefined) ??
        []),
      ...(
        (antiAffinity.preferredDuringSchedulingIgnoredDuringExecution as Json[] | undefined) ?? []
      ).map((p) => p.podAffinityTerm as Json),
    ];
    expect(
      terms.some(
        (t) =>
          t.topologyKey === 'kubernetes.io/hostname' &&
          selects((t.labelSelector as Json).matchLabels as Record<string, string>, podLabels),
      ),
    ).toBe(true);
  });

  it('is hardened: non-root 65532, read-only root filesystem, no capabilities, RuntimeDefault seccomp', () => {
    const pod = podSpec.securityContext as Json;
    const own = container.securityContext as Json;
    expect(pod).toMatchObject({
      runAsNonRoot: true,
      runAsUser: 65532,
      seccompProfile: { type: 'RuntimeDefault' },
    });
    expect(own).toMatchObject({
      runAsNonRoot: true,
      runAsUser: 65532,
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      capabilities: { drop: ['ALL'] },
      seccompProfile: { type: 'RuntimeDefault' },
    });
    expect((own.capabilities as Json).add).toBeUndefined();
    expect(own.privileged === undefined || own.privileged === false).toBe(true);
    expect(podSpec.hostNetwork).toBeUndefined();
  });

  it('sets resource requests and limits', () => {
    const resources = container.resources as { requests: Json; limits: Json };
    for (const part of ['requests', 'limits'] as const)
      expect(Object.keys(resources[part]).sort()).toEqual(['cpu', 'memory']);
  });

  it('probes /healthz on 8080 for liveness and readiness, and takes NAMESPACE from the pod', () => {
    for (const probe of ['livenessProbe', 'readinessProbe'])
      expect((container[probe] as Json).httpGet).toEqual({ path: '/healthz', port: 8080 });
    expect(container.env).toContainEqual({
      name: 'NAMESPACE',
      valueFrom: { fieldRef: { fieldPath: 'metadata.namespace' } },
    });
  });

  it("passes Sentry's flags, which Warden accepts, and serves on the ports the Service and probes use", async () => {
    expect(container.command).toEqual(['/sentry']);
    const args = container.args as string[];
    const flags = parseFlags(args, SERVE_FLAGS);
    expect(flags.values).toMatchObject({
      mode: 'kubernetes',
      'trust-domain': 'cluster.local',
      config: 'daprsystem',
    });
    const result = await validateServeInvocation(args, readEnv({ NAMESPACE: CA_NAMESPACE }), {
      loadConfiguration: async () => defaultDaprConfiguration(),
    });
    if (!result.ok) throw new Error(JSON.stringify(result.problems));
    const { settings } = result;
    expect(settings.configurationRef).toEqual({ kind: 'kubernetes', name: 'daprsystem' });
    expect(settings.validators.defaultName).toBe('kubernetes');
    expect(settings.sentrySpiffeId).toBe(`spiffe://cluster.local/ns/${CA_NAMESPACE}/dapr-sentry`);

    const containerPorts = new Map(
      (container.ports as Json[]).map((p) => [p.name as string, p.containerPort as number]),
    );
    expect(containerPorts.get('grpc')).toBe(settings.grpc.port);
    expect(containerPorts.get('healthz')).toBe(settings.healthz.port);
    expect(containerPorts.get('metrics')).toBe(settings.metrics.port);
    expect(settings.grpc.listenAddress).toBe('0.0.0.0');
    expect(settings.healthz.port).toBe(((container.readinessProbe as Json).httpGet as Json).port);
  });
});

describe('deploy/: Service, PodDisruptionBudget and Configuration', () => {
  it('exposes dapr-sentry 443 → the gRPC port, and the metrics port', () => {
    const service = only('Service', 'dapr-sentry');
    const spec = service.spec as Json;
    expect(selects(spec.selector as Record<string, string>, podLabels)).toBe(true);
    const ports = spec.ports as Json[];
    expect(ports).toContainEqual(
      expect.objectContaining({ name: 'grpc', port: 443, targetPort: 50001, protocol: 'TCP' }),
    );
    expect(ports).toContainEqual(
      expect.objectContaining({ name: 'metrics', port: 9090, targetPort: 9090 }),
    );
    const containerPorts = (container.ports as Json[]).map((p) => p.containerPort);
    for (const port of ports) expect(containerPorts).toContain(port.targetPort);
  });

  it('keeps at least two replicas through voluntary disruptions', () => {
    const spec = only('PodDisruptionBudget').spec as Json;
    expect(selects((spec.selector as Json).matchLabels as Record<string, string>, podLabels)).toBe(
      true,
    );
    const keepsTwo = spec.minAvailable === 2 || spec.maxUnavailable === 1;
    expect(keepsTwo).toBe(true);
  });

  it('ships a daprsystem Configuration that Warden reads without a problem', () => {
    const configuration = only('Configuration', 'daprsystem');
    const result = interpretDaprConfiguration(configuration, 'deploy/configuration.yaml');
    if (!result.ok) throw new Error(JSON.stringify(result.problems));
    expect(result.configuration.mtls).toMatchObject({
      enabled: true,
      controlPlaneTrustDomain: 'cluster.local',
      workloadCertTtlMs: 24 * 3_600_000,
      tokenValidators: [],
    });
  });
});
