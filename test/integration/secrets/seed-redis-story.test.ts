import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdir, writeFile } from 'node:fs/promises';
import { parse } from 'yaml';
import path from 'node:path';
import { readEnv } from '../../../src/shared/env.js';
import { resolveComponents } from '../../../src/secrets/resolve/resolve-components.js';
import type { ResolvedComponent } from '../../../src/secrets/resolve/resolve-components.js';
import { redisCommands, startRedisServer, type RunningRedis } from '../../support/redis-server.js';
import { makeTempDir } from '../../support/temp-directory.js';

const REDIS_PASSWORD = 'seed-story-R3dis-pw';

/** The seed article's Component, verbatim apart from the host and the store it reads from. */
function seedComponent(host: string, secretStore: string): string {
  return `apiVersion: dapr.io/v1alpha1
kind: Component
metadata:
  name: redis
spec:
  type: state.redis
  metadata:
  - name: redisHost
    value: ${host}
  - name: redisPassword
    secretKeyRef:
      name: redis
      key: redis-password
auth:
  secretStore: ${secretStore}
`;
}

function metadataValue(component: ResolvedComponent | undefined, name: string): string {
  const value = component?.metadata.find((m) => m.name === name)?.value;
  if (value === undefined) throw new Error(`no ${name}`);
  return value;
}

/** What a state.redis component would do with its resolved metadata: connect and AUTH. */
async function authWithResolvedComponent(component: ResolvedComponent | undefined): Promise<string[]> {
  const host = metadataValue(component, 'redisHost');
  const port = Number(host.split(':')[1]);
  return redisCommands(port, [['AUTH', metadataValue(component, 'redisPassword')], ['PING']]);
}

describe('the seed’s story: a state.redis Component whose password comes from a secret store', () => {
  let redis: RunningRedis;
  let dir: { path: string; remove(): Promise<void> };

  beforeAll(async () => {
    redis = await startRedisServer({ password: REDIS_PASSWORD });
    dir = await makeTempDir('seed-story');
  });
  afterAll(async () => {
    await redis.stop();
    await dir.remove();
  });

  it('refuses a client that has not authenticated (the password is really required)', async () => {
    expect(await redisCommands(redis.port, [['PING']])).toEqual([expect.stringMatching(/^-NOAUTH/)]);
  });

  it('resolves redisPassword from the file store and authenticates against redis-server', async () => {
    const resources = path.join(dir.path, 'file-components');
    await writeFile(path.join(dir.path, 'secrets.json'), JSON.stringify({ redis: { 'redis-password': REDIS_PASSWORD } }));
    await mkdir(resources, { recursive: true });
    await writeFile(
      path.join(resources, 'secretstore.yaml'),
      `apiVersion: dapr.io/v1alpha1
kind: Component
metadata:
  name: localsecretstore
spec:
  type: secretstores.local.file
  version: v1
  metadata:
  - name: secretsFile
    value: ${path.join(dir.path, 'secrets.json')}
  - name: multiValued
    value: "true"
`,
    );
    await writeFile(path.join(resources, 'redis.yaml'), seedComponent(`127.0.0.1:${redis.port}`, 'localsecretstore'));
    const resolved = await resolveComponents({ resourcesPath: resources, mode: 'standalone', env: readEnv({}) });
    try {
      const component = resolved.components.find((c) => c.name === 'redis');
      expect(await authWithResolvedComponent(component)).toEqual(['+OK', '+PONG']);
    } finally {
      await resolved.close();
    }
  });

  it('resolves redisPassword from the env store and authenticates against redis-server', async () => {
    // the env store has one key per secret, named like the secret: key "redis" in secret "redis"
    const manifests = [
      { apiVersion: 'dapr.io/v1alpha1', kind: 'Component', metadata: { name: 'envstore' }, spec: { type: 'secretstores.local.env', version: 'v1', metadata: [{ name: 'prefix', value: 'APP_SECRET_' }] } },
      {
        apiVersion: 'dapr.io/v1alpha1',
        kind: 'Component',
        metadata: { name: 'redis' },
        spec: {
          type: 'state.redis',
          metadata: [
            { name: 'redisHost', value: `127.0.0.1:${redis.port}` },
            { name: 'redisPassword', secretKeyRef: { name: 'redis' } },
          ],
        },
        auth: { secretStore: 'envstore' },
      },
    ];
    const resolved = await resolveComponents({ manifests, mode: 'standalone', env: readEnv({ APP_SECRET_redis: REDIS_PASSWORD }) });
    try {
      expect(await authWithResolvedComponent(resolved.components.find((c) => c.name === 'redis'))).toEqual(['+OK', '+PONG']);
    } finally {
      await resolved.close();
    }
  });

  it('a wrong password in the store is refused by Redis', async () => {
    await writeFile(path.join(dir.path, 'wrong.json'), JSON.stringify({ redis: { 'redis-password': 'not-the-password' } }));
    const manifests = [
      {
        apiVersion: 'dapr.io/v1alpha1',
        kind: 'Component',
        metadata: { name: 'wrongstore' },
        spec: { type: 'secretstores.local.file', metadata: [{ name: 'secretsFile', value: path.join(dir.path, 'wrong.json') }, { name: 'multiValued', value: 'true' }] },
      },
    ];
    const resolved = await resolveComponents({
      manifests: [...manifests, parse(seedComponent(`127.0.0.1:${redis.port}`, 'wrongstore'))],
      mode: 'standalone',
      env: readEnv({}),
    });
    try {
      expect(await authWithResolvedComponent(resolved.components.find((c) => c.name === 'redis'))).toEqual([
        expect.stringMatching(/^-WRONGPASS/),
        expect.stringMatching(/^-NOAUTH/),
      ]);
    } finally {
      await resolved.close();
    }
  });
});
