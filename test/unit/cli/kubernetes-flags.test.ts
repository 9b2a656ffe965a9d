import { describe, expect, it } from '@jest/globals';
import { resolveServeSettings, SERVE_FLAGS } from '../../../src/cli/serve-flags.js';
import { leaderIdentity } from '../../../src/cli/kubernetes-mode.js';
import { defaultDaprConfiguration } from '../../../src/shared/config/dapr-configuration.js';
import { readEnv } from '../../../src/shared/env.js';
import { parseFlags } from '../../../src/shared/flags.js';
import { labelSelectorProblem } from '../../../src/shared/kube-label-selector.js';

function resolve(argv: string[], env: Record<string, string> = {}) {
  return resolveServeSettings(
    parseFlags(argv, SERVE_FLAGS),
    readEnv(env),
    defaultDaprConfiguration(),
    {
      cwd: '/srv',
      availableCores: 1,
    },
  );
}

describe('warden serve: kubernetes-mode flags', () => {
  it('defaults to Dapr’s names, every namespace, and POD_NAME as the leader identity', () => {
    const result = resolve(['--mode', 'kubernetes'], {
      POD_NAME: 'dapr-sentry-7f9c',
      NAMESPACE: 'dapr-system',
    });
    expect(result.ok && result.settings.kubernetes).toEqual({
      trustBundleName: 'dapr-trust-bundle',
      anchorsConfigMapName: 'dapr-root-ca.crt',
      anchorsNamespaceSelector: undefined,
      podName: 'dapr-sentry-7f9c',
    });
  });

  it('takes the three flags', () => {
    const result = resolve([
      '--mode',
      'kubernetes',
      '--trust-bundle-name',
      'warden-trust',
      '--anchors-configmap-name',
      'trust-anchors.pem',
      '--anchors-namespace-selector',
      'dapr.io/enabled=true,env in (prod,stage)',
    ]);
    expect(result.ok && result.settings.kubernetes).toMatchObject({
      trustBundleName: 'warden-trust',
      anchorsConfigMapName: 'trust-anchors.pem',
      anchorsNamespaceSelector: 'dapr.io/enabled=true,env in (prod,stage)',
    });
  });

  it.each([
    [
      ['--trust-bundle-name', 'Trust_Bundle'],
      '--trust-bundle-name: "Trust_Bundle" is not a valid Kubernetes object name',
    ],
    [
      ['--anchors-configmap-name', 'a/b'],
      '--anchors-configmap-name: "a/b" is not a valid Kubernetes object name',
    ],
    [
      ['--anchors-namespace-selector', 'env in (prod'],
      '--anchors-namespace-selector: "env in (prod" has an unbalanced "("',
    ],
    [
      ['--anchors-namespace-selector', 'a=b=c'],
      '--anchors-namespace-selector: "a=b=c" "a=b=c" is not a label requirement',
    ],
  ])('reports %j under its flag', (argv, message) => {
    const result = resolve(['--mode', 'kubernetes', ...argv]);
    expect(result.ok).toBe(false);
    const problems = result.ok ? [] : result.problems.map((p) => `${p.path}: ${p.message}`);
    expect(problems.some((p) => p.startsWith(message))).toBe(true);
  });

  it('accepts --jwt-enabled in both modes (in kubernetes mode the keys live in the trust Secret)', () => {
    expect(resolve(['--mode', 'standalone', '--jwt-enabled']).ok).toBe(true);
    expect(resolve(['--mode', 'kubernetes', '--jwt-enabled']).ok).toBe(true);
  });

  it('names this replica by POD_NAME, else by host name and pid', () => {
    expect(leaderIdentity('dapr-sentry-0')).toBe('dapr-sentry-0');
    expect(leaderIdentity(undefined)).toMatch(new RegExp(`_${process.pid}$`));
  });
});

describe('label selector syntax', () => {
  it.each([
    'env=prod',
    'env==prod',
    'env!=prod',
    'dapr.io/enabled=true',
    'example.com/tier in (a, b,c)',
    'tier notin (x)',
    'managed',
    '!legacy',
    'env=prod,!legacy,tier in (a)',
    'env=',
    'replicas>2',
  ])('accepts %s', (selector) => {
    expect(labelSelectorProblem(selector)).toBeNull();
  });

  it.each([
    ['', 'is empty'],
    ['env=prod,', '"" is not a label requirement'],
    ['=prod', 'is not a label requirement'],
    ['env in prod', 'is not a label requirement'],
    ['env in (a', 'unbalanced "("'],
    ['env)', 'unbalanced ")"'],
    ['-env=prod', 'is not a label requirement'],
    [`env=${'x'.repeat(64)}`, 'is not a label requirement'],
  ])('refuses %j', (selector, problem) => {
    expect(labelSelectorProblem(selector)).toContain(problem);
  });
});
