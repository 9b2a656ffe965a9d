import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { readEnv } from '../../../src/shared/env.js';
import { SecretsApiServer } from '../../../src/secrets/api/secrets-api-server.js';
import { resolveComponents, type ResolvedResources } from '../../../src/secrets/resolve/resolve-components.js';
import { SECRET_STORE_TYPES } from '../../../src/secrets/store-registry.js';
import { SecretStoreSet } from '../../../src/secrets/secret-store-set.js';
import { NO_SECRET_SCOPES } from '../../../src/secrets/scoping.js';
import { parseSecretsConfiguration } from '../../../src/secrets/secrets-configuration.js';
import type { SecretStoreRegistration } from '../../../src/secrets/store-factory.js';
import { bufferLogger } from '../../support/log-buffer.js';
import { createTestCa, type TestCa, type TestCertificate } from '../../support/mtls-test-pki.js';
import { rawRequest, type ClientTls } from '../../support/https-client.js';
import { makeTempDir } from '../../support/temp-directory.js';

const TD = 'cluster.local';
const spiffe = (app: string, ns = 'default') => `spiffe://${TD}/ns/${ns}/${app}`;

/** A store that answers any name with the request metadata it was given, to see metadata.* arrive. */
const echoRegistration: SecretStoreRegistration = {
  type: 'secretstores.test.echo',
  create: async () => ({
    type: 'secretstores.test.echo',
    get: async (name, metadata) => ({ name, ...(metadata ?? {}) }),
    bulkGet: async (metadata) => ({ echo: { ...(metadata ?? {}) } }),
    features: () => ({ multipleKeyValuesPerSecret: true }),
    ready: () => true,
    close: async () => undefined,
  }),
};

const component = (name: string, type: string, metadata: Array<{ name: string; value: string }>, extra: Record<string, unknown> = {}) => ({
  apiVersion: 'dapr.io/v1alpha1',
  kind: 'Component',
  metadata: { name },
  spec: { type, version: 'v1', metadata },
  ...extra,
});

describe('the secrets API over mutual TLS', () => {
  let dir: { path: string; remove(): Promise<void> };
  let ca: TestCa;
  let foreignCa: TestCa;
  let server: SecretsApiServer;
  let resources: ResolvedResources;
  let port: number;
  const clients: Record<string, ClientTls> = {};
  const log = bufferLogger('debug');

  beforeAll(async () => {
    dir = await makeTempDir('secrets-api');
    const file = path.join(dir.path, 'secrets.json');
    await writeFile(
      file,
      JSON.stringify({ redis: { 'redis-password': 'api-redis-pw' }, 'api-key': { 'api-key': 'api-key-value' }, 'denied-secret': { x: 'denied-value' } }),
    );
    const scopes = parseSecretsConfiguration(
      { apiVersion: 'dapr.io/v1alpha1', kind: 'Configuration', spec: { secrets: { scopes: [{ storeName: 'localsecretstore', deniedSecrets: ['denied-secret'] }] } } },
      'config',
    ).scopes;
    resources = await resolveComponents({
      manifests: [
        component('localsecretstore', 'secretstores.local.file', [{ name: 'secretsFile', value: file }, { name: 'multiValued', value: 'true' }], {
          scopes: ['allowed-app'],
        }),
        component('echo', 'secretstores.test.echo', []),
        { ...component('prodonly', 'secretstores.test.echo', []), metadata: { name: 'prodonly', namespace: 'prod' } },
      ],
      config: scopes,
      mode: 'standalone',
      env: readEnv({}),
      registry: [...SECRET_STORE_TYPES, echoRegistration],
      logger: log.logger,
    });
    ca = await createTestCa();
    foreignCa = await createTestCa('Foreign CA');
    const serverCert = await ca.issue({ usage: 'server', dns: ['localhost'], ips: ['127.0.0.1'], commonName: 'first' });
    const client = async (issuer: TestCa, options: Parameters<TestCa['issue']>[0]): Promise<ClientTls> => {
      const issued: TestCertificate = await issuer.issue(options);
      return { ca: ca.certPem, cert: issued.certPem, key: issued.keyPem };
    };
    clients.allowed = await client(ca, { usage: 'client', uris: [spiffe('allowed-app')] });
    clients.prod = await client(ca, { usage: 'client', uris: [spiffe('allowed-app', 'prod')] });
    clients.other = await client(ca, { usage: 'client', uris: [spiffe('other-app')] });
    clients.noSpiffe = await client(ca, { usage: 'client', dns: ['allowed-app.default.svc'] });
    clients.twoUris = await client(ca, { usage: 'client', uris: [spiffe('allowed-app'), spiffe('other-app')] });
    clients.wrongShape = await client(ca, { usage: 'client', uris: [`spiffe://${TD}/allowed-app`] });
    clients.foreign = await client(foreignCa, { usage: 'client', uris: [spiffe('allowed-app')] });
    clients.none = { ca: ca.certPem };
    server = new SecretsApiServer({
      stores: resources.stores,
      scopes: resources.scopes,
      transport: { kind: 'mtls', tls: { key: serverCert.keyPem, cert: serverCert.certPem, ca: ca.certPem }, trustDomain: TD },
      port: 0,
      logger: log.logger,
    });
    port = (await server.listen()).port;
  });

  afterAll(async () => {
    await server.close();
    await resources.close();
    await dir.remove();
  });

  const get = (p: string, client = 'allowed', method = 'GET') => rawRequest(port, p, { tls: clients[client], method });

  it('gives an app inside the Component scopes its secret', async () => {
    const res = await get('/v1.0/secrets/localsecretstore/redis');
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ 'redis-password': 'api-redis-pw' });
    expect(res.headers['content-type']).toBe('application/json');
  });

  it('gives bulk results filtered by the Configuration scopes', async () => {
    const res = await get('/v1.0/secrets/localsecretstore/bulk');
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ redis: { 'redis-password': 'api-redis-pw' }, 'api-key': { 'api-key': 'api-key-value' } });
  });

  it('lets an app from the Component’s own namespace use a namespaced store', async () => {
    expect((await get('/v1.0/secrets/prodonly/x', 'prod')).status).toBe(200);
  });

  it('passes metadata.* query parameters to the store, decoded once', async () => {
    const res = await get('/v1.0/secrets/echo/db?metadata.version_id=3&metadata.namespace=prod%2Fa&ignored=1');
    expect(res.body).toEqual({ name: 'db', version_id: '3', namespace: 'prod/a' });
  });

  it.each([
    ['an app outside the Component scopes', '/v1.0/secrets/localsecretstore/redis', 'other', 403, 'ERR_PERMISSION_DENIED'],
    ['an app outside the Component scopes asking for bulk', '/v1.0/secrets/localsecretstore/bulk', 'other', 403, 'ERR_PERMISSION_DENIED'],
    ['a name the Configuration denies', '/v1.0/secrets/localsecretstore/denied-secret', 'allowed', 403, 'ERR_PERMISSION_DENIED'],
    ['an unknown store', '/v1.0/secrets/nosuchstore/redis', 'allowed', 401, 'ERR_SECRET_STORE_NOT_FOUND'],
    ['a secret that does not exist', '/v1.0/secrets/localsecretstore/missing', 'allowed', 500, 'ERR_SECRET_GET'],
    ['an encoded traversal', '/v1.0/secrets/localsecretstore/..%2f..%2fetc', 'allowed', 400, 'ERR_MALFORMED_REQUEST'],
    ['an encoded traversal to an absolute path', '/v1.0/secrets/localsecretstore/%2e%2e%2F%2e%2e%2Fetc%2Fpasswd', 'allowed', 400, 'ERR_MALFORMED_REQUEST'],
    ['a double-encoded traversal', '/v1.0/secrets/localsecretstore/%252e%252e%252fetc', 'allowed', 400, 'ERR_MALFORMED_REQUEST'],
    ['a raw parent segment', '/v1.0/secrets/localsecretstore/..', 'allowed', 400, 'ERR_MALFORMED_REQUEST'],
    ['an app from another namespace than the Component’s', '/v1.0/secrets/prodonly/x', 'allowed', 403, 'ERR_PERMISSION_DENIED'],
    ['a client certificate without a SPIFFE ID', '/v1.0/secrets/localsecretstore/redis', 'noSpiffe', 403, 'ERR_PERMISSION_DENIED'],
    ['a client certificate with two URI SANs', '/v1.0/secrets/localsecretstore/redis', 'twoUris', 403, 'ERR_PERMISSION_DENIED'],
    ['a SPIFFE ID that is not /ns/<ns>/<app>', '/v1.0/secrets/localsecretstore/redis', 'wrongShape', 403, 'ERR_PERMISSION_DENIED'],
  ])('refuses %s', async (_what, p, client, status, errorCode) => {
    const res = await get(p, client);
    expect(res.status).toBe(status);
    expect(res.body).toEqual({ errorCode, message: expect.any(String) });
    expect(JSON.stringify(res.body)).not.toMatch(/api-redis-pw|denied-value/);
  });

  it('says which secret was not found, as Dapr’s ERR_SECRET_GET does', async () => {
    const res = await get('/v1.0/secrets/localsecretstore/missing');
    expect((res.body as { message: string }).message).toBe(
      'failed getting secret with key missing from secret store localsecretstore: secret "missing" not found in store "localsecretstore"',
    );
  });

  it('answers 405 for a method other than GET and 404 for an unknown path', async () => {
    const post = await get('/v1.0/secrets/localsecretstore/redis', 'allowed', 'POST');
    expect(post.status).toBe(405);
    expect(post.headers.allow).toBe('GET');
    expect((await get('/v1.0/state/x')).status).toBe(404);
    expect((await get('/v1.0/secrets/localsecretstore/a/b')).status).toBe(404);
  });

  it('refuses a client without a certificate during TLS', async () => {
    await expect(get('/v1.0/secrets/localsecretstore/redis', 'none')).rejects.toThrow(/certificate required/);
  });

  it('refuses a client certificate from a foreign CA during TLS', async () => {
    const refusals = (): number => (log.text().match(/TLS handshake refused/g) ?? []).length;
    const before = refusals();
    // TLS 1.3: the client has finished its side before the server checks its certificate, and
    // Node's server then drops the connection without an alert, so the client sees a hang-up
    await expect(get('/v1.0/secrets/localsecretstore/redis', 'foreign')).rejects.toThrow(/socket hang up|unknown ca|ECONNRESET/);
    expect(refusals()).toBe(before + 1);
  });

  it('refuses a SPIFFE ID in another trust domain', async () => {
    const issued = await ca.issue({ usage: 'client', uris: ['spiffe://other.domain/ns/default/allowed-app'] });
    const res = await rawRequest(port, '/v1.0/secrets/localsecretstore/redis', { tls: { ca: ca.certPem, cert: issued.certPem, key: issued.keyPem } });
    expect(res.status).toBe(403);
  });

  it('swaps its TLS material for new connections without restarting', async () => {
    expect((await get('/v1.0/secrets/localsecretstore/redis')).serverCommonName).toBe('first');
    const renewed = await ca.issue({ usage: 'server', dns: ['localhost'], ips: ['127.0.0.1'], commonName: 'second' });
    server.setTlsMaterial({ key: renewed.keyPem, cert: renewed.certPem, ca: ca.certPem });
    const res = await get('/v1.0/secrets/localsecretstore/redis');
    expect(res.status).toBe(200);
    expect(res.serverCommonName).toBe('second');
  });

  it('never logged a secret value', () => {
    expect(log.text()).not.toMatch(/api-redis-pw|api-key-value|denied-value/);
    expect(log.text()).toContain('caller refused');
  });
});

describe('the secrets API without stores or over plain HTTP', () => {
  it('answers ERR_SECRET_STORES_NOT_CONFIGURED when no store is configured', async () => {
    const server = new SecretsApiServer({ stores: new SecretStoreSet([]), scopes: NO_SECRET_SCOPES, transport: { kind: 'insecure-http' }, port: 0 });
    const { port } = await server.listen();
    try {
      const res = await rawRequest(port, '/v1.0/secrets/any/x');
      expect(res.status).toBe(500);
      expect(res.body).toEqual({ errorCode: 'ERR_SECRET_STORES_NOT_CONFIGURED', message: 'secret store is not configured' });
    } finally {
      await server.close();
    }
  });

  it('refuses --insecure-http on an address that is not loopback', () => {
    expect(
      () => new SecretsApiServer({ stores: new SecretStoreSet([]), scopes: NO_SECRET_SCOPES, transport: { kind: 'insecure-http' }, listenAddress: '0.0.0.0' }),
    ).toThrow(expect.objectContaining({ code: 'ERR_CONFIG_INVALID' }));
  });

  it('over plain HTTP applies Configuration scopes, cannot apply Component scopes, and warns on start and per request', async () => {
    const dir = await makeTempDir('secrets-api-http');
    const file = path.join(dir.path, 's.json');
    await writeFile(file, JSON.stringify({ open: 'o-value', closed: 'c-value' }));
    const log = bufferLogger('debug');
    const resources = await resolveComponents({
      manifests: [component('local', 'secretstores.local.file', [{ name: 'secretsFile', value: file }], { scopes: ['some-app'] })],
      config: parseSecretsConfiguration(
        { apiVersion: 'dapr.io/v1alpha1', kind: 'Configuration', spec: { secrets: { scopes: [{ storeName: 'local', allowedSecrets: ['open'] }] } } },
        'c',
      ).scopes,
      mode: 'standalone',
      env: readEnv({}),
    });
    const server = new SecretsApiServer({ stores: resources.stores, scopes: resources.scopes, transport: { kind: 'insecure-http' }, port: 0, logger: log.logger });
    const { port } = await server.listen();
    try {
      expect((await rawRequest(port, '/v1.0/secrets/local/open')).body).toEqual({ open: 'o-value' });
      expect((await rawRequest(port, '/v1.0/secrets/local/closed')).status).toBe(403);
      expect(log.text()).toContain('PLAIN HTTP');
      expect(log.text().match(/unauthenticated plain-HTTP request/g)).toHaveLength(2);
      expect(log.text()).not.toMatch(/o-value|c-value/);
    } finally {
      await server.close();
      await resources.close();
      await dir.remove();
    }
  });
});
