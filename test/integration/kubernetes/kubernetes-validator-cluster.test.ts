import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { CustomObjectsApi } from '@kubernetes/client-node';
import {
  createKubernetesValidator,
  type KubernetesValidator,
} from '../../../src/issuer/validators/kubernetes/kubernetes-validator.js';
import { loadKubernetesConfiguration } from '../../../src/shared/config/kubernetes-configuration.js';
import { readEnv } from '../../../src/shared/env.js';
import { WardenError } from '../../../src/shared/errors.js';
import { loadKubeConfig } from '../../../src/shared/kube-client.js';
import { checkedRequest } from '../../conformance/validator-conformance.js';
import { waitUntil } from '../../support/wait-for.js';

/*
 * The kubernetes validator's read-only checks against the cluster KUBECONFIG points at
 * (skipped, and said so, without one): its caches sync from the real API server, a real
 * TokenReview refuses a token the cluster never issued, and a missing Configuration is
 * reported as such. Nothing is created in the cluster (a TokenReview is not stored).
 */

const env = readEnv();

if (env.kubeconfig === undefined) {
  console.info(
    'KUBECONFIG is not set: the kubernetes validator checks against a real cluster are skipped.',
  );
  describe('kubernetes validator against a real cluster', () => {
    it.skip('runs only when KUBECONFIG points at a cluster', () => undefined);
  });
} else {
  describe('kubernetes validator against the cluster in KUBECONFIG (read-only)', () => {
    const kubeConfig = loadKubeConfig({ inCluster: false, kubeconfigEnv: env.kubeconfig });
    const caNamespace = env.raw.NAMESPACE ?? 'dapr-system';
    let validator: KubernetesValidator;
    let daprCrdServed = true;

    beforeAll(async () => {
      try {
        await kubeConfig.makeApiClient(CustomObjectsApi).listCustomObjectForAllNamespaces({
          group: 'dapr.io',
          version: 'v1alpha1',
          plural: 'configurations',
          limit: 1,
        });
      } catch {
        daprCrdServed = false;
        console.info(
          'configurations.dapr.io cannot be listed in this cluster (Dapr not installed, or no RBAC): only the pod cache is checked.',
        );
      }
      validator = createKubernetesValidator({
        kubeConfig,
        caNamespace,
        audience: `spiffe://cluster.local/ns/${caNamespace}/dapr-sentry`,
        controlPlaneTrustDomain: 'cluster.local',
        startSyncWaitMs: 0,
      });
      await validator.start();
    });
    afterAll(async () => {
      await validator.close();
    });

    it('syncs its caches from the API server and becomes ready', async () => {
      await waitUntil(() => validator.cacheState().pods.synced, 'the pod cache to sync', 30_000);
      expect(validator.cacheState().pods.size).toBeGreaterThan(0);
      if (daprCrdServed) {
        await waitUntil(() => validator.ready(), 'the validator to be ready', 30_000);
      }
    });

    it('is refused a token the cluster never issued by a real TokenReview', async () => {
      if (!daprCrdServed) return;
      const token = `eyJ${randomBytes(16).toString('base64url')}.e30.${randomBytes(16).toString('base64url')}`;
      const err = await validator
        .validate(checkedRequest({ id: 'orders', namespace: 'default', trustDomain: '' }, token))
        .catch((e: unknown) => e);
      expect(err).toBeInstanceOf(WardenError);
      expect(err).toMatchObject({ code: 'ERR_IDENTITY_DENIED' });
      expect((err as Error).message).not.toContain(token);
    });

    it('reports a Configuration that does not exist', async () => {
      const name = `warden-missing-${randomBytes(4).toString('hex')}`;
      await expect(
        loadKubernetesConfiguration(name, { kubeConfig, namespace: caNamespace }),
      ).rejects.toMatchObject({
        code: expect.stringMatching(/^ERR_(CONFIG_INVALID|KUBERNETES_API)$/),
      });
    });
  });
}
