import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { X509Certificate } from 'node:crypto';
import { readdir, readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { runCli } from '../../../src/cli/run.js';
import { memoryIo } from '../../support/cli-io.js';
import { startInProcessWarden, type InProcessWarden } from '../../support/in-process-warden.js';
import { joseKey, joseToken, jwks, type JoseSigningKey } from '../../support/jwt-fixtures.js';
import { openssl, opensslOk } from '../../support/openssl.js';
import { makeTempDir, removeTempDir } from '../../support/temp-dir.js';
import { runWarden } from '../../support/warden-process.js';

/**
 * `warden request` end to end against a running CA (in-process: the CLI is the subject here),
 * once through the real executable and otherwise through runCli. The CA enables the insecure
 * validator (the default) and a jwks validator, so the token flags are exercised for real.
 */

const SENTRY_ID = 'spiffe://localhost/ns/default/dapr-sentry';

interface CliResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

async function cli(...argv: string[]): Promise<CliResult> {
  const io = memoryIo();
  const code = await runCli(argv, io);
  return { code, stdout: io.out(), stderr: io.err() };
}

describe('warden request', () => {
  let dir: string;
  let ca: InProcessWarden;
  let jwtKey: JoseSigningKey;
  let foreignAnchors: string;
  let n = 0;
  const outDir = (): string => path.join(dir, `out-${++n}`);
  const common = (): string[] => [
    '--sentry-address',
    ca.address,
    '--trust-anchors-file',
    ca.anchorsFile,
  ];

  async function tokenFile(sub: string): Promise<string> {
    const now = Math.floor(Date.now() / 1000);
    const file = path.join(dir, `token-${++n}`);
    await writeFile(
      file,
      `${await joseToken(jwtKey, { sub, aud: SENTRY_ID, iat: now, exp: now + 300 })}\n`,
      { mode: 0o600 },
    );
    return file;
  }

  beforeAll(async () => {
    dir = await makeTempDir('warden-request-');
    jwtKey = await joseKey('ES256', 'k1');
    const config = path.join(dir, 'config.yaml');
    await writeFile(
      config,
      [
        'apiVersion: dapr.io/v1alpha1',
        'kind: Configuration',
        'metadata:',
        '  name: daprsystem',
        'spec:',
        '  mtls:',
        '    tokenValidators:',
        '      - name: insecure',
        '      - name: jwks',
        '        options:',
        `          source: '${jwks(jwtKey.publicJwk)}'`,
        '',
      ].join('\n'),
    );
    ca = await startInProcessWarden(path.join(dir, 'ca'), { argv: ['--config', config] });
    expect((await cli('init', '--issuer-credentials', path.join(dir, 'foreign'))).code).toBe(0);
    foreignAnchors = path.join(dir, 'foreign', 'ca.crt');
  });
  afterAll(async () => {
    await ca.close();
    await removeTempDir(dir);
  });

  describe('run as the real executable', () => {
    let out: string;
    let run: Awaited<ReturnType<typeof runWarden>>;

    beforeAll(async () => {
      out = outDir();
      run = await runWarden(
        [
          'request',
          ...common(),
          '--app-id',
          'checkout',
          '--namespace',
          'shop',
          '--out-dir',
          out,
          '--output',
          'json',
        ],
        { cwd: dir },
      );
    });

    it('exits 0 and writes exactly cert.pem, key.pem and ca.pem, the key with mode 0600 in a new 0700 directory', async () => {
      expect(run.stderr).toBe('');
      expect(run.code).toBe(0);
      expect((await readdir(out)).sort()).toEqual(['ca.pem', 'cert.pem', 'key.pem']);
      expect((await stat(out)).mode & 0o777).toBe(0o700);
      expect((await stat(path.join(out, 'key.pem'))).mode & 0o777).toBe(0o600);
    });

    it('issues a leaf for spiffe://public/ns/<namespace>/<app-id>, followed by its issuer chain', async () => {
      const pem = await readFile(path.join(out, 'cert.pem'), 'utf8');
      const certificates =
        pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----\n/g) ?? [];
      expect(certificates).toHaveLength(2);
      expect(new X509Certificate(certificates[0]!).subjectAltName).toBe(
        'URI:spiffe://public/ns/shop/checkout',
      );
      expect(certificates[1]).toBe(
        await readFile(path.join(ca.server.settings.credentials.certificateFile), 'utf8'),
      );
    });

    it('writes the anchors the CA serves, and a chain openssl verifies against them', async () => {
      expect(await readFile(path.join(out, 'ca.pem'), 'utf8')).toBe(ca.anchorsPem);
      const leaf = path.join(out, 'leaf.pem');
      await writeFile(
        leaf,
        (await readFile(path.join(out, 'cert.pem'), 'utf8')).match(
          /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----\n/,
        )![0],
      );
      const result = await openssl([
        'verify',
        '-x509_strict',
        '-purpose',
        'sslclient',
        '-CAfile',
        path.join(out, 'ca.pem'),
        '-untrusted',
        path.join(out, 'cert.pem'),
        leaf,
      ]);
      expect(result.stdout + result.stderr).toContain('leaf.pem: OK');
    });

    it('writes the private key of the certified public key (as openssl reads both)', async () => {
      const fromKey = await opensslOk(['pkey', '-in', path.join(out, 'key.pem'), '-pubout']);
      const fromCert = await opensslOk([
        'x509',
        '-in',
        path.join(out, 'cert.pem'),
        '-noout',
        '-pubkey',
      ]);
      expect(fromCert).toBe(fromKey);
    });

    it('prints a JSON summary without any key material', () => {
      const summary = JSON.parse(run.stdout) as Record<string, unknown>;
      expect(summary).toMatchObject({
        spiffeId: 'spiffe://public/ns/shop/checkout',
        trustDomain: 'public',
        namespace: 'shop',
        appId: 'checkout',
        keyType: 'ecdsa-p256',
        files: {
          certificate: path.join(out, 'cert.pem'),
          privateKey: path.join(out, 'key.pem'),
          trustAnchors: path.join(out, 'ca.pem'),
        },
      });
      expect(run.stdout).not.toContain('PRIVATE KEY');
    });
  });

  it.each([
    ['ecdsa-p256', 'ec', 'prime256v1'],
    ['ecdsa-p384', 'ec', 'secp384r1'],
    ['ed25519', 'ed25519', undefined],
    ['rsa-2048', 'rsa', undefined],
  ] as const)(
    '--key-type %s makes that key and gets it certified',
    async (keyType, nodeType, curve) => {
      const out = outDir();
      const result = await cli(
        'request',
        ...common(),
        '--app-id',
        'keys',
        '--key-type',
        keyType,
        '--trust-domain',
        'example.org',
        '--out-dir',
        out,
      );
      expect(result.stderr).toBe('');
      expect(result.code).toBe(0);
      const leaf = new X509Certificate(await readFile(path.join(out, 'cert.pem')));
      expect(leaf.subjectAltName).toBe('URI:spiffe://example.org/ns/default/keys');
      expect(leaf.publicKey.asymmetricKeyType).toBe(nodeType);
      if (curve) expect(leaf.publicKey.asymmetricKeyDetails?.namedCurve).toBe(curve);
      if (keyType === 'rsa-2048')
        expect(leaf.publicKey.asymmetricKeyDetails?.modulusLength).toBe(2048);
      expect(result.stdout).toContain('Issued spiffe://example.org/ns/default/keys');
    },
  );

  it('replaces an earlier key and certificate atomically, leaving no temporary files', async () => {
    const out = outDir();
    expect((await cli('request', ...common(), '--app-id', 'twice', '--out-dir', out)).code).toBe(0);
    const firstKey = await readFile(path.join(out, 'key.pem'), 'utf8');
    expect((await cli('request', ...common(), '--app-id', 'twice', '--out-dir', out)).code).toBe(0);
    expect(await readFile(path.join(out, 'key.pem'), 'utf8')).not.toBe(firstKey);
    expect((await stat(path.join(out, 'key.pem'))).mode & 0o777).toBe(0o600);
    expect((await readdir(out)).sort()).toEqual(['ca.pem', 'cert.pem', 'key.pem']);
  });

  it('sends the token from --token-file to the validator named by --token-validator', async () => {
    const out = outDir();
    const token = await tokenFile('spiffe://public/ns/default/payments');
    const result = await cli(
      'request',
      ...common(),
      '--app-id',
      'payments',
      '--token-file',
      token,
      '--token-validator',
      'jwks',
      '--out-dir',
      out,
    );
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(new X509Certificate(await readFile(path.join(out, 'cert.pem'))).subjectAltName).toBe(
      'URI:spiffe://public/ns/default/payments',
    );
  });

  describe('refusals: exit 1, a message with the gRPC status or the reason, and no files', () => {
    const cases: Array<{ name: string; argv: () => Promise<string[]>; stderr: RegExp }> = [
      {
        name: 'a token for another identity (PERMISSION_DENIED from the CA)',
        argv: async () => [
          '--app-id',
          'payments',
          '--token-file',
          await tokenFile('spiffe://public/ns/default/admin'),
          '--token-validator',
          'jwks',
        ],
        stderr: /^warden request: PERMISSION_DENIED: ERR_IDENTITY_DENIED: /,
      },
      {
        name: 'a validator the CA has not enabled (INVALID_ARGUMENT from the CA)',
        argv: async () => [
          '--app-id',
          'payments',
          '--token',
          'x',
          '--token-validator',
          'kubernetes',
        ],
        stderr: /^warden request: INVALID_ARGUMENT: ERR_VALIDATOR_NOT_ENABLED: /,
      },
      {
        name: 'the wrong anchors file (the TLS handshake fails)',
        argv: async () => ['--app-id', 'payments', '--trust-anchors-file', foreignAnchors],
        stderr:
          /^warden request: UNAVAILABLE: ERR_SENTRY_NOT_TRUSTED: the CA at 127\.0\.0\.1:\d+ presented a certificate that does not verify against the trust anchors: unable to get local issuer certificate\n$/,
      },
      {
        name: 'the wrong --sentry-spiffe-id (the pin holds)',
        argv: async () => [
          '--app-id',
          'payments',
          '--sentry-spiffe-id',
          'spiffe://localhost/ns/dapr-system/dapr-sentry',
        ],
        stderr:
          /^warden request: UNAVAILABLE: ERR_SENTRY_NOT_TRUSTED: the CA at 127\.0\.0\.1:\d+ is not spiffe:\/\/localhost\/ns\/dapr-system\/dapr-sentry: it presented \["spiffe:\/\/localhost\/ns\/default\/dapr-sentry"\]/,
      },
      {
        name: 'a default pinned ID built from another --control-plane-namespace',
        argv: async () => ['--app-id', 'payments', '--control-plane-namespace', 'dapr-system'],
        stderr: /is not spiffe:\/\/localhost\/ns\/dapr-system\/dapr-sentry/,
      },
      {
        name: 'an app id the rules refuse (checked before any call)',
        argv: async () => ['--app-id', 'pay.ments'],
        stderr: /^warden request: ERR_REQUEST_INVALID: app id "pay\.ments" may not contain "\."\n$/,
      },
    ];

    it.each(cases)('$name', async ({ argv, stderr }) => {
      const out = outDir();
      const result = await cli('request', ...common(), ...(await argv()), '--out-dir', out);
      expect(result.stderr).toMatch(stderr);
      expect(result.code).toBe(1);
      expect(result.stdout).toBe('');
      await expect(stat(out)).rejects.toThrow();
    });
  });

  it('reports every missing or invalid flag at once, before doing anything', async () => {
    const result = await cli(
      'request',
      '--token',
      'a',
      '--token-file',
      'b',
      '--key-type',
      'dsa',
      '--token-validator',
      'none',
    );
    expect(result.code).toBe(1);
    for (const problem of [
      'ERR_CONFIG_INVALID',
      'flag -trust-anchors-file is required',
      'flag -app-id is required',
      'flag -out-dir is required',
      'flag -key-type: "dsa" is not one of ecdsa-p256, ecdsa-p384, ed25519, rsa-2048',
      'flag -token-validator: "none" is not one of unknown, insecure, kubernetes, jwks',
      'flags -token and -token-file exclude each other',
    ]) {
      expect(result.stderr).toContain(problem);
    }
  });

  it('names an anchors file it cannot read', async () => {
    const result = await cli(
      'request',
      '--trust-anchors-file',
      path.join(dir, 'missing.crt'),
      '--app-id',
      'a',
      '--out-dir',
      outDir(),
    );
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(
      `cannot read the trust anchors file ${path.join(dir, 'missing.crt')}: ENOENT`,
    );
  });

  it('--help lists the flags and exits 0', async () => {
    const result = await cli('request', '--help');
    expect(result.code).toBe(0);
    for (const flag of [
      '--sentry-address',
      '--trust-anchors-file',
      '--sentry-spiffe-id',
      '--app-id',
      '--token-file',
      '--key-type',
      '--out-dir',
    ]) {
      expect(result.stdout).toContain(flag);
    }
  });
});
