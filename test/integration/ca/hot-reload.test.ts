import { afterEach, beforeAll, afterAll, describe, expect, it } from '@jest/globals';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { Registry } from 'prom-client';
import { watchFileStore, type CredentialsWatcher } from '../../../src/ca/credentials-watcher.js';
import { startFileCa, type FileCa } from '../../../src/ca/file-ca.js';
import { generateIssuer, generateTrustMaterial } from '../../../src/ca/generate.js';
import type { TrustBundle } from '../../../src/ca/trust-bundle.js';
import { createTrustMetrics, TRUST_METRIC_NAMES } from '../../../src/ca/trust-metrics.js';
import { startTrustMonitor, type TrustMonitor } from '../../../src/ca/trust-monitor.js';
import { runCli } from '../../../src/cli/run.js';
import { writeFileAtomic } from '../../../src/shared/atomic-file.js';
import { captureLog, keyChunks, type CapturedLog } from '../../support/log-capture.js';
import { waitUntil } from '../../support/wait-for.js';
import { makeTempDir, removeTempDir } from '../../support/temp-dir.js';

const TD = 'example.org';

async function metric(
  registry: Registry,
  name: string,
  labels: Record<string, string> = {},
): Promise<number> {
  const found = await registry.getSingleMetric(name)?.get();
  const value = found?.values.find((v) =>
    Object.entries(labels).every(([k, l]) => v.labels[k] === l),
  );
  return value?.value ?? 0;
}

interface Running {
  readonly dir: string;
  readonly ca: FileCa;
  readonly watcher: CredentialsWatcher;
  readonly monitor: TrustMonitor;
  readonly registry: Registry;
  readonly logs: CapturedLog;
  readonly heard: TrustBundle[];
}

describe('hot reload of the credentials directory', () => {
  let root: string;
  let n = 0;
  let running: Running | null = null;
  let foreignKeyPem: string;

  async function start(
    watch: { useFsWatch?: boolean; pollIntervalMs?: number } = {},
  ): Promise<Running> {
    const dir = path.join(root, `case-${++n}`);
    const logs = captureLog();
    const ca = await startFileCa({ credentialsDir: dir, trustDomain: TD, logger: logs.logger });
    const registry = new Registry();
    const monitor = startTrustMonitor({
      source: ca,
      metrics: createTrustMetrics(registry),
      logger: logs.logger,
    });
    const watcher = watchFileStore(ca.store, () => ca.reload(), {
      logger: logs.logger,
      debounceMs: 100,
      pollIntervalMs: watch.pollIntervalMs ?? 500,
      useFsWatch: watch.useFsWatch,
    });
    const heard: TrustBundle[] = [];
    ca.onChange((b) => heard.push(b));
    running = { dir, ca, watcher, monitor, registry, logs, heard };
    return running;
  }

  beforeAll(async () => {
    root = await makeTempDir();
    foreignKeyPem = (await generateTrustMaterial({ trustDomain: TD })).material.issuerKeyPem;
  });
  afterEach(async () => {
    if (running) {
      await running.watcher.close();
      running.monitor.close();
      await running.ca.close();
      running = null;
    }
  });
  afterAll(async () => {
    await removeTempDir(root);
  });

  const BROKEN: readonly [string, (dir: string) => Promise<void>, string][] = [
    [
      'a corrupt ca.crt',
      (dir) => writeFile(path.join(dir, 'ca.crt'), 'garbage\n'),
      'ca.crt contains no PEM block',
    ],
    [
      'an issuer.key that does not match issuer.crt',
      (dir) => writeFile(path.join(dir, 'issuer.key'), foreignKeyPem),
      'issuer.key does not match the public key of issuer.crt',
    ],
    [
      'a partially written issuer.crt',
      async (dir) => {
        const full = await readFile(path.join(dir, 'issuer.crt'), 'utf8');
        await writeFile(path.join(dir, 'issuer.crt'), full.slice(0, Math.floor(full.length / 2)));
      },
      'issuer.crt contains',
    ],
  ];
  it.each(BROKEN)(
    'refuses %s: the old bundle keeps serving, the log says why, the metric counts it',
    async (_name, breakIt, why) => {
      const { dir, ca, registry, logs, heard } = await start();
      const before = ca.current();
      await breakIt(dir);
      await waitUntil(
        async () => (await metric(registry, TRUST_METRIC_NAMES.reloadFailures)) >= 1,
        'a refused reload',
      );
      expect(ca.current()).toBe(before);
      expect(heard).toEqual([]);
      const refused = logs
        .lines()
        .find((l) => l.msg === 'reload refused: keeping the current trust material');
      expect(refused).toMatchObject({ level: 'error', generation: 1 });
      expect(String(refused?.error)).toContain(why);
      for (const chunk of [...keyChunks(before.issuerKeyPem), ...keyChunks(foreignKeyPem)]) {
        expect(logs.text()).not.toContain(chunk);
      }
      expect(await metric(registry, TRUST_METRIC_NAMES.issuerChanged)).toBe(0);
    },
  );

  it('picks up a valid replacement by an operator: generation + 1, listeners told, metrics updated', async () => {
    const { dir, ca, registry, heard } = await start();
    const rootKeyPem = await readFile(path.join(dir, 'root.key'), 'utf8');
    // cert-manager style: a new issuer under the same root, key first, then certificate.
    const issuer = await generateIssuer(
      { certificatePem: ca.current().anchorsPem, privateKeyPem: rootKeyPem },
      { trustDomain: TD, issuerTtlMs: 10 * 86_400_000 },
    );
    await writeFileAtomic(path.join(dir, 'issuer.key'), issuer.privateKeyPem);
    await writeFileAtomic(path.join(dir, 'issuer.crt'), issuer.certificatePem);
    await waitUntil(
      () => ca.current().issuerChainPem === issuer.certificatePem,
      'the new issuer to be served',
    );
    expect(ca.current().generation).toBeGreaterThanOrEqual(2);
    expect(heard.at(-1)).toBe(ca.current());
    expect(await metric(registry, TRUST_METRIC_NAMES.issuerChanged)).toBe(1);
    const notAfter = Math.floor(Date.parse(ca.current().issuerChain[0]?.validTo ?? '') / 1000);
    expect(await metric(registry, TRUST_METRIC_NAMES.issuerExpiry)).toBe(notAfter);
    // The 10-day issuer is inside the 30-day warning window.
    expect(await metric(registry, TRUST_METRIC_NAMES.expiringSoon, { role: 'issuer' })).toBe(1);
    expect(await metric(registry, TRUST_METRIC_NAMES.expiringSoon, { role: 'root' })).toBe(0);
  });

  it('recovers from a half-written file once the writer finishes it', async () => {
    const { dir, ca, registry } = await start();
    const full = await readFile(path.join(dir, 'issuer.crt'), 'utf8');
    const rootKeyPem = await readFile(path.join(dir, 'root.key'), 'utf8');
    const issuer = await generateIssuer(
      { certificatePem: ca.current().anchorsPem, privateKeyPem: rootKeyPem },
      { trustDomain: TD },
    );
    await writeFile(path.join(dir, 'issuer.crt'), full.slice(0, 100));
    await waitUntil(
      async () => (await metric(registry, TRUST_METRIC_NAMES.reloadFailures)) >= 1,
      'the refusal',
    );
    // The writer (not atomic, like `cat > file`) finishes with a complete new pair.
    await writeFile(path.join(dir, 'issuer.key'), issuer.privateKeyPem);
    await writeFile(path.join(dir, 'issuer.crt'), issuer.certificatePem);
    await waitUntil(
      () => ca.current().issuerChainPem === issuer.certificatePem,
      'the completed issuer',
    );
  });

  it('still notices changes when fs.watch reports nothing (the periodic stat fallback)', async () => {
    const { dir, ca } = await start({ useFsWatch: false, pollIntervalMs: 300 });
    const next = (await generateTrustMaterial({ trustDomain: TD })).material;
    await writeFileAtomic(path.join(dir, 'issuer.key'), next.issuerKeyPem);
    await writeFileAtomic(path.join(dir, 'issuer.crt'), next.issuerChainPem);
    await writeFileAtomic(path.join(dir, 'ca.crt'), next.anchorsPem);
    await waitUntil(() => ca.current().anchorsPem === next.anchorsPem, 'the replaced material');
  });

  it('serves what `warden rotate` commits within seconds, through the watcher alone', async () => {
    const { dir, ca, registry } = await start();
    const cli = (...argv: string[]): Promise<number> =>
      runCli(argv, { stdout: new PassThrough(), stderr: new PassThrough(), env: {} });
    expect(await cli('rotate', 'prepare', '--issuer-credentials', dir)).toBe(0);
    await waitUntil(() => ca.current().anchors.length === 2, 'the next root to be published');
    expect(await metric(registry, TRUST_METRIC_NAMES.issuerChanged)).toBe(0);
    expect(
      (await registry.getSingleMetric(TRUST_METRIC_NAMES.rootExpiry)?.get())?.values,
    ).toHaveLength(2);

    expect(await cli('rotate', 'activate', '--issuer-credentials', dir, '--force')).toBe(0);
    await waitUntil(() => {
      const bundle = ca.current();
      const nextRoot = bundle.anchors[1];
      return nextRoot !== undefined && bundle.issuerChain[0]?.checkIssued(nextRoot) === true;
    }, 'the next issuer to sign');
    expect(await metric(registry, TRUST_METRIC_NAMES.issuerChanged)).toBe(1);

    expect(await cli('rotate', 'retire', '--issuer-credentials', dir, '--force')).toBe(0);
    await waitUntil(() => ca.current().anchors.length === 1, 'the old root to be retired');
    expect(
      (await registry.getSingleMetric(TRUST_METRIC_NAMES.rootExpiry)?.get())?.values,
    ).toHaveLength(1);
    expect(await metric(registry, TRUST_METRIC_NAMES.reloadFailures)).toBe(0);
  });
});
