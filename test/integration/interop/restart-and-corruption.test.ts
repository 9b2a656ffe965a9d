import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { cp, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { runCli } from '../../../src/cli/run.js';
import { memoryIo } from '../../support/cli-io.js';
import { opensslOk, openssl } from '../../support/openssl.js';
import {
  createSentryTestClient,
  type WireSignResponse,
} from '../../support/sentry-proto-client.js';
import { makeTempDir, removeTempDir } from '../../support/temp-dir.js';
import { runWarden, startWardenServe, type ServeChild } from '../../support/warden-process.js';

/**
 * The CA's trust material across process restarts, with the real executable: the same
 * directory keeps the same root (so SVIDs issued before a restart still verify), and material
 * that is corrupt or does not fit together stops start-up, naming the file, without a byte of
 * it being changed (Warden never silently replaces an operator's CA).
 */

const SENTRY_ID = 'spiffe://localhost/ns/default/dapr-sentry';
const SERVE_PORTS = ['--port', '0', '--healthz-port', '0', '--metrics-port', '0', '--workers', '1'];
const FILES = ['ca.crt', 'issuer.crt', 'issuer.key'] as const;
/** What a first start writes: Dapr's three files, plus the root key Warden keeps for rotation. */
const GENERATED_FILES = [...FILES, 'root.key'] as const;

type Snapshot = Record<string, { mode: number; base64: string }>;

async function snapshot(dir: string): Promise<Snapshot> {
  const out: Snapshot = {};
  for (const name of (await readdir(dir)).sort()) {
    const file = path.join(dir, name);
    out[name] = { mode: (await stat(file)).mode & 0o777, base64: await readFile(file, 'base64') };
  }
  return out;
}

function servedLine(child: ServeChild): Record<string, unknown> {
  const line = child
    .stderr()
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>)
    .find((l) => l.msg === 'warden is serving');
  if (!line) throw new Error('no "warden is serving" line');
  return line;
}

async function signOnce(child: ServeChild, id: string): Promise<WireSignResponse> {
  const keyFile = path.join(child.cwd, `${id}.key`);
  await opensslOk([
    'genpkey',
    '-algorithm',
    'EC',
    '-pkeyopt',
    'ec_paramgen_curve:P-256',
    '-out',
    keyFile,
  ]);
  const csr = await opensslOk(['req', '-new', '-key', keyFile, '-subj', '/']);
  const client = createSentryTestClient({
    address: child.grpcAddress,
    anchorsPem: await readFile(child.anchorsFile, 'utf8'),
    expectedSpiffeId: SENTRY_ID,
  });
  try {
    return await client.sign({
      id,
      namespace: 'default',
      certificate_signing_request: Buffer.from(csr),
    });
  } finally {
    client.close();
  }
}

describe('warden serve restarted on the same credentials directory', () => {
  let dir: string;
  let first: Snapshot;
  let firstLine: Record<string, unknown>;
  let secondLine: Record<string, unknown>;
  let firstExit: { code: number | null; signal: NodeJS.Signals | null };
  let before: WireSignResponse;
  let after: WireSignResponse;

  beforeAll(async () => {
    dir = await makeTempDir('warden-restart-');
    const one = await startWardenServe({ cwd: dir });
    firstLine = servedLine(one);
    before = await signOnce(one, 'before');
    first = await snapshot(one.credentialsDir);
    firstExit = await one.stop();
    const two = await startWardenServe({ cwd: dir });
    secondLine = servedLine(two);
    after = await signOnce(two, 'after');
    await two.stop();
  });
  afterAll(async () => {
    await removeTempDir(dir);
  });

  it('the first run generated the material and stopped cleanly on SIGTERM', () => {
    expect(firstLine.trustMaterial).toBe('generated');
    expect(firstExit).toEqual({ code: 0, signal: null });
    expect(Object.keys(first)).toEqual([...GENERATED_FILES]);
  });

  it('the second run loaded it: every file is byte-for-byte the same', async () => {
    expect(secondLine.trustMaterial).toBe('loaded');
    expect(await snapshot(path.join(dir, '.warden/credentials'))).toEqual(first);
  });

  it('serves the same anchors, so an SVID issued before the restart verifies against them', async () => {
    const anchorsAfter = after.trust_chain_certificates.map((b) => b.toString('utf8')).join('');
    expect(anchorsAfter).toBe(
      before.trust_chain_certificates.map((b) => b.toString('utf8')).join(''),
    );
    expect(anchorsAfter).toBe(Buffer.from(first['ca.crt']!.base64, 'base64').toString('utf8'));
    const anchors = path.join(dir, 'anchors-after.pem');
    const chain = path.join(dir, 'chain-before.pem');
    await writeFile(anchors, anchorsAfter);
    await writeFile(chain, before.workload_certificate);
    const leaf = path.join(dir, 'leaf-before.pem');
    await writeFile(
      leaf,
      before.workload_certificate
        .toString('utf8')
        .match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----\n/)![0],
    );
    const result = await openssl([
      'verify',
      '-x509_strict',
      '-purpose',
      'sslserver',
      '-CAfile',
      anchors,
      '-untrusted',
      chain,
      leaf,
    ]);
    expect(result.stdout).toContain('leaf-before.pem: OK');
  });
});

describe('warden serve refuses trust material it cannot trust, and leaves it untouched', () => {
  let root: string;
  let good: string;
  let other: string;
  beforeAll(async () => {
    root = await makeTempDir('warden-corrupt-');
    good = path.join(root, 'good');
    other = path.join(root, 'other');
    // The material comes from `warden init` (in-process: only `serve` needs to be a process here).
    for (const target of [good, other]) {
      expect(await runCli(['init', '--issuer-credentials', target], memoryIo())).toBe(0);
    }
  });
  afterAll(async () => {
    await removeTempDir(root);
  });

  const cases: Array<{
    name: string;
    file: (typeof FILES)[number];
    breakIt: (dir: string) => Promise<void>;
    message: RegExp;
  }> = [
    {
      name: 'an issuer.key that is not PEM at all',
      file: 'issuer.key',
      breakIt: (d) => writeFile(path.join(d, 'issuer.key'), 'this is not a key\n', { mode: 0o600 }),
      message: /issuer\.key contains no PEM block/,
    },
    {
      name: 'an issuer.key whose DER is damaged',
      file: 'issuer.key',
      breakIt: async (d) => {
        const text = await readFile(path.join(d, 'issuer.key'), 'utf8');
        const lines = text.split('\n');
        lines[1] = `AAAA${(lines[1] ?? '').slice(4)}`;
        await writeFile(path.join(d, 'issuer.key'), lines.join('\n'), { mode: 0o600 });
      },
      message: /issuer\.key/,
    },
    {
      name: "another CA's issuer.key (valid, but not this issuer's)",
      file: 'issuer.key',
      breakIt: (d) => cp(path.join(other, 'issuer.key'), path.join(d, 'issuer.key')),
      message: /issuer\.key does not match the public key of issuer\.crt/,
    },
    {
      name: "another CA's ca.crt (the issuer does not chain to it)",
      file: 'ca.crt',
      breakIt: (d) => cp(path.join(other, 'ca.crt'), path.join(d, 'ca.crt')),
      message: /issuer\.crt|ca\.crt/,
    },
  ];

  interface Outcome {
    readonly before: Snapshot;
    readonly after: Snapshot;
    readonly run: Awaited<ReturnType<typeof runWarden>>;
  }
  const outcomes = new Map<string, Outcome>();

  // The cases are independent processes: run them side by side.
  beforeAll(async () => {
    await Promise.all(
      cases.map(async ({ name, breakIt }, i) => {
        const dir = path.join(root, `case-${i}`);
        await cp(good, dir, { recursive: true });
        await breakIt(dir);
        const before = await snapshot(dir);
        const run = await runWarden(['serve', '--issuer-credentials', dir, ...SERVE_PORTS], {
          cwd: root,
        });
        outcomes.set(name, { before, after: await snapshot(dir), run });
      }),
    );
  });

  it.each(cases)('$name: exit 1, the file named, nothing written', ({ name, message, file }) => {
    const { before, after, run } = outcomes.get(name) as Outcome;
    expect(run.code).toBe(1);
    const lastLine = run.stderr.trim().split('\n').at(-1) ?? '';
    expect(lastLine).toMatch(/^warden serve: ERR_TRUST_MATERIAL_INVALID: /);
    expect(lastLine).toMatch(message);
    expect(lastLine).toContain(file);
    expect(run.stderr).not.toContain('warden is serving');
    expect(after).toEqual(before);
    // Whatever the message says about the key, it never quotes it.
    const key = Buffer.from(before['issuer.key']!.base64, 'base64').toString('utf8');
    for (const line of key.split('\n').filter((l) => l.length >= 16 && !l.startsWith('-----'))) {
      expect(run.stderr).not.toContain(line);
    }
  });
});
