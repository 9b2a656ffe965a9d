import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { X509Certificate } from 'node:crypto';
import { createPrivateKey } from 'node:crypto';
import { readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { startFileCa, type FileCa } from '../../../src/ca/file-ca.js';
import { createFileTrustStore } from '../../../src/ca/file-trust-store.js';
import { DEFAULT_ROTATION_POLICY } from '../../../src/ca/rotation/rotation-policy.js';
import {
  activateRotation,
  prepareRotation,
  readRotationView,
  retireRotation,
  type RotationContext,
} from '../../../src/ca/rotation/rotation-steps.js';
import { parseRotationState } from '../../../src/ca/rotation/rotation-state.js';
import { buildRotationStatus } from '../../../src/ca/rotation/rotation-status.js';
import type { TrustBundle } from '../../../src/ca/trust-bundle.js';
import { ManualClock } from '../../../src/shared/clock.js';
import { WardenError } from '../../../src/shared/errors.js';
import { opensslVerifyAt, signWorkloadLeaf } from '../../support/rotation-fixtures.js';
import { makeTempDir, removeTempDir } from '../../support/temp-dir.js';

const HOUR = 3_600_000;
const WINDOW = 24 * HOUR + 15 * 60_000; // workloadCertTTL + allowedClockSkew (Dapr defaults)
const TD = 'example.org';

async function refusal(promise: Promise<unknown>): Promise<WardenError> {
  const err = await promise.then(
    () => new Error('expected a refusal'),
    (e: unknown) => e,
  );
  if (!(err instanceof WardenError)) throw err;
  return err;
}

describe('a manual rotation: prepare → activate → retire, with a restart after every step', () => {
  let root: string;
  let dir: string;
  const clock = new ManualClock(Date.UTC(2026, 2, 1));
  let ca: FileCa;
  let context: RotationContext;
  const bundles: TrustBundle[] = [];

  async function restart(): Promise<TrustBundle> {
    await ca.close();
    ca = await startFileCa({ credentialsDir: dir, trustDomain: TD, clock });
    expect(ca.origin).toBe('loaded');
    bundles.push(ca.current());
    return ca.current();
  }

  beforeAll(async () => {
    root = await makeTempDir();
    dir = path.join(root, 'credentials');
    ca = await startFileCa({ credentialsDir: dir, trustDomain: TD, clock });
    bundles.push(ca.current());
    context = {
      store: createFileTrustStore({ directory: dir }),
      policy: DEFAULT_ROTATION_POLICY,
      clock,
    };
  });
  afterAll(async () => {
    await ca.close();
    await removeTempDir(root);
  });

  it('walks the whole cycle, refusing early steps with the time they become allowed', async () => {
    const initial = ca.current();
    const oldRoot = initial.anchors[0] as X509Certificate;
    const oldIssuer = initial.issuerChain[0] as X509Certificate;
    expect(
      oldRoot.checkPrivateKey(createPrivateKey(await readFile(path.join(dir, 'root.key')))),
    ).toBe(true);

    // Nothing prepared: activate and retire say what to do instead.
    expect((await refusal(activateRotation(context))).message).toContain(
      'nothing is prepared: run "warden rotate prepare" first',
    );
    expect((await retireRotation(context)).changed).toBe(false);

    // ── prepare ──
    const preparedAt = clock.now();
    const prepared = await prepareRotation(context);
    expect(prepared).toMatchObject({ step: 'prepare', changed: true });
    expect(prepared.state).toMatchObject({
      phase: 'prepared',
      preparedAt: preparedAt.toISOString(),
    });
    const afterPrepare = await restart();
    expect(afterPrepare.anchors.map((a) => a.fingerprint256)).toEqual([
      oldRoot.fingerprint256,
      prepared.state.nextRootFingerprint,
    ]);
    // The old anchor bytes are kept as a prefix; signing is unchanged.
    expect(await readFile(path.join(dir, 'ca.crt'), 'utf8')).toMatch(
      new RegExp(`^${initial.anchorsPem.replace(/[+/]/g, '\\$&')}`),
    );
    expect(afterPrepare.issuerChainPem).toBe(initial.issuerChainPem);
    expect(afterPrepare.issuerKeyPem).toBe(initial.issuerKeyPem);
    const nextRoot = afterPrepare.anchors[1] as X509Certificate;
    // Running it again changes nothing and says so.
    const again = await prepareRotation(context);
    expect(again.changed).toBe(false);
    expect(again.message).toContain('already prepared');
    expect((await restart()).anchorsPem).toBe(afterPrepare.anchorsPem);

    // Retire before activation is refused; activate before the window names the time.
    expect((await refusal(retireRotation(context))).message).toContain(
      'run "warden rotate activate" first',
    );
    clock.advance(WINDOW - 60_000);
    const early = await refusal(activateRotation(context));
    const activateAllowed = new Date(preparedAt.getTime() + WINDOW).toISOString();
    expect(early.code).toBe('ERR_ROTATION_REFUSED');
    expect(early.message).toContain(`allowed from ${activateAllowed}`);
    expect(early.message).toContain('--force overrides');
    expect(early.details.allowedAt).toBe(activateAllowed);

    // A leaf signed under the old issuer just before activation.
    const beforeActivation = await signWorkloadLeaf(
      afterPrepare,
      `spiffe://${TD}/ns/default/before`,
      clock.now(),
      24 * HOUR,
    );

    // ── activate ──
    clock.advance(60_000);
    const activatedAt = clock.now();
    const activated = await activateRotation(context);
    expect(activated.state).toMatchObject({
      phase: 'activated',
      activatedAt: activatedAt.toISOString(),
    });
    const afterActivate = await restart();
    const newIssuer = afterActivate.issuerChain[0] as X509Certificate;
    expect(newIssuer.fingerprint256).not.toBe(oldIssuer.fingerprint256);
    expect(newIssuer.checkIssued(nextRoot) && newIssuer.verify(nextRoot.publicKey)).toBe(true);
    expect(afterActivate.anchorsPem).toBe(afterPrepare.anchorsPem);
    // Custody follows the signing root; the slot is gone.
    expect(
      nextRoot.checkPrivateKey(createPrivateKey(await readFile(path.join(dir, 'root.key')))),
    ).toBe(true);
    expect((await readdir(dir)).sort()).toEqual([
      'ca.crt',
      'issuer.crt',
      'issuer.key',
      'root.key',
      'rotation.json',
    ]);
    expect((await activateRotation(context)).changed).toBe(false);
    expect((await refusal(prepareRotation(context))).message).toContain('retire the old root');

    const afterActivation = await signWorkloadLeaf(
      afterActivate,
      `spiffe://${TD}/ns/default/after`,
      clock.now(),
      24 * HOUR,
    );

    // ── retire ──
    clock.advance(WINDOW - 1000);
    const lateLeafTime = clock.now();
    const early2 = await refusal(retireRotation(context));
    const retireAllowed = new Date(activatedAt.getTime() + WINDOW).toISOString();
    expect(early2.message).toContain(`may be in use until ${retireAllowed}`);
    expect(early2.details.allowedAt).toBe(retireAllowed);
    // Until retirement both chains verify against what is published (openssl, at that time).
    for (const [leaf, chain] of [
      [beforeActivation, afterPrepare.issuerChainPem],
      [afterActivation, afterActivate.issuerChainPem],
    ] as const) {
      const verdict = await opensslVerifyAt(
        root,
        ca.current().anchorsPem,
        chain,
        leaf.certificatePem,
        new Date(lateLeafTime.getTime() - 20 * 60_000),
      );
      expect(verdict).toMatchObject({ ok: true });
    }

    clock.advance(1000);
    const retired = await retireRotation(context);
    expect(retired.state).toMatchObject({ phase: 'idle', revision: 3 });
    const afterRetire = await restart();
    expect(afterRetire.anchors.map((a) => a.fingerprint256)).toEqual([nextRoot.fingerprint256]);
    expect(afterRetire.issuerChainPem).toBe(afterActivate.issuerChainPem);
    expect((await retireRotation(context)).changed).toBe(false);
    // The new chain still verifies; the old root is no longer trusted.
    expect(
      (
        await opensslVerifyAt(
          root,
          afterRetire.anchorsPem,
          afterActivate.issuerChainPem,
          afterActivation.certificatePem,
          new Date(activatedAt.getTime() + HOUR),
        )
      ).ok,
    ).toBe(true);
    const oldChain = await opensslVerifyAt(
      root,
      afterRetire.anchorsPem,
      afterPrepare.issuerChainPem,
      beforeActivation.certificatePem,
      new Date(activatedAt.getTime() + HOUR),
    );
    expect(oldChain.ok).toBe(false);

    // The history tells the story; files stay private.
    const state = parseRotationState(await readFile(path.join(dir, 'rotation.json'), 'utf8'));
    expect(state.history.map((e) => [e.step, e.forced])).toEqual([
      ['prepare', false],
      ['activate', false],
      ['retire', false],
    ]);
    for (const name of await readdir(dir))
      expect((await stat(path.join(dir, name))).mode & 0o777).toBe(0o600);
    expect(new Set(bundles.map((b) => b.anchorsPem)).size).toBe(3);
  });

  it('reports the phase, the roots and when the next step is allowed', async () => {
    const view = await readRotationView(context);
    const idle = buildRotationStatus(view, DEFAULT_ROTATION_POLICY, clock.now());
    expect(idle).toMatchObject({
      phase: 'idle',
      rootKeyHeld: true,
      automatic: { rootRotation: true },
    });
    expect(idle.roots).toHaveLength(1);
    expect(idle.roots[0]?.role).toBe('active');
    expect(idle.nextSteps[0]).toMatchObject({ step: 'prepare', allowedNow: true });

    await prepareRotation(context);
    const prepared = buildRotationStatus(
      await readRotationView(context),
      DEFAULT_ROTATION_POLICY,
      clock.now(),
    );
    expect(prepared.roots.map((r) => r.role)).toEqual(['active', 'next']);
    expect(prepared.nextIssuer).not.toBeNull();
    expect(prepared.nextSteps[0]).toMatchObject({
      step: 'activate',
      allowedNow: false,
      allowedAt: new Date(clock.now().getTime() + WINDOW).toISOString(),
    });

    await activateRotation(context, { force: true });
    const activated = buildRotationStatus(
      await readRotationView(context),
      DEFAULT_ROTATION_POLICY,
      clock.now(),
    );
    expect(activated.roots.map((r) => r.role)).toEqual(['retiring', 'active']);
    expect(activated.nextSteps[0]).toMatchObject({ step: 'retire', allowedNow: false });
    expect(activated.history.at(-1)).toMatchObject({ step: 'activate', forced: true });

    await retireRotation(context, { force: true });
    const done = await readRotationView(context);
    expect(done.material.anchors).toHaveLength(1);
    expect(done.state.history.at(-1)).toMatchObject({ step: 'retire', forced: true });
  });
});

describe('a rotation left in the activated phase past the old root’s expiry', () => {
  it('lets retire remove the expired root (without --force), after which the CA starts again', async () => {
    const root = await makeTempDir();
    try {
      const dir = path.join(root, 'credentials');
      const clock = new ManualClock(Date.UTC(2026, 2, 1));
      const ca = await startFileCa({
        credentialsDir: dir,
        trustDomain: TD,
        clock,
        rootTtlMs: 3 * 24 * HOUR,
      });
      await ca.close();
      const context: RotationContext = {
        store: createFileTrustStore({ directory: dir }),
        policy: DEFAULT_ROTATION_POLICY,
        clock,
        minting: { rootTtlMs: 30 * 24 * HOUR },
      };
      await prepareRotation(context);
      await activateRotation(context, { force: true });
      clock.advance(4 * 24 * HOUR); // nobody retired it; the old root has expired
      const refused = await startFileCa({ credentialsDir: dir, trustDomain: TD, clock }).catch(
        (e: unknown) => e,
      );
      expect((refused as WardenError).message).toContain('expired at');
      const retired = await retireRotation(context);
      expect(retired.changed).toBe(true);
      expect(retired.state.history.at(-1)?.forced).toBe(false);
      const again = await startFileCa({ credentialsDir: dir, trustDomain: TD, clock });
      expect(again.current().anchors).toHaveLength(1);
      await again.close();
    } finally {
      await removeTempDir(root);
    }
  });
});
