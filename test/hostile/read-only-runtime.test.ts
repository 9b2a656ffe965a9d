import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createSentryTestClient } from '../support/sentry-proto-client.js';
import { makePeculiarCsr } from '../support/signing-test-pki.js';
import { runWardenCli, startWardenChild } from '../support/warden-child.js';
import { attemptSign } from './sign-outcome.js';

function hasStrace(): boolean {
  try {
    execFileSync('strace', ['-V'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

const TRACED = [
  'open',
  'openat',
  'creat',
  'mkdir',
  'mkdirat',
  'rename',
  'renameat',
  'renameat2',
  'unlink',
  'unlinkat',
  'truncate',
  'ftruncate',
  'symlink',
  'symlinkat',
  'link',
  'linkat',
  'chmod',
  'fchmodat',
];

/**
 * The Dockerfile runs Warden as uid 65532 and says the root filesystem can be read-only
 * because Warden writes only to --issuer-credentials. No container runtime is available here,
 * so the claim is checked on the process instead: `warden serve` on existing material runs
 * under strace (every thread) while it starts, issues a certificate, answers /healthz and
 * shuts down, and no file-system call that writes may succeed.
 */
(hasStrace() ? describe : describe.skip)(
  'warden serve writes nothing to the file system once its material exists',
  () => {
    let dir: string;
    beforeAll(async () => {
      dir = await mkdtemp(path.join(tmpdir(), 'warden-readonly-'));
      expect(
        (await runWardenCli(['init', '--issuer-credentials', path.join(dir, 'credentials')])).code,
      ).toBe(0);
    });
    afterAll(async () => {
      await rm(dir, { recursive: true, force: true });
    });

    it('opens no file for writing and creates, renames or removes nothing while serving', async () => {
      const trace = path.join(dir, 'trace');
      const child = await startWardenChild({
        credentialsDir: path.join(dir, 'credentials'),
        wrapper: ['strace', '-f', '-qq', '-e', `trace=${TRACED.join(',')}`, '-o', trace],
      });
      try {
        const client = createSentryTestClient({
          address: `127.0.0.1:${child.grpcPort}`,
          anchorsPem: await child.anchorsPem(),
          expectedSpiffeId: 'spiffe://localhost/ns/warden-system/dapr-sentry',
        });
        const outcome = await attemptSign(client, {
          id: 'read-only',
          namespace: 'default',
          certificate_signing_request: Buffer.from((await makePeculiarCsr('P-256')).pem),
        });
        client.close();
        expect(outcome.kind).toBe('issued');
        expect((await fetch(`http://127.0.0.1:${child.healthzPort}/healthz`)).status).toBe(200);
      } finally {
        await child.stop();
      }
      const lines = (await readFile(trace, 'utf8')).split('\n');
      // strace splits interrupted calls into "<unfinished ...>" and "<... resumed>" lines;
      // the flags are on the first, the result on the second, so judge the first.
      const writes = lines.filter(
        (line) =>
          /O_WRONLY|O_RDWR|O_CREAT|O_TRUNC/.test(line) ||
          /^\d+\s+(mkdir|mkdirat|rename|renameat2?|unlink|unlinkat|truncate|ftruncate|creat|symlink|symlinkat|link|linkat|chmod|fchmodat)\(/.test(
            line,
          ),
      );
      const succeeded = writes.filter((line) => !/= -1 E[A-Z]+/.test(line));
      expect(lines.length).toBeGreaterThan(20); // the trace really covered the run
      expect(succeeded).toEqual([]);
    }, 60_000);
  },
);
