import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { ApiException } from '@kubernetes/client-node';
import { WardenError } from '../../../src/shared/errors.js';
import {
  SERVICE_ACCOUNT_ROOT,
  classifyKubeError,
  isRetryable,
  loadKubeConfig,
} from '../../../src/shared/kube-client.js';

function kubeconfig(server: string, token: string, context = 'ctx'): string {
  return [
    'apiVersion: v1',
    'kind: Config',
    'clusters:',
    `- name: c-${context}`,
    '  cluster:',
    `    server: ${server}`,
    'users:',
    `- name: u-${context}`,
    '  user:',
    `    token: ${token}`,
    'contexts:',
    `- name: ${context}`,
    '  context:',
    `    cluster: c-${context}`,
    `    user: u-${context}`,
    `current-context: ${context}`,
    '',
  ].join('\n');
}

describe('loadKubeConfig', () => {
  let dir: string;
  let explicit: string;
  let fromEnv: string;
  let second: string;
  let broken: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'warden-kubeconfig-'));
    explicit = join(dir, 'explicit.yaml');
    fromEnv = join(dir, 'env.yaml');
    second = join(dir, 'second.yaml');
    broken = join(dir, 'broken.yaml');
    await writeFile(explicit, kubeconfig('https://explicit.example:6443', 'explicit-token'));
    await writeFile(fromEnv, kubeconfig('https://env.example:6443', 'env-token', 'env'));
    await writeFile(second, kubeconfig('https://second.example:6443', 'second-token', 'second'));
    await writeFile(
      broken,
      'users:\n- name: u\n  user:\n    token: leaked-token-value\n  : : [unbalanced\n',
    );
    const sa = join(dir, SERVICE_ACCOUNT_ROOT);
    await mkdir(sa, { recursive: true });
    await writeFile(join(sa, 'token'), 'in-cluster-token');
    await writeFile(join(sa, 'ca.crt'), 'not really a CA');
    await writeFile(join(sa, 'namespace'), 'dapr-system');
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it.each([
    [
      'an explicit path wins over in-cluster and KUBECONFIG',
      () => ({ kubeconfigPath: explicit, inCluster: true, kubeconfigEnv: fromEnv }),
      'https://explicit.example:6443',
    ],
    [
      'KUBECONFIG is used when there is no path and no cluster',
      () => ({ inCluster: false, kubeconfigEnv: fromEnv }),
      'https://env.example:6443',
    ],
    [
      'the first KUBECONFIG file names the current context',
      () => ({ inCluster: false, kubeconfigEnv: `${fromEnv}${delimiter}${second}` }),
      'https://env.example:6443',
    ],
  ])('%s', (_what, source, server) => {
    expect(loadKubeConfig(source()).getCurrentCluster()?.server).toBe(server);
  });

  it('merges every KUBECONFIG file so their contexts can be chosen', () => {
    const kc = loadKubeConfig({
      inCluster: false,
      kubeconfigEnv: `${fromEnv}${delimiter}${second}`,
      context: 'second',
    });
    expect(kc.getCurrentCluster()?.server).toBe('https://second.example:6443');
  });

  it('uses the service-account files in a pod', () => {
    const kc = loadKubeConfig({ inCluster: true, inClusterPathPrefix: dir });
    expect(kc.getCurrentCluster()?.caFile).toBe(join(dir, SERVICE_ACCOUNT_ROOT, 'ca.crt'));
    expect(kc.getCurrentUser()?.authProvider?.config?.tokenFile).toBe(
      join(dir, SERVICE_ACCOUNT_ROOT, 'token'),
    );
    expect(kc.getContextObject(kc.getCurrentContext())?.namespace).toBe('dapr-system');
  });

  it.each([
    [
      'a missing file',
      () => ({ kubeconfigPath: join(dir, 'absent.yaml'), inCluster: false }),
      'ENOENT',
    ],
    [
      'a file that is not a kubeconfig',
      () => ({ kubeconfigPath: broken, inCluster: false }),
      'not a readable kubeconfig',
    ],
    [
      'in-cluster without the token file',
      () => ({ inCluster: true, inClusterPathPrefix: join(dir, 'nowhere') }),
      'is missing',
    ],
    [
      'an unknown context',
      () => ({ kubeconfigPath: explicit, inCluster: false, context: 'nope' }),
      'has no context nope',
    ],
  ])('refuses %s with ERR_CONFIG_INVALID and never quotes the file', (_what, source, fragment) => {
    let error: unknown;
    try {
      loadKubeConfig(source());
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(WardenError);
    expect((error as WardenError).code).toBe('ERR_CONFIG_INVALID');
    expect((error as WardenError).message).toContain(fragment);
    expect((error as WardenError).message).not.toContain('leaked-token-value');
    expect((error as WardenError).message).not.toContain('explicit-token');
  });
});

describe('classifyKubeError', () => {
  const now = new Date('2026-01-01T00:00:00Z');
  const status = (code: number, reason: string, extra: Record<string, unknown> = {}): string =>
    JSON.stringify({
      kind: 'Status',
      apiVersion: 'v1',
      metadata: {},
      status: 'Failure',
      message: `${reason} message`,
      reason,
      code,
      ...extra,
    });

  it.each([
    [
      'a 404 Status',
      new ApiException(404, 'x', status(404, 'NotFound'), {}),
      {
        kind: 'status',
        code: 404,
        reason: 'NotFound',
        message: 'NotFound message',
        retryAfterMs: undefined,
      },
      false,
    ],
    [
      'a 429 with Retry-After seconds',
      new ApiException(429, 'x', status(429, 'TooManyRequests'), { 'retry-after': '7' }),
      { kind: 'status', code: 429, retryAfterMs: 7000 },
      true,
    ],
    [
      'a 503 with an HTTP-date Retry-After',
      new ApiException(503, 'x', '', { 'retry-after': 'Thu, 01 Jan 2026 00:00:30 GMT' }),
      { kind: 'status', code: 503, retryAfterMs: 30_000 },
      true,
    ],
    [
      'a 429 with only details.retryAfterSeconds',
      new ApiException(
        429,
        'x',
        status(429, 'TooManyRequests', { details: { retryAfterSeconds: 2 } }),
        {},
      ),
      { kind: 'status', retryAfterMs: 2000 },
      true,
    ],
    [
      'a 401 without a body',
      new ApiException(401, 'Unauthorized', undefined, {}),
      { kind: 'status', code: 401, reason: undefined },
      false,
    ],
    [
      'a refused connection',
      Object.assign(new Error('request to https://x failed'), {
        name: 'FetchError',
        type: 'system',
        code: 'ECONNREFUSED',
      }),
      { kind: 'network', detail: 'ECONNREFUSED' },
      true,
    ],
    [
      'an aborted request',
      Object.assign(new Error('The user aborted a request.'), {
        name: 'AbortError',
        type: 'aborted',
      }),
      { kind: 'timeout' },
      true,
    ],
  ])('reads %s', (_what, err, expected, retryable) => {
    const failure = classifyKubeError(err, now);
    expect(failure).toMatchObject(expected);
    expect(isRetryable(failure)).toBe(retryable);
  });
});
