import { describe, expect, it } from '@jest/globals';
import { KubeConfig } from '@kubernetes/client-node';
import { buildValidatorRegistry, planValidators } from '../../../src/issuer/validator-registry.js';
import { builtInValidatorFactories } from '../../../src/issuer/validators/validator-factories.js';
import { ManualClock } from '../../../src/shared/clock.js';
import { silentLogger } from '../../../src/shared/logger.js';

const BASE = {
  caNamespace: 'dapr-system',
  audience: 'spiffe://cluster.local/ns/dapr-system/dapr-sentry',
  clock: new ManualClock(),
  logger: silentLogger,
};

function unreachableKubeConfig(): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'c', server: 'https://127.0.0.1:1', skipTLSVerify: false }],
    users: [{ name: 'u', token: 'not-used' }],
    contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
    currentContext: 'x',
  });
  return kc;
}

describe('builtInValidatorFactories: the kubernetes validator', () => {
  it('is the kubernetes mode default, built from the factory when a Kubernetes API is given', async () => {
    const registry = buildValidatorRegistry(
      planValidators('kubernetes', []),
      builtInValidatorFactories({
        ...BASE,
        kubeConfig: unreachableKubeConfig(),
        controlPlaneTrustDomain: 'cluster.local',
      }),
    );
    expect(registry.validators.map((v) => v.name)).toEqual(['kubernetes']);
    expect(registry.defaultName).toBe('kubernetes');
    expect(registry.select(0).name).toBe('kubernetes');
    // Built, not started: nothing has been synced, so it is not ready.
    expect(registry.validators[0]?.ready()).toBe(false);
    await registry.closeAll();
  });

  it('runs beside jwks when both are configured, and stays the default', async () => {
    const registry = buildValidatorRegistry(
      planValidators('kubernetes', [
        { name: 'kubernetes' },
        {
          name: 'jwks',
          options: {
            source: '{"keys":[]}',
            caCertificate: undefined,
            minRefreshIntervalMs: 600_000,
            requestTimeoutMs: 30_000,
          },
        },
      ]),
      builtInValidatorFactories({
        ...BASE,
        kubeConfig: unreachableKubeConfig(),
        controlPlaneTrustDomain: 'cluster.local',
      }),
    );
    expect(registry.validators.map((v) => v.name)).toEqual(['kubernetes', 'jwks']);
    expect(registry.defaultName).toBe('kubernetes');
    await registry.closeAll();
  });

  it('is a configuration error without a Kubernetes API (standalone mode)', () => {
    expect(() =>
      buildValidatorRegistry(
        planValidators('standalone', [{ name: 'kubernetes' }]),
        builtInValidatorFactories(BASE),
      ),
    ).toThrow(
      expect.objectContaining({
        code: 'ERR_CONFIG_INVALID',
        message: expect.stringMatching(/needs --mode kubernetes/),
      }),
    );
  });
});
