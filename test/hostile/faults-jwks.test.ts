import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { status as GrpcStatus } from '@grpc/grpc-js';
import { ManualClock } from '../../src/shared/clock.js';
import {
  hostileJwtKeys,
  startHostileWarden,
  type HostileWarden,
} from '../support/hostile-warden.js';
import { JwksTestServer } from '../support/jwks-test-server.js';
import { joseToken, jwks } from '../support/jwt-fixtures.js';
import { makePeculiarCsr, type TestCsr } from '../support/signing-test-pki.js';
import { goodClaims, jwksRequest } from './sign-certificate-corpus.js';
import { attemptSign } from './sign-outcome.js';

/**
 * The JWKS source (an HTTP server) is unreachable when Warden starts, comes back, and fails
 * again later. The CA's clock is a ManualClock, so the validator's retry spacing (5 s while
 * it has no keys, minRefreshInterval 10 min once it has) is crossed without sleeping.
 */
describe('the JWKS source unreachable', () => {
  let source: JwksTestServer;
  let w: HostileWarden;
  let clock: ManualClock;
  let csr: TestCsr;

  beforeAll(async () => {
    source = await JwksTestServer.start();
    source.status = 503;
    clock = new ManualClock(Date.now());
    w = await startHostileWarden({ clock, jwksSource: { url: source.url('http') } });
    csr = await makePeculiarCsr('P-256');
  });
  afterAll(async () => {
    await w?.close();
    await source?.close();
  });

  const jwksCall = async (kid?: string) => {
    const keys = await hostileJwtKeys();
    const key = kid === undefined ? keys.es256 : { ...keys.es256, kid };
    return attemptSign(w.client, jwksRequest({ p256: csr }, await joseToken(key, goodClaims())));
  };

  it('starts anyway, with the jwks validator not ready: /healthz 503 naming it, JWKS requests UNAVAILABLE', async () => {
    expect(await w.healthz()).toEqual({
      status: 503,
      body: { status: 'not ready', notReady: ['validator:jwks'] },
    });
    const outcome = await jwksCall();
    expect(outcome).toEqual({
      kind: 'refused',
      code: GrpcStatus.UNAVAILABLE,
      details:
        'ERR_VALIDATOR_UNAVAILABLE: jwks validator is not ready: its key source cannot be read',
    });
  });

  it('does not hammer the source: requests inside the 5 s retry spacing cause no fetch', async () => {
    const before = source.fetches;
    for (let i = 0; i < 5; i++) expect((await jwksCall()).kind).toBe('refused');
    expect(source.fetches).toBe(before);
  });

  it('keeps serving the other validator meanwhile', async () => {
    const outcome = await attemptSign(w.client, {
      id: 'app',
      namespace: 'default',
      certificate_signing_request: Buffer.from(csr.pem),
    });
    expect(outcome.kind).toBe('issued');
  });

  it('refuses a JWKS answer over 1 MiB without becoming ready', async () => {
    source.status = 200;
    source.body = JSON.stringify({ keys: [], padding: 'x'.repeat(2 * 1024 * 1024) });
    clock.advance(5_000);
    expect(await jwksCall()).toMatchObject({ kind: 'refused', code: GrpcStatus.UNAVAILABLE });
    expect((await w.healthz()).status).toBe(503);
    const warning = w.log
      .lines()
      .filter((l) => l.msg === 'jwks: cannot load keys from the source')
      .at(-1);
    expect(String(warning?.err)).toContain('larger than 1048576 bytes');
  });

  it('recovers by itself once the source answers: the next request after the retry spacing loads the keys', async () => {
    const keys = await hostileJwtKeys();
    source.body = jwks(keys.es256.publicJwk, keys.rsa.publicJwk);
    source.status = 200;
    clock.advance(5_000);
    expect((await jwksCall()).kind).toBe('issued');
    expect(await w.healthz()).toEqual({ status: 200, body: { status: 'ok' } });
  });

  it('keeps the last good keys when the source fails again (an unknown kid triggers one refresh, which fails)', async () => {
    source.status = 500;
    clock.advance(11 * 60_000);
    const before = source.fetches;
    const unknown = await jwksCall('rotated-in-later');
    expect(unknown).toMatchObject({ kind: 'refused', code: GrpcStatus.PERMISSION_DENIED });
    expect(source.fetches).toBe(before + 1);
    expect((await jwksCall()).kind).toBe('issued');
    expect((await w.healthz()).status).toBe(200);
    const warning = w.log
      .lines()
      .filter((l) => l.msg === 'jwks: cannot load keys from the source')
      .at(-1);
    expect(warning).toMatchObject({ err: 'Error: HTTP status 500', ready: true });
  });
});
