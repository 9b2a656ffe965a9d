import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import {
  CONFORMANCE_MULTI_KEY_SECRETS,
  CONFORMANCE_SINGLE_KEY_SECRETS,
  type SecretStore,
} from '../../src/secrets/secret-store.js';
import { WardenError } from '../../src/shared/errors.js';

export interface ConformanceSubject {
  /**
   * A ready store seeded with CONFORMANCE_SINGLE_KEY_SECRETS, and with
   * CONFORMANCE_MULTI_KEY_SECRETS when its features say multipleKeyValuesPerSecret.
   */
  readonly store: SecretStore;
  /** Stops servers, removes files. The suite calls store.close() itself first. */
  cleanup(): Promise<void>;
}

async function rejectionCode(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (err) {
    if (err instanceof WardenError) return err.code;
    return `non-WardenError: ${String(err)}`;
  }
  return 'resolved';
}

/** The behaviour every SecretStore implementation must show. Call it from each store's test. */
export function describeSecretStoreConformance(
  label: string,
  setup: () => Promise<ConformanceSubject>,
): void {
  describe(`SecretStore conformance: ${label}`, () => {
    let subject: ConformanceSubject;
    beforeAll(async () => {
      subject = await setup();
    });
    afterAll(async () => {
      await subject.store.close();
      await subject.store.close(); // close is idempotent
      await subject.cleanup();
    });

    const seeded = (): Record<string, Readonly<Record<string, string>>> => ({
      ...CONFORMANCE_SINGLE_KEY_SECRETS,
      ...(subject.store.features().multipleKeyValuesPerSecret ? CONFORMANCE_MULTI_KEY_SECRETS : {}),
    });

    it('is ready once set up and names its Component type', () => {
      expect(subject.store.ready()).toBe(true);
      expect(subject.store.type).toMatch(/^secretstores\./);
    });

    it('returns every seeded secret with exactly its keys and values', async () => {
      for (const [name, data] of Object.entries(seeded())) {
        expect(await subject.store.get(name)).toEqual(data);
      }
    });

    it('answers ERR_SECRET_NOT_FOUND for a secret that does not exist', async () => {
      expect(await rejectionCode(subject.store.get('no-such-secret-anywhere'))).toBe('ERR_SECRET_NOT_FOUND');
    });

    it.each([
      ['a parent-directory name', '../redis-password'],
      ['a nested traversal', 'a/../../redis-password'],
      ['an encoded traversal', '%2e%2e%2fredis-password'],
      ['an absolute path', '/etc/passwd'],
      ['an empty name', ''],
      ['a name with a NUL byte', 'redis-password\u0000x'],
    ])('never returns data for %s', async (_what, name) => {
      const code = await rejectionCode(subject.store.get(name));
      expect(['ERR_SECRET_NAME_INVALID', 'ERR_SECRET_NOT_FOUND']).toContain(code);
    });

    it('lists every seeded secret in bulkGet with the same data as get', async () => {
      const all = await subject.store.bulkGet();
      for (const [name, data] of Object.entries(seeded())) {
        expect(all[name]).toEqual(data);
      }
    });

    it('answers many concurrent reads correctly', async () => {
      const names = Object.keys(seeded());
      const results = await Promise.all(
        Array.from({ length: 40 }, (_, i) => subject.store.get(names[i % names.length] as string)),
      );
      results.forEach((data, i) => expect(data).toEqual(seeded()[names[i % names.length] as string]));
    });

    it('is not changed by a caller mutating what it returned', async () => {
      const first = (await subject.store.get('api-key')) as Record<string, string>;
      try {
        first['api-key'] = 'tampered';
      } catch {
        // frozen results are fine too
      }
      expect(await subject.store.get('api-key')).toEqual(CONFORMANCE_SINGLE_KEY_SECRETS['api-key']);
    });
  });
}
