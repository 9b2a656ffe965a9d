import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { createLocalJWKSet, decodeProtectedHeader, jwtVerify, type JSONWebKeySet } from 'jose';
import { runCli } from '../../../src/cli/run.js';
import { validateServeInvocation } from '../../../src/cli/serve-flags.js';
import { startWardenServer, type WardenServer } from '../../../src/cli/warden-server.js';
import { generateKeyAndCsr } from '../../../src/issuer/sidecar/workload-csr.js';
import { readEnv } from '../../../src/shared/env.js';
import { silentLogger } from '../../../src/shared/logger.js';
import { memoryIo } from '../../support/cli-io.js';
import {
  createSentryTestClient,
  type SentryTestClient,
} from '../../support/sentry-proto-client.js';
import { makeTempDir, removeTempDir } from '../../support/temp-dir.js';
import { waitUntil } from '../../support/wait-for.js';

/*
 * The JWT key takes the root's phases (issue 6, item 3): `warden rotate prepare|activate|retire`
 * act on jwt.key/jwks.json when they exist in the credentials directory, and a running
 * `warden serve --jwt-enabled` follows each step through its credentials watcher. Tokens are
 * checked with jose, which did not sign them.
 */

const TD = 'example.org';

async function cli(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const io = memoryIo();
  const code = await runCli(argv, io);
  return { code, out: io.out(), err: io.err() };
}

describe('warden rotate and the JWT signing key', () => {
  let root: string;
  let dir: string;
  let server: WardenServer;
  let client: SentryTestClient;
  const tokens: Record<string, string> = {};
  let firstKid: string;
  let nextKid: string;

  const served = () => server.jwt?.keys.current();
  const servedKids = () => served()?.publishedJwks.keys.map((k) => k.kid) ?? [];
  const jwksFile = async () =>
    JSON.parse(await readFile(path.join(dir, 'jwks.json'), 'utf8')) as JSONWebKeySet;
  const rotate = (step: string, ...extra: string[]) =>
    cli('rotate', step, '--issuer-credentials', dir, ...extra);

  async function token(): Promise<string> {
    const response = await client.sign({
      id: 'orders',
      namespace: 'default',
      trust_domain: TD,
      certificate_signing_request: Buffer.from(generateKeyAndCsr('ecdsa-p256').csrPem),
      token_validator: 'INSECURE',
    });
    return response.jwt?.value as string;
  }

  const verifies = async (jwt: string, jwks: JSONWebKeySet): Promise<boolean> =>
    jwtVerify(jwt, createLocalJWKSet(jwks), { audience: TD }).then(
      () => true,
      () => false,
    );

  beforeAll(async () => {
    root = await makeTempDir();
    dir = path.join(root, 'credentials');
    const result = await validateServeInvocation(
      [
        `--issuer-credentials=${dir}`,
        `--trust-domain=${TD}`,
        '--listen-address=127.0.0.1',
        '--port=0',
        '--healthz-port=0',
        '--enable-metrics=false',
        '--workers=1',
        '--jwt-enabled',
        '--jwt-signing-algorithm=ES256',
      ],
      readEnv({}),
      { cwd: root },
    );
    if (!result.ok) throw new Error(JSON.stringify(result.problems));
    server = await startWardenServer(result.settings, {
      logger: silentLogger,
      credentialsWatch: { debounceMs: 100, pollIntervalMs: 500 },
    });
    client = createSentryTestClient({
      address: `127.0.0.1:${server.grpc.port}`,
      anchorsPem: server.ca.current().anchorsPem,
      expectedSpiffeId: server.settings.sentrySpiffeId,
    });
    firstKid = served()?.signingKey.kid as string;
  });
  afterAll(async () => {
    client?.close();
    await server?.close(0);
    await removeTempDir(root);
  });

  it('status shows the JWT key that signs', async () => {
    const status = await rotate('status');
    expect(status.code).toBe(0);
    expect(status.out).toContain(`JWT key: ${firstKid} (ES256) signs`);
    const json = JSON.parse((await rotate('status', '--output', 'json')).out) as {
      phase: string;
      jwt: { current: { kid: string }; next: unknown; previous: unknown };
    };
    expect(json).toMatchObject({ phase: 'idle', jwt: { current: { kid: firstKid }, next: null } });
  });

  it('prepare publishes the next key in jwks.json with the next root; the server publishes it and keeps signing with the current key', async () => {
    tokens.beforePrepare = await token();
    const prepared = await rotate('prepare');
    expect(prepared.code).toBe(0);
    expect(prepared.out).toContain('JWT key: published the next JWT key');
    const published = await jwksFile();
    expect(published.keys).toHaveLength(2);
    nextKid = published.keys[1]?.kid as string;
    await waitUntil(() => servedKids().includes(nextKid), 'the server to publish the next key');
    await waitUntil(() => server.ca.current().anchors.length === 2, 'the next root');
    expect(served()?.signingKey.kid).toBe(firstKid);
    tokens.prepared = await token();
    expect(decodeProtectedHeader(tokens.prepared).kid).toBe(firstKid);
    const status = JSON.parse((await rotate('status', '--output', 'json')).out) as {
      jwt: { next: { kid: string; activationAllowedAt: string } };
    };
    expect(status.jwt.next.kid).toBe(nextKid);
    expect((await rotate('status')).out).toContain(`next key: ${nextKid} (ES256) published since`);
  });

  it('activate is refused for both parts inside the propagation window', async () => {
    const refused = await rotate('activate');
    expect(refused.code).toBe(4);
    expect(served()?.signingKey.kid).toBe(firstKid);
  });

  it('activate --force: the server signs with the next key; tokens of both keys verify against what it publishes', async () => {
    const activated = await rotate('activate', '--force');
    expect(activated.code).toBe(0);
    expect(activated.out).toContain(`JWT key: the JWT key "${nextKid}" signs from now on`);
    await waitUntil(
      () => served()?.signingKey.kid === nextKid,
      'the server to sign with the next key',
    );
    tokens.activated = await token();
    expect(decodeProtectedHeader(tokens.activated).kid).toBe(nextKid);
    const jwks = served()?.publishedJwks as unknown as JSONWebKeySet;
    expect(jwks.keys.map((k) => k.kid)).toEqual([nextKid, firstKid]);
    for (const jwt of Object.values(tokens)) expect(await verifies(jwt, jwks)).toBe(true);
  });

  it('retire --force drops the previous key: tokens it signed stop verifying, new ones still do', async () => {
    const retired = await rotate('retire', '--force');
    expect(retired.code).toBe(0);
    expect(retired.out).toContain(`dropped the previous JWT key "${firstKid}"`);
    await waitUntil(() => servedKids().join() === nextKid, 'the server to drop the previous key');
    const jwks = served()?.publishedJwks as unknown as JSONWebKeySet;
    expect(await verifies(tokens.activated as string, jwks)).toBe(true);
    expect(await verifies(tokens.prepared as string, jwks)).toBe(false);
    // The trust material is reloaded beside the keys, not necessarily before them.
    await waitUntil(() => server.ca.current().anchors.length === 1, 'the old root to be retired');
    expect((await jwksFile()).keys.map((k) => k.kid)).toEqual([nextKid]);
  });

  it('JWT material that does not load stops a step before the root changes', async () => {
    const anchorsBefore = await readFile(path.join(dir, 'ca.crt'), 'utf8');
    const recordFile = path.join(dir, 'jwt-rotation.json');
    const record = await readFile(recordFile, 'utf8');
    await writeFile(recordFile, '{"version": 1}');
    try {
      const failed = await rotate('prepare');
      expect(failed.code).toBe(1);
      expect(failed.err).toContain('ERR_ROTATION_STATE');
      expect(failed.err).toContain('jwt-rotation.json');
      expect(await readFile(path.join(dir, 'ca.crt'), 'utf8')).toBe(anchorsBefore);
    } finally {
      await writeFile(recordFile, record, { mode: 0o600 });
    }
  });
});
