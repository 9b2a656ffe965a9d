import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createPublicKey } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { JWK } from 'jose';
import type { CheckedSignRequest } from '../../../src/issuer/request-rules.js';
import {
  createJwksValidator,
  type JwksValidator,
} from '../../../src/issuer/validators/jwks/jwks-validator.js';
import type { JwksValidatorSettings } from '../../../src/shared/config/dapr-configuration.js';
import { ManualClock, systemClock, type Clock } from '../../../src/shared/clock.js';
import { WardenError } from '../../../src/shared/errors.js';
import {
  checkedRequest,
  describeValidatorConformance,
  type IdentityFields,
} from '../../conformance/validator-conformance.js';
import { JwksTestServer } from '../../support/jwks-test-server.js';
import {
  hmacSigner,
  joseKey,
  joseToken,
  jwks,
  nodeEd25519Key,
  nodeEs256Key,
  nodeRs256Key,
  nodeToken,
  unsignedToken,
  type Claims,
  type JoseSigningKey,
} from '../../support/jwt-fixtures.js';
import { createServerCertificate, createTestRoot } from '../../support/test-pki.js';

const CA_NAMESPACE = 'dapr-system';
const AUDIENCE = `spiffe://cluster.local/ns/${CA_NAMESPACE}/dapr-sentry`;
const MINUTE = 60_000;

function settings(
  source: string,
  overrides: Partial<JwksValidatorSettings> = {},
): JwksValidatorSettings {
  return {
    source,
    caCertificate: undefined,
    minRefreshIntervalMs: 10 * MINUTE,
    requestTimeoutMs: 30_000,
    ...overrides,
  };
}

function validatorFor(
  source: string,
  clock: Clock,
  overrides: Partial<JwksValidatorSettings> = {},
): JwksValidator {
  return createJwksValidator({
    settings: settings(source, overrides),
    audience: AUDIENCE,
    caNamespace: CA_NAMESPACE,
    clock,
    backgroundRefresh: false,
  });
}

function subjectOf(fields: IdentityFields): string {
  return `spiffe://${fields.trustDomain || 'public'}/ns/${fields.namespace}/${fields.id}`;
}

function goodClaims(clock: Clock, fields: IdentityFields): Claims {
  const now = Math.floor(clock.now().getTime() / 1000);
  return { sub: subjectOf(fields), aud: AUDIENCE, exp: now + 600, nbf: now - 10, iat: now - 10 };
}

async function outcome(
  validator: JwksValidator,
  request: CheckedSignRequest,
): Promise<{ code: string; message: string } | 'accepted'> {
  try {
    await validator.validate(request);
    return 'accepted';
  } catch (err) {
    if (err instanceof WardenError) return { code: err.code, message: err.message };
    throw err;
  }
}

const FIELDS: IdentityFields = { id: 'orders', namespace: 'shop', trustDomain: '' };

describe('jwks validator', () => {
  let clock: ManualClock;
  let es256: JoseSigningKey;
  let validator: JwksValidator;

  beforeAll(async () => {
    clock = new ManualClock(Date.UTC(2026, 4, 1));
    es256 = await joseKey('ES256', 'es-1');
  });

  describeValidatorConformance('jwks (inline JWKS, tokens from jose)', async () => {
    const key = await joseKey('ES256', 'conformance');
    const conformanceClock = new ManualClock(Date.UTC(2026, 4, 1));
    const v = validatorFor(jwks(key.publicJwk), conformanceClock);
    await v.start();
    return {
      validator: v,
      caNamespace: CA_NAMESPACE,
      checksProof: true,
      provingRequest: async (fields) =>
        checkedRequest(fields, await joseToken(key, goodClaims(conformanceClock, fields))),
      cleanup: async () => undefined,
    };
  });

  describe('with an inline JWKS of several key types', () => {
    let rs256: JoseSigningKey;
    let ps256: JoseSigningKey;
    let es384: JoseSigningKey;
    let nodeEc: ReturnType<typeof nodeEs256Key>;
    let nodeRsa: ReturnType<typeof nodeRs256Key>;
    let nodeEd: ReturnType<typeof nodeEd25519Key>;
    let octSecret: Buffer;

    beforeAll(async () => {
      rs256 = await joseKey('RS256', 'rs-1');
      ps256 = await joseKey('PS256', 'ps-1');
      es384 = await joseKey('ES384', 'es-384');
      nodeEc = nodeEs256Key('node-ec');
      nodeRsa = nodeRs256Key('node-rsa');
      nodeEd = nodeEd25519Key('node-ed');
      octSecret = Buffer.from('a shared secret that must never be accepted');
      const octJwk: JWK = {
        kty: 'oct',
        k: octSecret.toString('base64url'),
        kid: 'hmac-key',
        alg: 'HS256',
      };
      validator = validatorFor(
        jwks(
          es256.publicJwk,
          rs256.publicJwk,
          ps256.publicJwk,
          es384.publicJwk,
          nodeEc.publicJwk,
          nodeRsa.publicJwk,
          nodeEd.publicJwk,
          octJwk,
        ),
        clock,
      );
      await validator.start();
    });

    it('loads every asymmetric key and leaves the oct key out', () => {
      expect(validator.ready()).toBe(true);
      expect(validator.keyCount()).toBe(7);
    });

    const request = (token: string, fields: IdentityFields = FIELDS): CheckedSignRequest =>
      checkedRequest(fields, token);

    it('accepts good tokens signed by jose (ES256, ES384, RS256, PS256) and by node:crypto (ES256, RS256, Ed25519)', async () => {
      const claims = goodClaims(clock, FIELDS);
      const tokens = [
        await joseToken(es256, claims),
        await joseToken(es384, claims),
        await joseToken(rs256, claims),
        await joseToken(ps256, claims),
        nodeToken({ alg: 'ES256', kid: 'node-ec' }, claims, nodeEc.sign),
        nodeToken({ alg: 'RS256', kid: 'node-rsa' }, claims, nodeRsa.sign),
        nodeToken({ alg: 'EdDSA', kid: 'node-ed' }, claims, nodeEd.sign),
      ];
      for (const token of tokens) {
        await expect(validator.validate(request(token))).resolves.toEqual({
          trustDomain: 'public',
          namespace: 'shop',
          appId: 'orders',
          controlPlane: false,
        });
      }
    });

    it('accepts an aud list that contains the CA SPIFFE ID, and exp/nbf inside the 5 minute skew', async () => {
      const now = Math.floor(clock.now().getTime() / 1000);
      const base = goodClaims(clock, FIELDS);
      for (const claims of [
        { ...base, aud: ['something-else', AUDIENCE] },
        { ...base, exp: now - 4 * 60 },
        { ...base, nbf: now + 4 * 60, iat: now },
      ]) {
        expect(await outcome(validator, request(await joseToken(es256, claims)))).toBe('accepted');
      }
    });

    const denials: Array<[string, (c: Claims, now: number) => Claims | Promise<string>, RegExp]> = [
      [
        'an expired token (beyond the skew)',
        (c, now) => ({ ...c, exp: now - 6 * 60 }),
        /has expired/,
      ],
      [
        'a token not valid yet (beyond the skew)',
        (c, now) => ({ ...c, nbf: now + 6 * 60 }),
        /not valid yet/,
      ],
      [
        'a token issued in the future',
        (c, now) => ({ ...c, iat: now + 6 * 60 }),
        /issued in the future/,
      ],
      ['a token without exp', (c) => ({ ...c, exp: undefined }), /no exp claim/],
      [
        'a token whose exp is a string',
        (c) => ({ ...c, exp: '9999999999' as unknown as number }),
        /exp claim is not a number/,
      ],
      [
        'a token for another audience',
        (c) => ({ ...c, aud: 'spiffe://cluster.local/ns/other/dapr-sentry' }),
        /audience does not include/,
      ],
      ['a token without aud', (c) => ({ ...c, aud: undefined }), /no aud claim/],
      [
        'a token for another app id',
        (c) => ({ ...c, sub: 'spiffe://public/ns/shop/payments' }),
        /subject is not spiffe:\/\/public\/ns\/shop\/orders/,
      ],
      [
        'a token for another trust domain',
        (c) => ({ ...c, sub: 'spiffe://example.org/ns/shop/orders' }),
        /subject is not/,
      ],
      [
        'a token whose sub normalises to the identity',
        (c) => ({ ...c, sub: 'spiffe://public/ns/shop/./orders' }),
        /subject is not/,
      ],
      ['a token without sub', (c) => ({ ...c, sub: undefined }), /no sub claim/],
    ];
    for (const [name, mutate, message] of denials) {
      it(`denies ${name}, saying which check failed`, async () => {
        const now = Math.floor(clock.now().getTime() / 1000);
        const claims = await mutate(goodClaims(clock, FIELDS), now);
        const token = typeof claims === 'string' ? claims : await joseToken(es256, claims);
        const result = await outcome(validator, request(token));
        expect(result).toMatchObject({ code: 'ERR_IDENTITY_DENIED' });
        const message_ = (result as { message: string }).message;
        expect(message_).toMatch(message);
        expect(message_).not.toContain(token);
        expect(message_).not.toContain(token.split('.')[2]);
      });
    }

    it('denies a token signed by another key that claims a known kid', async () => {
      const impostor = await joseKey('ES256', 'es-1');
      const result = await outcome(
        validator,
        request(await joseToken(impostor, goodClaims(clock, FIELDS))),
      );
      expect(result).toMatchObject({
        code: 'ERR_IDENTITY_DENIED',
        message: expect.stringMatching(/signature does not verify/),
      });
    });

    it('ignores a key embedded in the token header (jwk) and denies it', async () => {
      const attacker = await joseKey('ES256', 'es-1');
      const token = await joseToken(attacker, goodClaims(clock, FIELDS), {
        jwk: attacker.publicJwk,
      });
      expect(await outcome(validator, request(token))).toMatchObject({
        message: expect.stringMatching(/signature does not verify/),
      });
    });

    it('denies alg none', async () => {
      const result = await outcome(
        validator,
        request(unsignedToken(goodClaims(clock, FIELDS), 'es-1')),
      );
      expect(result).toMatchObject({ code: 'ERR_IDENTITY_DENIED' });
    });

    it('denies alg none even with a non-empty signature part', async () => {
      const token = `${unsignedToken(goodClaims(clock, FIELDS), 'es-1')}AAAA`;
      expect(await outcome(validator, request(token))).toMatchObject({
        message: expect.stringMatching(/algorithm none is refused/),
      });
    });

    it('denies HS256 signed with the public key bytes (algorithm confusion)', async () => {
      const claims = goodClaims(clock, FIELDS);
      const pem = createPublicKey({ key: nodeRsa.publicJwk as never, format: 'jwk' }).export({
        format: 'pem',
        type: 'spki',
      });
      for (const secret of [pem as string, JSON.stringify(nodeRsa.publicJwk)]) {
        const token = nodeToken({ alg: 'HS256', kid: 'node-rsa' }, claims, hmacSigner(secret));
        expect(await outcome(validator, request(token))).toMatchObject({
          code: 'ERR_IDENTITY_DENIED',
          message: expect.stringMatching(/HS256 is refused/),
        });
      }
    });

    it('denies HS256 even when the JWKS holds an oct key with that kid', async () => {
      const token = nodeToken(
        { alg: 'HS256', kid: 'hmac-key' },
        goodClaims(clock, FIELDS),
        hmacSigner(octSecret),
      );
      expect(await outcome(validator, request(token))).toMatchObject({
        message: expect.stringMatching(/HS256 is refused/),
      });
    });

    it('denies an algorithm that does not fit the key (RS256 header on an EC key)', async () => {
      const token = nodeToken(
        { alg: 'RS256', kid: 'node-ec' },
        goodClaims(clock, FIELDS),
        nodeRsa.sign,
      );
      expect(await outcome(validator, request(token))).toMatchObject({
        message: expect.stringMatching(/does not fit the key/),
      });
    });

    it('denies tokens with crit headers, no kid, or a malformed shape', async () => {
      const claims = goodClaims(clock, FIELDS);
      const cases: Array<[string, RegExp]> = [
        [
          nodeToken({ alg: 'ES256', kid: 'node-ec', crit: ['exp'], exp: 1 }, claims, nodeEc.sign),
          /crit/,
        ],
        [nodeToken({ alg: 'ES256' }, claims, nodeEc.sign), /no kid/],
        ['not-a-jwt', /not a compact JWS/],
        ['a.b.c.d', /not a compact JWS/],
        ['', /no token was sent/],
        [`${Buffer.from('[1]').toString('base64url')}.e30.c2ln`, /header is not a JSON object/],
      ];
      for (const [token, message] of cases) {
        expect(await outcome(validator, request(token))).toMatchObject({
          code: 'ERR_IDENTITY_DENIED',
          message: expect.stringMatching(message),
        });
      }
    });

    it('denies a token whose kid is unknown (inline JWKS: a refresh cannot help)', async () => {
      const stranger = await joseKey('ES256', 'nobody');
      expect(
        await outcome(validator, request(await joseToken(stranger, goodClaims(clock, FIELDS)))),
      ).toMatchObject({
        message: expect.stringMatching(/no key in the JWKS has the token kid/),
      });
    });

    it('sets controlPlane for dapr-sentry-family ids only in the CA namespace', async () => {
      const fields = { id: 'dapr-injector', namespace: CA_NAMESPACE, trustDomain: '' };
      const identity = await validator.validate(
        request(await joseToken(es256, goodClaims(clock, fields)), fields),
      );
      expect(identity.controlPlane).toBe(true);
    });
  });

  describe('key sources', () => {
    let dir: string;
    beforeAll(async () => {
      dir = await mkdtemp(path.join(tmpdir(), 'warden-jwks-'));
    });
    afterAll(async () => {
      await rm(dir, { recursive: true, force: true });
    });

    it('reads a JWKS file', async () => {
      const file = path.join(dir, 'jwks.json');
      await writeFile(file, jwks(es256.publicJwk));
      const v = validatorFor(file, clock);
      await v.start();
      expect(
        await outcome(v, checkedRequest(FIELDS, await joseToken(es256, goodClaims(clock, FIELDS)))),
      ).toBe('accepted');
    });

    it('refreshes on an unknown kid once minRefreshInterval has passed, then accepts the new key', async () => {
      const file = path.join(dir, 'rotating.json');
      await writeFile(file, jwks(es256.publicJwk));
      const local = new ManualClock(clock.now());
      const v = validatorFor(file, local);
      await v.start();
      const next = await joseKey('ES256', 'es-2');
      await writeFile(file, jwks(es256.publicJwk, next.publicJwk));
      const token = await joseToken(next, goodClaims(local, FIELDS));
      // Within the interval the file is not read again: the unknown kid is denied.
      expect(await outcome(v, checkedRequest(FIELDS, token))).toMatchObject({
        code: 'ERR_IDENTITY_DENIED',
      });
      local.advance(10 * MINUTE);
      expect(
        await outcome(v, checkedRequest(FIELDS, await joseToken(next, goodClaims(local, FIELDS)))),
      ).toBe('accepted');
    });

    it('rate-limits refreshes caused by unknown kids to one per minRefreshInterval', async () => {
      const server = await JwksTestServer.start();
      try {
        server.body = jwks(es256.publicJwk);
        const local = new ManualClock(clock.now());
        const v = validatorFor(server.url('http'), local);
        await v.start();
        expect(server.fetches).toBe(1);
        local.advance(10 * MINUTE);
        for (let i = 0; i < 5; i++) {
          const stranger = await joseKey('ES256', `unknown-${i}`);
          const result = await outcome(
            v,
            checkedRequest(FIELDS, await joseToken(stranger, goodClaims(local, FIELDS))),
          );
          expect(result).toMatchObject({
            code: 'ERR_IDENTITY_DENIED',
            message: expect.stringMatching(/no key in the JWKS has the token kid/),
          });
        }
        expect(server.fetches).toBe(2); // one refresh for the first unknown kid, none after
      } finally {
        await server.close();
      }
    });

    it('fetches over HTTPS from 127.0.0.1, trusting only the given caCertificate', async () => {
      const ca = await createTestRoot('CN=JWKS Test CA');
      const server = await JwksTestServer.start(await createServerCertificate(ca));
      try {
        server.body = jwks(es256.publicJwk);
        const trusted = validatorFor(server.url('https'), clock, { caCertificate: ca.pem });
        await trusted.start();
        expect(trusted.ready()).toBe(true);
        expect(
          await outcome(
            trusted,
            checkedRequest(FIELDS, await joseToken(es256, goodClaims(clock, FIELDS))),
          ),
        ).toBe('accepted');

        const untrusted = validatorFor(server.url('https'), clock);
        await untrusted.start();
        expect(untrusted.ready()).toBe(false);
      } finally {
        await server.close();
      }
    });

    it('is not ready while the source is down (UNAVAILABLE, never open) and recovers when it comes back', async () => {
      const server = await JwksTestServer.start();
      try {
        server.status = 503;
        const local = new ManualClock(clock.now());
        const v = validatorFor(server.url('http'), local);
        await v.start();
        expect(v.ready()).toBe(false);
        const token = await joseToken(es256, goodClaims(local, FIELDS));
        expect(await outcome(v, checkedRequest(FIELDS, token))).toMatchObject({
          code: 'ERR_VALIDATOR_UNAVAILABLE',
        });

        server.status = 200;
        server.body = jwks(es256.publicJwk);
        local.advance(5_000); // the not-ready retry interval
        expect(await outcome(v, checkedRequest(FIELDS, token))).toBe('accepted');
        expect(v.ready()).toBe(true);
      } finally {
        await server.close();
      }
    });

    it('keeps the last good keys when a refresh fails', async () => {
      const server = await JwksTestServer.start();
      try {
        server.body = jwks(es256.publicJwk);
        const v = validatorFor(server.url('http'), clock);
        await v.start();
        server.status = 500;
        expect(await v.refresh()).toBe(false);
        server.status = 200;
        server.body = 'not json';
        expect(await v.refresh()).toBe(false);
        server.body = jwks({ kty: 'oct', k: 'c2VjcmV0', kid: 'only-hmac' });
        expect(await v.refresh()).toBe(false); // no usable keys is a failed load, not an empty key set
        expect(v.ready()).toBe(true);
        expect(
          await outcome(
            v,
            checkedRequest(FIELDS, await joseToken(es256, goodClaims(clock, FIELDS))),
          ),
        ).toBe('accepted');
      } finally {
        await server.close();
      }
    });

    it('gives up on a source that does not answer within requestTimeout', async () => {
      const server = await JwksTestServer.start();
      try {
        server.stall = true;
        const v = validatorFor(server.url('http'), clock, { requestTimeoutMs: 200 });
        await v.start();
        expect(v.ready()).toBe(false);
      } finally {
        await server.close();
      }
    });

    it('retries in the background while not ready', async () => {
      const server = await JwksTestServer.start();
      const v = createJwksValidator({
        settings: settings(server.url('http')),
        audience: AUDIENCE,
        caNamespace: CA_NAMESPACE,
        clock: systemClock,
        unreadyRetryMs: 50,
      });
      try {
        server.status = 503;
        await v.start();
        expect(v.ready()).toBe(false);
        server.status = 200;
        server.body = jwks(es256.publicJwk);
        for (let i = 0; i < 100 && !v.ready(); i++)
          await new Promise((resolve) => setTimeout(resolve, 20));
        expect(v.ready()).toBe(true);
      } finally {
        await v.close();
        await server.close();
      }
    });

    it('skips unusable keys: no kid, RSA below 2048 bits, unknown curves, encryption keys', async () => {
      const { generateKeyPairSync } = await import('node:crypto');
      const small = generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey.export({
        format: 'jwk',
      });
      const v = validatorFor(
        jwks(
          { ...es256.publicJwk, kid: undefined },
          { ...small, kid: 'small-rsa' },
          { kty: 'EC', crv: 'secp256k1', x: 'AA', y: 'AA', kid: 'k1' },
          { ...es256.publicJwk, kid: 'enc', use: 'enc' },
          { ...es256.publicJwk, kid: 'ok' },
        ),
        clock,
      );
      await v.start();
      expect(v.keyCount()).toBe(1);
    });

    const badOptions: Array<[string, Partial<JwksValidatorSettings> & { source: string }, RegExp]> =
      [
        [
          'an ftp URL',
          { source: 'ftp://example.org/jwks.json' },
          /scheme ftp: is not http or https/,
        ],
        [
          'a URL with credentials',
          { source: 'https://user:pw@example.org/jwks.json' },
          /user name or password/,
        ],
        [
          'a caCertificate for a file source',
          { source: '/etc/jwks.json', caCertificate: '-----BEGIN CERTIFICATE-----' },
          /only to an https source/,
        ],
      ];
    for (const [name, options, message] of badOptions) {
      it(`refuses ${name} at construction`, () => {
        expect(() => validatorFor(options.source, clock, options)).toThrow(message);
      });
    }
  });
});
