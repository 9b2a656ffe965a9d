import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { X509Certificate } from 'node:crypto';
import path from 'node:path';
import { certificateValidity } from '../../../src/ca/certificate-facts.js';
import { startFileCa, type FileCa } from '../../../src/ca/file-ca.js';
import { createFileTrustStore } from '../../../src/ca/file-trust-store.js';
import {
  startRotationDriver,
  type RotationDriver,
  type Scheduler,
} from '../../../src/ca/rotation/rotation-driver.js';
import {
  DEFAULT_ROTATION_POLICY,
  propagationWindowMs,
  type RotationPolicy,
} from '../../../src/ca/rotation/rotation-policy.js';
import type { RotationStep } from '../../../src/ca/rotation/rotation-state.js';
import { ManualClock } from '../../../src/shared/clock.js';
import { makeTempDir, removeTempDir } from '../../support/temp-dir.js';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const TD = 'example.org';

/** The driver's own timer never fires: the test cranks it after moving the clock. */
const handCranked: Scheduler = { every: () => () => undefined };

function signs(child: X509Certificate, parent: X509Certificate): boolean {
  return child.checkIssued(parent) && child.verify(parent.publicKey);
}

interface Replica {
  ca: FileCa;
  driver: RotationDriver;
}

interface Leaf {
  readonly root: string;
  readonly expiresAt: number;
}

/** name, policy, root TTL, issuer TTL, replicas, simulated time between ticks */
const SCENARIOS: readonly [string, RotationPolicy, number, number, number, number][] = [
  [
    'Dapr defaults (1/2, 5/6, 2/3), 30d root, 10d issuer, two replicas',
    DEFAULT_ROTATION_POLICY,
    30 * DAY,
    10 * DAY,
    2,
    DAY,
  ],
  [
    'custom fractions (0.4, 0.7, 0.5), a 12h propagation window, 20d root, 20d issuer, one replica',
    {
      ...DEFAULT_ROTATION_POLICY,
      propagationWindowMs: 12 * HOUR,
      rootRotation: { enabled: true, prepareAtFraction: 0.4, activateAtFraction: 0.7 },
      issuerRenewal: { enabled: true, renewAtFraction: 0.5 },
    },
    20 * DAY,
    20 * DAY,
    1,
    DAY,
  ],
];

describe.each(SCENARIOS)(
  'automatic rotation in simulated time: %s',
  (_name, policy, rootTtlMs, issuerTtlMs, replicaCount, tick) => {
    let root: string;
    const clock = new ManualClock(Date.UTC(2026, 0, 1));
    let replicas: Replica[] = [];
    // Every commit by any driver, including those of the look each driver takes at start.
    const steps: RotationStep[] = [];

    async function startReplicas(): Promise<Replica[]> {
      const started: Replica[] = [];
      for (let i = 0; i < replicaCount; i++) started.push(await startReplica());
      return started;
    }

    async function startReplica(): Promise<Replica> {
      const dir = path.join(root, 'credentials');
      const ca = await startFileCa({
        credentialsDir: dir,
        trustDomain: TD,
        clock,
        rootTtlMs,
        issuerTtlMs,
      });
      const driver = startRotationDriver({
        store: createFileTrustStore({ directory: dir }),
        policy,
        clock,
        scheduler: handCranked,
        onCommitted: (result) => {
          steps.push(result.step);
          return ca.reload();
        },
      });
      return { ca, driver };
    }

    beforeAll(async () => {
      root = await makeTempDir();
      // Replicas over one directory, as in HA: every driver acts on every tick.
      replicas = await startReplicas();
    });
    afterAll(async () => {
      for (const r of replicas) {
        await r.driver.close();
        await r.ca.close();
      }
      await removeTempDir(root);
    });

    it('keeps a valid issuer under a published root at every tick across three root lifetimes', async () => {
      const window = propagationWindowMs(policy);
      const end = clock.now().getTime() + 3 * rootTtlMs;
      const firstPublished = new Map<string, number>();
      const leaves: Leaf[] = [];
      let activeRoot = replicas[0]?.ca.current().anchors[0]?.fingerprint256 as string;
      let ticks = 0;

      while (clock.now().getTime() < end) {
        clock.advance(tick);
        ticks++;
        // Every 10 simulated days the replicas restart over the same directory.
        if (ticks % Math.round((10 * DAY) / tick) === 0) {
          for (const r of replicas) {
            await r.driver.close();
            await r.ca.close();
          }
          replicas = await startReplicas();
        }
        // Every driver acts at once; a step that became due meanwhile (a renewal right
        // after a rotation step) is taken on a further round.
        for (let round = 0; round < 3; round++) {
          const results = await Promise.all(replicas.map((r) => r.driver.tick()));
          for (const r of results) expect(r.error).toBeNull();
          const committed = results.filter((r) => r.result?.changed).map((r) => r.result?.step);
          // Replicas may take different steps one after the other, never the same one twice.
          expect(new Set(committed).size).toBe(committed.length);
          if (committed.length === 0) break;
        }
        // The other replicas hear about it from their file watchers in production.
        for (const r of replicas) await r.ca.reload();

        const now = clock.now().getTime();
        const bundle = replicas[0]?.ca.current();
        if (!bundle) throw new Error('no replica');
        for (const r of replicas) {
          expect(r.ca.current().anchorsPem).toBe(bundle.anchorsPem);
          expect(r.ca.current().issuerChainPem).toBe(bundle.issuerChainPem);
        }
        const issuer = bundle.issuerChain[0] as X509Certificate;
        const issuerValidity = certificateValidity(issuer);
        // The issuer is valid now, and still will be at the next tick.
        expect(issuerValidity.notBefore.getTime()).toBeLessThanOrEqual(now);
        expect(issuerValidity.notAfter.getTime()).toBeGreaterThan(now + tick);
        // It chains to a published anchor; every anchor is valid.
        const signer = bundle.anchors.find((a) => signs(issuer, a));
        expect(signer).toBeDefined();
        for (const anchor of bundle.anchors) {
          expect(certificateValidity(anchor).notAfter.getTime()).toBeGreaterThan(now);
          if (!firstPublished.has(anchor.fingerprint256))
            firstPublished.set(anchor.fingerprint256, now);
        }
        expect(bundle.anchors.length).toBeLessThanOrEqual(2);

        // Activation only after the next root was published for the propagation window.
        const signingRoot = (signer as X509Certificate).fingerprint256;
        if (signingRoot !== activeRoot) {
          expect(now - (firstPublished.get(signingRoot) as number)).toBeGreaterThanOrEqual(window);
          activeRoot = signingRoot;
        }
        // Every workload certificate still alive chains to a published root.
        const published = new Set(bundle.anchors.map((a) => a.fingerprint256));
        for (const leaf of leaves) {
          if (leaf.expiresAt > now) expect(published.has(leaf.root)).toBe(true);
        }
        leaves.push({
          root: signingRoot,
          expiresAt: Math.min(now + policy.workloadCertTtlMs, issuerValidity.notAfter.getTime()),
        });
      }

      const count = (step: RotationStep): number => steps.filter((s) => s === step).length;
      // Three lifetimes, each new root prepared halfway through the previous one's life.
      expect(count('prepare')).toBeGreaterThanOrEqual(4);
      expect(count('activate')).toBeGreaterThanOrEqual(count('prepare') - 1);
      expect(count('retire')).toBeGreaterThanOrEqual(count('activate') - 1);
      // Exactly one new root per prepare: never two different "next" roots.
      expect(firstPublished.size).toBe(count('prepare') + 1);
      if (issuerTtlMs < rootTtlMs) expect(count('renew-issuer')).toBeGreaterThanOrEqual(3);
      // Ninety simulated days of real file I/O and certificate parsing: seconds on a quiet
      // machine, several times that on a loaded one. A failure bound, not a performance test.
    }, 180_000);
  },
);
