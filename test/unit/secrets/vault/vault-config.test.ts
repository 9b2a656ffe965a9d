import { promises as fs } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { silentLogger } from '../../../../src/shared/logger.js';
import { WardenError } from '../../../../src/shared/errors.js';
import {
  DEFAULT_SERVICE_ACCOUNT_TOKEN_PATH,
  parseVaultMetadata,
} from '../../../../src/secrets/stores/vault/vault-config.js';
import { createTestCa } from '../../../support/vault-test-pki.js';
import { createCapturedLogger, makeTempDir } from '../../../support/vault-store-fixtures.js';

const TOKEN = 'hvs.unit-test-token-value-0123456789';
let dir: string;
let caPem: string;

async function problemsOf(metadata: Record<string, string>): Promise<string> {
  try {
    await parseVaultMetadata(metadata, silentLogger);
  } catch (err) {
    if (err instanceof WardenError && err.code === 'ERR_SECRET_STORE_CONFIG') return err.message;
    throw err;
  }
  return 'accepted';
}

beforeAll(async () => {
  dir = await makeTempDir('config');
  caPem = (await createTestCa()).certPem;
});
afterAll(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

describe('Vault store metadata: defaults', () => {
  it("applies Dapr's defaults: local address, secret engine, dapr prefix, KV v2, map values, token auth", async () => {
    const config = await parseVaultMetadata({ vaultToken: TOKEN }, silentLogger);
    expect(config.address.href).toBe('https://127.0.0.1:8200/');
    expect(config.enginePath).toEqual(['secret']);
    expect(config.kvPrefix).toEqual(['dapr']);
    expect(config.kvVersion).toBe(2);
    expect(config.valueType).toBe('map');
    expect(config.namespace).toBeUndefined();
    expect(config.auth).toEqual({ method: 'token', source: 'inline', token: TOKEN });
    expect(config.tls).toEqual({ ca: undefined, rejectUnauthorized: true, serverName: undefined });
    expect(Object.isFrozen(config)).toBe(true);
  });

  it('drops the prefix when vaultKVUsePrefix is false, as Dapr does', async () => {
    const config = await parseVaultMetadata(
      { vaultToken: TOKEN, vaultKVPrefix: 'ignored', vaultKVUsePrefix: 'false' },
      silentLogger,
    );
    expect(config.kvPrefix).toEqual([]);
  });

  it('defaults the Kubernetes mount and service-account token path', async () => {
    const config = await parseVaultMetadata(
      { vaultAuthMethod: 'kubernetes', vaultKubernetesRole: 'app' },
      silentLogger,
    );
    expect(config.auth).toEqual({
      method: 'kubernetes',
      role: 'app',
      mountPath: ['kubernetes'],
      serviceAccountTokenPath: DEFAULT_SERVICE_ACCOUNT_TOKEN_PATH,
    });
  });

  it('takes a namespace with slashes at the ends and nested KV settings', async () => {
    const config = await parseVaultMetadata(
      {
        vaultToken: TOKEN,
        vaultNamespace: '/team-a/apps/',
        enginePath: 'kv/team',
        vaultKVVersion: '1',
        vaultValueType: 'text',
      },
      silentLogger,
    );
    expect([config.namespace, config.enginePath, config.kvVersion, config.valueType]).toEqual([
      'team-a/apps',
      ['kv', 'team'],
      1,
      'text',
    ]);
  });
});

describe('Vault store metadata: validation', () => {
  it('reports every problem at once, naming fields and never the token value', async () => {
    const message = await problemsOf({
      vaultAddr: 'ftp://vault',
      vaultToken: TOKEN,
      vaultTokenMountPath: '/tmp/token',
      vaultValueType: 'yaml',
      vaultKVVersion: '3',
      skipVerify: 'maybe',
      enginePath: '../escape',
      tlsServerName: 'not a host',
    });
    for (const fragment of [
      'vaultAddr',
      'exactly one of vaultToken and vaultTokenMountPath',
      'vaultValueType',
      'vaultKVVersion',
      'skipVerify',
      'enginePath',
      'tlsServerName',
    ]) {
      expect(message).toContain(fragment);
    }
    expect(message).not.toContain(TOKEN);
  });

  it.each([
    ['no token at all', {}, 'needs exactly one of vaultToken and vaultTokenMountPath'],
    [
      'an unknown auth method',
      { vaultAuthMethod: 'ldap' },
      'vaultAuthMethod must be token, kubernetes or approle',
    ],
    [
      'kubernetes without a role',
      { vaultAuthMethod: 'kubernetes' },
      'vaultKubernetesRole is required',
    ],
    [
      'kubernetes with a token',
      { vaultAuthMethod: 'kubernetes', vaultKubernetesRole: 'r', vaultToken: TOKEN },
      'vaultToken must not be set',
    ],
    [
      'a kubernetes role under token auth',
      { vaultToken: TOKEN, vaultKubernetesRole: 'r' },
      'vaultKubernetesRole only apply with vaultAuthMethod kubernetes',
    ],
    [
      'approle without a role id',
      { vaultAuthMethod: 'approle', vaultAppRoleSecretId: 's' },
      'vaultAppRoleRoleId is required',
    ],
    [
      'approle without a secret id',
      { vaultAuthMethod: 'approle', vaultAppRoleRoleId: 'r' },
      'needs exactly one of vaultAppRoleSecretId and vaultAppRoleSecretIdPath',
    ],
    [
      'approle with both secret id sources',
      {
        vaultAuthMethod: 'approle',
        vaultAppRoleRoleId: 'r',
        vaultAppRoleSecretId: 's',
        vaultAppRoleSecretIdPath: '/f',
      },
      'not both',
    ],
    ['a token with a space', { vaultToken: 'two words' }, 'vaultToken must be a single line'],
    [
      'credentials in the address',
      { vaultToken: TOKEN, vaultAddr: 'https://u:p@vault:8200' },
      'vaultAddr must not carry credentials',
    ],
    [
      'a query in the address',
      { vaultToken: TOKEN, vaultAddr: 'https://vault:8200/?x=1' },
      'query',
    ],
    ['a traversing prefix', { vaultToken: TOKEN, vaultKVPrefix: 'dapr/../other' }, 'vaultKVPrefix'],
    ['an encoded prefix', { vaultToken: TOKEN, vaultKVPrefix: '%2e%2e' }, 'vaultKVPrefix'],
    [
      'a traversing auth mount',
      {
        vaultAuthMethod: 'kubernetes',
        vaultKubernetesRole: 'r',
        vaultKubernetesMountPath: '../sys',
      },
      'vaultKubernetesMountPath',
    ],
    ['an invalid namespace', { vaultToken: TOKEN, vaultNamespace: 'a//b' }, 'vaultNamespace'],
    [
      'an empty engine path',
      { vaultToken: TOKEN, enginePath: '/' },
      'enginePath must not be empty',
    ],
  ])('refuses %s', async (_what, metadata, fragment) => {
    expect(await problemsOf(metadata as Record<string, string>)).toContain(fragment);
  });

  it('warns about unknown fields instead of failing (Dapr ignores them too)', async () => {
    const captured = createCapturedLogger();
    await parseVaultMetadata(
      { vaultToken: TOKEN, someFutureField: 'x', cacheTTL: '30s' },
      captured.logger,
    );
    expect(captured.text()).toContain('someFutureField');
    expect(captured.text()).not.toContain('cacheTTL'); // the resolver's field, not unknown
  });

  it.each([
    ['absent', undefined, 60_000],
    ['30s', '30s', 30_000],
    ['0s (off)', '0s', 0],
  ])('reads versionCheckInterval %s', async (_what, value, ms) => {
    const config = await parseVaultMetadata(
      { vaultToken: TOKEN, ...(value === undefined ? {} : { versionCheckInterval: value }) },
      silentLogger,
    );
    expect(config.versionCheckIntervalMs).toBe(ms);
  });

  it('refuses a versionCheckInterval that is not a duration', async () => {
    expect(await problemsOf({ vaultToken: TOKEN, versionCheckInterval: 'often' })).toContain(
      'versionCheckInterval is not a duration',
    );
  });

  it('logs a warning when skipVerify is on and does not load CA material', async () => {
    const captured = createCapturedLogger();
    const config = await parseVaultMetadata(
      { vaultToken: TOKEN, skipVerify: 'true', caCert: '/does/not/exist' },
      captured.logger,
    );
    expect(config.tls.rejectUnauthorized).toBe(false);
    expect(captured.text()).toMatch(/skipVerify is true/);
    expect(captured.text()).not.toContain(TOKEN);
  });
});

describe('Vault store metadata: CA material', () => {
  it('loads caPem inline, including the "\\n"-escaped spelling from Dapr docs', async () => {
    expect(
      (await parseVaultMetadata({ vaultToken: TOKEN, caPem }, silentLogger)).tls.ca,
    ).toHaveLength(1);
    const escaped = caPem.trim().replace(/\n/g, '\\n');
    expect(
      (await parseVaultMetadata({ vaultToken: TOKEN, caPem: escaped }, silentLogger)).tls.ca,
    ).toHaveLength(1);
  });

  it('loads caCert from a file and every PEM file of a caPath directory, skipping other files', async () => {
    const file = path.join(dir, 'ca.pem');
    await fs.writeFile(file, caPem);
    expect(
      (await parseVaultMetadata({ vaultToken: TOKEN, caCert: file }, silentLogger)).tls.ca,
    ).toHaveLength(1);
    const caDir = path.join(dir, 'cas');
    await fs.mkdir(caDir);
    await fs.writeFile(path.join(caDir, 'one.pem'), caPem);
    await fs.writeFile(path.join(caDir, 'two.crt'), (await createTestCa('second')).certPem);
    await fs.writeFile(path.join(caDir, 'README'), 'not a certificate');
    await fs.mkdir(path.join(caDir, '..data'));
    expect(
      (await parseVaultMetadata({ vaultToken: TOKEN, caPath: caDir }, silentLogger)).tls.ca,
    ).toHaveLength(2);
  });

  it.each([
    [
      'caPem without a certificate',
      () => ({ caPem: 'hello' }),
      'caPem holds no PEM CERTIFICATE block',
    ],
    [
      'caPem with a broken certificate',
      () => ({ caPem: '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----' }),
      'not a valid X.509',
    ],
    [
      'a missing caCert file',
      () => ({ caCert: path.join(dir, 'missing.pem') }),
      'caCert: cannot read file',
    ],
    [
      'a missing caPath directory',
      () => ({ caPath: path.join(dir, 'missing-dir') }),
      'caPath: cannot read directory',
    ],
  ])('refuses %s', async (_what, extra, fragment) => {
    expect(await problemsOf({ vaultToken: TOKEN, ...extra() })).toContain(fragment);
  });

  it('refuses a caPath directory with no certificate in it', async () => {
    const empty = path.join(dir, 'empty');
    await fs.mkdir(empty, { recursive: true });
    expect(await problemsOf({ vaultToken: TOKEN, caPath: empty })).toContain(
      'holds no PEM certificate',
    );
  });
});
