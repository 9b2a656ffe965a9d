import { afterAll, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import { silentLogger } from '../../../../src/shared/logger.js';
import { systemClock } from '../../../../src/shared/clock.js';
import type { SecretStore } from '../../../../src/secrets/secret-store.js';
import { DEFAULT_VAULT_MAX_RESPONSE_BYTES } from '../../../../src/secrets/stores/vault/vault-client.js';
import { VaultTestServer } from '../../../support/vault-test-server.js';
import { createStore, rejectionOf, testContext } from '../../../support/vault-store-fixtures.js';

let server: VaultTestServer;
let token: string;
let store: SecretStore;
const sleeps: number[] = [];

const recordSleep = async (ms: number): Promise<void> => {
  sleeps.push(ms);
};

beforeAll(async () => {
  server = await VaultTestServer.start();
  token = server.addToken({ ttlSeconds: 0, renewable: false });
  store = await createStore(
    { vaultAddr: server.url, caPem: server.caPem, vaultToken: token },
    testContext(silentLogger, systemClock, { sleep: recordSleep }),
  );
});
afterAll(async () => {
  await store.close();
  await server.close();
});
beforeEach(() => {
  server.unseal();
  server.setRateLimited(undefined);
  server.clearLog();
  sleeps.length = 0;
});

describe('Vault store: versions', () => {
  beforeAll(() => {
    server.setKv('secret', 'dapr/versioned', { pw: 'one' });
    server.setKv('secret', 'dapr/versioned', { pw: 'two' });
    server.setKv('secret', 'dapr/versioned', { pw: 'three' });
    server.setKv('secret', 'dapr/versioned', { pw: 'four' });
    server.deleteVersion('secret', 'dapr/versioned', 2);
    server.destroyVersion('secret', 'dapr/versioned', 3);
  });

  it('reads the latest version by default and an older one by version_id', async () => {
    expect(await store.get('versioned')).toEqual({ pw: 'four' });
    expect(await store.get('versioned', { version_id: '1' })).toEqual({ pw: 'one' });
    expect(await store.get('versioned', { version_id: '0' })).toEqual({ pw: 'four' });
    expect(server.requests('versioned').map((r) => r.query.version)).toEqual([
      undefined,
      '1',
      undefined,
    ]);
  });

  it('sees a rotation (a new KV version) on the next read, with no stale copy', async () => {
    server.setKv('secret', 'dapr/rotating', { pw: 'old' });
    expect(await store.get('rotating')).toEqual({ pw: 'old' });
    server.setKv('secret', 'dapr/rotating', { pw: 'new' });
    expect(await store.get('rotating')).toEqual({ pw: 'new' });
  });

  it.each([
    ['a deleted version', '2', /is deleted/],
    ['a destroyed version', '3', /is destroyed/],
    ['a version that never existed', '99', /not found/],
  ])('answers ERR_SECRET_NOT_FOUND for %s', async (_what, version, message) => {
    const rejection = await rejectionOf(store.get('versioned', { version_id: version }));
    expect(rejection.code).toBe('ERR_SECRET_NOT_FOUND');
    expect(rejection.message).toMatch(message);
  });

  it.each(['-1', '1.5', 'latest', '1e3', '99999999999', '2 '])(
    'refuses version_id %j before asking Vault',
    async (version) => {
      expect((await rejectionOf(store.get('versioned', { version_id: version }))).code).toBe(
        'ERR_SECRET_NAME_INVALID',
      );
      expect(server.requests()).toHaveLength(0);
    },
  );
});

describe('Vault store: names that try to escape', () => {
  it.each([
    ['a parent segment', '../other'],
    ['an encoded traversal', '%2e%2e/x'],
    ['an encoded slash', '..%2fother'],
    ['a doubled slash', 'a//b'],
    ['a prefix escape through a nested name', 'x/../../../sys/seal'],
    ['a backslash traversal', '..\\other'],
    ['an absolute path', '/secret/data/other'],
    ['a query smuggled into the name', 'db?version=1'],
    ['a fragment', 'db#x'],
    ['a NUL byte', 'db\u0000'],
    ['an empty name', ''],
  ])('refuses %s without any request reaching Vault', async (_what, name) => {
    server.setKv('secret', 'other', { leaked: 'yes' });
    const rejection = await rejectionOf(store.get(name));
    expect(rejection.code).toBe('ERR_SECRET_NAME_INVALID');
    expect(server.requests()).toHaveLength(0);
  });
});

describe('Vault store: availability', () => {
  it('answers ERR_SECRET_STORE_UNAVAILABLE while Vault is sealed, without hammering it, and recovers after unseal', async () => {
    server.setKv('secret', 'dapr/sealed-test', { k: 'v' });
    server.seal();
    const rejection = await rejectionOf(store.get('sealed-test'));
    expect(rejection.code).toBe('ERR_SECRET_STORE_UNAVAILABLE');
    expect(rejection.message).toMatch(/sealed/);
    expect(server.requests('sealed-test')).toHaveLength(1);
    server.unseal();
    expect(await store.get('sealed-test')).toEqual({ k: 'v' });
  });

  it('retries a 429 after the Retry-After Vault asked for, then succeeds', async () => {
    server.setKv('secret', 'dapr/throttled', { k: 'v' });
    server.failNext(429, 2, { retryAfterSeconds: 2, pathContains: 'throttled' });
    expect(await store.get('throttled')).toEqual({ k: 'v' });
    expect(server.requests('throttled').map((r) => r.status)).toEqual([429, 429, 200]);
    expect(sleeps).toHaveLength(2);
    for (const ms of sleeps) expect(ms).toBeGreaterThanOrEqual(2000);
  });

  it('gives up after a bounded number of attempts when Vault keeps throttling', async () => {
    server.setRateLimited(1);
    const rejection = await rejectionOf(store.get('throttled'));
    expect(rejection.code).toBe('ERR_SECRET_STORE_UNAVAILABLE');
    expect(rejection.message).toMatch(/rate limiting/);
    expect(server.requests('throttled')).toHaveLength(4);
    expect(sleeps).toHaveLength(3);
  });

  it('does not wait for a Retry-After longer than its budget', async () => {
    server.failNext(429, 1, { retryAfterSeconds: 3600, pathContains: 'throttled' });
    const rejection = await rejectionOf(store.get('throttled'));
    expect(rejection.code).toBe('ERR_SECRET_STORE_UNAVAILABLE');
    expect((rejection.error as { details: Record<string, unknown> }).details.retryAfterMs).toBe(
      3_600_000,
    );
    expect(sleeps).toHaveLength(0);
  });

  it('retries 5xx answers and dropped connections with growing, jittered, capped back-off', async () => {
    server.setKv('secret', 'dapr/flaky', { k: 'v' });
    server.failNext(502, 1, { pathContains: 'flaky' });
    server.failNext(0, 2, { pathContains: 'flaky' });
    expect(await store.get('flaky')).toEqual({ k: 'v' });
    expect(server.requests('flaky')).toHaveLength(4);
    expect(sleeps).toHaveLength(3);
    // testContext: base 5 ms, cap 20 ms, full jitter.
    sleeps.forEach((ms, i) => expect(ms).toBeLessThanOrEqual(Math.min(20, 5 * 2 ** i)));
  });

  it('gives up on a Vault that never answers after the per-attempt timeout, bounded', async () => {
    const patient = await createStore(
      { vaultAddr: server.url, caPem: server.caPem, vaultToken: token },
      {
        ...testContext(silentLogger, systemClock, { maxAttempts: 2 }),
        transport: { timeoutMs: 150, retry: { maxAttempts: 2, baseDelayMs: 1, maxDelayMs: 1 } },
      },
    );
    try {
      server.setKv('secret', 'dapr/stalled', { k: 'v' });
      server.failNext(-1, 2, { pathContains: 'stalled' });
      const rejection = await rejectionOf(patient.get('stalled'));
      expect(rejection.code).toBe('ERR_SECRET_STORE_UNAVAILABLE');
      expect(rejection.message).toMatch(/after 2 attempt\(s\) \(ETIMEDOUT\)/);
      expect(server.requests('stalled')).toHaveLength(2);
      expect(await patient.get('stalled')).toEqual({ k: 'v' });
    } finally {
      await patient.close();
    }
  });

  it('refuses a 10 MiB value with ERR_SECRET_TOO_LARGE without buffering it, and keeps working', async () => {
    server.setKv('secret', 'dapr/huge', { blob: 'x'.repeat(10 * 1024 * 1024) });
    const rejection = await rejectionOf(store.get('huge'));
    expect(rejection.code).toBe('ERR_SECRET_TOO_LARGE');
    expect(rejection.message).toContain(`${DEFAULT_VAULT_MAX_RESPONSE_BYTES}-byte limit`);
    expect(rejection.message).toContain('"huge"');
    server.setKv('secret', 'dapr/small', { k: 'v' });
    expect(await store.get('small')).toEqual({ k: 'v' });
  });

  it('accepts a value just under the limit', async () => {
    server.setKv('secret', 'dapr/big', { blob: 'y'.repeat(1024 * 1024) });
    expect((await store.get('big')).blob).toHaveLength(1024 * 1024);
  });
});

describe('Vault store: wire behaviour', () => {
  it('sends the token only in X-Vault-Token, with X-Vault-Request, never in the URL', async () => {
    server.setKv('secret', 'dapr/wire', { k: 'v' });
    await store.get('wire');
    const [entry] = server.requests('dapr/wire');
    expect(entry?.headers['x-vault-token']).toBe(token);
    expect(entry?.headers['x-vault-request']).toBe('true');
    expect(entry?.path).not.toContain(token);
    expect(entry?.path).toBe('/v1/secret/data/dapr/wire');
  });

  it('percent-encodes names with spaces and unicode, and Vault finds them', async () => {
    server.setKv('secret', 'dapr/my secret/café', { k: 'v' });
    expect(await store.get('my secret/café')).toEqual({ k: 'v' });
    expect(server.requests('café')[0]?.path).toBe('/v1/secret/data/dapr/my%20secret/caf%C3%A9');
  });

  it('turns non-string KV values into JSON text', async () => {
    server.setKv('secret', 'dapr/typed', { port: 5432, tls: true, hosts: ['a', 'b'], empty: null });
    expect(await store.get('typed')).toEqual({
      port: '5432',
      tls: 'true',
      hosts: '["a","b"]',
      empty: 'null',
    });
  });

  it('keeps a "__proto__" key as data, not as a prototype', async () => {
    server.setKv(
      'secret',
      'dapr/proto',
      JSON.parse('{"__proto__":"x","ok":"y"}') as Record<string, unknown>,
    );
    const data = await store.get('proto');
    expect(Object.getPrototypeOf(data)).toBe(Object.prototype);
    expect(Object.keys(data).sort()).toEqual(['__proto__', 'ok']);
  });

  it('answers ERR_SECRET_PERMISSION_DENIED when a policy denies the path, after checking the token is alive', async () => {
    const limited = server.addToken({
      ttlSeconds: 0,
      renewable: false,
      deny: ['secret/data/dapr/forbidden'],
    });
    const limitedStore = await createStore(
      { vaultAddr: server.url, caPem: server.caPem, vaultToken: limited },
      testContext(silentLogger, systemClock),
    );
    try {
      server.setKv('secret', 'dapr/forbidden', { k: 'v' });
      server.clearLog();
      const rejection = await rejectionOf(limitedStore.get('forbidden'));
      expect(rejection.code).toBe('ERR_SECRET_PERMISSION_DENIED');
      expect(rejection.message).toMatch(/denied access to secret "forbidden"/);
      expect(server.requests().map((r) => r.apiPath)).toEqual([
        'secret/data/dapr/forbidden',
        'auth/token/lookup-self',
      ]);
      expect(limitedStore.ready()).toBe(true);
    } finally {
      await limitedStore.close();
    }
  });
});

describe('Vault store: bulkGet', () => {
  it('lists recursively below the prefix only, names nested secrets by their path, and skips deleted ones', async () => {
    const bulkServer = await VaultTestServer.start();
    try {
      bulkServer.setKv('secret', 'apps/top', { a: '1' });
      bulkServer.setKv('secret', 'apps/team/db', { user: 'u', pw: 'p' });
      bulkServer.setKv('secret', 'apps/team/deep/er/key', { k: 'deep' });
      bulkServer.setKv('secret', 'apps/gone', { k: 'x' });
      bulkServer.deleteVersion('secret', 'apps/gone', 1);
      bulkServer.setKv('secret', 'other/outside', { k: 'must not appear' });
      const bulkStore = await createStore(
        {
          vaultAddr: bulkServer.url,
          caPem: bulkServer.caPem,
          vaultToken: bulkServer.rootToken,
          vaultKVPrefix: 'apps',
        },
        testContext(silentLogger, systemClock),
      );
      try {
        expect(await bulkStore.bulkGet()).toEqual({
          top: { a: '1' },
          'team/db': { user: 'u', pw: 'p' },
          'team/deep/er/key': { k: 'deep' },
        });
        expect(bulkServer.requests().some((r) => r.apiPath.includes('other'))).toBe(false);
        expect(await bulkStore.get('team/deep/er/key')).toEqual({ k: 'deep' });
      } finally {
        await bulkStore.close();
      }
    } finally {
      await bulkServer.close();
    }
  });

  it('lists from the engine root when vaultKVUsePrefix is false, and answers {} for an empty engine', async () => {
    const bulkServer = await VaultTestServer.start();
    try {
      const empty = await createStore(
        {
          vaultAddr: bulkServer.url,
          caPem: bulkServer.caPem,
          vaultToken: bulkServer.rootToken,
          vaultKVUsePrefix: 'false',
        },
        testContext(silentLogger, systemClock),
      );
      expect(await empty.bulkGet()).toEqual({});
      bulkServer.setKv('secret', 'root-level', { k: 'v' });
      bulkServer.setKv('secret', 'dir/nested', { k: 'n' });
      expect(await empty.bulkGet()).toEqual({ 'root-level': { k: 'v' }, 'dir/nested': { k: 'n' } });
      expect(
        bulkServer
          .requests()
          .some((r) => r.apiPath === 'secret/metadata/' && r.query.list === 'true'),
      ).toBe(true);
      await empty.close();
    } finally {
      await bulkServer.close();
    }
  });

  it('applies version_id to every listed secret, skipping those without that version', async () => {
    const bulkServer = await VaultTestServer.start();
    try {
      bulkServer.setKv('secret', 'dapr/a', { v: 'a1' });
      bulkServer.setKv('secret', 'dapr/a', { v: 'a2' });
      bulkServer.setKv('secret', 'dapr/b', { v: 'b1' });
      const bulkStore = await createStore(
        { vaultAddr: bulkServer.url, caPem: bulkServer.caPem, vaultToken: bulkServer.rootToken },
        testContext(silentLogger, systemClock),
      );
      expect(await bulkStore.bulkGet({ version_id: '2' })).toEqual({ a: { v: 'a2' } });
      await bulkStore.close();
    } finally {
      await bulkServer.close();
    }
  });
});

describe('Vault store: value types and KV v1', () => {
  it("returns Dapr's text shape — the entry's data as JSON text under the secret name — and reports one key per secret", async () => {
    server.setKv('secret', 'dapr/texty', { a: 'b', c: 'd' });
    const textStore = await createStore(
      { vaultAddr: server.url, caPem: server.caPem, vaultToken: token, vaultValueType: 'text' },
      testContext(silentLogger, systemClock),
    );
    try {
      expect(textStore.features()).toEqual({ multipleKeyValuesPerSecret: false });
      expect(await textStore.get('texty')).toEqual({ texty: '{"a":"b","c":"d"}' });
    } finally {
      await textStore.close();
    }
  });

  it('refuses version_id on KV v1, and reports a v1 store pointed at a v2 mount as not found', async () => {
    server.setKv('secret', 'dapr/v2-only', { k: 'v' });
    const v1Store = await createStore(
      { vaultAddr: server.url, caPem: server.caPem, vaultToken: token, vaultKVVersion: '1' },
      testContext(silentLogger, systemClock),
    );
    try {
      expect((await rejectionOf(v1Store.get('v2-only', { version_id: '1' }))).code).toBe(
        'ERR_SECRET_NAME_INVALID',
      );
      expect((await rejectionOf(v1Store.get('v2-only'))).code).toBe('ERR_SECRET_NOT_FOUND');
    } finally {
      await v1Store.close();
    }
  });

  it('answers a store closed twice, and refuses reads after close', async () => {
    const closing = await createStore(
      { vaultAddr: server.url, caPem: server.caPem, vaultToken: token },
      testContext(silentLogger, systemClock),
    );
    await closing.close();
    await closing.close();
    expect(closing.ready()).toBe(false);
    expect((await rejectionOf(closing.get('anything'))).code).toBe('ERR_SECRET_STORE_UNAVAILABLE');
  });
});

describe('Vault store: start-up fails closed', () => {
  it('refuses to start with a token Vault does not know', async () => {
    const rejection = await rejectionOf(
      createStore(
        {
          vaultAddr: server.url,
          caPem: server.caPem,
          vaultToken: 'hvs.not-a-real-token-0000000000',
        },
        testContext(silentLogger, systemClock),
      ),
    );
    expect(rejection.code).toBe('ERR_SECRET_PERMISSION_DENIED');
    expect(rejection.message).not.toContain('hvs.not-a-real-token');
  });

  it('refuses to start when Vault cannot be reached, after bounded retries', async () => {
    const gone = await VaultTestServer.start();
    const url = gone.url;
    const caPem = gone.caPem;
    await gone.close();
    const rejection = await rejectionOf(
      createStore(
        { vaultAddr: url, caPem, vaultToken: token },
        testContext(silentLogger, systemClock),
      ),
    );
    expect(rejection.code).toBe('ERR_SECRET_STORE_UNAVAILABLE');
    expect(rejection.message).toMatch(/after 4 attempt\(s\) \(ECONNREFUSED\)/);
  });

  it('refuses invalid metadata with ERR_SECRET_STORE_CONFIG before any request', async () => {
    server.clearLog();
    const rejection = await rejectionOf(
      createStore(
        { vaultAddr: server.url, vaultToken: token, vaultTokenMountPath: '/x' },
        testContext(silentLogger, systemClock),
      ),
    );
    expect(rejection.code).toBe('ERR_SECRET_STORE_CONFIG');
    expect(server.requests()).toHaveLength(0);
  });
});
