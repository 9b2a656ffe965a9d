import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { readEnv } from '../../../src/shared/env.js';
import { SecretsApiServer } from '../../../src/secrets/api/secrets-api-server.js';
import { resolveComponents, type ResolvedResources } from '../../../src/secrets/resolve/resolve-components.js';
import { createTestCa } from '../../support/mtls-test-pki.js';
import { makeTempDir } from '../../support/temp-directory.js';

/** Sends one raw HTTP/1.1 request through `openssl s_client`; resolves with stdout and stderr. */
function opensslRequest(port: number, args: string[], request: string): Promise<{ out: string; err: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('openssl', ['s_client', '-connect', `127.0.0.1:${port}`, '-servername', 'localhost', '-quiet', '-verify_return_error', ...args], {
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    child.on('error', reject);
    child.on('exit', () => {
      clearTimeout(timer);
      resolve({ out, err });
    });
    child.stdin.end(request);
  });
}

describe('the secrets API with the openssl CLI as the mutual-TLS client', () => {
  let dir: { path: string; remove(): Promise<void> };
  let server: SecretsApiServer;
  let resources: ResolvedResources;
  let port: number;
  const files = { ca: '', cert: '', key: '', foreignCert: '', foreignKey: '' };
  const request = 'GET /v1.0/secrets/local/redis HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n';

  beforeAll(async () => {
    dir = await makeTempDir('openssl-api');
    const secrets = path.join(dir.path, 'secrets.json');
    await writeFile(secrets, JSON.stringify({ redis: 'openssl-pw' }));
    resources = await resolveComponents({
      manifests: [{ apiVersion: 'dapr.io/v1alpha1', kind: 'Component', metadata: { name: 'local' }, spec: { type: 'secretstores.local.file', metadata: [{ name: 'secretsFile', value: secrets }] }, scopes: ['checkout'] }],
      mode: 'standalone',
      env: readEnv({}),
    });
    const ca = await createTestCa();
    const foreign = await createTestCa('Foreign');
    const serverCert = await ca.issue({ usage: 'server', dns: ['localhost'], ips: ['127.0.0.1'] });
    const client = await ca.issue({ usage: 'client', uris: ['spiffe://public/ns/default/checkout'] });
    const stranger = await foreign.issue({ usage: 'client', uris: ['spiffe://public/ns/default/checkout'] });
    const write = async (name: string, text: string): Promise<string> => {
      const file = path.join(dir.path, name);
      await writeFile(file, text, { mode: 0o600 });
      return file;
    };
    files.ca = await write('ca.pem', ca.certPem);
    files.cert = await write('client.pem', client.certPem);
    files.key = await write('client.key', client.keyPem);
    files.foreignCert = await write('foreign.pem', stranger.certPem);
    files.foreignKey = await write('foreign.key', stranger.keyPem);
    server = new SecretsApiServer({
      stores: resources.stores,
      scopes: resources.scopes,
      transport: { kind: 'mtls', tls: { key: serverCert.keyPem, cert: serverCert.certPem, ca: ca.certPem } },
      port: 0,
    });
    port = (await server.listen()).port;
  });
  afterAll(async () => {
    await server.close();
    await resources.close();
    await dir.remove();
  });

  it('answers an openssl client presenting an SVID from the trusted CA', async () => {
    const { out } = await opensslRequest(port, ['-CAfile', files.ca, '-cert', files.cert, '-key', files.key], request);
    expect(out).toMatch(/^HTTP\/1\.1 200 OK/);
    expect(out).toContain('{"redis":"openssl-pw"}');
  });

  it('refuses an openssl client without a certificate', async () => {
    const { out, err } = await opensslRequest(port, ['-CAfile', files.ca], request);
    expect(out).not.toContain('openssl-pw');
    expect(err).toMatch(/certificate required|alert/i);
  });

  it('refuses an openssl client whose certificate comes from another CA', async () => {
    const { out } = await opensslRequest(port, ['-CAfile', files.ca, '-cert', files.foreignCert, '-key', files.foreignKey], request);
    expect(out).not.toContain('HTTP/1.1');
  });
});
