import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { ManualClock } from '../../../../src/shared/clock.js';
import type { VaultSecretStore } from '../../../../src/secrets/stores/vault/vault-secret-store.js';
import { VaultTestServer } from '../../../support/vault-test-server.js';
import {
  createCapturedLogger,
  createStore,
  ManualTimers,
  testContext,
} from '../../../support/vault-store-fixtures.js';

/*
 * Vault version checks: the store remembers which secrets it read (latest version) and,
 * while anyone listens, compares what Vault holds now — the KV v2 metadata's current
 * version, or the entry itself for KV v1 or without metadata access — through the real
 * client against the Vault test server. Rounds are started by hand (checkVersionsNow) or by
 * timers the test moves.
 */

const INTERVAL_MS = 30_000;
let server: VaultTestServer;
const captured = createCapturedLogger();
const clock = new ManualClock(Date.now());
const opened: VaultSecretStore[] = [];

async function open(
  metadata: Record<string, string>,
  timers = new ManualTimers(clock),
): Promise<VaultSecretStore> {
  const store = (await createStore(
    {
      vaultAddr: server.url,
      caPem: server.caPem,
      versionCheckInterval: `${INTERVAL_MS}ms`,
      ...metadata,
    },
    testContext(captured.logger, clock, { timers }),
  )) as VaultSecretStore;
  opened.push(store);
  return store;
}

function tokenFor(deny: string[] = []): string {
  return server.addToken({ ttlSeconds: 0, renewable: false, deny });
}

beforeAll(async () => {
  server = await VaultTestServer.start();
  server.mountKv('kv1', 1);
});
afterAll(async () => {
  for (const store of opened) await store.close();
  await server.close();
});

describe('Vault version checks', () => {
  it('reports a new KV v2 version once, from the metadata endpoint (the value does not travel)', async () => {
    server.setKv('secret', 'dapr/rotating', { pw: 'one' });
    const store = await open({ vaultToken: tokenFor() });
    let heard = 0;
    store.onSecretsChanged(() => (heard += 1));
    expect(await store.get('rotating')).toEqual({ pw: 'one' });
    server.clearLog();
    expect(await store.checkVersionsNow()).toEqual([]);
    server.setKv('secret', 'dapr/rotating', { pw: 'two' });
    expect(await store.checkVersionsNow()).toEqual(['rotating']);
    expect(heard).toBe(1);
    expect(await store.checkVersionsNow()).toEqual([]);
    expect(heard).toBe(1);
    expect(server.requests().map((r) => `${r.method} ${r.apiPath}`)).toEqual(
      Array(3).fill('GET secret/metadata/dapr/rotating'),
    );
  });

  it.each([
    [
      'the latest version is soft-deleted',
      (path: string, v: number) => server.deleteVersion('secret', path, v),
    ],
    [
      'the latest version is destroyed',
      (path: string, v: number) => server.destroyVersion('secret', path, v),
    ],
  ])('reports a change when %s', async (_what, change) => {
    const path = `dapr/gone-${Math.random().toString(36).slice(2)}`;
    const version = server.setKv('secret', path, { pw: 'x' });
    const store = await open({ vaultToken: tokenFor() });
    await store.get(path.slice('dapr/'.length));
    change(path, version);
    expect(await store.checkVersionsNow()).toEqual([path.slice('dapr/'.length)]);
  });

  it('tracks only reads of the latest version (a pinned version_id never changes)', async () => {
    server.setKv('secret', 'dapr/pinned', { pw: 'one' });
    const store = await open({ vaultToken: tokenFor() });
    await store.get('pinned', { version_id: '1' });
    server.setKv('secret', 'dapr/pinned', { pw: 'two' });
    expect(await store.checkVersionsNow()).toEqual([]);
  });

  it('compares KV v1 entries by digest: a rewrite with the same data is no change, new data is', async () => {
    server.setKv('kv1', 'dapr/legacy', { pw: 'one', user: 'app' });
    const store = await open({ vaultToken: tokenFor(), enginePath: 'kv1', vaultKVVersion: '1' });
    await store.get('legacy');
    server.setKv('kv1', 'dapr/legacy', { user: 'app', pw: 'one' });
    expect(await store.checkVersionsNow()).toEqual([]);
    server.setKv('kv1', 'dapr/legacy', { pw: 'two', user: 'app' });
    expect(await store.checkVersionsNow()).toEqual(['legacy']);
  });

  it('falls back to reading the secret when the policy denies KV metadata', async () => {
    server.setKv('secret', 'dapr/nometa', { pw: 'one' });
    const store = await open({ vaultToken: tokenFor(['secret/metadata/*']) });
    await store.get('nometa');
    expect(await store.checkVersionsNow()).toEqual([]);
    server.setKv('secret', 'dapr/nometa', { pw: 'two' });
    server.clearLog();
    expect(await store.checkVersionsNow()).toEqual(['nometa']);
    // metadata is asked once per store; afterwards the data path only
    expect(server.requests().map((r) => `${r.method} ${r.apiPath} ${r.status}`)).toEqual([
      'GET secret/data/dapr/nometa 200',
    ]);
    expect(captured.text()).toContain('no read access to KV metadata');
  });

  it('concludes nothing while Vault fails, and sees the change once it answers again', async () => {
    server.setKv('secret', 'dapr/flaky', { pw: 'one' });
    const store = await open({ vaultToken: tokenFor() });
    await store.get('flaky');
    server.setKv('secret', 'dapr/flaky', { pw: 'two' });
    server.clearLog();
    server.failNext(500, 1, { pathContains: 'metadata/dapr/flaky' });
    expect(await store.checkVersionsNow()).toEqual([]);
    // one attempt per round: a failing Vault is not hammered by checks
    expect(server.requests('metadata/dapr/flaky').map((r) => r.status)).toEqual([500]);
    expect(await store.checkVersionsNow()).toEqual(['flaky']);
  });

  it('polls only while someone listens, every versionCheckInterval', async () => {
    server.setKv('secret', 'dapr/timed', { pw: 'one' });
    const timers = new ManualTimers(clock);
    const store = await open({ vaultToken: tokenFor() }, timers);
    await store.get('timed');
    const start = clock.now().getTime();
    expect(timers.scheduled()).toEqual([]);
    const off = store.onSecretsChanged(() => undefined);
    expect(timers.scheduled()).toEqual([start + INTERVAL_MS]);
    server.clearLog();
    timers.advance(INTERVAL_MS);
    await new Promise<void>((resolve) => {
      const wait = (): void => {
        if (timers.scheduled().length === 1) resolve();
        else setTimeout(wait, 5);
      };
      wait();
    });
    expect(server.requests('metadata/dapr/timed')).toHaveLength(1);
    expect(timers.scheduled()).toEqual([start + 2 * INTERVAL_MS]);
    off();
    expect(timers.scheduled()).toEqual([]);
  });

  it('never checks with versionCheckInterval 0', async () => {
    const timers = new ManualTimers(clock);
    const store = await open({ vaultToken: tokenFor(), versionCheckInterval: '0s' }, timers);
    store.onSecretsChanged(() => undefined);
    expect(timers.scheduled()).toEqual([]);
  });

  it('logs secret names only, never a value or a token', () => {
    const log = captured.text();
    expect(log).toContain('Vault secrets changed since they were read');
    for (const value of ['one', 'two'].map((v) => `"${v}"`)) expect(log).not.toContain(value);
    for (const token of server.issuedTokens()) expect(log).not.toContain(token);
  });
});
