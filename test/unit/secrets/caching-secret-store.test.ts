import { describe, expect, it } from '@jest/globals';
import { Registry } from 'prom-client';
import { ManualClock } from '../../../src/shared/clock.js';
import { WardenError } from '../../../src/shared/errors.js';
import { ChangeListeners } from '../../../src/secrets/secret-change-source.js';
import type { SecretData, SecretStore } from '../../../src/secrets/secret-store.js';
import { createSecretsMetrics } from '../../../src/secrets/metrics.js';
import { CachingSecretStore } from '../../../src/secrets/stores/caching-secret-store.js';
import { InstrumentedSecretStore } from '../../../src/secrets/stores/instrumented-secret-store.js';

/** A store whose answers change on demand and which counts how often it was asked. */
function countingStore() {
  const listeners = new ChangeListeners();
  const state = { value: 'v1', reads: 0, fail: false };
  const store: SecretStore & { onSecretsChanged(l: () => void): () => void } = {
    type: 'secretstores.test.counting',
    get: async (name: string): Promise<SecretData> => {
      state.reads++;
      if (state.fail) throw new WardenError('ERR_SECRET_STORE_UNAVAILABLE', 'down');
      if (name !== 'pw') throw new WardenError('ERR_SECRET_NOT_FOUND', 'nope');
      return { pw: state.value };
    },
    bulkGet: async () => {
      state.reads++;
      return { pw: { pw: state.value } };
    },
    features: () => ({ multipleKeyValuesPerSecret: false }),
    ready: () => true,
    close: async () => undefined,
    onSecretsChanged: (l) => listeners.onSecretsChanged(l),
  };
  return { store, state, emit: () => listeners.emit(), listenerCount: () => listeners.size };
}

describe('the TTL cache', () => {
  it('serves from cache before the TTL and never at or after it', async () => {
    const clock = new ManualClock();
    const { store, state } = countingStore();
    const cache = new CachingSecretStore(store, { storeName: 's', ttlMs: 1000, clock });
    expect(await cache.get('pw')).toEqual({ pw: 'v1' });
    state.value = 'v2';
    clock.advance(999);
    expect(await cache.get('pw')).toEqual({ pw: 'v1' });
    clock.advance(1);
    expect(await cache.get('pw')).toEqual({ pw: 'v2' });
    expect(state.reads).toBe(2);
  });

  it('keys entries by request metadata, caches bulk separately, and caches no errors', async () => {
    const clock = new ManualClock();
    const { store, state } = countingStore();
    const cache = new CachingSecretStore(store, { storeName: 's', ttlMs: 1000, clock });
    await cache.get('pw', { version_id: '1' });
    await cache.get('pw', { version_id: '2' });
    await cache.get('pw', { version_id: '1' });
    await cache.bulkGet();
    await cache.bulkGet();
    expect(state.reads).toBe(3);
    state.fail = true;
    clock.advance(1000);
    await expect(cache.get('pw')).rejects.toMatchObject({ code: 'ERR_SECRET_STORE_UNAVAILABLE' });
    state.fail = false;
    expect(await cache.get('pw')).toEqual({ pw: 'v1' });
  });

  it('coalesces concurrent misses into one store read', async () => {
    const { store, state } = countingStore();
    const cache = new CachingSecretStore(store, { storeName: 's', ttlMs: 1000, clock: new ManualClock() });
    await Promise.all(Array.from({ length: 10 }, () => cache.get('pw')));
    expect(state.reads).toBe(1);
  });

  it('drops everything when the store reports a change, and passes the change on', async () => {
    const { store, state, emit } = countingStore();
    const cache = new CachingSecretStore(store, { storeName: 's', ttlMs: 60_000, clock: new ManualClock() });
    let told = 0;
    cache.onSecretsChanged(() => told++);
    await cache.get('pw');
    state.value = 'rotated';
    emit();
    expect(await cache.get('pw')).toEqual({ pw: 'rotated' });
    expect(told).toBe(1);
  });

  it('refuses a TTL that is not positive', () => {
    expect(() => new CachingSecretStore(countingStore().store, { storeName: 's', ttlMs: 0, clock: new ManualClock() })).toThrow(TypeError);
  });
});

describe('the instrumented store passes changes on', () => {
  it('listens to the store below only while someone listens to it (a polling store polls only then)', () => {
    const { store, emit, listenerCount } = countingStore();
    const instrumented = new InstrumentedSecretStore(store, 's', createSecretsMetrics(new Registry()));
    expect(listenerCount()).toBe(0);
    let a = 0;
    let b = 0;
    const offA = instrumented.onSecretsChanged(() => (a += 1));
    const offB = instrumented.onSecretsChanged(() => (b += 1));
    expect(listenerCount()).toBe(1);
    emit();
    expect([a, b]).toEqual([1, 1]);
    offA();
    expect(listenerCount()).toBe(1);
    offB();
    expect(listenerCount()).toBe(0);
    emit();
    expect([a, b]).toEqual([1, 1]);
  });

  it('stays subscribed below a TTL cache, which must drop its entries on every change', () => {
    const { store, listenerCount } = countingStore();
    const cached = new CachingSecretStore(store, { storeName: 's', ttlMs: 1000, clock: new ManualClock() });
    new InstrumentedSecretStore(cached, 's', createSecretsMetrics(new Registry()));
    expect(listenerCount()).toBe(1);
  });
});

describe('secrets metrics', () => {
  it('counts reads, latency, errors by code and cache hits with store labels only', async () => {
    const registry = new Registry();
    const metrics = createSecretsMetrics(registry);
    const { store } = countingStore();
    const cached = new CachingSecretStore(store, { storeName: 'vault', ttlMs: 1000, clock: new ManualClock(), metrics });
    const instrumented = new InstrumentedSecretStore(cached, 'vault', metrics);
    await instrumented.get('pw');
    await instrumented.get('pw');
    await instrumented.get('secret-name-that-must-not-be-a-label').catch(() => undefined);
    const text = await registry.metrics();
    expect(text).toContain('warden_secrets_gets_total{store="vault",operation="get"} 3');
    expect(text).toContain('warden_secrets_cache_hits_total{store="vault",operation="get"} 1');
    expect(text).toContain('warden_secrets_cache_misses_total{store="vault",operation="get"} 2');
    expect(text).toContain('warden_secrets_errors_total{store="vault",code="ERR_SECRET_NOT_FOUND"} 1');
    expect(text).toContain('warden_secrets_get_duration_seconds_count{store="vault",operation="get"} 3');
    expect(text).not.toContain('secret-name-that-must-not-be-a-label');
    expect(text).not.toContain('v1');
  });

  it('can be created twice on one registry', () => {
    const registry = new Registry();
    createSecretsMetrics(registry);
    expect(() => createSecretsMetrics(registry)).not.toThrow();
  });
});
