import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { spawn } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';
import { runCli } from '../../../src/cli/run.js';
import { createSecretsServeCommand } from '../../../src/cli/secrets-serve.js';
import type { SecretsApiServer } from '../../../src/secrets/api/secrets-api-server.js';
import { writeFileAtomic } from '../../../src/shared/atomic-file.js';
import { memoryIo } from '../../support/cli-io.js';
import { rawRequest } from '../../support/https-client.js';
import { createTestCa } from '../../support/mtls-test-pki.js';
import { makeTempDir } from '../../support/temp-directory.js';
import { waitFor } from '../../support/wait-for.js';

const MAIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../src/cli/main.js');

function storeYaml(name: string, file: string): string {
  return `apiVersion: dapr.io/v1alpha1
kind: Component
metadata:
  name: ${name}
spec:
  type: secretstores.local.file
  version: v1
  metadata:
  - name: secretsFile
    value: ${file}
  - name: multiValued
    value: "true"
`;
}

const REDIS_YAML = `apiVersion: dapr.io/v1alpha1
kind: Component
metadata:
  name: redis
spec:
  type: state.redis
  metadata:
  - name: redisHost
    value: redis-master.default.svc.cluster.local:6379
  - name: redisPassword
    secretKeyRef:
      name: redis
      key: redis-password
auth:
  secretStore: localsecretstore
`;

describe('warden secrets resolve', () => {
  let dir: { path: string; remove(): Promise<void> };
  let resources: string;
  let secretsFile: string;

  beforeAll(async () => {
    dir = await makeTempDir('cli-resolve');
    resources = path.join(dir.path, 'components');
    secretsFile = path.join(dir.path, 'secrets.json');
    await mkdir(resources);
    await writeFile(secretsFile, JSON.stringify({ redis: { 'redis-password': 'cli-pw-1' } }));
    await writeFile(path.join(resources, 'store.yaml'), storeYaml('localsecretstore', secretsFile));
    await writeFile(path.join(resources, 'redis.yaml'), REDIS_YAML);
  });
  afterAll(async () => {
    await dir.remove();
  });

  it('prints the resolved manifests as YAML with secret values masked', async () => {
    const io = memoryIo();
    expect(await runCli(['secrets', 'resolve', '--resources-path', resources], io)).toBe(0);
    expect(io.out()).not.toContain('cli-pw-1');
    const docs = parseAllDocuments(io.out()).map((d) => d.toJS() as { metadata: { name: string }; spec: { metadata: unknown[] } });
    expect(docs.map((d) => d.metadata.name)).toEqual(['redis', 'localsecretstore']);
    expect(docs[0]?.spec.metadata[1]).toEqual({ name: 'redisPassword', value: '****', secretKeyRef: { name: 'redis', key: 'redis-password' } });
  });

  it('reveals values with --reveal and prints JSON with -o json', async () => {
    const io = memoryIo();
    expect(await runCli(['secrets', 'resolve', '--resources-path', resources, '--reveal', '-o', 'json'], io)).toBe(0);
    const printed = JSON.parse(io.out()) as Array<{ spec: { metadata: Array<{ value: string }> } }>;
    expect(printed[0]?.spec.metadata[1]?.value).toBe('cli-pw-1');
  });

  it('exits 1 listing every problem, naming component, field, store and secret', async () => {
    const broken = path.join(dir.path, 'broken');
    await mkdir(broken);
    await writeFile(path.join(broken, 'store.yaml'), storeYaml('localsecretstore', secretsFile));
    await writeFile(path.join(broken, 'redis.yaml'), REDIS_YAML.replace('key: redis-password', 'key: nope'));
    await writeFile(path.join(broken, 'other.yaml'), REDIS_YAML.replace('name: redis\nspec', 'name: other\nspec').replace('localsecretstore', 'vault'));
    await writeFile(path.join(broken, 'bad.yaml'), 'apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata:\n  name: bad\nspec: {}\n');
    const io = memoryIo();
    expect(await runCli(['secrets', 'resolve', '--resources-path', broken], io)).toBe(1);
    expect(io.out()).toBe('');
    const lines = io.err().trim().split('\n');
    expect(lines[0]).toBe('warden secrets resolve: 3 problems:');
    expect(io.err()).toContain('bad.yaml (spec.type)');
    expect(io.err()).toContain('component "redis" field "redisPassword" store "localsecretstore" secret "redis" key "nope": the secret has no key "nope" [ERR_SECRET_REF_UNRESOLVED]');
    expect(io.err()).toContain('component "other" field "redisPassword" store "vault" secret "redis" key "redis-password": secret store not found');
    expect(io.err()).not.toContain('cli-pw-1');
  });

  it('refuses an unknown output format and a missing --resources-path', async () => {
    const io = memoryIo();
    expect(await runCli(['secrets', 'resolve', '--resources-path', resources, '-o', 'xml'], io)).toBe(1);
    expect(io.err()).toContain('must be yaml or json');
    expect(await runCli(['secrets', 'resolve'], io)).toBe(1);
    expect(io.err()).toContain('-resources-path is required');
  });

  it('--watch prints again when a referenced secret changes, and stops on SIGTERM', async () => {
    const watchDir = path.join(dir.path, 'watch');
    const watchFile = path.join(dir.path, 'watch.json');
    await mkdir(watchDir);
    await writeFile(watchFile, JSON.stringify({ redis: { 'redis-password': 'watch-pw-1' } }));
    await writeFile(path.join(watchDir, 'store.yaml'), storeYaml('localsecretstore', watchFile));
    await writeFile(path.join(watchDir, 'redis.yaml'), REDIS_YAML);
    const child = spawn(process.execPath, [MAIN, 'secrets', 'resolve', '--resources-path', watchDir, '--watch', '--reveal', '-o', 'json'], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { PATH: process.env.PATH ?? '' },
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    try {
      await waitFor(() => (out.includes('watch-pw-1') ? true : undefined), 10_000, 'first print');
      await writeFileAtomic(watchFile, JSON.stringify({ redis: { 'redis-password': 'watch-pw-2' } }));
      await waitFor(() => (out.includes('watch-pw-2') ? true : undefined), 10_000, `second print (stderr: ${err})`);
      expect(err).toContain('a referenced secret changed');
      // an unrelated rewrite with the same content prints nothing new
      const printed = out.length;
      await writeFileAtomic(watchFile, JSON.stringify({ redis: { 'redis-password': 'watch-pw-2' } }));
      await new Promise((r) => setTimeout(r, 400));
      expect(out.length).toBe(printed);
    } finally {
      child.kill('SIGTERM');
    }
    expect(await exited).toBe(0);
  }, 30_000);
});

describe('warden secrets serve', () => {
  let dir: { path: string; remove(): Promise<void> };
  let resources: string;
  beforeAll(async () => {
    dir = await makeTempDir('cli-serve');
    resources = path.join(dir.path, 'components');
    await mkdir(resources);
    await writeFile(path.join(dir.path, 'secrets.json'), JSON.stringify({ redis: { 'redis-password': 'serve-pw' } }));
    await writeFile(path.join(resources, 'store.yaml'), storeYaml('localsecretstore', path.join(dir.path, 'secrets.json')));
  });
  afterAll(async () => {
    await dir.remove();
  });

  async function serve(argv: string[], use: (server: SecretsApiServer) => Promise<void>): Promise<{ code: number; err: string }> {
    let stop!: () => void;
    const stopped = new Promise<void>((resolve) => (stop = resolve));
    let failure: unknown;
    const command = createSecretsServeCommand({
      untilShutdown: () => stopped,
      onListening: (server) => {
        use(server).then(stop, (e: unknown) => {
          failure = e;
          stop();
        });
      },
    });
    const io = memoryIo();
    const code = await command.run(argv, io);
    if (failure) throw failure;
    return { code, err: io.err() };
  }

  it('serves the API over mutual TLS from certificate files', async () => {
    const ca = await createTestCa();
    const serverCert = await ca.issue({ usage: 'server', dns: ['localhost'], ips: ['127.0.0.1'] });
    const client = await ca.issue({ usage: 'client', uris: ['spiffe://cluster.local/ns/default/app'] });
    const files = { cert: path.join(dir.path, 'tls.crt'), key: path.join(dir.path, 'tls.key'), ca: path.join(dir.path, 'ca.crt') };
    await writeFile(files.cert, serverCert.certPem);
    await writeFile(files.key, serverCert.keyPem, { mode: 0o600 });
    await writeFile(files.ca, ca.certPem);
    const result = await serve(
      ['--resources-path', resources, '--port', '0', '--tls-cert-file', files.cert, '--tls-key-file', files.key, '--tls-ca-file', files.ca, '--trust-domain', 'cluster.local'],
      async (server) => {
        const res = await rawRequest(server.address?.port ?? 0, '/v1.0/secrets/localsecretstore/redis', { tls: { ca: ca.certPem, cert: client.certPem, key: client.keyPem } });
        expect(res.body).toEqual({ 'redis-password': 'serve-pw' });
      },
    );
    expect(result.code).toBe(0);
    expect(result.err).toContain('secrets API listening with mutual TLS');
    expect(result.err).not.toContain('serve-pw');
    expect(result.err).not.toContain('PRIVATE KEY');
  });

  it('serves plain HTTP on loopback with --insecure-http, warning loudly', async () => {
    const result = await serve(['--resources-path', resources, '--port', '0', '--insecure-http'], async (server) => {
      const res = await rawRequest(server.address?.port ?? 0, '/v1.0/secrets/localsecretstore/redis');
      expect(res.status).toBe(200);
    });
    expect(result.code).toBe(0);
    expect(result.err).toContain('PLAIN HTTP');
  });

  it.each([
    ['--insecure-http on a non-loopback address', ['--insecure-http', '--listen-address', '0.0.0.0'], /only allowed on a loopback/],
    ['neither TLS files nor --insecure-http', [], /mutual TLS needs/],
    ['both TLS files and --insecure-http', ['--insecure-http', '--tls-cert-file', 'a', '--tls-key-file', 'b', '--tls-ca-file', 'c'], /cannot be combined/],
    ['SVID flags with TLS files', ['--trust-anchors-file', 'ca.crt', '--tls-cert-file', 'a', '--tls-key-file', 'b', '--tls-ca-file', 'c'], /-tls-\* files cannot be combined with -trust-anchors-file/],
    ['SVID flags with --insecure-http', ['--insecure-http', '--sentry-address', '127.0.0.1:1'], /-insecure-http cannot be combined with -sentry-address/],
    ['only some TLS files', ['--tls-cert-file', 'a'], /needs all of -tls-cert-file, -tls-key-file and -tls-ca-file/],
    ['both --token and --token-file', ['--trust-anchors-file', 'ca.crt', '--token', 't', '--token-file', 'f'], /-token and -token-file exclude each other/],
    ['an unknown --token-validator', ['--trust-anchors-file', 'ca.crt', '--token-validator', 'magic'], /-token-validator: "magic" is not one of/],
    ['the health and metrics ports on one port', ['--insecure-http', '--healthz-port', '9999', '--metrics-port', '9999'], /-healthz-port and -metrics-port are both 9999/],
    ['a trust anchors file that holds no certificate', ['--trust-anchors-file', '/dev/null'], /trust anchors file \/dev\/null contains no PEM block/],
  ])('refuses %s', async (_what, extra, message) => {
    const io = memoryIo();
    expect(await runCli(['secrets', 'serve', '--resources-path', resources, '--port', '0', ...extra], io)).toBe(1);
    expect(io.err()).toMatch(message);
  });

  it('lists both commands in the help', async () => {
    const io = memoryIo();
    expect(await runCli(['--help'], io)).toBe(0);
    expect(io.out()).toMatch(/secrets resolve/);
    expect(io.out()).toMatch(/secrets serve/);
  });
});
