import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { X509Certificate } from 'node:crypto';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { runCli } from '../../../src/cli/run.js';
import { makeOpensslMaterial } from '../../support/pki-fixtures.js';
import { makeTempDir, removeTempDir } from '../../support/temp-dir.js';

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

function anchorsOf(pem: string): string[] {
  return (pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----\n/g) ?? []).map(
    (block) => new X509Certificate(block).fingerprint256,
  );
}

describe('warden rotate prepare | activate | retire | status', () => {
  let root: string;
  let n = 0;
  const freshDir = (): string => path.join(root, `case-${++n}`, 'credentials');

  beforeAll(async () => {
    root = await makeTempDir();
  });
  afterAll(async () => {
    await removeTempDir(root);
  });

  it('runs a whole rotation from the command line, refusing early steps with exit 4 and the time', async () => {
    const dir = freshDir();
    expect(
      (await cli('init', '--issuer-credentials', dir, '--trust-domain', 'example.org')).code,
    ).toBe(0);
    const firstRoot = anchorsOf(await readFile(path.join(dir, 'ca.crt'), 'utf8'));

    const idle = await cli('rotate', 'status', '--issuer-credentials', dir);
    expect(idle.code).toBe(0);
    expect(idle.stdout).toContain('Rotation phase: idle');
    expect(idle.stdout).toContain('root key: held by Warden');
    expect(idle.stdout).toContain('Next: prepare (allowed now; Warden takes it on its own at');

    const prepared = await cli('rotate', 'prepare', '--issuer-credentials', dir);
    expect(prepared).toMatchObject({ code: 0, stderr: '' });
    expect(prepared.stdout).toContain('prepared: the next root');
    expect(prepared.stdout).toContain('Next: activate (allowed from');
    const anchors = anchorsOf(await readFile(path.join(dir, 'ca.crt'), 'utf8'));
    expect(anchors).toHaveLength(2);
    expect(anchors[0]).toBe(firstRoot[0]);

    const again = await cli('rotate', 'prepare', '--issuer-credentials', dir);
    expect(again.code).toBe(0);
    expect(again.stdout).toMatch(/^Nothing to do: already prepared/);

    const early = await cli('rotate', 'activate', '--issuer-credentials', dir);
    expect(early.code).toBe(4);
    expect(early.stderr).toMatch(
      /activate refused: .* of the 24h15m0s propagation window; allowed from \d{4}-/,
    );
    const earlyJson = await cli(
      'rotate',
      'activate',
      '--issuer-credentials',
      dir,
      '--output',
      'json',
    );
    expect(earlyJson.code).toBe(4);
    expect(JSON.parse(earlyJson.stdout)).toMatchObject({
      refused: true,
      code: 'ERR_ROTATION_REFUSED',
      step: 'activate',
      allowedAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
    });

    const forced = await cli('rotate', 'activate', '--issuer-credentials', dir, '--force');
    expect(forced.code).toBe(0);
    expect(forced.stdout).toContain('activated: the issuer');
    const issuer = new X509Certificate(await readFile(path.join(dir, 'issuer.crt')));
    expect(issuer.fingerprint256).not.toBe('');

    const retireEarly = await cli('rotate', 'retire', '--issuer-credentials', dir);
    expect(retireEarly.code).toBe(4);
    expect(retireEarly.stderr).toContain(
      'certificates signed under the old root may be in use until',
    );

    const status = await cli('status', '--issuer-credentials', dir);
    expect(status.code).toBe(0);
    expect(status.stdout).toContain('Rotation phase: activated');
    expect(status.stdout).toContain('root (retiring)');

    const retired = await cli(
      'rotate',
      'retire',
      '--issuer-credentials',
      dir,
      '--force',
      '-output=json',
    );
    expect(retired.code).toBe(0);
    const body = JSON.parse(retired.stdout) as {
      changed: boolean;
      status: { phase: string; roots: unknown[] };
    };
    expect(body.changed).toBe(true);
    expect(body.status.phase).toBe('idle');
    expect(body.status.roots).toHaveLength(1);
    expect(anchorsOf(await readFile(path.join(dir, 'ca.crt'), 'utf8'))).toEqual([anchors[1]]);
    expect((await readdir(dir)).sort()).toEqual([
      'ca.crt',
      'issuer.crt',
      'issuer.key',
      'root.key',
      'rotation.json',
    ]);
  });

  it('takes the windows from --config and --propagation-window', async () => {
    const dir = freshDir();
    await cli('init', '--issuer-credentials', dir);
    const config = path.join(path.dirname(dir), 'config.yaml');
    await writeFile(
      config,
      [
        'apiVersion: dapr.io/v1alpha1',
        'kind: Configuration',
        'metadata:',
        '  name: daprsystem',
        'spec:',
        '  mtls:',
        '    enabled: true',
        '    workloadCertTTL: 1h',
        '    allowedClockSkew: 5m',
        '    controlPlaneTrustDomain: cluster.local',
        '',
      ].join('\n'),
    );
    await cli('rotate', 'prepare', '--issuer-credentials', dir);
    const refused = await cli(
      'rotate',
      'activate',
      '--issuer-credentials',
      dir,
      '--config',
      config,
    );
    expect(refused.code).toBe(4);
    expect(refused.stderr).toContain('of the 1h5m0s propagation window');
    const allowed = await cli(
      'rotate',
      'activate',
      '--issuer-credentials',
      dir,
      '--config',
      config,
      '--propagation-window',
      '0s',
    );
    expect(allowed.code).toBe(0);

    await writeFile(
      config,
      'kind: Configuration\nspec:\n  mtls:\n    workloadCertTTL: forever\n    rootRotation:\n      prepareAtFraction: 2\n      colour: blue\n',
    );
    const bad = await cli('rotate', 'status', '--issuer-credentials', dir, '--config', config);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('ERR_CONFIG_INVALID');
    // The same Configuration schema as `warden serve`: every problem, each with its path.
    for (const problem of [
      'apiVersion: is required',
      'spec.mtls.workloadCertTTL: "forever" is not a duration',
      'spec.mtls.rootRotation.prepareAtFraction: must be a number between 0 and 1 (exclusive)',
      'spec.mtls.rootRotation.colour: is not a known field',
    ]) {
      expect(bad.stderr).toContain(problem);
    }
  });

  it('imports an operator’s next root, issuer and key with --from-dir (no root key: manual from then on)', async () => {
    const dir = freshDir();
    await cli('init', '--issuer-credentials', dir);
    const work = path.join(path.dirname(dir), 'openssl');
    const next = path.join(path.dirname(dir), 'next');
    await mkdir(work, { recursive: true });
    await mkdir(next, { recursive: true });
    const byo = await makeOpensslMaterial(work, { rootKey: 'p256-pkcs8', issuerKey: 'p256-pkcs8' });
    await writeFile(path.join(next, 'ca.crt'), byo.anchorsPem);
    await writeFile(path.join(next, 'issuer.crt'), byo.issuerChainPem);
    await writeFile(path.join(next, 'issuer.key'), byo.issuerKeyPem);

    const prepared = await cli(
      'rotate',
      'prepare',
      '--issuer-credentials',
      dir,
      '--from-dir',
      next,
    );
    expect(prepared.code).toBe(0);
    const byoRoot = new X509Certificate(byo.anchorsPem).fingerprint256;
    expect(anchorsOf(await readFile(path.join(dir, 'ca.crt'), 'utf8'))[1]).toBe(byoRoot);
    expect(await readFile(path.join(dir, 'next-issuer.key'), 'utf8')).toBe(byo.issuerKeyPem);

    expect((await cli('rotate', 'activate', '--issuer-credentials', dir, '--force')).code).toBe(0);
    expect(await readFile(path.join(dir, 'issuer.crt'), 'utf8')).toBe(byo.issuerChainPem);
    // Warden held the old root's key, not the operator's: custody ends, and status says so.
    expect(await readdir(dir)).not.toContain('root.key');
    const status = await cli('rotate', 'status', '--issuer-credentials', dir);
    expect(status.stdout).toContain(
      'root key: no root.key: Warden does not hold the root key (a bring-your-own root)',
    );
    expect(status.stdout).toContain('automatic: root rotation off, issuer renewal off');
    expect(status.stdout).toContain('Next: retire (allowed from');
    expect(status.stdout).not.toContain('takes it on its own');
  });

  it('refuses an import that is not one root with its issuer and key, changing nothing', async () => {
    const dir = freshDir();
    await cli('init', '--issuer-credentials', dir);
    const before = await readFile(path.join(dir, 'ca.crt'), 'utf8');
    const next = path.join(path.dirname(dir), 'bad-next');
    await mkdir(next, { recursive: true });
    await writeFile(path.join(next, 'ca.crt'), before); // the current root again
    await writeFile(
      path.join(next, 'issuer.crt'),
      await readFile(path.join(dir, 'issuer.crt'), 'utf8'),
    );
    await writeFile(
      path.join(next, 'issuer.key'),
      await readFile(path.join(dir, 'issuer.key'), 'utf8'),
    );
    const result = await cli('rotate', 'prepare', '--issuer-credentials', dir, '--from-dir', next);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('is already among the current anchors');
    expect(await readFile(path.join(dir, 'ca.crt'), 'utf8')).toBe(before);
    expect(await readdir(dir)).not.toContain('rotation.json');
  });

  it('warden status --warn-days checks both roots while a rotation is in progress', async () => {
    const dir = freshDir();
    await cli('init', '--issuer-credentials', dir);
    expect((await cli('status', '--issuer-credentials', dir, '--warn-days', '30')).code).toBe(0);
    // A next root (and issuer) that lives 10 days: within the 30-day window.
    await cli('rotate', 'prepare', '--issuer-credentials', dir, '--root-ttl', '240h');
    const nextRoot = new X509Certificate(
      (await readFile(path.join(dir, 'ca.crt'), 'utf8')).split(
        /(?<=-----END CERTIFICATE-----\n)/,
      )[1] as string,
    );
    const status = await cli('status', '--issuer-credentials', dir, '--warn-days', '30');
    expect(status.code).toBe(3);
    expect(status.stdout).toContain('WARNING: expiring within 30 days');
    expect(status.stdout).toContain(new Date(Date.parse(nextRoot.validTo)).toISOString());
    expect(status.stdout).toContain('next issuer');
    expect((await cli('status', '--issuer-credentials', dir, '--warn-days', '5')).code).toBe(0);
  });

  it('warden status and rotate status exit 1 when the rotation state no longer matches the files', async () => {
    const dir = freshDir();
    await cli('init', '--issuer-credentials', dir);
    await cli('rotate', 'prepare', '--issuer-credentials', dir);
    // An operator puts back the single-root ca.crt by hand.
    const first = (await readFile(path.join(dir, 'ca.crt'), 'utf8')).split(
      /(?<=-----END CERTIFICATE-----\n)/,
    )[0] as string;
    await writeFile(path.join(dir, 'ca.crt'), first);
    const status = await cli('status', '--issuer-credentials', dir);
    expect(status.code).toBe(1);
    expect(status.stderr).toContain('ERR_ROTATION_STATE');
    expect(status.stderr).toContain('no longer holds the prepared next root');
    expect(status.stderr).toContain('to abandon the rotation, remove rotation.json');
    const rotate = await cli('rotate', 'activate', '--issuer-credentials', dir, '--force');
    expect(rotate.code).toBe(1);
    expect(rotate.stderr).toContain('ERR_ROTATION_STATE');
  });
});
