import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { startFileCa } from '../../../../src/ca/file-ca.js';
import { createFileTrustStore } from '../../../../src/ca/file-trust-store.js';
import {
  startRotationDriver,
  type Scheduler,
} from '../../../../src/ca/rotation/rotation-driver.js';
import {
  DEFAULT_ROTATION_POLICY,
  type RotationPolicy,
} from '../../../../src/ca/rotation/rotation-policy.js';
import { decideAutomaticStep } from '../../../../src/ca/rotation/rotation-schedule.js';
import {
  readRotationView,
  type RotationContext,
} from '../../../../src/ca/rotation/rotation-steps.js';
import { timerScheduler } from '../../../../src/ca/scheduler.js';
import { ManualClock } from '../../../../src/shared/clock.js';
import { makeOpensslMaterial } from '../../../support/pki-fixtures.js';
import { captureLog } from '../../../support/log-capture.js';
import { waitUntil } from '../../../support/wait-for.js';
import { makeTempDir, removeTempDir } from '../../../support/temp-dir.js';

const DAY = 86_400_000;
const TD = 'example.org';
const handCranked: Scheduler = { every: () => () => undefined };

describe('automatic rotation decisions and the driver', () => {
  let root: string;
  let n = 0;
  beforeAll(async () => {
    root = await makeTempDir();
  });
  afterAll(async () => {
    await removeTempDir(root);
  });

  /** Warden-generated material (root key held): 30-day root, 10-day issuer by default, at T0. */
  async function generated(clock: ManualClock, issuerTtlMs = 10 * DAY): Promise<RotationContext> {
    const dir = path.join(root, `case-${++n}`);
    const ca = await startFileCa({
      credentialsDir: dir,
      trustDomain: TD,
      clock,
      rootTtlMs: 30 * DAY,
      issuerTtlMs,
    });
    await ca.close();
    return {
      store: createFileTrustStore({ directory: dir }),
      policy: DEFAULT_ROTATION_POLICY,
      clock,
    };
  }

  const decide = async (context: RotationContext, policy: RotationPolicy = context.policy) =>
    decideAutomaticStep(
      await readRotationView(context),
      policy,
      (context.clock as ManualClock).now(),
    );

  it.each([
    [1, null, 'renew-issuer'],
    [7, 'renew-issuer', 'prepare'],
  ] as const)('after %i day(s): takes %s, next due is %s', async (days, step, nextStep) => {
    const clock = new ManualClock(Date.UTC(2026, 0, 1));
    const context = await generated(clock);
    clock.advance(days * DAY);
    const decision = await decide(context);
    expect(decision.step).toBe(step);
    expect(decision.nextDueAt).not.toBeNull();
    expect(decision.reason).toContain(step ?? `next: ${nextStep}`);
  });

  it('prepares at half the root lifetime, then activates and retires when each is allowed', async () => {
    const clock = new ManualClock(Date.UTC(2026, 0, 1));
    const context = await generated(clock, 30 * DAY);
    const noRenewal = {
      ...DEFAULT_ROTATION_POLICY,
      issuerRenewal: { enabled: false, renewAtFraction: 2 / 3 },
    };
    clock.advance(15 * DAY + 60_000);
    expect((await decide(context, noRenewal)).step).toBe('prepare');
    const driver = startRotationDriver({ ...context, policy: noRenewal, scheduler: handCranked });
    expect((await driver.tick()).result).toBeNull(); // the start-up look prepared already
    expect((await readRotationView(context)).state.phase).toBe('prepared');
    clock.advance(10 * DAY);
    expect((await driver.tick()).result?.step).toBe('activate');
    expect((await driver.tick()).result).toBeNull();
    clock.advance(
      DEFAULT_ROTATION_POLICY.workloadCertTtlMs + DEFAULT_ROTATION_POLICY.allowedClockSkewMs,
    );
    expect((await driver.tick()).result?.step).toBe('retire');
    await driver.close();
    await expect(driver.tick()).rejects.toThrow(TypeError);
  });

  it('never acts on a bring-your-own root (no root key), and says so once', async () => {
    const dir = path.join(root, `case-${++n}`);
    const work = path.join(root, `work-${n}`);
    await mkdir(dir, { recursive: true });
    await mkdir(work, { recursive: true });
    const byo = await makeOpensslMaterial(work, {
      rootKey: 'p256-pkcs8',
      issuerKey: 'p256-pkcs8',
      days: 30,
    });
    await writeFile(path.join(dir, 'ca.crt'), byo.anchorsPem);
    await writeFile(path.join(dir, 'issuer.crt'), byo.issuerChainPem);
    await writeFile(path.join(dir, 'issuer.key'), byo.issuerKeyPem);
    const clock = new ManualClock(Date.now() + 29 * DAY); // past every threshold
    const logs = captureLog();
    const context = {
      store: createFileTrustStore({ directory: dir }),
      policy: DEFAULT_ROTATION_POLICY,
      clock,
    };
    const decision = await decide(context);
    expect(decision).toMatchObject({ step: null, nextDueAt: null });
    expect(decision.reason).toContain('Warden does not hold the root key (a bring-your-own root)');
    const driver = startRotationDriver({ ...context, logger: logs.logger, scheduler: handCranked });
    for (let i = 0; i < 3; i++) expect((await driver.tick()).result).toBeNull();
    await driver.close();
    const off = logs.lines().filter((l) => String(l.msg).startsWith('automatic rotation is off'));
    expect(off).toHaveLength(1);
    expect(off[0]?.level).toBe('warn');
  });

  it('does nothing when disabled by configuration, and says which part is off', async () => {
    const clock = new ManualClock(Date.UTC(2026, 0, 1));
    const context = await generated(clock);
    clock.advance(8 * DAY);
    const off: RotationPolicy = {
      ...DEFAULT_ROTATION_POLICY,
      rootRotation: { ...DEFAULT_ROTATION_POLICY.rootRotation, enabled: false },
      issuerRenewal: { ...DEFAULT_ROTATION_POLICY.issuerRenewal, enabled: false },
    };
    expect(await decide(context, off)).toMatchObject({
      step: null,
      reason: 'disabled by configuration (rootRotation, issuerRenewal)',
    });
    const rootOff = { ...DEFAULT_ROTATION_POLICY, rootRotation: off.rootRotation };
    expect((await decide(context, rootOff)).step).toBe('renew-issuer');
  });

  it('logs an unreadable store once, keeps looking, and logs when it is readable again', async () => {
    const clock = new ManualClock(Date.UTC(2026, 0, 1));
    const context = await generated(clock);
    const logs = captureLog();
    const statePath = path.join(
      (context.store as ReturnType<typeof createFileTrustStore>).directory,
      'rotation.json',
    );
    await writeFile(statePath, '{ not json');
    const driver = startRotationDriver({ ...context, logger: logs.logger, scheduler: handCranked });
    for (let i = 0; i < 3; i++) expect((await driver.tick()).error).not.toBeNull();
    const errors = logs.lines().filter((l) => l.msg === 'rotation driver could not act');
    expect(errors).toHaveLength(1);
    expect(String(errors[0]?.error)).toContain('rotation.json is not valid JSON');
    await rm(statePath);
    expect((await driver.tick()).error).toBeNull();
    expect(
      logs.lines().some((l) => l.msg === 'rotation driver: the trust store is readable again'),
    ).toBe(true);
    await driver.close();
  });

  it('logs a failing onCommitted instead of throwing, and runs on its own timer', async () => {
    const clock = new ManualClock(Date.UTC(2026, 0, 1));
    const context = await generated(clock);
    clock.advance(8 * DAY); // renewal due
    const logs = captureLog();
    let committed = 0;
    const driver = startRotationDriver({
      ...context,
      logger: logs.logger,
      scheduler: timerScheduler,
      intervalMs: 20,
      onCommitted: () => {
        committed++;
        throw new Error('reload failed (simulated)');
      },
    });
    await waitUntil(() => committed === 1, 'the start-up look to renew the issuer');
    // Due again (day 14.8; the root's prepare is due at day 15): the timer, not a hand, takes it.
    clock.advance(6.8 * DAY);
    await waitUntil(() => committed === 2, 'a timer tick to renew again');
    await driver.close();
    expect(
      logs.lines().filter((l) => l.msg === 'rotation driver: applying the committed step failed'),
    ).toHaveLength(committed);
    expect(committed).toBe(2);
  });
});
