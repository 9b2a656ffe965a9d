import { afterEach, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import { generateTrustMaterial } from '../../src/ca/generate.js';
import {
  TRUST_MATERIAL_PARTS,
  pemOf,
  type TrustMaterialPart,
  type TrustMaterialPem,
} from '../../src/ca/trust-material.js';
import {
  TRUST_EXTRAS,
  type StoredTrust,
  type TrustExtras,
  type TrustMaterialStore,
} from '../../src/ca/trust-store.js';
import { ManualClock } from '../../src/shared/clock.js';
import { WardenError } from '../../src/shared/errors.js';

export interface TrustStoreConformanceSubject {
  /** A store over an empty location (no material, nothing else). */
  readonly store: TrustMaterialStore;
  /**
   * Another handle on the same location, as a second process or replica would open it.
   * Concurrency is tested through several of these.
   */
  open(): TrustMaterialStore;
  /** Writes the given parts straight into the backing storage, as an operator would. */
  seed(parts: Partial<TrustMaterialPem>): Promise<void>;
  /** Writes extras (root.key, rotation.json, ...) straight into the backing storage. */
  seedExtras(extras: TrustExtras): Promise<void>;
  /** Reads the raw parts back (absent ones undefined), to prove the store did not touch them. */
  peek(): Promise<Partial<TrustMaterialPem>>;
  /** Reads the raw extras back (absent ones left out). */
  peekExtras(): Promise<TrustExtras>;
  /** Removes the location, stops servers. */
  cleanup(): Promise<void>;
}

const FIELD: Record<TrustMaterialPart, keyof TrustMaterialPem> = {
  anchors: 'anchorsPem',
  issuerChain: 'issuerChainPem',
  issuerKey: 'issuerKeyPem',
};

function only(
  material: TrustMaterialPem,
  parts: readonly TrustMaterialPart[],
): Partial<TrustMaterialPem> {
  const out: Partial<Record<keyof TrustMaterialPem, string>> = {};
  for (const part of parts) out[FIELD[part]] = pemOf(material, part);
  return out;
}

async function rejection(promise: Promise<unknown>): Promise<WardenError | string> {
  try {
    await promise;
  } catch (err) {
    return err instanceof WardenError ? err : `non-WardenError: ${String(err)}`;
  }
  return 'resolved';
}

/** The behaviour every TrustMaterialStore must show. Call it from each store's test. */
export function describeTrustMaterialStoreConformance(
  label: string,
  setup: () => Promise<TrustStoreConformanceSubject>,
): void {
  describe(`TrustMaterialStore conformance: ${label}`, () => {
    const materials: TrustMaterialPem[] = [];
    let subject: TrustStoreConformanceSubject;

    beforeAll(async () => {
      const clock = new ManualClock(Date.UTC(2026, 0, 1));
      for (let i = 0; i < 6; i++) {
        materials.push(
          (await generateTrustMaterial({ trustDomain: `td${i}.example`, clock })).material,
        );
      }
    });
    beforeEach(async () => {
      subject = await setup();
    });
    afterEach(async () => {
      await subject.cleanup();
    });
    const first = (): TrustMaterialPem => materials[0] as TrustMaterialPem;

    it('describes where it keeps material, and names the three parts distinctly', () => {
      expect(subject.store.describe().length).toBeGreaterThan(0);
      const names = TRUST_MATERIAL_PARTS.map((p) => subject.store.names[p]);
      expect(new Set(names).size).toBe(3);
      names.forEach((n) => expect(n.length).toBeGreaterThan(0));
    });

    it('loads null from an empty location', async () => {
      expect(await subject.store.load()).toBeNull();
    });

    it('creates material and loads back exactly the same bytes, from this and another handle', async () => {
      expect(await subject.store.create(first())).toBe('created');
      expect(await subject.store.load()).toEqual(first());
      expect(await subject.open().load()).toEqual(first());
      expect(await subject.peek()).toEqual(first());
    });

    it('answers "exists" to a second create and keeps the first material', async () => {
      await subject.store.create(first());
      expect(await subject.open().create(materials[1] as TrustMaterialPem)).toBe('exists');
      expect(await subject.store.load()).toEqual(first());
    });

    it('lets exactly one of several concurrent creators win, and all of them load the winner', async () => {
      const handles = materials.map(() => subject.open());
      const outcomes = await Promise.all(
        handles.map((h, i) => h.create(materials[i] as TrustMaterialPem)),
      );
      expect(outcomes.filter((o) => o === 'created')).toHaveLength(1);
      const winner = materials[outcomes.indexOf('created')];
      for (const h of handles) expect(await h.load()).toEqual(winner);
    });

    it('returns stored bytes without judging them (validation is the CA’s job)', async () => {
      const junk = {
        anchorsPem: 'not a cert',
        issuerChainPem: 'nor this',
        issuerKeyPem: 'nor a key',
      };
      await subject.seed(junk);
      expect(await subject.store.load()).toEqual(junk);
    });

    const PARTIAL: readonly (readonly TrustMaterialPart[])[] = [
      ['anchors'],
      ['issuerChain'],
      ['issuerKey'],
      ['anchors', 'issuerChain'],
      ['anchors', 'issuerKey'],
      ['issuerChain', 'issuerKey'],
    ];
    it.each(PARTIAL.map((present) => [present.join(' + '), present] as const))(
      'refuses a partial set (only %s) on load and create, naming what is missing, and leaves it untouched',
      async (_name, present) => {
        const seeded = only(first(), present);
        await subject.seed(seeded);
        const missing = TRUST_MATERIAL_PARTS.filter((p) => !present.includes(p)).map(
          (p) => subject.store.names[p],
        );

        const loadErr = await rejection(subject.store.load());
        expect(loadErr).toBeInstanceOf(WardenError);
        expect((loadErr as WardenError).code).toBe('ERR_TRUST_MATERIAL_INVALID');
        for (const name of missing) expect((loadErr as WardenError).message).toContain(name);

        const createErr = await rejection(subject.store.create(materials[1] as TrustMaterialPem));
        expect(createErr).toBeInstanceOf(WardenError);
        expect((createErr as WardenError).code).toBe('ERR_TRUST_MATERIAL_INVALID');
        expect(await subject.peek()).toEqual(seeded);
      },
    );

    it('never puts key material in its description or errors', async () => {
      await subject.seed(only(first(), ['issuerKey']));
      const err = await rejection(subject.store.load());
      const body = first()
        .issuerKeyPem.replace(/-----[A-Z ]+-----/g, '')
        .replace(/\s+/g, '');
      const text = `${subject.store.describe()} ${err instanceof WardenError ? err.message : err}`;
      for (let i = 0; i + 16 <= body.length; i += 16)
        expect(text).not.toContain(body.slice(i, i + 16));
    });

    describe('extras and compare-and-swap (rotation)', () => {
      const EXTRAS: TrustExtras = {
        rootKey: 'root key text\n',
        rotationState: '{"version":1}\n',
      };
      const stored = (m: TrustMaterialPem, extras: TrustExtras = {}): StoredTrust => ({
        material: m,
        extras,
      });

      it('names every extra distinctly from the parts', () => {
        const all = [
          ...TRUST_MATERIAL_PARTS.map((p) => subject.store.names[p]),
          ...TRUST_EXTRAS.map((e) => subject.store.extraNames[e]),
        ];
        expect(new Set(all).size).toBe(all.length);
      });

      it('reads null from an empty location', async () => {
        expect(await subject.store.read()).toBeNull();
      });

      it('creates material with extras and reads both back, from this and another handle', async () => {
        expect(await subject.store.create(first(), EXTRAS)).toBe('created');
        expect(await subject.store.read()).toEqual(stored(first(), EXTRAS));
        expect(await subject.open().read()).toEqual(stored(first(), EXTRAS));
        expect(await subject.peekExtras()).toEqual(EXTRAS);
        expect(await subject.store.load()).toEqual(first());
      });

      it('replaces extras left over from material that no longer exists when creating', async () => {
        await subject.seedExtras({ rootKey: 'stale key', nextIssuerKey: 'stale next' });
        expect(await subject.store.read()).toBeNull();
        expect(await subject.store.create(first(), { rootKey: 'fresh key' })).toBe('created');
        expect(await subject.peekExtras()).toEqual({ rootKey: 'fresh key' });
      });

      it('replaces everything when the expected snapshot matches, removing extras left out of next', async () => {
        await subject.store.create(first(), EXTRAS);
        const next = stored(materials[1] as TrustMaterialPem, {
          rotationState: '{"version":1,"revision":2}\n',
          nextIssuerChain: 'next chain',
        });
        expect(await subject.store.replace(stored(first(), EXTRAS), next)).toBe('replaced');
        expect(await subject.store.read()).toEqual(next);
        expect(await subject.open().read()).toEqual(next);
        expect(await subject.peek()).toEqual(materials[1]);
        expect(await subject.peekExtras()).toEqual(next.extras);
      });

      it('changes only what differs (one part, one extra) and keeps the rest byte for byte', async () => {
        await subject.store.create(first(), EXTRAS);
        const next = stored(
          {
            ...first(),
            anchorsPem: first().anchorsPem + (materials[1] as TrustMaterialPem).anchorsPem,
          },
          { ...EXTRAS, rotationState: '{"version":1,"revision":3}\n' },
        );
        expect(await subject.store.replace(stored(first(), EXTRAS), next)).toBe('replaced');
        expect(await subject.store.read()).toEqual(next);
      });

      it('accepts a replacement that changes nothing', async () => {
        await subject.store.create(first(), EXTRAS);
        expect(await subject.store.replace(stored(first(), EXTRAS), stored(first(), EXTRAS))).toBe(
          'replaced',
        );
        expect(await subject.store.read()).toEqual(stored(first(), EXTRAS));
      });

      const STALE: readonly [string, (m: TrustMaterialPem) => StoredTrust][] = [
        ['a part differs', (m) => stored({ ...m, issuerKeyPem: 'other' }, EXTRAS)],
        ['an extra differs', (m) => stored(m, { ...EXTRAS, rootKey: 'other' })],
        ['an extra is missing from it', (m) => stored(m, { rootKey: EXTRAS.rootKey })],
        ['it has an extra the store does not', (m) => stored(m, { ...EXTRAS, nextRootKey: 'x' })],
      ];
      it.each(STALE)(
        'answers "conflict" and changes nothing when the expected snapshot is stale (%s)',
        async (_what, expectedOf) => {
          await subject.store.create(first(), EXTRAS);
          const outcome = await subject.store.replace(
            expectedOf(first()),
            stored(materials[2] as TrustMaterialPem, { rotationState: 'never' }),
          );
          expect(outcome).toBe('conflict');
          expect(await subject.store.read()).toEqual(stored(first(), EXTRAS));
        },
      );

      it('answers "conflict" when nothing is stored', async () => {
        expect(
          await subject.store.replace(stored(first()), stored(materials[1] as TrustMaterialPem)),
        ).toBe('conflict');
        expect(await subject.store.read()).toBeNull();
      });

      it('lets exactly one of several concurrent replacements of the same snapshot win', async () => {
        await subject.store.create(first(), EXTRAS);
        const handles = materials.slice(1).map(() => subject.open());
        const outcomes = await Promise.all(
          handles.map((h, i) =>
            h.replace(
              stored(first(), EXTRAS),
              stored(materials[i + 1] as TrustMaterialPem, { rotationState: `winner ${i}` }),
            ),
          ),
        );
        expect(outcomes.filter((o) => o === 'replaced')).toHaveLength(1);
        const winner = outcomes.indexOf('replaced');
        for (const h of handles) {
          expect(await h.read()).toEqual(
            stored(materials[winner + 1] as TrustMaterialPem, {
              rotationState: `winner ${winner}`,
            }),
          );
        }
      });

      it('chains replacements: each one must name the snapshot the previous one left', async () => {
        await subject.store.create(first());
        let current = stored(first());
        for (let i = 1; i <= 3; i++) {
          const next = stored(first(), { rotationState: `revision ${i}` });
          expect(await subject.open().replace(current, next)).toBe('replaced');
          expect(await subject.store.replace(current, next)).toBe('conflict');
          current = next;
        }
        expect(await subject.store.read()).toEqual(
          stored(first(), { rotationState: 'revision 3' }),
        );
      });
    });
  });
}
