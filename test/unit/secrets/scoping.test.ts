import { describe, expect, it } from '@jest/globals';
import {
  filterAllowedSecrets,
  isAppAllowedByComponentScopes,
  isSecretAllowed,
  type SecretScope,
  type SecretScopes,
} from '../../../src/secrets/scoping.js';
import { parseSecretsConfiguration } from '../../../src/secrets/secrets-configuration.js';

function scopes(...entries: Array<Partial<SecretScope> & { storeName: string }>): SecretScopes {
  return new Map(
    entries.map((e) => [e.storeName, { defaultAccess: 'allow', allowedSecrets: [], deniedSecrets: [], ...e } as SecretScope]),
  );
}

describe('Configuration secret scoping precedence (as Dapr)', () => {
  it.each([
    ['a store without a scope entry allows everything', scopes(), 'any', true],
    ['defaultAccess allow with no lists allows', scopes({ storeName: 's' }), 'any', true],
    ['defaultAccess deny with no lists denies', scopes({ storeName: 's', defaultAccess: 'deny' }), 'any', false],
    ['a name in allowedSecrets is allowed even under deny', scopes({ storeName: 's', defaultAccess: 'deny', allowedSecrets: ['a'] }), 'a', true],
    ['a name outside a non-empty allowedSecrets is denied even under allow', scopes({ storeName: 's', allowedSecrets: ['a'] }), 'b', false],
    [
      'a non-empty allowedSecrets wins outright over deniedSecrets',
      scopes({ storeName: 's', allowedSecrets: ['a'], deniedSecrets: ['a'] }),
      'a',
      true,
    ],
    ['a name in deniedSecrets is denied under allow', scopes({ storeName: 's', deniedSecrets: ['a'] }), 'a', false],
    ['a name outside deniedSecrets falls back to allow', scopes({ storeName: 's', deniedSecrets: ['a'] }), 'b', true],
    ['a name outside deniedSecrets falls back to deny', scopes({ storeName: 's', defaultAccess: 'deny', deniedSecrets: ['a'] }), 'b', false],
    ['matching is case-sensitive for allowedSecrets', scopes({ storeName: 's', allowedSecrets: ['Redis'] }), 'redis', false],
    ['matching is case-sensitive for deniedSecrets', scopes({ storeName: 's', deniedSecrets: ['Redis'] }), 'redis', true],
    ['matching is exact, not by prefix', scopes({ storeName: 's', allowedSecrets: ['redis'] }), 'redis-password', false],
    ['another store’s entry does not apply', scopes({ storeName: 'other', defaultAccess: 'deny' }), 'a', true],
  ])('%s', (_what, table, secretName, allowed) => {
    expect(isSecretAllowed(table, 's', secretName)).toBe(allowed);
  });

  it('filters bulk answers with the same rule', () => {
    const table = scopes({ storeName: 's', deniedSecrets: ['b'] });
    const bulk = { a: { a: '1' }, b: { b: '2' }, c: { c: '3' } };
    expect(filterAllowedSecrets(table, 's', bulk)).toEqual({ a: { a: '1' }, c: { c: '3' } });
    expect(filterAllowedSecrets(scopes({ storeName: 's', allowedSecrets: ['c'] }), 's', bulk)).toEqual({ c: { c: '3' } });
  });
});

describe('Component scopes', () => {
  it.each([
    ['no scopes allow every app', undefined, 'app1', true],
    ['an empty list allows every app', [], 'app1', true],
    ['a listed app is allowed', ['app1', 'app2'], 'app2', true],
    ['an unlisted app is denied', ['app1'], 'app3', false],
    ['matching is case-sensitive', ['App1'], 'app1', false],
    ['an unknown caller cannot be checked and passes (plain HTTP only)', ['app1'], undefined, true],
  ])('%s', (_what, componentScopes, appId, allowed) => {
    expect(isAppAllowedByComponentScopes(componentScopes, appId)).toBe(allowed);
  });
});

describe('Configuration spec.secrets parsing', () => {
  const configuration = (scopesList: unknown) => ({
    apiVersion: 'dapr.io/v1alpha1',
    kind: 'Configuration',
    metadata: { name: 'appconfig' },
    spec: { tracing: { samplingRate: '1' }, secrets: { scopes: scopesList } },
  });

  it('parses entries, defaulting defaultAccess to allow and reading DENY case-insensitively', () => {
    const parsed = parseSecretsConfiguration(
      configuration([
        { storeName: 'a', allowedSecrets: ['x'] },
        { storeName: 'b', defaultAccess: 'DENY', deniedSecrets: ['y'] },
      ]),
      'config.yaml',
    );
    expect(parsed.problems).toEqual([]);
    expect(parsed.scopes.get('a')).toEqual({ storeName: 'a', defaultAccess: 'allow', allowedSecrets: ['x'], deniedSecrets: [] });
    expect(parsed.scopes.get('b')?.defaultAccess).toBe('deny');
  });

  it('reports a duplicate storeName with its path', () => {
    const parsed = parseSecretsConfiguration(configuration([{ storeName: 'a' }, { storeName: 'a', defaultAccess: 'deny' }]), 'config.yaml');
    expect(parsed.problems).toEqual([
      expect.objectContaining({ code: 'ERR_CONFIG_INVALID', source: 'config.yaml', path: 'spec.secrets.scopes[1].storeName', store: 'a' }),
    ]);
  });

  it('reports every malformed field at once, and refuses a defaultAccess that is neither allow nor deny', () => {
    const parsed = parseSecretsConfiguration(
      configuration([{ storeName: '', defaultAccess: 'alow' }, { storeName: 'b', allowedSecrets: 'x' }]),
      'config.yaml',
    );
    expect(parsed.problems.map((p) => p.path).sort()).toEqual([
      'spec.secrets.scopes[0].defaultAccess',
      'spec.secrets.scopes[0].storeName',
      'spec.secrets.scopes[1].allowedSecrets',
    ]);
  });

  it('accepts a Configuration without a secrets section', () => {
    const parsed = parseSecretsConfiguration({ apiVersion: 'dapr.io/v1alpha1', kind: 'Configuration', spec: {} }, 'c.yaml');
    expect(parsed.problems).toEqual([]);
    expect(parsed.scopes.size).toBe(0);
  });
});
