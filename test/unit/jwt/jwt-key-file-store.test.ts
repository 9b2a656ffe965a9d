import { afterEach, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import { generateKeyPairSync } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { Writable } from 'node:stream';
import { jwkThumbprint, daprStyleThumbprint, publicJwkOf } from '../../../src/ca/jwt/jwk.js';
import {
  JwtKeyFileStore,
  loadOrCreateJwtKeys,
  type JwtKeyFileStoreOptions,
} from '../../../src/ca/jwt/jwt-key-file-store.js';
import {
  DEFAULT_JWT_STATE_FILENAME,
  decodeJwtKeyMaterial,
  encodeJwtKeyMaterial,
} from '../../../src/ca/jwt/jwt-key-material.js';
import { JwtKeyManager } from '../../../src/ca/jwt/jwt-key-manager.js';
import {
  activateNextJwtKey,
  prepareNextJwtKey,
  publishedJwks,
} from '../../../src/ca/jwt/jwt-key-state.js';
import {
  JWT_SIGNING_ALGORITHMS,
  type JwtSigningAlgorithm,
} from '../../../src/ca/jwt/jwt-signing-algorithm.js';
import { exportPkcs8Pem, generateJwtSigningKey } from '../../../src/ca/jwt/jwt-signing-key.js';
import { ManualClock } from '../../../src/shared/clock.js';
import { isWardenError, type ErrorCode } from '../../../src/shared/errors.js';
import { createLogger, silentLogger } from '../../../src/shared/logger.js';
import { makeTempDir } from '../../support/jwt-test-support.js';

const HOUR = 3_600_000;
const MAX_TOKEN_LIFETIME_MS = 24 * HOUR + 15 * 60_000;
const NAMES = {
  keyFilename: 'jwt.key',
  jwksFilename: 'jwks.json',
  stateFilename: DEFAULT_JWT_STATE_FILENAME,
};

let dir: string;
let remove: () => void;
beforeEach(() => {
  ({ dir, remove } = makeTempDir());
});
afterEach(() => remove());

function options(overrides: Partial<JwtKeyFileStoreOptions> = {}): JwtKeyFileStoreOptions {
  return {
    dir,
    keyFilename: 'jwt.key',
    jwksFilename: 'jwks.json',
    algorithm: 'RS256',
    maxTokenLifetimeMs: MAX_TOKEN_LIFETIME_MS,
    clock: new ManualClock(),
    logger: silentLogger,
    ...overrides,
  };
}

async function expectFailure(
  promise: Promise<unknown>,
  code: ErrorCode,
  message: RegExp,
): Promise<void> {
  let caught: unknown;
  try {
    await promise;
  } catch (err) {
    caught = err;
  }
  expect(isWardenError(caught, code)).toBe(true);
  expect((caught as Error).message).toMatch(message);
}

async function readJwks(name = 'jwks.json'): Promise<{ keys: Record<string, unknown>[] }> {
  return JSON.parse(await fs.readFile(path.join(dir, name), 'utf8')) as {
    keys: Record<string, unknown>[];
  };
}

describe('JWT key files', () => {
  it.each(JWT_SIGNING_ALGORITHMS)(
    'generates a %s key on first start: jwt.key, jwks.json and the rotation record, all 0600',
    async (algorithm) => {
      const keys = await loadOrCreateJwtKeys(
        options({ algorithm, dir: path.join(dir, 'credentials') }),
      );
      expect(keys.signingKey.alg).toBe(algorithm);
      for (const name of ['jwt.key', 'jwks.json', DEFAULT_JWT_STATE_FILENAME]) {
        const stat = await fs.stat(path.join(dir, 'credentials', name));
        expect((stat.mode & 0o777).toString(8)).toBe('600');
      }
      expect(((await fs.stat(path.join(dir, 'credentials'))).mode & 0o777).toString(8)).toBe('700');
      const pem = await fs.readFile(path.join(dir, 'credentials', 'jwt.key'), 'utf8');
      expect(pem).toMatch(/^-----BEGIN PRIVATE KEY-----\n/);
    },
  );

  it('loads the same key and kid on restart, and publishes exactly its public half', async () => {
    const first = await loadOrCreateJwtKeys(options());
    const again = await loadOrCreateJwtKeys(options());
    expect(again.signingKey.kid).toBe(first.signingKey.kid);
    expect(jwkThumbprint(publicJwkOf(again.signingKey.privateKey))).toBe(first.signingKey.kid);
    expect(await readJwks()).toEqual({ keys: [first.signingKey.publicJwk] });
    expect(again.publishedJwks).toEqual({ keys: [first.signingKey.publicJwk] });
  });

  it('names a generated key by --jwt-key-id and keeps that kid on restart', async () => {
    const first = await loadOrCreateJwtKeys(options({ keyId: 'sentry-key' }));
    expect(first.signingKey.kid).toBe('sentry-key');
    expect((await loadOrCreateJwtKeys(options({ keyId: 'sentry-key' }))).signingKey.kid).toBe(
      'sentry-key',
    );
  });

  it('uses custom file names (--jwt-key-filename, --jwks-filename)', async () => {
    await loadOrCreateJwtKeys(options({ keyFilename: 'signing.pem', jwksFilename: 'keys.json' }));
    expect((await fs.readdir(dir)).sort()).toEqual([
      DEFAULT_JWT_STATE_FILENAME,
      'keys.json',
      'signing.pem',
    ]);
  });

  it('adopts a jwt.key given without jwks.json (user-provided) and writes the JWKS for it', async () => {
    const key = generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey;
    await fs.writeFile(path.join(dir, 'jwt.key'), exportPkcs8Pem(key), { mode: 0o600 });
    const keys = await loadOrCreateJwtKeys(options({ algorithm: 'ES256' }));
    expect(keys.signingKey.kid).toBe(jwkThumbprint(publicJwkOf(key)));
    expect((await readJwks()).keys.map((k) => k.kid)).toEqual([keys.signingKey.kid]);
  });

  it("loads Dapr-written material, keeping Dapr's base64 kid, and keeps extra keys published", async () => {
    const key = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
    const daprKid = daprStyleThumbprint(publicJwkOf(key));
    const other = await generateJwtSigningKey('ES256');
    await fs.writeFile(path.join(dir, 'jwt.key'), exportPkcs8Pem(key));
    await fs.writeFile(
      path.join(dir, 'jwks.json'),
      JSON.stringify({
        keys: [{ ...publicJwkOf(key), kid: daprKid, alg: 'RS256', use: 'sig' }, other.publicJwk],
      }),
    );
    const keys = await loadOrCreateJwtKeys(options());
    expect(keys.signingKey.kid).toBe(daprKid);
    expect(keys.publishedJwks.keys.map((k) => k.kid)).toEqual([daprKid, other.kid]);
    // Nothing needed repair, so nothing was written (the directory may be read-only).
    expect(await fs.readdir(dir)).not.toContain(DEFAULT_JWT_STATE_FILENAME);
  });

  describe('refuses material that does not match', () => {
    let keyPem: string;
    let jwk: Record<string, unknown>;
    let kid: string;
    beforeAll(async () => {
      const key = await generateJwtSigningKey('RS256');
      keyPem = exportPkcs8Pem(key.privateKey);
      jwk = { ...key.publicJwk };
      kid = key.kid;
    });

    const cases: [
      string,
      (write: (name: string, text: string) => Promise<void>) => Promise<void>,
      ErrorCode,
      RegExp,
    ][] = [
      [
        'a jwks.json whose key is not the public half of jwt.key',
        async (write) => {
          const other = await generateJwtSigningKey('RS256');
          await write('jwt.key', keyPem);
          await write('jwks.json', JSON.stringify({ keys: [{ ...other.publicJwk, kid }] }));
        },
        'ERR_TRUST_MATERIAL_INVALID',
        /^jwks\.json: key ".+" is not the public half of jwt\.key$/,
      ],
      [
        'a jwks.json without the kid of jwt.key',
        async (write) => {
          await write('jwt.key', keyPem);
          await write('jwks.json', JSON.stringify({ keys: [{ ...jwk, kid: 'other' }] }));
        },
        'ERR_TRUST_MATERIAL_INVALID',
        /^jwks\.json has no key with kid ".+" \(the public half of jwt\.key\)$/,
      ],
      [
        'a jwks.json entry with the wrong alg',
        async (write) => {
          await write('jwt.key', keyPem);
          await write('jwks.json', JSON.stringify({ keys: [{ ...jwk, alg: 'PS256' }] }));
        },
        'ERR_TRUST_MATERIAL_INVALID',
        /has alg "PS256", expected "RS256"/,
      ],
      [
        'a jwks.json entry without use "sig"',
        async (write) => {
          await write('jwt.key', keyPem);
          await write('jwks.json', JSON.stringify({ keys: [{ ...jwk, use: undefined }] }));
        },
        'ERR_TRUST_MATERIAL_INVALID',
        /must have use "sig"/,
      ],
      [
        'a jwks.json publishing a private key',
        async (write) => {
          await write('jwt.key', keyPem);
          const privateJwk = (await generateJwtSigningKey('RS256')).privateKey.export({
            format: 'jwk',
          });
          await write('jwks.json', JSON.stringify({ keys: [jwk, privateJwk] }));
        },
        'ERR_TRUST_MATERIAL_INVALID',
        /^jwks\.json: key #1 contains private key members/,
      ],
      [
        'a jwks.json that is not JSON',
        async (write) => {
          await write('jwt.key', keyPem);
          await write('jwks.json', '{"keys": [');
        },
        'ERR_TRUST_MATERIAL_INVALID',
        /^jwks\.json is not valid JSON$/,
      ],
      [
        'a jwks.json without jwt.key',
        async (write) => write('jwks.json', JSON.stringify({ keys: [jwk] })),
        'ERR_TRUST_MATERIAL_INVALID',
        /jwks\.json exists but jwt\.key does not/,
      ],
      [
        'a jwt.key of another algorithm than --jwt-signing-algorithm',
        async (write) =>
          write('jwt.key', exportPkcs8Pem(generateKeyPairSync('ed25519').privateKey)),
        'ERR_TRUST_MATERIAL_INVALID',
        /^jwt\.key holds a key for EdDSA but --jwt-signing-algorithm is RS256$/,
      ],
      [
        'a jwt.key that is not a key',
        async (write) => write('jwt.key', 'not a key'),
        'ERR_TRUST_MATERIAL_INVALID',
        /^jwt\.key must hold exactly one PEM block/,
      ],
      [
        'a jwt.key replaced behind the rotation record',
        async (write) => {
          const other = await generateJwtSigningKey('RS256');
          const encoded = encodeJwtKeyMaterial(
            { current: other, next: null, previous: null, foreignKeys: [] },
            NAMES,
          );
          await write('jwt.key', keyPem);
          await write('jwks.json', JSON.stringify({ keys: [jwk] }));
          await write(DEFAULT_JWT_STATE_FILENAME, encoded[DEFAULT_JWT_STATE_FILENAME] as string);
        },
        'ERR_ROTATION_STATE',
        /jwt\.key holds neither the current nor the next JWT key recorded in jwt-rotation\.json; if the key was replaced on purpose, remove jwt-rotation\.json/,
      ],
      [
        'a corrupt rotation record',
        async (write) => {
          await write('jwt.key', keyPem);
          await write(DEFAULT_JWT_STATE_FILENAME, '{"version": 1}');
        },
        'ERR_ROTATION_STATE',
        /"current" must have kid, alg and thumbprint/,
      ],
    ];
    it.each(cases)('%s', async (_name, arrange, code, message) => {
      await arrange((name, text) => fs.writeFile(path.join(dir, name), text, { mode: 0o600 }));
      const before = await fs.readdir(dir);
      await expectFailure(loadOrCreateJwtKeys(options()), code, message);
      // Nothing was generated or overwritten.
      expect(await fs.readdir(dir)).toEqual(before);
    });

    it('and says so without key material in the message', async () => {
      await fs.writeFile(path.join(dir, 'jwt.key'), keyPem);
      await fs.writeFile(
        path.join(dir, 'jwks.json'),
        JSON.stringify({ keys: [{ ...jwk, n: 'AQAB' + String(jwk.n).slice(4) }] }),
      );
      let message = '';
      try {
        await loadOrCreateJwtKeys(options());
      } catch (err) {
        message = (err as Error).message;
      }
      expect(message).not.toBe('');
      expect(message).not.toContain(String(jwk.n).slice(10, 40));
      expect(message).not.toContain('PRIVATE KEY');
    });
  });

  describe('rotation on disk', () => {
    const policy = { minPublishedMs: HOUR, maxTokenLifetimeMs: MAX_TOKEN_LIFETIME_MS };
    async function open(
      clock: ManualClock,
      algorithm: JwtSigningAlgorithm = 'ES256',
    ): Promise<JwtKeyManager> {
      const store = new JwtKeyFileStore(options({ algorithm, clock }));
      return JwtKeyManager.open({ store, algorithm, policy, clock, logger: silentLogger });
    }

    it('keeps next and previous keys across restarts, with their times', async () => {
      const clock = new ManualClock();
      const manager = await open(clock);
      const original = manager.current().signingKey.kid;
      await manager.prepareNext();
      const next = manager.current().state.next?.key.kid as string;
      expect((await readJwks()).keys.map((k) => k.kid)).toEqual([original, next]);

      const restarted = await open(clock);
      expect(restarted.current().state.next?.key.kid).toBe(next);
      expect(restarted.current().state.next?.preparedAt).toEqual(clock.now());
      expect(restarted.current().signingKey.kid).toBe(original);

      clock.advance(HOUR);
      await restarted.activateNext();
      const afterActivation = await open(clock);
      expect(afterActivation.current().signingKey.kid).toBe(next);
      expect(afterActivation.current().state.previous?.key.kid).toBe(original);
      expect(afterActivation.current().state.previous?.retireAfter).toEqual(
        new Date(clock.now().getTime() + MAX_TOKEN_LIFETIME_MS),
      );
      expect((await readJwks()).keys.map((k) => k.kid)).toEqual([next, original]);

      clock.advance(MAX_TOKEN_LIFETIME_MS);
      await afterActivation.retirePrevious();
      expect((await open(clock)).current().publishedJwks.keys.map((k) => k.kid)).toEqual([next]);
      expect((await readJwks()).keys.map((k) => k.kid)).toEqual([next]);
    });

    it('refuses a rotation step that is too early and leaves the files as they were', async () => {
      const clock = new ManualClock();
      const manager = await open(clock);
      await manager.prepareNext();
      const before = await fs.readFile(path.join(dir, DEFAULT_JWT_STATE_FILENAME), 'utf8');
      await expectFailure(
        manager.activateNext(),
        'ERR_ROTATION_REFUSED',
        /published for less than 1h0m0s/,
      );
      expect(await fs.readFile(path.join(dir, DEFAULT_JWT_STATE_FILENAME), 'utf8')).toBe(before);
      expect(manager.current().state.next).not.toBeNull();
    });

    it('tells listeners about each change after it is stored', async () => {
      const clock = new ManualClock();
      const manager = await open(clock);
      const seen: string[] = [];
      manager.onChange((keys) => seen.push(keys.publishedJwks.keys.map((k) => k.kid).join(',')));
      await manager.prepareNext();
      expect(seen).toHaveLength(1);
      expect((await readJwks()).keys.map((k) => k.kid).join(',')).toBe(seen[0]);
    });

    it('logs kids and file names but never key material', async () => {
      const clock = new ManualClock();
      const logs: string[] = [];
      const logger = createLogger({
        level: 'debug',
        destination: new Writable({
          write: (chunk, _enc, done) => (logs.push(String(chunk)), done()),
        }),
      });
      const store = new JwtKeyFileStore(options({ algorithm: 'ES256', clock, logger }));
      const manager = await JwtKeyManager.open({
        store,
        algorithm: 'ES256',
        policy,
        clock,
        logger,
      });
      await manager.prepareNext();
      clock.advance(HOUR);
      await manager.activateNext();
      const text = logs.join('');
      expect(text).toContain(manager.current().signingKey.kid);
      expect(text).not.toContain('PRIVATE KEY');
      const d = manager.current().signingKey.privateKey.export({ format: 'jwk' }).d as string;
      expect(text).not.toContain(d);
      const onDisk = await fs.readFile(path.join(dir, 'jwt.key'), 'utf8');
      expect(text).not.toContain(onDisk.split('\n')[1] as string);
    });

    it('finishes an activation interrupted after jwt.key was written', async () => {
      const clock = new ManualClock();
      const manager = await open(clock);
      const original = manager.current().signingKey.kid;
      await manager.prepareNext();
      const next = manager.current().state.next?.key;
      // The crash: jwt.key already holds the next key; record and jwks.json are as before.
      await fs.writeFile(path.join(dir, 'jwt.key'), exportPkcs8Pem(next!.privateKey), {
        mode: 0o600,
      });
      clock.advance(HOUR);
      const recovered = await open(clock);
      expect(recovered.current().signingKey.kid).toBe(next!.kid);
      expect(recovered.current().state.previous?.key.kid).toBe(original);
      expect(recovered.current().state.previous?.retireAfter).toEqual(
        new Date(clock.now().getTime() + MAX_TOKEN_LIFETIME_MS),
      );
      const record = JSON.parse(
        await fs.readFile(path.join(dir, DEFAULT_JWT_STATE_FILENAME), 'utf8'),
      ) as { current: { kid: string } };
      expect(record.current.kid).toBe(next!.kid);
    });

    it('republishes a recorded next key missing from jwks.json and restarts its publication clock', async () => {
      const clock = new ManualClock();
      const manager = await open(clock);
      const original = manager.current().signingKey;
      await manager.prepareNext();
      // The crash: the record holds the next key, jwks.json was not written yet.
      await fs.writeFile(
        path.join(dir, 'jwks.json'),
        JSON.stringify({ keys: [original.publicJwk] }),
      );
      clock.advance(2 * HOUR);
      const logs: string[] = [];
      const logger = createLogger({
        level: 'warn',
        destination: new Writable({
          write: (chunk, _enc, done) => (logs.push(String(chunk)), done()),
        }),
      });
      const store = new JwtKeyFileStore(options({ algorithm: 'ES256', clock, logger }));
      const recovered = await JwtKeyManager.open({
        store,
        algorithm: 'ES256',
        policy,
        clock,
        logger,
      });
      expect(recovered.current().state.next?.preparedAt).toEqual(clock.now());
      expect((await readJwks()).keys).toHaveLength(2);
      expect(logs.join('')).toMatch(/lacked JWT key .* published again/);
      await expectFailure(
        recovered.activateNext(),
        'ERR_ROTATION_REFUSED',
        /published for less than/,
      );
    });
  });

  it('decodes what it encodes, for a state with next, previous and foreign keys', async () => {
    const clock = new ManualClock();
    const [a, b, c, foreign] = await Promise.all(
      (['ES256', 'ES256', 'ES256', 'EdDSA'] as const).map((alg) => generateJwtSigningKey(alg)),
    );
    let state = prepareNextJwtKey(
      { current: a!, next: null, previous: null, foreignKeys: [foreign!.publicJwk] },
      b!,
      clock.now(),
    );
    state = activateNextJwtKey(state, clock.now(), { minPublishedMs: 0, maxTokenLifetimeMs: HOUR });
    state = prepareNextJwtKey(state, c!, clock.now());
    const decoded = decodeJwtKeyMaterial(encodeJwtKeyMaterial(state, NAMES), {
      names: NAMES,
      algorithm: 'ES256',
      now: clock.now(),
      maxTokenLifetimeMs: HOUR,
    });
    expect(decoded?.repairs).toEqual([]);
    expect(publishedJwks(decoded!.state)).toEqual(publishedJwks(state));
    expect(decoded!.state.previous?.retireAfter).toEqual(state.previous?.retireAfter);
    expect(decoded!.state.next?.key.kid).toBe(c!.kid);
  });
});
