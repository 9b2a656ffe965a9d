import https from 'node:https';
import tls from 'node:tls';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import { ManualClock } from '../../../../src/shared/clock.js';
import { VaultTestServer } from '../../../support/vault-test-server.js';

/**
 * The test server is only worth something if it answers like Vault. These checks talk to
 * it with bare node:https (not Warden's client) and compare against Vault's documented
 * paths, status codes and bodies.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- arbitrary JSON bodies under inspection
type AnyJson = any;

interface RawReply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: AnyJson;
}

let server: VaultTestServer;
const clock = new ManualClock(Date.UTC(2026, 0, 1));

function raw(
  method: string,
  path: string,
  options: { token?: string; namespace?: string; body?: unknown; bearer?: boolean } = {},
): Promise<RawReply> {
  const url = new URL(path, server.url);
  const payload = options.body === undefined ? undefined : JSON.stringify(options.body);
  const headers: Record<string, string> = {};
  if (options.token !== undefined) {
    if (options.bearer) headers.authorization = `Bearer ${options.token}`;
    else headers['x-vault-token'] = options.token;
  }
  if (options.namespace !== undefined) headers['x-vault-namespace'] = options.namespace;
  if (payload !== undefined) headers['content-type'] = 'application/json';
  return new Promise((resolve, reject) => {
    const req = https.request(
      url,
      { method, headers, ca: server.caPem, servername: 'localhost', agent: false },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: text === '' ? undefined : JSON.parse(text),
          });
        });
      },
    );
    req.on('error', reject);
    if (payload !== undefined) req.write(payload);
    req.end();
  });
}

/** Sends the LIST verb over a raw TLS socket, as the Vault CLI does. */
function rawList(path: string, token: string): Promise<{ status: number; body: AnyJson }> {
  const url = new URL(server.url);
  return new Promise((resolve, reject) => {
    const socket = tls.connect(
      { host: '127.0.0.1', port: Number(url.port), ca: server.caPem, servername: 'localhost' },
      () => {
        socket.write(`LIST ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Vault-Token: ${token}\r\n\r\n`);
      },
    );
    let text = '';
    socket.on('data', (d: Buffer) => (text += d.toString('utf8')));
    socket.on('end', () => {
      const [head = '', body = ''] = text.split('\r\n\r\n');
      resolve({
        status: Number(head.split(' ')[1]),
        body: body === '' ? undefined : JSON.parse(body),
      });
    });
    socket.on('error', reject);
  });
}

beforeAll(async () => {
  server = await VaultTestServer.start({ clock });
});
afterAll(async () => {
  await server.close();
});
beforeEach(() => {
  server.unseal();
  server.setRateLimited(undefined);
  server.setHealthMode('active');
});

describe('Vault test server: KV v2', () => {
  it('answers a read with the full response envelope and version metadata', async () => {
    server.setKv('secret', 'wire/app', { password: 'p1' });
    const reply = await raw('GET', '/v1/secret/data/wire/app', { token: server.rootToken });
    expect(reply.status).toBe(200);
    expect(reply.headers['content-type']).toBe('application/json');
    expect(Object.keys(reply.body).sort()).toEqual(
      [
        'auth',
        'data',
        'lease_duration',
        'lease_id',
        'mount_type',
        'renewable',
        'request_id',
        'warnings',
        'wrap_info',
      ].sort(),
    );
    expect(reply.body.lease_id).toBe('');
    expect(reply.body.renewable).toBe(false);
    expect(reply.body.data.data).toEqual({ password: 'p1' });
    expect(Object.keys(reply.body.data.metadata).sort()).toEqual([
      'created_time',
      'custom_metadata',
      'deletion_time',
      'destroyed',
      'version',
    ]);
    expect(reply.body.data.metadata.deletion_time).toBe('');
  });

  it('serves older versions, and answers 404 with null data and metadata for deleted and destroyed ones', async () => {
    server.setKv('secret', 'wire/versions', { v: '1' });
    server.setKv('secret', 'wire/versions', { v: '2' });
    server.setKv('secret', 'wire/versions', { v: '3' });
    server.deleteVersion('secret', 'wire/versions', 2);
    server.destroyVersion('secret', 'wire/versions', 3);
    const v1 = await raw('GET', '/v1/secret/data/wire/versions?version=1', {
      token: server.rootToken,
    });
    expect([v1.status, v1.body.data.data]).toEqual([200, { v: '1' }]);
    const v2 = await raw('GET', '/v1/secret/data/wire/versions?version=2', {
      token: server.rootToken,
    });
    expect(v2.status).toBe(404);
    expect(v2.body.data.data).toBeNull();
    expect(v2.body.data.metadata.deletion_time).not.toBe('');
    const latest = await raw('GET', '/v1/secret/data/wire/versions', { token: server.rootToken });
    expect(latest.status).toBe(404);
    expect(latest.body.data.metadata).toMatchObject({ destroyed: true, version: 3 });
    const missing = await raw('GET', '/v1/secret/data/wire/versions?version=9', {
      token: server.rootToken,
    });
    expect([missing.status, missing.body]).toEqual([404, { errors: [] }]);
  });

  it('answers a missing secret with 404 and an empty errors array', async () => {
    expect(await raw('GET', '/v1/secret/data/nope', { token: server.rootToken })).toMatchObject({
      status: 404,
      body: { errors: [] },
    });
  });

  it('writes with POST, soft-deletes the latest version with DELETE, and warns on unversioned paths', async () => {
    const write = await raw('POST', '/v1/secret/data/wire/written', {
      token: server.rootToken,
      body: { data: { a: 'b' } },
    });
    expect(write.status).toBe(200);
    expect(write.body.data).toMatchObject({ version: 1, destroyed: false, deletion_time: '' });
    expect(
      (await raw('DELETE', '/v1/secret/data/wire/written', { token: server.rootToken })).status,
    ).toBe(204);
    expect(
      (await raw('GET', '/v1/secret/data/wire/written', { token: server.rootToken })).status,
    ).toBe(404);
    const unversioned = await raw('GET', '/v1/secret/wire/written', { token: server.rootToken });
    expect(unversioned.status).toBe(404);
    expect(unversioned.body.warnings[0]).toMatch(
      /Invalid path for a versioned K\/V secrets engine/,
    );
  });

  it('lists keys with "dir/" entries through the LIST verb and through GET ?list=true, and 404s an empty folder', async () => {
    server.setKv('secret', 'tree/a', { k: 'v' });
    server.setKv('secret', 'tree/sub/b', { k: 'v' });
    const viaGet = await raw('GET', '/v1/secret/metadata/tree/?list=true', {
      token: server.rootToken,
    });
    expect([viaGet.status, viaGet.body.data.keys]).toEqual([200, ['a', 'sub/']]);
    const viaList = await rawList('/v1/secret/metadata/tree', server.rootToken);
    expect([viaList.status, viaList.body.data.keys]).toEqual([200, ['a', 'sub/']]);
    expect(
      await raw('GET', '/v1/secret/metadata/empty/?list=true', { token: server.rootToken }),
    ).toMatchObject({ status: 404, body: { errors: [] } });
  });
});

describe('Vault test server: KV v1', () => {
  it('reads with the v1 envelope (data at the top, lease_duration set) and lists', async () => {
    server.mountKv('old', 1);
    server.setKv('old', 'x/y', { u: 'v' });
    const reply = await raw('GET', '/v1/old/x/y', { token: server.rootToken });
    expect(reply.status).toBe(200);
    expect(reply.body).toMatchObject({ data: { u: 'v' }, lease_id: '', renewable: false });
    expect(reply.body.lease_duration).toBeGreaterThan(0);
    expect(
      (await raw('GET', '/v1/old/x?list=true', { token: server.rootToken })).body.data.keys,
    ).toEqual(['y']);
  });
});

describe('Vault test server: tokens, policies and namespaces', () => {
  it.each([
    ['no token', undefined],
    ['an unknown token', 'hvs.unknown-unknown-unknown'],
  ])('answers 403 permission denied for %s', async (_what, token) => {
    expect(
      await raw('GET', '/v1/secret/data/wire/app', token === undefined ? {} : { token }),
    ).toMatchObject({
      status: 403,
      body: { errors: ['permission denied'] },
    });
  });

  it('accepts Authorization: Bearer as well as X-Vault-Token', async () => {
    server.setKv('secret', 'wire/bearer', { a: '1' });
    expect(
      (await raw('GET', '/v1/secret/data/wire/bearer', { token: server.rootToken, bearer: true }))
        .status,
    ).toBe(200);
  });

  it('expires tokens on the injected clock, renews them up to the max TTL, and revokes them', async () => {
    const token = server.addToken({ ttlSeconds: 60, maxTtlSeconds: 100 });
    const lookup = await raw('GET', '/v1/auth/token/lookup-self', { token });
    expect(lookup.body.data).toMatchObject({
      ttl: 60,
      creation_ttl: 60,
      renewable: true,
      id: token,
    });
    clock.advance(50_000);
    const renew = await raw('POST', '/v1/auth/token/renew-self', {
      token,
      body: { increment: '60s' },
    });
    expect(renew.body.auth).toMatchObject({
      client_token: token,
      lease_duration: 50,
      renewable: true,
    });
    expect(renew.body.warnings[0]).toMatch(/max_ttl/);
    clock.advance(50_000);
    expect((await raw('GET', '/v1/auth/token/lookup-self', { token })).status).toBe(403);
    const other = server.addToken({ ttlSeconds: 60 });
    expect((await raw('POST', '/v1/auth/token/revoke-self', { token: other })).status).toBe(204);
    expect((await raw('GET', '/v1/auth/token/lookup-self', { token: other })).status).toBe(403);
  });

  it('refuses to renew a non-renewable token with 400', async () => {
    expect(
      (await raw('POST', '/v1/auth/token/renew-self', { token: server.rootToken, body: {} }))
        .status,
    ).toBe(400);
  });

  it('denies a path a token policy excludes with 403 while allowing others', async () => {
    server.setKv('secret', 'wire/open', { a: '1' });
    server.setKv('secret', 'wire/closed', { a: '1' });
    const token = server.addToken({ deny: ['secret/data/wire/closed'] });
    expect((await raw('GET', '/v1/secret/data/wire/open', { token })).status).toBe(200);
    expect((await raw('GET', '/v1/secret/data/wire/closed', { token })).status).toBe(403);
  });

  it('keeps data per namespace and accepts a token only in its own namespace', async () => {
    server.mountKv('secret', 2, 'ns1');
    server.setKv('secret', 'shared', { where: 'ns1' }, 'ns1');
    server.setKv('secret', 'shared', { where: 'root' });
    const nsToken = server.addToken({ namespace: 'ns1' });
    const inNs = await raw('GET', '/v1/secret/data/shared', { token: nsToken, namespace: 'ns1/' });
    expect(inNs.body.data.data).toEqual({ where: 'ns1' });
    expect((await raw('GET', '/v1/secret/data/shared', { token: nsToken })).status).toBe(403);
    expect(
      (await raw('GET', '/v1/secret/data/shared', { token: server.rootToken, namespace: 'ns1' }))
        .status,
    ).toBe(403);
  });
});

describe('Vault test server: login', () => {
  it('answers Kubernetes login from its role table with an auth block, 400 for an unknown role and 403 for a wrong JWT', async () => {
    server.addKubernetesRole({
      role: 'app',
      jwt: 'jwt-good',
      ttlSeconds: 120,
      policies: ['default', 'app'],
    });
    const ok = await raw('POST', '/v1/auth/kubernetes/login', {
      body: { role: 'app', jwt: 'jwt-good' },
    });
    expect(ok.status).toBe(200);
    expect(ok.body.auth).toMatchObject({
      lease_duration: 120,
      renewable: true,
      policies: ['default', 'app'],
      token_type: 'service',
    });
    expect(ok.body.auth.client_token).toMatch(/^hvs\./);
    expect(
      await raw('POST', '/v1/auth/kubernetes/login', { body: { role: 'nope', jwt: 'jwt-good' } }),
    ).toMatchObject({
      status: 400,
      body: { errors: ['invalid role name "nope"'] },
    });
    expect(
      (await raw('POST', '/v1/auth/kubernetes/login', { body: { role: 'app', jwt: 'jwt-bad' } }))
        .status,
    ).toBe(403);
  });

  it('answers AppRole login and refuses a wrong secret ID with 400', async () => {
    server.addAppRole({ roleId: 'r1', secretId: 's1' });
    expect(
      (await raw('POST', '/v1/auth/approle/login', { body: { role_id: 'r1', secret_id: 's1' } }))
        .body.auth.client_token,
    ).toMatch(/^hvs\./);
    expect(
      await raw('POST', '/v1/auth/approle/login', { body: { role_id: 'r1', secret_id: 'nope' } }),
    ).toMatchObject({
      status: 400,
      body: { errors: ['invalid role or secret ID'] },
    });
  });
});

describe('Vault test server: health, seal, throttling and faults', () => {
  it.each([
    ['active', false, 200],
    ['standby', false, 429],
    ['uninitialized', false, 501],
    ['active', true, 503],
  ] as const)(
    'sys/health answers a %s server (sealed: %s) with %i',
    async (mode, sealed, status) => {
      server.setHealthMode(mode);
      if (sealed) server.seal();
      const reply = await raw('GET', '/v1/sys/health');
      expect(reply.status).toBe(status);
      expect(reply.body).toMatchObject({
        sealed,
        initialized: mode !== 'uninitialized',
        standby: mode === 'standby',
      });
    },
  );

  it('answers every API with 503 "Vault is sealed" while sealed', async () => {
    server.seal();
    expect(await raw('GET', '/v1/secret/data/wire/app', { token: server.rootToken })).toMatchObject(
      {
        status: 503,
        body: { errors: ['Vault is sealed'] },
      },
    );
    expect(
      (await raw('POST', '/v1/auth/approle/login', { body: { role_id: 'r1', secret_id: 's1' } }))
        .status,
    ).toBe(503);
    expect((await raw('GET', '/v1/sys/seal-status')).body).toMatchObject({
      sealed: true,
      type: 'shamir',
    });
  });

  it('rate limits with 429 and Retry-After, and injects failures for the next requests only', async () => {
    server.setRateLimited(3);
    const limited = await raw('GET', '/v1/secret/data/wire/app', { token: server.rootToken });
    expect([limited.status, limited.headers['retry-after'], limited.body]).toEqual([
      429,
      '3',
      { errors: ['rate limit quota exceeded'] },
    ]);
    server.setRateLimited(undefined);
    server.failNext(502, 1);
    expect((await raw('GET', '/v1/secret/data/wire/app', { token: server.rootToken })).status).toBe(
      502,
    );
    expect((await raw('GET', '/v1/secret/data/wire/app', { token: server.rootToken })).status).toBe(
      200,
    );
  });

  it('logs every request with path, namespace, headers and SNI', async () => {
    server.clearLog();
    await raw('GET', '/v1/secret/data/wire/app', { token: server.rootToken, namespace: 'ns1' });
    const [entry] = server.requests('secret/data/wire/app');
    expect(entry).toMatchObject({
      method: 'GET',
      apiPath: 'secret/data/wire/app',
      namespace: 'ns1',
      servername: 'localhost',
      status: 403,
    });
    expect(entry?.headers['x-vault-token']).toBe(server.rootToken);
  });
});
