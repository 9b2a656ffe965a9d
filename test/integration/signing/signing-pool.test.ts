import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { ManualClock } from '../../../src/shared/clock.js';
import { isWardenError, WardenError } from '../../../src/shared/errors.js';
import { silentLogger } from '../../../src/shared/logger.js';
import type { IssuedCertificate } from '../../../src/issuer/certificate-signer.js';
import { createLeafSigner } from '../../../src/issuer/signing/leaf-signer.js';
import {
  createSigningPool,
  type SigningPool,
  type SigningPoolOptions,
} from '../../../src/issuer/signing/signing-pool.js';
import { trustBundleFromMaterial } from '../../../src/issuer/signing/signing-material.js';
import { expectLeafProfile } from '../../support/leaf-profile.js';
import { MutableTrustSource } from '../../support/mutable-trust-source.js';
import {
  createTestPki,
  makePeculiarCsr,
  peculiarCertificate,
  type TestCsr,
  type TestPki,
} from '../../support/signing-test-pki.js';

const PROFILE = { ttlMs: 24 * 3_600_000, skewMs: 15 * 60_000 };
const NOW = Date.parse('2026-03-01T12:34:56.789Z');
const SPIFFE_ID = 'spiffe://example.org/ns/default/orders';
const CRASHING_WORKER = new URL('../../support/crashing-signing-worker.js', import.meta.url);
const SLOW_START_WORKER = new URL('../../support/slow-start-signing-worker.js', import.meta.url);
const floorSecond = (ms: number): number => Math.floor(ms / 1000) * 1000;

let pkiOne: TestPki;
let pkiTwo: TestPki;
let csr: TestCsr;
let csrs: TestCsr[];
const pools: SigningPool[] = [];

function pool(
  options: Partial<SigningPoolOptions> & Pick<SigningPoolOptions, 'source' | 'workers'>,
): SigningPool {
  const created = createSigningPool({
    profile: PROFILE,
    clock: new ManualClock(NOW),
    logger: silentLogger,
    ...options,
  });
  pools.push(created);
  return created;
}

function akiOf(issued: IssuedCertificate): string | undefined {
  return peculiarCertificate(issued.certificateChainPem).getExtension(
    x509.AuthorityKeyIdentifierExtension,
  )?.keyId;
}

function request(
  spiffeId = SPIFFE_ID,
  csrBytes: Uint8Array = csr.bytes,
): { csrPem: Uint8Array; spiffeId: string; dnsNames: string[] } {
  return { csrPem: csrBytes, spiffeId, dnsNames: [] };
}

beforeAll(async () => {
  pkiOne = await createTestPki({ issuerKeyType: 'P-256', label: 'one', generation: 1 });
  pkiTwo = await createTestPki({ issuerKeyType: 'Ed25519', label: 'two', generation: 2 });
  csr = await makePeculiarCsr('P-256');
  csrs = [
    csr,
    await makePeculiarCsr('Ed25519'),
    await makePeculiarCsr('RSA-2048'),
    await makePeculiarCsr('P-384'),
  ];
});

afterEach(async () => {
  await Promise.all(pools.splice(0).map((p) => p.close()));
});

describe('signing pool', () => {
  it.each([0, 2])(
    "with %i workers issues the same profile as the in-thread signer, dated by the caller's clock",
    async (workers) => {
      const p = pool({ source: new MutableTrustSource(pkiOne.bundle), workers });
      await p.ready();
      const reference = createLeafSigner(pkiOne.bundle, PROFILE, new ManualClock(NOW));
      for (const c of csrs) {
        const [fromPool, fromSigner] = await Promise.all([
          p.sign(request(SPIFFE_ID, c.bytes)),
          reference.sign(request(SPIFFE_ID, c.bytes)),
        ]);
        for (const issued of [fromPool, fromSigner]) {
          await expectLeafProfile({
            issued,
            pki: pkiOne,
            spkiDer: c.spkiDer,
            keyType: c.keyType,
            spiffeId: SPIFFE_ID,
            dnsNames: [],
            notBefore: new Date(floorSecond(NOW - PROFILE.skewMs)),
            notAfter: new Date(floorSecond(NOW + PROFILE.ttlMs)),
            verifyAt: new Date(NOW),
          });
        }
        const a = peculiarCertificate(fromPool.certificateChainPem);
        const b = peculiarCertificate(fromSigner.certificateChainPem);
        expect(
          a.extensions
            .filter((e) => e.type !== '2.5.29.14')
            .map((e) => Buffer.from(e.rawData).toString('hex')),
        ).toEqual(
          b.extensions
            .filter((e) => e.type !== '2.5.29.14')
            .map((e) => Buffer.from(e.rawData).toString('hex')),
        );
        expect({ ...fromPool, certificateChainPem: '', serialHex: '' }).toEqual({
          ...fromSigner,
          certificateChainPem: '',
          serialHex: '',
        });
      }
    },
  );

  it.each([0, 2])(
    'with %i workers signs every request posted after a material change with the new issuer, never the old',
    async (workers) => {
      const source = new MutableTrustSource(pkiOne.bundle);
      const p = pool({ source, workers });
      await p.ready();
      const before = Array.from({ length: 12 }, () => p.sign(request()));
      source.replace(pkiTwo.bundle);
      const after = Array.from({ length: 12 }, () => p.sign(request()));
      for (const issued of await Promise.all(before)) {
        expect(issued.generation).toBe(1);
        expect(akiOf(issued)).toBe(pkiOne.issuerKeyIdHex);
      }
      for (const issued of await Promise.all(after)) {
        expect(issued.generation).toBe(2);
        expect(akiOf(issued)).toBe(pkiTwo.issuerKeyIdHex);
        expect(issued.certificateChainPem.endsWith(pkiTwo.issuerPem)).toBe(true);
        expect(issued.trustAnchorsPem).toEqual([pkiTwo.rootPem.trim() + '\n']);
      }
    },
  );

  it.each([0, 2])(
    'with %i workers refuses to sign (rather than use the old issuer) when new material cannot be loaded',
    async (workers) => {
      const source = new MutableTrustSource(pkiOne.bundle);
      const p = pool({ source, workers });
      await p.ready();
      const broken = trustBundleFromMaterial({
        generation: 3,
        anchorsPem: pkiTwo.rootPem,
        issuerChainPem: pkiTwo.issuerPem,
        issuerKeyPem: pkiOne.bundle.issuerKeyPem,
      });
      source.replace(broken);
      const refused = await Promise.allSettled(Array.from({ length: 4 }, () => p.sign(request())));
      for (const r of refused) {
        expect(r.status).toBe('rejected');
        expect(isWardenError((r as PromiseRejectedResult).reason, 'ERR_SIGNING_FAILED')).toBe(true);
      }
      source.replace(pkiTwo.bundle);
      expect((await p.sign(request())).generation).toBe(2);
    },
  );

  it.each([0, 1])(
    'with %i workers rejects ready() when the first material is unusable',
    async (workers) => {
      const broken = trustBundleFromMaterial({
        generation: 1,
        anchorsPem: pkiTwo.rootPem,
        issuerChainPem: pkiTwo.issuerPem,
        issuerKeyPem: pkiOne.bundle.issuerKeyPem,
      });
      const p = pool({ source: new MutableTrustSource(broken), workers });
      await expect(p.ready()).rejects.toThrow('issuer key does not match the issuer certificate');
    },
  );

  it('rebuilds CSR errors from a worker as the same WardenError the in-thread signer throws', async () => {
    const p = pool({ source: new MutableTrustSource(pkiOne.bundle), workers: 1 });
    const bad = Buffer.from(csr.pem.replace('CERTIFICATE REQUEST', 'PUBLIC KEY'));
    const fromPool = await p.sign(request(SPIFFE_ID, bad)).catch((e: unknown) => e);
    const inThread = await createLeafSigner(pkiOne.bundle, PROFILE)
      .sign(request(SPIFFE_ID, bad))
      .catch((e: unknown) => e);
    expect(fromPool).toBeInstanceOf(WardenError);
    expect({
      code: (fromPool as WardenError).code,
      message: (fromPool as WardenError).message,
    }).toEqual({
      code: (inThread as WardenError).code,
      message: (inThread as WardenError).message,
    });
    expect((fromPool as WardenError).code).toBe('ERR_CSR_INVALID');
  });

  it('refuses requests beyond the per-worker queue with ERR_OVERLOADED, then recovers', async () => {
    const p = pool({ source: new MutableTrustSource(pkiOne.bundle), workers: 1, maxQueue: 2 });
    await p.ready();
    const results = await Promise.allSettled(Array.from({ length: 6 }, () => p.sign(request())));
    expect(results.map((r) => r.status)).toEqual([
      'fulfilled',
      'fulfilled',
      'rejected',
      'rejected',
      'rejected',
      'rejected',
    ]);
    for (const r of results.slice(2))
      expect(isWardenError((r as PromiseRejectedResult).reason, 'ERR_OVERLOADED')).toBe(true);
    await expect(p.sign(request())).resolves.toMatchObject({ generation: 1 });
  });

  it('fails the requests of a crashed worker with ERR_SIGNING_FAILED, replaces it, and keeps signing', async () => {
    const p = pool({
      source: new MutableTrustSource(pkiOne.bundle),
      workers: 1,
      workerScript: CRASHING_WORKER,
    });
    await p.ready();
    await expect(p.sign(request())).resolves.toMatchObject({ generation: 1 });
    // Posted in the same tick, these travel in one batch that the worker dies on.
    const crash = p.sign(request('spiffe://example.org/ns/default/crash-worker'));
    const besideCrash = p.sign(request());
    for (const doomed of [crash, besideCrash]) {
      const err = await doomed.catch((e: unknown) => e);
      expect(isWardenError(err, 'ERR_SIGNING_FAILED')).toBe(true);
      expect((err as Error).message).toBe('the signing worker stopped unexpectedly');
    }
    await expect(p.sign(request())).resolves.toMatchObject({ generation: 1 });
  });

  it('settles every in-flight request when closed, then refuses new ones', async () => {
    const source = new MutableTrustSource(pkiOne.bundle);
    const p = pool({ source, workers: 2 });
    await p.ready();
    const inFlight = Array.from({ length: 20 }, () => p.sign(request()));
    await p.close();
    const settled = await Promise.allSettled(inFlight);
    expect(settled).toHaveLength(20);
    for (const s of settled) {
      if (s.status === 'rejected') expect(isWardenError(s.reason, 'ERR_SIGNING_FAILED')).toBe(true);
    }
    // close() drains: with a generous timeout nothing in flight is cut off.
    expect(settled.every((s) => s.status === 'fulfilled')).toBe(true);
    expect(source.listenerCount()).toBe(0);
    await expect(p.sign(request())).rejects.toThrow('signing pool is closed');
  });

  it('rejects what is still in flight when close() times out, never leaving a request hanging', async () => {
    const p = pool({
      source: new MutableTrustSource(pkiOne.bundle),
      workers: 1,
      closeTimeoutMs: 0,
    });
    await p.ready();
    const inFlight = Array.from({ length: 50 }, () => p.sign(request()));
    await p.close();
    const settled = await Promise.allSettled(inFlight);
    const rejected = settled.filter((s): s is PromiseRejectedResult => s.status === 'rejected');
    expect(rejected.length).toBeGreaterThan(0);
    for (const r of rejected) expect(isWardenError(r.reason, 'ERR_SIGNING_FAILED')).toBe(true);
  });

  it('validates the identity in the calling thread (TypeError) before anything is posted', async () => {
    const p = pool({ source: new MutableTrustSource(pkiOne.bundle), workers: 1 });
    await expect(p.sign(request('spiffe://example.org'))).rejects.toThrow(TypeError);
  });

  describe('signing in the calling thread when idle', () => {
    const IDLE_MS = 5;
    const crashRequest = (): ReturnType<typeof request> =>
      request('spiffe://example.org/ns/default/crash-worker');

    it('signs in the calling thread once the pool has been idle long enough, else in the workers', async () => {
      const clock = new ManualClock(NOW);
      const p = pool({
        source: new MutableTrustSource(pkiOne.bundle),
        workers: 1,
        workerScript: CRASHING_WORKER,
        signInCallingThreadWhenIdleMs: IDLE_MS,
        clock,
      });
      await p.ready();
      clock.advance(IDLE_MS);
      // Idle: the calling thread signs it, so the worker never sees it.
      await expect(p.sign(crashRequest())).resolves.toMatchObject({ generation: 1 });
      clock.advance(IDLE_MS);
      // The first of two concurrent requests keeps the calling thread busy; the second goes
      // to the worker, which dies on it.
      const [lone, crash] = await Promise.allSettled([p.sign(request()), p.sign(crashRequest())]);
      expect(lone.status).toBe('fulfilled');
      expect(crash.status).toBe('rejected');
      expect(((crash as PromiseRejectedResult).reason as Error).message).toBe(
        'the signing worker stopped unexpectedly',
      );
    });

    it('sends a request that closely follows another to the workers', async () => {
      const clock = new ManualClock(NOW);
      const p = pool({
        source: new MutableTrustSource(pkiOne.bundle),
        workers: 1,
        workerScript: CRASHING_WORKER,
        signInCallingThreadWhenIdleMs: IDLE_MS,
        clock,
      });
      await p.ready();
      clock.advance(IDLE_MS - 1);
      const err = await p.sign(crashRequest()).catch((e: unknown) => e);
      expect((err as Error).message).toBe('the signing worker stopped unexpectedly');
    });

    it('issues certificates while the workers are still starting', async () => {
      const p = pool({
        source: new MutableTrustSource(pkiOne.bundle),
        workers: 1,
        workerScript: SLOW_START_WORKER,
        signInCallingThreadWhenIdleMs: IDLE_MS,
      });
      let ready = false;
      void p.ready().then(() => {
        ready = true;
      });
      const issued = await p.sign(request());
      expect(ready).toBe(false);
      await expectLeafProfile({
        issued,
        pki: pkiOne,
        spkiDer: csr.spkiDer,
        keyType: csr.keyType,
        spiffeId: SPIFFE_ID,
        dnsNames: [],
        notBefore: new Date(floorSecond(NOW - PROFILE.skewMs)),
        notAfter: new Date(floorSecond(NOW + PROFILE.ttlMs)),
        verifyAt: new Date(NOW),
      });
      await p.ready();
      expect(ready).toBe(true);
    });

    it('signs every request after a material change with the new issuer, in whichever thread', async () => {
      const clock = new ManualClock(NOW);
      const source = new MutableTrustSource(pkiOne.bundle);
      const p = pool({ source, workers: 2, signInCallingThreadWhenIdleMs: IDLE_MS, clock });
      await p.ready();
      clock.advance(IDLE_MS);
      expect((await p.sign(request())).generation).toBe(1);
      const before = Array.from({ length: 12 }, () => p.sign(request()));
      source.replace(pkiTwo.bundle);
      const afterInWorkers = Array.from({ length: 12 }, () => p.sign(request()));
      for (const issued of await Promise.all(before)) expect(issued.generation).toBe(1);
      await Promise.all(afterInWorkers);
      clock.advance(IDLE_MS);
      const inCallingThread = await p.sign(request());
      for (const issued of [inCallingThread, ...(await Promise.all(afterInWorkers))]) {
        expect(issued.generation).toBe(2);
        expect(akiOf(issued)).toBe(pkiTwo.issuerKeyIdHex);
        expect(issued.certificateChainPem.endsWith(pkiTwo.issuerPem)).toBe(true);
        expect(issued.trustAnchorsPem).toEqual([pkiTwo.rootPem.trim() + '\n']);
      }
    });

    it('never falls back to the old issuer in the calling thread when new material cannot be loaded', async () => {
      const clock = new ManualClock(NOW);
      const source = new MutableTrustSource(pkiOne.bundle);
      const p = pool({ source, workers: 1, signInCallingThreadWhenIdleMs: IDLE_MS, clock });
      await p.ready();
      source.replace(
        trustBundleFromMaterial({
          generation: 3,
          anchorsPem: pkiTwo.rootPem,
          issuerChainPem: pkiTwo.issuerPem,
          issuerKeyPem: pkiOne.bundle.issuerKeyPem,
        }),
      );
      clock.advance(IDLE_MS);
      const err = await p.sign(request()).catch((e: unknown) => e);
      expect(isWardenError(err, 'ERR_SIGNING_FAILED')).toBe(true);
    });
  });

  describe('deferred worker start', () => {
    it('starts the workers for the first request the calling thread cannot take', async () => {
      const p = pool({
        source: new MutableTrustSource(pkiOne.bundle),
        workers: 1,
        workerScript: CRASHING_WORKER,
        signInCallingThreadWhenIdleMs: 5,
        deferWorkerStart: true,
      });
      // No worker yet: the calling thread signs it, so no worker can die on it.
      await expect(
        p.sign(request('spiffe://example.org/ns/default/crash-worker')),
      ).resolves.toMatchObject({ generation: 1 });
      // The calling thread is busy with the first; the second starts the worker and dies there.
      const [first, second] = await Promise.allSettled([
        p.sign(request()),
        p.sign(request('spiffe://example.org/ns/default/crash-worker')),
      ]);
      expect(first.status).toBe('fulfilled');
      expect(((second as PromiseRejectedResult).reason as Error).message).toBe(
        'the signing worker stopped unexpectedly',
      );
    });

    it.each([
      ['ready()', (p: SigningPool) => void p.ready()],
      ['a request, without calling-thread signing', (p: SigningPool) => void p.sign(request())],
    ])('starts them on %s, and the pool then signs with them', async (_name, start) => {
      const p = pool({
        source: new MutableTrustSource(pkiOne.bundle),
        workers: 2,
        deferWorkerStart: true,
      });
      start(p);
      await expect(p.ready()).resolves.toBeUndefined();
      await expect(p.sign(request())).resolves.toMatchObject({ generation: 1 });
    });
  });
});
