import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import path from 'node:path';
import { startFileCa, type FileCa } from '../../../src/ca/file-ca.js';
import { createFileTrustStore } from '../../../src/ca/file-trust-store.js';
import type { CaCredential } from '../../../src/ca/generate.js';
import { DEFAULT_ROTATION_POLICY } from '../../../src/ca/rotation/rotation-policy.js';
import {
  activateRotation,
  prepareRotation,
  retireRotation,
  type RotationContext,
} from '../../../src/ca/rotation/rotation-steps.js';
import type { TrustBundle } from '../../../src/ca/trust-bundle.js';
import { ManualClock } from '../../../src/shared/clock.js';
import { mutualTls } from '../../support/mutual-tls.js';
import { opensslVerifyAt, signWorkloadLeaf } from '../../support/rotation-fixtures.js';
import { makeTempDir, removeTempDir } from '../../support/temp-dir.js';

const TD = 'example.org';
const HOUR = 3_600_000;

interface Workload {
  readonly id: string;
  readonly credential: CaCredential;
  readonly privateKeyPem: string;
  /** Leaf then issuer chain, as SignCertificate returns workload_certificate. */
  readonly chainPem: string;
  /** The trust anchors the workload received with its certificate. */
  readonly anchorsPem: string;
}

describe('trust continuity across a root rotation (Node TLS and openssl)', () => {
  let root: string;
  let ca: FileCa;
  let context: RotationContext;
  // Ten minutes behind real time, so that everything minted is valid for Node's real clock.
  const clock = new ManualClock(Date.now() - 10 * 60_000);
  let before: Workload;
  let after: Workload;
  let onlyOldAnchors: string;
  let bothAnchors: string;

  async function workload(name: string, bundle: TrustBundle): Promise<Workload> {
    const id = `spiffe://${TD}/ns/default/${name}`;
    const credential = await signWorkloadLeaf(bundle, id, clock.now(), HOUR);
    return {
      id,
      credential,
      privateKeyPem: credential.privateKeyPem,
      chainPem: credential.certificatePem + bundle.issuerChainPem,
      anchorsPem: bundle.anchorsPem,
    };
  }

  beforeAll(async () => {
    root = await makeTempDir();
    const dir = path.join(root, 'credentials');
    ca = await startFileCa({ credentialsDir: dir, trustDomain: TD, clock });
    context = {
      store: createFileTrustStore({ directory: dir }),
      policy: DEFAULT_ROTATION_POLICY,
      clock,
    };
    onlyOldAnchors = ca.current().anchorsPem;
    await prepareRotation(context);
    await ca.reload();
    bothAnchors = ca.current().anchorsPem;
    // Issued between prepare and activate: old issuer, new anchors with its certificate.
    before = await workload('before', ca.current());
    clock.advance(60_000);
    await activateRotation(context, { force: true });
    await ca.reload();
    after = await workload('after', ca.current());
  });
  afterAll(async () => {
    await ca.close();
    await removeTempDir(root);
  });

  it('the two workloads are signed under different roots, and both roots are published', () => {
    expect(before.chainPem).not.toBe(after.chainPem);
    expect(ca.current().anchors).toHaveLength(2);
    expect(ca.current().anchorsPem).toBe(bothAnchors);
  });

  it.each([
    [
      'the pre-rotation workload serves, the post-rotation one connects',
      () => [before, after] as const,
    ],
    [
      'the post-rotation workload serves, the pre-rotation one connects',
      () => [after, before] as const,
    ],
  ])('mutual TLS succeeds while both roots are published: %s', async (_name, pair) => {
    const [server, client] = pair();
    expect(await mutualTls(server, client)).toEqual({
      ok: true,
      serverSaw: client.id,
      clientSaw: server.id,
      error: null,
    });
  });

  it('openssl verifies both chains against the combined ca.crt', async () => {
    for (const w of [before, after]) {
      const [leaf, ...chain] = w.chainPem.split(/(?<=-----END CERTIFICATE-----\n)/);
      const verdict = await opensslVerifyAt(
        root,
        bothAnchors,
        chain.join(''),
        leaf as string,
        new Date(),
      );
      expect(verdict).toEqual({ ok: true, output: expect.stringContaining('OK') });
    }
  });

  it('control: a peer that never received the new anchors rejects the post-rotation workload', async () => {
    const stale: Workload = { ...before, anchorsPem: onlyOldAnchors };
    const outcome = await mutualTls(after, stale);
    expect(outcome.ok).toBe(false);
  });

  it('control: a workload expecting another SPIFFE ID refuses an otherwise valid peer', async () => {
    const impostor: Workload = { ...after, id: `spiffe://${TD}/ns/default/someone-else` };
    const outcome = await mutualTls(impostor, before);
    expect(outcome.ok).toBe(false);
    expect(outcome.clientSaw).toBe(after.id);
  });

  it('control: after retirement the pre-rotation chain no longer verifies', async () => {
    await retireRotation(context, { force: true });
    await ca.reload();
    const retired: Workload = { ...after, anchorsPem: ca.current().anchorsPem };
    expect((await mutualTls(retired, { ...before, anchorsPem: ca.current().anchorsPem })).ok).toBe(
      false,
    );
    const [leaf, ...chain] = before.chainPem.split(/(?<=-----END CERTIFICATE-----\n)/);
    expect(
      (
        await opensslVerifyAt(
          root,
          ca.current().anchorsPem,
          chain.join(''),
          leaf as string,
          new Date(),
        )
      ).ok,
    ).toBe(false);
  });
});
