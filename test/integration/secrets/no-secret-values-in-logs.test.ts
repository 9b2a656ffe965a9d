import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { readEnv } from '../../../src/shared/env.js';
import { writeFileAtomic } from '../../../src/shared/atomic-file.js';
import { runCli } from '../../../src/cli/run.js';
import { SecretsApiServer } from '../../../src/secrets/api/secrets-api-server.js';
import { resolveComponents } from '../../../src/secrets/resolve/resolve-components.js';
import { parseSecretsConfiguration } from '../../../src/secrets/secrets-configuration.js';
import { SecretsProblemsError } from '../../../src/secrets/problems.js';
import { bufferLogger } from '../../support/log-buffer.js';
import { memoryIo } from '../../support/cli-io.js';
import { rawRequest } from '../../support/https-client.js';
import { makeTempDir } from '../../support/temp-directory.js';
import { waitFor } from '../../support/wait-for.js';

/** Every value seeded anywhere in this test; none may appear in any log line. */
const CANARIES = {
  file: 'canary-file-value-7f3a',
  nested: 'canary-nested-value-91bc',
  env: 'canary-env-value-4d2e',
  envRef: 'canary-envref-value-c0de',
  denied: 'canary-denied-value-5511',
  brokenReload: 'canary-broken-reload-a1a1',
  manifest: 'canary-manifest-plaintext-b2b2',
  big: 'canary-big-value-e3e3',
};

describe('no secret value ever reaches a log line', () => {
  let dir: { path: string; remove(): Promise<void> };
  const log = bufferLogger('trace');
  const component = (name: string, type: string, metadata: unknown[], extra: Record<string, unknown> = {}) => ({
    apiVersion: 'dapr.io/v1alpha1',
    kind: 'Component',
    metadata: { name },
    spec: { type, version: 'v1', metadata },
    ...extra,
  });

  beforeAll(async () => {
    dir = await makeTempDir('no-leak');
  });
  afterAll(async () => {
    await dir.remove();
  });

  it('runs resolution, reloads, the API and the CLI at trace level, then finds no value in the logs', async () => {
    const file = path.join(dir.path, 'secrets.json');
    await writeFile(
      file,
      JSON.stringify({
        redis: { 'redis-password': CANARIES.file, nested: { deep: CANARIES.nested } },
        denied: { denied: CANARIES.denied },
        big: { big: `${CANARIES.big}${'x'.repeat(2 * 1024 * 1024)}` },
      }),
    );
    const env = readEnv({ APP_redis: CANARIES.env, REF_VALUE: CANARIES.envRef });
    const manifests = [
      component('files', 'secretstores.local.file', [{ name: 'secretsFile', value: file }, { name: 'multiValued', value: 'true' }, { name: 'cacheTTL', value: '5s' }]),
      component('envs', 'secretstores.local.env', [{ name: 'prefix', value: 'APP_' }]),
      component(
        'redis',
        'state.redis',
        [
          { name: 'redisPassword', secretKeyRef: { name: 'redis', key: 'redis-password' } },
          { name: 'nested', secretKeyRef: { name: 'redis', key: 'nested:deep' } },
          { name: 'fromEnvRef', envRef: 'REF_VALUE' },
        ],
        { auth: { secretStore: 'files' } },
      ),
      component('redis-env', 'state.redis', [{ name: 'redisPassword', secretKeyRef: { name: 'redis' } }], { auth: { secretStore: 'envs' } }),
    ];

    // 1. a successful resolution
    const resolved = await resolveComponents({
      manifests,
      config: parseSecretsConfiguration(
        { apiVersion: 'dapr.io/v1alpha1', kind: 'Configuration', spec: { secrets: { scopes: [{ storeName: 'files', deniedSecrets: ['denied'] }] } } },
        'config',
      ).scopes,
      mode: 'standalone',
      env,
      logger: log.logger,
    });
    expect(resolved.components.find((c) => c.name === 'redis')?.metadata.map((m) => m.value)).toEqual([CANARIES.file, CANARIES.nested, CANARIES.envRef]);

    // 2. failed resolutions: a missing key, a key of an oversized secret, a cycle
    await expect(
      resolveComponents({
        manifests: [
          manifests[0],
          component('bad', 'state.redis', [{ name: 'p', secretKeyRef: { name: 'redis', key: 'nope' } }, { name: 'q', secretKeyRef: { name: 'big' } }], { auth: { secretStore: 'files' } }),
          component('a', 'secretstores.local.env', [{ name: 'x', secretKeyRef: { name: 'redis' } }], { auth: { secretStore: 'b' } }),
          component('b', 'secretstores.local.env', [{ name: 'x', secretKeyRef: { name: 'redis' } }], { auth: { secretStore: 'a' } }),
        ],
        mode: 'standalone',
        env,
        logger: log.logger,
      }),
    ).rejects.toBeInstanceOf(SecretsProblemsError);

    // 3. the API over plain HTTP on loopback: reads, bulk, refusals, errors
    const server = new SecretsApiServer({ stores: resolved.stores, scopes: resolved.scopes, transport: { kind: 'insecure-http' }, port: 0, logger: log.logger });
    const { port } = await server.listen();
    try {
      for (const p of [
        '/v1.0/secrets/files/redis',
        '/v1.0/secrets/files/redis',
        '/v1.0/secrets/files/bulk',
        '/v1.0/secrets/envs/redis',
        '/v1.0/secrets/envs/bulk',
        '/v1.0/secrets/files/denied',
        '/v1.0/secrets/files/big',
        '/v1.0/secrets/files/missing',
        '/v1.0/secrets/files/..%2f..%2fetc',
        '/v1.0/secrets/nostore/redis',
      ]) {
        await rawRequest(port, p);
      }
      expect((await rawRequest(port, '/v1.0/secrets/files/redis')).body).toEqual({ 'redis-password': CANARIES.file, 'nested:deep': CANARIES.nested });
    } finally {
      await server.close();
    }

    // 4. the secrets file changes to something broken that holds a value
    await writeFile(file, `{"redis": {"redis-password": "${CANARIES.brokenReload}"`);
    await waitFor(() => (log.text().includes('could not be loaded') ? true : undefined), 5000, 'reload failure');
    await writeFileAtomic(file, JSON.stringify({ redis: { 'redis-password': CANARIES.file, nested: { deep: CANARIES.nested } } }));
    await waitFor(() => (log.text().includes('secrets file reloaded') ? true : undefined), 5000, 'reload');
    await resolved.close();

    // 5. a manifest with a YAML error next to a plain-text value
    const resources = path.join(dir.path, 'resources');
    await mkdir(resources);
    await writeFile(path.join(resources, 'broken.yaml'), `apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata: {name: x\n  password: ${CANARIES.manifest}: y\n`);
    await expect(resolveComponents({ resourcesPath: resources, mode: 'standalone', env, logger: log.logger })).rejects.toBeInstanceOf(SecretsProblemsError);

    // 6. the CLI, masked, at debug level
    const cliResources = path.join(dir.path, 'cli');
    await mkdir(cliResources);
    await writeFile(path.join(cliResources, 'all.json'), JSON.stringify(manifests[0]));
    await writeFile(path.join(cliResources, 'redis.json'), JSON.stringify(manifests[2]));
    const io = memoryIo({ REF_VALUE: CANARIES.envRef });
    expect(await runCli(['secrets', 'resolve', '--resources-path', cliResources, '--log-level', 'debug'], io)).toBe(0);

    const everything = `${log.text()}\n${io.err()}\n${io.out()}`;
    expect(log.text()).toContain('secretKeyRef resolved');
    expect(log.text()).toContain('secrets API: read');
    for (const canary of Object.values(CANARIES)) expect([canary, everything.includes(canary)]).toEqual([canary, false]);
  }, 30_000);
});
