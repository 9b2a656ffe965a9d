import { describe, expect, it } from '@jest/globals';
import { status as GrpcStatus } from '@grpc/grpc-js';
import { grpcAnswerFor } from '../../../src/issuer/grpc/status-map.js';
import {
  buildValidatorRegistry,
  createValidatorRegistry,
  planValidators,
} from '../../../src/issuer/validator-registry.js';
import type { Validator, ValidatorName } from '../../../src/issuer/validator.js';
import { builtInValidatorFactories } from '../../../src/issuer/validators/validator-factories.js';
import { ManualClock } from '../../../src/shared/clock.js';
import { silentLogger } from '../../../src/shared/logger.js';
import type { TokenValidatorSettings } from '../../../src/shared/config/dapr-configuration.js';
import { WardenError } from '../../../src/shared/errors.js';

function named(name: ValidatorName): Validator {
  return {
    name,
    start: async () => undefined,
    ready: () => true,
    validate: async () => ({
      trustDomain: 'public',
      namespace: 'n',
      appId: 'a',
      controlPlane: false,
    }),
    close: async () => undefined,
  };
}

function selectError(select: () => unknown): WardenError {
  try {
    select();
  } catch (err) {
    if (err instanceof WardenError) return err;
    throw err;
  }
  throw new Error('select did not throw');
}

const JWKS: TokenValidatorSettings = {
  name: 'jwks',
  options: {
    source: '{"keys":[]}',
    caCertificate: undefined,
    minRefreshIntervalMs: 600_000,
    requestTimeoutMs: 30_000,
  },
};

describe('validator plan (which validators run, which is the default)', () => {
  const cases: Array<
    [
      string,
      'standalone' | 'kubernetes',
      TokenValidatorSettings[],
      ValidatorName[],
      ValidatorName | null,
    ]
  > = [
    [
      'standalone with none configured enables insecure as the default',
      'standalone',
      [],
      ['insecure'],
      'insecure',
    ],
    [
      'kubernetes with none configured enables kubernetes as the default',
      'kubernetes',
      [],
      ['kubernetes'],
      'kubernetes',
    ],
    ['standalone with only jwks configured has no default', 'standalone', [JWKS], ['jwks'], null],
    [
      'standalone with jwks and insecure keeps insecure as the default',
      'standalone',
      [JWKS, { name: 'insecure' }],
      ['jwks', 'insecure'],
      'insecure',
    ],
    [
      'kubernetes with jwks and kubernetes keeps kubernetes as the default',
      'kubernetes',
      [{ name: 'kubernetes' }, JWKS],
      ['kubernetes', 'jwks'],
      'kubernetes',
    ],
    ['kubernetes with only jwks has no default', 'kubernetes', [JWKS], ['jwks'], null],
  ];
  for (const [name, mode, configured, enabled, defaultName] of cases) {
    it(name, () => {
      const plan = planValidators(mode, configured);
      expect(plan.enabled.map((v) => v.name)).toEqual(enabled);
      expect(plan.defaultName).toBe(defaultName);
    });
  }
});

describe('validator registry: the request enum → a validator', () => {
  const withDefault = createValidatorRegistry([named('insecure'), named('jwks')], 'insecure');
  const withoutDefault = createValidatorRegistry([named('jwks')], null);

  it('UNKNOWN (0) selects the default', () => {
    expect(withDefault.select(0).name).toBe('insecure');
  });

  it('a named, enabled validator is selected', () => {
    expect(withDefault.select(1).name).toBe('insecure');
    expect(withDefault.select(3).name).toBe('jwks');
  });

  const refusals: Array<[string, () => unknown, RegExp]> = [
    [
      'UNKNOWN with no default',
      () => withoutDefault.select(0),
      /no token_validator and there is no default \(enabled: jwks\)/,
    ],
    [
      'INSECURE when only jwks is enabled',
      () => withoutDefault.select(1),
      /INSECURE is not enabled/,
    ],
    [
      'KUBERNETES when it is not enabled',
      () => withDefault.select(2),
      /KUBERNETES is not enabled \(enabled: insecure, jwks\)/,
    ],
    ['enum value 99', () => withDefault.select(99), /token_validator 99 is not a known validator/],
    [
      'a negative enum value',
      () => withDefault.select(-1),
      /token_validator -1 is not a known validator/,
    ],
    [
      'a fractional number',
      () => withDefault.select(1.5),
      /token_validator 1.5 is not a known validator/,
    ],
  ];
  for (const [name, select, message] of refusals) {
    it(`refuses ${name} with ERR_VALIDATOR_NOT_ENABLED → INVALID_ARGUMENT`, () => {
      const err = selectError(select);
      expect(err.code).toBe('ERR_VALIDATOR_NOT_ENABLED');
      expect(err.message).toMatch(message);
      expect(grpcAnswerFor(err).code).toBe(GrpcStatus.INVALID_ARGUMENT);
    });
  }

  it('rejects a default that is not enabled and a validator registered twice (programmer errors)', () => {
    expect(() => createValidatorRegistry([named('jwks')], 'insecure')).toThrow(TypeError);
    expect(() => createValidatorRegistry([named('jwks'), named('jwks')], null)).toThrow(TypeError);
  });

  it('builds from a plan, and refuses a kubernetes plan when no kubernetes factory is wired', () => {
    const factories = { insecure: () => named('insecure'), jwks: () => named('jwks') };
    const registry = buildValidatorRegistry(
      planValidators('standalone', [JWKS, { name: 'insecure' }]),
      factories,
    );
    expect(registry.validators.map((v) => v.name)).toEqual(['jwks', 'insecure']);
    expect(registry.defaultName).toBe('insecure');
    expect(() => buildValidatorRegistry(planValidators('kubernetes', []), factories)).toThrow(
      /kubernetes token validator is not available/,
    );
  });

  it('starts and closes every validator', async () => {
    const calls: string[] = [];
    const tracked = (name: ValidatorName): Validator => ({
      ...named(name),
      start: async () => void calls.push(`start ${name}`),
      close: async () => void calls.push(`close ${name}`),
    });
    const registry = createValidatorRegistry([tracked('insecure'), tracked('jwks')], 'insecure');
    await registry.startAll();
    await registry.closeAll();
    expect(calls).toEqual(['start insecure', 'start jwks', 'close insecure', 'close jwks']);
  });

  it('builds the shipped validators from Configuration settings', async () => {
    const factories = builtInValidatorFactories({
      caNamespace: 'dapr-system',
      audience: 'spiffe://cluster.local/ns/dapr-system/dapr-sentry',
      clock: new ManualClock(),
      logger: silentLogger,
    });
    const registry = buildValidatorRegistry(
      planValidators('standalone', [JWKS, { name: 'insecure' }]),
      factories,
    );
    await registry.startAll();
    expect(registry.validators.map((v) => [v.name, v.ready()])).toEqual([
      ['jwks', false], // the inline JWKS has no keys: not ready, never open
      ['insecure', true],
    ]);
    await registry.closeAll();
  });
});
