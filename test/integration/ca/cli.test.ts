import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { spawn } from 'node:child_process';
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { generateTrustMaterial } from '../../../src/ca/generate.js';
import { runCli } from '../../../src/cli/run.js';
import { makeTempDir, removeTempDir } from '../../support/temp-dir.js';

const MAIN = fileURLToPath(new URL('../../../src/cli/main.js', import.meta.url));
const DAY = 86_400_000;

interface CliResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

async function cli(...argv: string[]): Promise<CliResult> {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let out = '';
  let err = '';
  stdout.on('data', (d: Buffer) => (out += d.toString()));
  stderr.on('data', (d: Buffer) => (err += d.toString()));
  const code = await runCli(argv, { stdout, stderr, env: {} });
  return { code, stdout: out, stderr: err };
}

async function filesOf(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const name of (await readdir(dir)).sort())
    out[name] = await readFile(path.join(dir, name), 'base64');
  return out;
}

describe('warden init and warden status', () => {
  let root: string;
  let n = 0;
  const freshDir = (): string => path.join(root, `case-${++n}`, 'credentials');

  beforeAll(async () => {
    root = await makeTempDir();
  });
  afterAll(async () => {
    await removeTempDir(root);
  });

  it('init creates the three files (0600 in a 0700 directory) and prints the fingerprints', async () => {
    const dir = freshDir();
    const result = await cli('init', '--issuer-credentials', dir);
    expect(result).toMatchObject({ code: 0, stderr: '' });
    expect((await readdir(dir)).sort()).toEqual(['ca.crt', 'issuer.crt', 'issuer.key', 'root.key']);
    expect((await stat(dir)).mode & 0o777).toBe(0o700);
    for (const f of ['ca.crt', 'issuer.crt', 'issuer.key', 'root.key'])
      expect((await stat(path.join(dir, f))).mode & 0o777).toBe(0o600);
    const rootCert = new X509Certificate(await readFile(path.join(dir, 'ca.crt')));
    expect(result.stdout).toContain(rootCert.fingerprint256);
    expect(rootCert.subjectAltName).toBe('URI:spiffe://localhost'); // Dapr's default trust domain
    expect(
      rootCert.checkPrivateKey(createPrivateKey(await readFile(path.join(dir, 'root.key')))),
    ).toBe(true);
    expect(result.stdout).toContain('The root private key is in root.key (0600)');
    expect(result.stdout).not.toContain('PRIVATE KEY');
  });

  it('init refuses, with exit 1 and a clear message, when material already exists, and changes nothing', async () => {
    const dir = freshDir();
    await cli('init', '--issuer-credentials', dir);
    const before = await filesOf(dir);
    const result = await cli('init', '--issuer-credentials', dir);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('trust material already exists in directory');
    expect(result.stderr).toContain('refusing to replace it');
    expect(await filesOf(dir)).toEqual(before);
  });

  it('init refuses a partial set, naming what is missing', async () => {
    const dir = freshDir();
    await mkdir(dir, { recursive: true });
    await writeFile(path.join(dir, 'ca.crt'), 'operator file');
    const result = await cli('init', '--issuer-credentials', dir);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('ERR_TRUST_MATERIAL_INVALID');
    expect(result.stderr).toContain('issuer.crt, issuer.key missing (ca.crt present)');
    expect(await readFile(path.join(dir, 'ca.crt'), 'utf8')).toBe('operator file');
  });

  it('init honours the trust domain, key algorithm, TTLs and file-name flags', async () => {
    const dir = freshDir();
    const before = Date.now();
    const result = await cli(
      'init',
      '-issuer-credentials',
      dir,
      '--issuer-ca-filename=roots.pem',
      '--issuer-certificate-filename',
      'chain.pem',
      '--issuer-key-filename',
      'signing.key',
      '--keep-root-key=false',
      '--trust-domain',
      'cluster.example',
      '--key-algorithm',
      'ed25519',
      '--root-ttl',
      '720h',
      '--issuer-ttl',
      '48h',
    );
    expect(result.code).toBe(0);
    expect((await readdir(dir)).sort()).toEqual(['chain.pem', 'roots.pem', 'signing.key']);
    expect(result.stdout).toContain('The root private key was not stored');
    const rootCert = new X509Certificate(await readFile(path.join(dir, 'roots.pem')));
    const issuerCert = new X509Certificate(await readFile(path.join(dir, 'chain.pem')));
    expect(rootCert.publicKey.asymmetricKeyType).toBe('ed25519');
    expect(issuerCert.subjectAltName).toBe('URI:spiffe://cluster.example');
    const rootLife = Date.parse(rootCert.validTo) - before;
    const issuerLife = Date.parse(issuerCert.validTo) - before;
    expect(Math.abs(rootLife - 30 * DAY)).toBeLessThan(60_000);
    expect(Math.abs(issuerLife - 2 * DAY)).toBeLessThan(60_000);
  });

  it.each([
    ['an unknown key algorithm', ['--key-algorithm', 'rsa'], 'is not one of ecdsa-p256, ed25519'],
    ['a malformed TTL', ['--root-ttl', '1 year'], 'flag -root-ttl'],
    ['an invalid trust domain', ['--trust-domain', 'Not Valid'], 'trust domain'],
    ['an unknown flag', ['--frobnicate'], 'unknown flag -frobnicate'],
  ])('init rejects %s with exit 1 and creates nothing', async (_name, flags, fragment) => {
    const dir = freshDir();
    const result = await cli('init', '--issuer-credentials', dir, ...flags);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('ERR_CONFIG_INVALID');
    expect(result.stderr).toContain(fragment);
    await expect(stat(dir)).rejects.toThrow();
  });

  it('status prints each anchor and the issuer and exits 0 when nothing expires soon', async () => {
    const dir = freshDir();
    await cli('init', '--issuer-credentials', dir, '--trust-domain', 'example.org');
    const result = await cli('status', '--issuer-credentials', dir);
    const rootCert = new X509Certificate(await readFile(path.join(dir, 'ca.crt')));
    const issuerCert = new X509Certificate(await readFile(path.join(dir, 'issuer.crt')));
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('Trust anchor 1 of 1');
    expect(result.stdout).toContain('SPIFFE ID:    spiffe://example.org');
    expect(result.stdout).toContain(rootCert.fingerprint256);
    expect(result.stdout).toContain(issuerCert.fingerprint256);
    expect(result.stdout).toMatch(/\(36[45] days left\)/);
    expect(result.stdout).not.toContain('WARNING');
  });

  it('status exits 3 and warns when the issuer expires within --warn-days', async () => {
    const dir = freshDir();
    await cli('init', '--issuer-credentials', dir, '--issuer-ttl', '240h');
    const warned = await cli('status', '--issuer-credentials', dir);
    expect(warned.code).toBe(3);
    expect(warned.stdout).toContain(
      'WARNING: expiring within 30 days: issuer O=localhost, CN=warden-issuer',
    );
    const calm = await cli('status', '--issuer-credentials', dir, '--warn-days', '5');
    expect(calm.code).toBe(0);
  });

  it('status --output json gives scripts the report', async () => {
    const dir = freshDir();
    await cli('init', '--issuer-credentials', dir, '--issuer-ttl', '240h');
    const result = await cli(
      'status',
      '--issuer-credentials',
      dir,
      '--output',
      'json',
      '--warn-days',
      '15',
    );
    expect(result.code).toBe(3);
    const report = JSON.parse(result.stdout) as Record<string, unknown>;
    const rootCert = new X509Certificate(await readFile(path.join(dir, 'ca.crt')));
    expect(report).toMatchObject({
      valid: true,
      warnDays: 15,
      expiringWithinWarnDays: true,
      anchors: [
        {
          role: 'anchor',
          sha256Fingerprint: rootCert.fingerprint256,
          spiffeId: 'spiffe://localhost',
        },
      ],
      issuer: { role: 'issuer', daysLeft: 9 },
    });
  });

  it.each([
    ['no material at all', async () => undefined, 'no trust material in directory'],
    [
      'a key that does not match',
      async (dir: string) => {
        const other = await generateTrustMaterial({ trustDomain: 'other.org' });
        await writeFile(path.join(dir, 'issuer.key'), other.material.issuerKeyPem);
      },
      'issuer.key does not match the public key of issuer.crt',
    ],
  ])('status exits 1 on %s, in text and in JSON', async (name, breakIt, fragment) => {
    const dir = freshDir();
    if (name !== 'no material at all') await cli('init', '--issuer-credentials', dir);
    await breakIt(dir);
    const text = await cli('status', '--issuer-credentials', dir);
    expect(text.code).toBe(1);
    expect(text.stderr).toContain(fragment);
    const json = await cli('status', '--issuer-credentials', dir, '--output=json');
    expect(json.code).toBe(1);
    expect(JSON.parse(json.stdout)).toMatchObject({
      valid: false,
      code: 'ERR_TRUST_MATERIAL_INVALID',
    });
    expect(JSON.parse(json.stdout).error).toContain(fragment);
  });

  it.each(['init', 'status'])(
    '%s --help lists the Dapr flag names and exits 0',
    async (command) => {
      const result = await cli(command, '--help');
      expect(result.code).toBe(0);
      for (const flag of [
        '--issuer-credentials',
        '--issuer-ca-filename',
        '--issuer-certificate-filename',
        '--issuer-key-filename',
      ]) {
        expect(result.stdout).toContain(flag);
      }
    },
  );

  it('the real executable propagates status’s exit code 3', async () => {
    const dir = freshDir();
    await cli('init', '--issuer-credentials', dir, '--issuer-ttl', '24h');
    const code = await new Promise<number | null>((resolve) => {
      const child = spawn(process.execPath, [MAIN, 'status', '--issuer-credentials', dir], {
        stdio: 'ignore',
      });
      child.on('exit', (c) => resolve(c));
    });
    expect(code).toBe(3);
  });
});
