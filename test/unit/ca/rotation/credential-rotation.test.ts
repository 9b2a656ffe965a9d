import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { startFileCa } from '../../../../src/ca/file-ca.js';
import { createFileTrustStore } from '../../../../src/ca/file-trust-store.js';
import { JwtKeyFileStore } from '../../../../src/ca/jwt/jwt-key-file-store.js';
import { loadOrCreateJwtKeyState } from '../../../../src/ca/jwt/jwt-key-store.js';
import {
  activateCredentials,
  jwtKeyStatus,
  prepareCredentials,
  readJwtKeyStatus,
  retireCredentials,
  type CredentialRotationContext,
} from '../../../../src/ca/rotation/credential-rotation.js';
import {
  startRotationDriver,
  type Scheduler,
} from '../../../../src/ca/rotation/rotation-driver.js';
import { DEFAULT_ROTATION_POLICY } from '../../../../src/ca/rotation/rotation-policy.js';
import { readRotationView } from '../../../../src/ca/rotation/rotation-steps.js';
import { ManualClock } from '../../../../src/shared/clock.js';
import { isWardenError } from '../../../../src/shared/errors.js';
import { silentLogger } from '../../../../src/shared/logger.js';
import { makeTempDir, removeTempDir } from '../../../support/temp-dir.js';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const T0 = Date.UTC(2026, 0, 1);
const TD = 'example.org';
/** Dapr's defaults: workloadCertTTL 24h + allowedClockSkew 15m. */
const WINDOW = DAY + 15 * 60_000;
const handCranked: Scheduler = { every: () => () => undefined };

async function refusal(
  promise: Promise<unknown>,
): Promise<{ message: string; allowedAt: unknown }> {
  try {
    await promise;
  } catch (err) {
    if (isWardenError(err, 'ERR_ROTATION_REFUSED'))
      return { message: err.message, allowedAt: err.details.allowedAt };
    throw err;
  }
  throw new Error('the step was not refused');
}

describe('rotation of the root, the issuer and the JWT key together', () => {
  let root: string;
  let n = 0;
  beforeAll(async () => {
    root = await makeTempDir();
  });
  afterAll(async () => {
    await removeTempDir(root);
  });

  /** Warden-generated X.509 material (30-day root and issuer) plus an ES256 JWT key, at T0. */
  async function setUp(withJwtFiles = true): Promise<{
    dir: string;
    clock: ManualClock;
    context: CredentialRotationContext;
    files: () => Promise<{ jwtKey: string; kids: string[]; anchors: number }>;
  }> {
    const clock = new ManualClock(T0);
    const dir = path.join(root, `case-${++n}`);
    const ca = await startFileCa({
      credentialsDir: dir,
      trustDomain: TD,
      clock,
      rootTtlMs: 30 * DAY,
      issuerTtlMs: 30 * DAY,
    });
    await ca.close();
    const jwtStore = new JwtKeyFileStore({
      dir,
      keyFilename: 'jwt.key',
      jwksFilename: 'jwks.json',
      algorithm: 'ES256',
      maxTokenLifetimeMs: WINDOW,
      clock,
      logger: silentLogger,
    });
    if (withJwtFiles)
      await loadOrCreateJwtKeyState(jwtStore, { algorithm: 'ES256', logger: silentLogger });
    const context: CredentialRotationContext = {
      store: createFileTrustStore({ directory: dir }),
      policy: DEFAULT_ROTATION_POLICY,
      clock,
      jwt: withJwtFiles ? { store: jwtStore } : null,
    };
    const files = async () => {
      const jwks = JSON.parse(await readFile(path.join(dir, 'jwks.json'), 'utf8')) as {
        keys: { kid: string }[];
      };
      const anchors = (await readFile(path.join(dir, 'ca.crt'), 'utf8')).match(/BEGIN CERT/g);
      return {
        jwtKey: await readFile(path.join(dir, 'jwt.key'), 'utf8'),
        kids: jwks.keys.map((k) => k.kid),
        anchors: anchors?.length ?? 0,
      };
    };
    return { dir, clock, context, files };
  }

  it('prepare publishes a next JWT key beside the next root; the current key keeps signing', async () => {
    const { context, files } = await setUp();
    const before = await files();
    const result = await prepareCredentials(context);
    expect(result.root.changed).toBe(true);
    expect(result.jwt?.changed).toBe(true);
    const state = result.jwt?.state;
    const after = await files();
    expect(after.anchors).toBe(2);
    expect(after.jwtKey).toBe(before.jwtKey);
    expect(after.kids).toEqual([state?.current.kid, state?.next?.key.kid]);
    // Both windows start at the same instant.
    expect(state?.next?.preparedAt.toISOString()).toBe(result.root.state.preparedAt);
    expect((await readJwtKeyStatus(context))?.next?.activationAllowedAt).toBe(
      new Date(T0 + WINDOW).toISOString(),
    );

    const again = await prepareCredentials(context);
    expect(again.changed).toBe(false);
    expect(again.jwt?.message).toContain('already published');
  });

  it('activate is refused for both parts until the propagation window has passed, then takes both', async () => {
    const { clock, context, files } = await setUp();
    const prepared = await prepareCredentials(context);
    const nextKid = prepared.jwt?.state.next?.key.kid;
    clock.advance(WINDOW - 1000);
    const before = await files();
    const refused = await refusal(activateCredentials(context));
    expect(refused.allowedAt).toBe(new Date(T0 + WINDOW).toISOString());
    expect(await files()).toEqual(before);
    expect((await readRotationView(context)).state.phase).toBe('prepared');

    clock.advance(1000);
    const activated = await activateCredentials(context);
    expect(activated.root.state.phase).toBe('activated');
    const jwt = activated.jwt?.state;
    expect(jwt?.current.kid).toBe(nextKid);
    // The outgoing key stays published exactly as long as the old root's leaves may live.
    expect(jwt?.previous?.retireAfter.getTime()).toBe(
      Date.parse(activated.root.state.activatedAt as string) + WINDOW,
    );
    const after = await files();
    expect(after.jwtKey).not.toBe(before.jwtKey);
    expect(after.kids).toEqual([nextKid, before.kids[0]]);
  });

  it('retire is refused until the last leaf and token signed before activation have expired, then drops both', async () => {
    const { clock, context, files } = await setUp();
    await prepareCredentials(context);
    clock.advance(WINDOW);
    const activated = await activateCredentials(context);
    const newKid = activated.jwt?.state.current.kid;
    clock.advance(WINDOW - 1000);
    const before = await files();
    const refused = await refusal(retireCredentials(context));
    expect(refused.allowedAt).toBe(new Date(T0 + 2 * WINDOW).toISOString());
    expect(await files()).toEqual(before);

    clock.advance(1000);
    const retired = await retireCredentials(context);
    expect(retired.root.state.phase).toBe('idle');
    expect(retired.jwt?.state.previous).toBeNull();
    expect(await files()).toMatchObject({ anchors: 1, kids: [newKid] });
  });

  it('a JWT key prepared after the root waits for its own window: activate refuses both, naming the JWT key', async () => {
    const { clock, context, files } = await setUp();
    await prepareCredentials({ ...context, jwt: null });
    clock.advance(6 * HOUR);
    const late = await prepareCredentials(context);
    expect(late.root.changed).toBe(false);
    expect(late.jwt?.changed).toBe(true);

    clock.advance(WINDOW - 6 * HOUR); // the root's window is over, the JWT key's is not
    const before = await files();
    const refused = await refusal(activateCredentials(context));
    expect(refused.message).toContain('the JWT key');
    expect(refused.allowedAt).toBe(new Date(T0 + 6 * HOUR + WINDOW).toISOString());
    expect(await files()).toEqual(before);

    clock.advance(6 * HOUR);
    const activated = await activateCredentials(context);
    expect(activated.root.changed && activated.jwt?.changed).toBe(true);
  });

  it('--force takes every phase of both at once', async () => {
    const { context, files } = await setUp();
    const first = (await files()).kids[0];
    await prepareCredentials(context);
    const activated = await activateCredentials(context, { force: true });
    await retireCredentials(context, { force: true });
    expect(await files()).toMatchObject({ anchors: 1, kids: [activated.jwt?.state.current.kid] });
    expect(activated.jwt?.state.current.kid).not.toBe(first);
  });

  it('without JWT key files, the root rotates alone', async () => {
    const { context } = await setUp(false);
    const result = await prepareCredentials(context);
    expect(result.root.changed).toBe(true);
    expect(result.jwt).toBeNull();
  });

  it('the driver rotates the JWT key with the root across a whole root lifetime', async () => {
    const { clock, context, files } = await setUp();
    const firstKid = (await files()).kids[0];
    const driver = startRotationDriver({
      ...context,
      policy: {
        ...DEFAULT_ROTATION_POLICY,
        issuerRenewal: { enabled: false, renewAtFraction: 0.5 },
      },
      scheduler: handCranked,
    });
    try {
      const steps: string[] = [];
      // Half a day at a time for 29.5 days: prepare at 15d, activate at 25d, retire a day later
      // (the next root, made at 15d, is prepared for at 30d).
      for (let t = 0; t < 59; t++) {
        clock.advance(DAY / 2);
        const tick = await driver.tick();
        if (tick.result?.changed) steps.push(tick.result.step);
      }
      expect(steps).toEqual(['prepare', 'activate', 'retire']);
      const state = (await context.jwt?.store.load()) ?? null;
      expect(state?.current.kid).not.toBe(firstKid);
      expect(state?.next).toBeNull();
      expect(state?.previous).toBeNull();
      expect(await files()).toMatchObject({ anchors: 1, kids: [state?.current.kid] });
      expect(jwtKeyStatus(state!, context.policy).previous).toBeNull();
    } finally {
      await driver.close();
    }
  });
});
