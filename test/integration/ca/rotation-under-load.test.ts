import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { X509Certificate } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { TrustBundle } from '../../../src/ca/trust-bundle.js';
import { validateServeInvocation } from '../../../src/cli/serve-flags.js';
import { startWardenServer, type WardenServer } from '../../../src/cli/warden-server.js';
import { generateKeyAndCsr } from '../../../src/issuer/sidecar/workload-csr.js';
import { readEnv } from '../../../src/shared/env.js';
import { captureLog, type CapturedLog } from '../../support/log-capture.js';
import { mutualTls, type TlsPeer } from '../../support/mutual-tls.js';
import { opensslVerifyAt } from '../../support/rotation-fixtures.js';
import {
  createSentryTestClient,
  signError,
  type SentryTestClient,
  type WireSignResponse,
} from '../../support/sentry-proto-client.js';
import { makeTempDir, removeTempDir } from '../../support/temp-dir.js';
import { waitUntil } from '../../support/wait-for.js';
import { runWarden, type WardenRun } from '../../support/warden-process.js';

/*
 * Issue 4's "rotation under load": `warden serve` (the composition root, in-process, one
 * signing worker) answers SignCertificate calls from 16 concurrent loops of a client built
 * only from the .proto over TLS, while `warden rotate prepare`, `activate` and `retire`
 * run as separate processes against its credentials directory. The server is never told:
 * it must notice each step by itself. Every call must succeed, and every answer must be
 * right for the moment it was given.
 */

const TD = 'example.org';
const NAMESPACE = 'default';
const LOOPS = 16;
/** Calls each phase must see completed, once the server serves that phase. */
const CALLS_PER_PHASE = 48;

type Phase = 'initial' | 'prepared' | 'activated' | 'retired';

interface CallRecord {
  readonly loop: number;
  /** CA generation when the call was sent and when its answer arrived. */
  readonly generationAtStart: number;
  readonly generationAtEnd: number;
  readonly response: WireSignResponse | null;
  readonly error: string | null;
}

interface Workload extends TlsPeer {
  readonly response: WireSignResponse;
}

function certificatesOf(pem: string): X509Certificate[] {
  return (pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----\n?/g) ?? []).map(
    (block) => new X509Certificate(block),
  );
}

function anchorsOf(response: WireSignResponse): X509Certificate[] {
  return response.trust_chain_certificates.flatMap((pem) => certificatesOf(pem.toString('utf8')));
}

function chainOf(response: WireSignResponse): X509Certificate[] {
  return certificatesOf(response.workload_certificate.toString('utf8'));
}

function signedBy(child: X509Certificate, parent: X509Certificate): boolean {
  return child.checkIssued(parent) && child.verify(parent.publicKey);
}

/** node:crypto's verdict: leaf ← issuer chain ← one of `anchors`, each valid now. */
function chainVerifies(
  chain: readonly X509Certificate[],
  anchors: readonly X509Certificate[],
): boolean {
  const now = Date.now();
  const valid = (c: X509Certificate): boolean =>
    Date.parse(c.validFrom) <= now && now <= Date.parse(c.validTo);
  if (chain.length < 2 || !chain.every(valid)) return false;
  for (let i = 0; i + 1 < chain.length; i++) {
    if (!signedBy(chain[i] as X509Certificate, chain[i + 1] as X509Certificate)) return false;
  }
  const top = chain[chain.length - 1] as X509Certificate;
  return anchors.some((anchor) => valid(anchor) && signedBy(top, anchor));
}

const fingerprints = (certs: readonly X509Certificate[]): string[] =>
  certs.map((c) => c.fingerprint256);

describe('root rotation under load: warden serve keeps answering through prepare, activate and retire', () => {
  let root: string;
  let dir: string;
  let configFile: string;
  let server: WardenServer;
  let logs: CapturedLog;
  let client: SentryTestClient;
  /** Every bundle the CA has served, by generation. */
  const bundles = new Map<number, TrustBundle>();
  const records: CallRecord[] = [];
  /** The CA generation at which each phase began to be served. */
  const phaseGeneration = new Map<Phase, number>();
  const cli: Partial<Record<'prepare' | 'activate' | 'retire', WardenRun>> = {};
  const workloads: Partial<Record<'stale' | 'pre' | 'post', Workload>> = {};
  let oldRoot: X509Certificate;
  let newRoot: X509Certificate;
  let metricsText = '';
  let running = true;
  let loops: Promise<void>[] = [];

  const completedSince = (generation: number): number =>
    records.filter((r) => r.response !== null && r.generationAtStart >= generation).length;

  async function workload(name: string): Promise<Workload> {
    const { privateKeyPem, csrPem } = generateKeyAndCsr('ecdsa-p256');
    const response = await client.sign({
      id: name,
      namespace: NAMESPACE,
      trust_domain: TD,
      certificate_signing_request: Buffer.from(csrPem),
      token_validator: 'INSECURE',
    });
    return {
      id: `spiffe://${TD}/ns/${NAMESPACE}/${name}`,
      privateKeyPem,
      chainPem: response.workload_certificate.toString('utf8'),
      anchorsPem: response.trust_chain_certificates.map((b) => b.toString('utf8')).join(''),
      response,
    };
  }

  async function rotate(
    step: 'prepare' | 'activate' | 'retire',
    ...extra: string[]
  ): Promise<void> {
    cli[step] = await runWarden(
      ['rotate', step, '--issuer-credentials', dir, '--config', configFile, ...extra],
      { cwd: root, timeoutMs: 60_000 },
    );
  }

  async function phaseServed(phase: Phase, served: () => boolean): Promise<void> {
    await waitUntil(served, `the server to serve the ${phase} phase`, 30_000);
    const generation = server.ca.current().generation;
    phaseGeneration.set(phase, generation);
    await waitUntil(
      () => completedSince(generation) >= CALLS_PER_PHASE,
      `${CALLS_PER_PHASE} calls in the ${phase} phase`,
      60_000,
    );
  }

  beforeAll(async () => {
    root = await makeTempDir();
    dir = path.join(root, 'credentials');
    configFile = path.join(root, 'daprsystem.yaml');
    // One Configuration for the server and the CLI: no propagation wait, so `activate` needs
    // no --force (retire still does: leaves live 24h).
    await writeFile(
      configFile,
      [
        'apiVersion: dapr.io/v1alpha1',
        'kind: Configuration',
        'metadata: {name: daprsystem}',
        'spec:',
        '  mtls:',
        '    rootRotation: {propagationWindow: 0s}',
        '',
      ].join('\n'),
    );
    const settings = await validateServeInvocation(
      [
        `--issuer-credentials=${dir}`,
        `--config=${configFile}`,
        `--trust-domain=${TD}`,
        '--listen-address=127.0.0.1',
        '--port=0',
        '--healthz-port=0',
        '--metrics-port=0',
        '--workers=1',
      ],
      readEnv({}),
      { cwd: root },
    );
    if (!settings.ok) throw new Error(JSON.stringify(settings.problems));
    logs = captureLog();
    server = await startWardenServer(settings.settings, {
      logger: logs.logger,
      credentialsWatch: { debounceMs: 100, pollIntervalMs: 500 },
    });
    const initial = server.ca.current();
    bundles.set(initial.generation, initial);
    server.ca.onChange((bundle) => bundles.set(bundle.generation, bundle));
    oldRoot = initial.anchors[0] as X509Certificate;
    client = createSentryTestClient({
      address: `127.0.0.1:${server.grpc.port}`,
      anchorsPem: initial.anchorsPem,
      expectedSpiffeId: server.settings.sentrySpiffeId,
    });
    phaseGeneration.set('initial', initial.generation);

    loops = Array.from({ length: LOOPS }, async (_, loop) => {
      const { csrPem } = generateKeyAndCsr('ecdsa-p256');
      const request = {
        id: `app-${loop}`,
        namespace: NAMESPACE,
        trust_domain: TD,
        certificate_signing_request: Buffer.from(csrPem),
        token_validator: 'INSECURE' as const,
      };
      while (running) {
        const generationAtStart = server.ca.current().generation;
        try {
          const response = await client.sign(request, 30_000);
          records.push({
            loop,
            generationAtStart,
            generationAtEnd: server.ca.current().generation,
            response,
            error: null,
          });
        } catch (err) {
          records.push({
            loop,
            generationAtStart,
            generationAtEnd: server.ca.current().generation,
            response: null,
            error: String((err as Error).message),
          });
        }
      }
    });

    await waitUntil(
      () => completedSince(1) >= CALLS_PER_PHASE,
      'calls before the rotation',
      60_000,
    );
    workloads.stale = await workload('before-prepare');

    await rotate('prepare');
    await phaseServed('prepared', () => server.ca.current().anchors.length === 2);
    newRoot = server.ca.current().anchors[1] as X509Certificate;
    // Issued between prepare and activate: the old issuer, both anchors with its certificate.
    workloads.pre = await workload('pre-rotation');

    await rotate('activate');
    await phaseServed('activated', () => {
      const issuer = server.ca.current().issuerChain[0] as X509Certificate;
      const serving = server.grpc.servingCertificate.current();
      return signedBy(issuer, newRoot) && serving?.generation === server.ca.current().generation;
    });
    workloads.post = await workload('post-rotation');

    await rotate('retire', '--force');
    await phaseServed('retired', () => server.ca.current().anchors.length === 1);

    running = false;
    await Promise.all(loops);
    metricsText = await (await fetch(`http://127.0.0.1:${server.metrics?.port}/metrics`)).text();
  }, 240_000);

  afterAll(async () => {
    running = false;
    await Promise.all(loops);
    client?.close();
    await server?.close(0);
    if (root) await removeTempDir(root);
  });

  it('each rotate command succeeded and the server followed every step by itself, without a restart', () => {
    for (const step of ['prepare', 'activate', 'retire'] as const) {
      expect({ step, code: cli[step]?.code, stderr: cli[step]?.stderr }).toEqual({
        step,
        code: 0,
        stderr: '',
      });
    }
    const [initial, prepared, activated, retired] = (
      ['initial', 'prepared', 'activated', 'retired'] as const
    ).map((p) => phaseGeneration.get(p) as number);
    expect(initial).toBe(1);
    expect(prepared).toBeGreaterThan(initial as number);
    expect(activated).toBeGreaterThan(prepared as number);
    expect(retired).toBeGreaterThan(activated as number);
    expect(fingerprints(bundles.get(retired as number)?.anchors ?? [])).toEqual([
      newRoot.fingerprint256,
    ]);
    const refused = logs
      .lines()
      .filter((l) => l.msg === 'reload refused: keeping the current trust material');
    expect(refused).toEqual([]);
  });

  it('no call failed, and many were in flight in every phase', () => {
    const failures = records.filter((r) => r.error !== null);
    expect(failures.map((r) => r.error)).toEqual([]);
    expect(records.length).toBeGreaterThanOrEqual(4 * CALLS_PER_PHASE);
    // Every loop kept calling through the whole rotation.
    expect(new Set(records.map((r) => r.loop)).size).toBe(LOOPS);
    for (const phase of ['prepared', 'activated', 'retired'] as const) {
      const generation = phaseGeneration.get(phase) as number;
      // Some calls were sent before the server took the step and answered after it.
      const across = records.filter(
        (r) => r.generationAtStart < generation && r.generationAtEnd >= generation,
      );
      expect({ phase, across: across.length > 0 }).toEqual({ phase, across: true });
    }
  });

  it('every answer verifies against the anchors in the same answer, and those were the CA’s at that moment', () => {
    let checked = 0;
    for (const record of records) {
      const response = record.response as WireSignResponse;
      const chain = chainOf(response);
      const anchors = anchorsOf(response);
      expect(chainVerifies(chain, anchors)).toBe(true);
      expect(chain[0]?.subjectAltName).toBe(
        `URI:spiffe://${TD}/ns/${NAMESPACE}/app-${record.loop}`,
      );
      // The answer matches one bundle the CA served between the call's start and its answer:
      // its anchors, and the issuer that signed the leaf.
      const served: number[] = [];
      for (let g = record.generationAtStart; g <= record.generationAtEnd; g++) {
        const bundle = bundles.get(g);
        if (
          bundle &&
          fingerprints(bundle.anchors).join() === fingerprints(anchors).join() &&
          bundle.issuerChain[0]?.fingerprint256 === chain[1]?.fingerprint256
        ) {
          served.push(g);
        }
      }
      expect({
        generations: [record.generationAtStart, record.generationAtEnd],
        served: served.length > 0,
      }).toEqual({
        generations: [record.generationAtStart, record.generationAtEnd],
        served: true,
      });
      checked++;
    }
    expect(checked).toBe(records.length);
  });

  it('openssl verify -x509_strict agrees for an answer from each phase', async () => {
    for (const phase of ['initial', 'prepared', 'activated', 'retired'] as const) {
      const generation = phaseGeneration.get(phase) as number;
      const record = records.find(
        (r) => r.generationAtStart === generation && r.generationAtEnd === generation,
      );
      const response = record?.response as WireSignResponse;
      const [leaf, ...chain] = chainOf(response);
      const verdict = await opensslVerifyAt(
        root,
        anchorsOf(response)
          .map((c) => c.toString())
          .join(''),
        chain.map((c) => c.toString()).join(''),
        (leaf as X509Certificate).toString(),
        new Date(),
      );
      expect({ phase, ...verdict }).toEqual({
        phase,
        ok: true,
        output: expect.stringContaining('OK'),
      });
    }
  });

  it('before activation leaves chain to the old root; after it, to the new root', () => {
    const activated = phaseGeneration.get('activated') as number;
    for (const record of records) {
      const chain = chainOf(record.response as WireSignResponse);
      const top = chain[chain.length - 1] as X509Certificate;
      if (record.generationAtEnd < activated) expect(signedBy(top, oldRoot)).toBe(true);
      if (record.generationAtStart >= activated) {
        expect(signedBy(top, newRoot)).toBe(true);
        expect(signedBy(top, oldRoot)).toBe(false);
      }
    }
  });

  it('certificates issued before activation verify against every anchor set published until retirement, and not after', () => {
    const activated = phaseGeneration.get('activated') as number;
    const retired = phaseGeneration.get('retired') as number;
    const before = records.filter((r) => r.generationAtEnd < activated);
    expect(before.length).toBeGreaterThan(0);
    for (const record of before) {
      const chain = chainOf(record.response as WireSignResponse);
      for (let g = record.generationAtEnd; g < retired; g++) {
        const bundle = bundles.get(g);
        if (bundle)
          expect({ g, ok: chainVerifies(chain, bundle.anchors) }).toEqual({ g, ok: true });
      }
      // Control: once the old root is retired, nothing it signed verifies any more.
      expect(chainVerifies(chain, (bundles.get(retired) as TrustBundle).anchors)).toBe(false);
    }
  });

  it.each([
    ['the pre-rotation workload serves, the post-rotation one connects', 'pre', 'post'],
    ['the post-rotation workload serves, the pre-rotation one connects', 'post', 'pre'],
  ] as const)(
    'mutual TLS with SPIFFE ID checks succeeds while both roots are published: %s',
    async (_name, serverSide, clientSide) => {
      const serverPeer = workloads[serverSide] as Workload;
      const clientPeer = workloads[clientSide] as Workload;
      expect(certificatesOf(serverPeer.anchorsPem)).toHaveLength(2);
      expect(await mutualTls(serverPeer, clientPeer)).toEqual({
        ok: true,
        serverSaw: clientPeer.id,
        clientSaw: serverPeer.id,
        error: null,
      });
    },
  );

  it('control: a workload that got its anchors before prepare does not accept the post-rotation workload', async () => {
    const stale = workloads.stale as Workload;
    expect(certificatesOf(stale.anchorsPem)).toHaveLength(1);
    expect((await mutualTls(workloads.post as Workload, stale)).ok).toBe(false);
  });

  it('after activation the gRPC serving certificate is issued by the new issuer: a client pinning only the new root connects, one pinning only the old root cannot', async () => {
    const fresh = createSentryTestClient({
      address: `127.0.0.1:${server.grpc.port}`,
      anchorsPem: newRoot.toString(),
      expectedSpiffeId: server.settings.sentrySpiffeId,
    });
    const stale = createSentryTestClient({
      address: `127.0.0.1:${server.grpc.port}`,
      anchorsPem: oldRoot.toString(),
      expectedSpiffeId: server.settings.sentrySpiffeId,
    });
    try {
      const { csrPem } = generateKeyAndCsr('ecdsa-p256');
      const request = {
        id: 'fresh',
        namespace: NAMESPACE,
        trust_domain: TD,
        certificate_signing_request: Buffer.from(csrPem),
        token_validator: 'INSECURE' as const,
      };
      const response = await fresh.sign(request);
      expect(fingerprints(anchorsOf(response))).toEqual([newRoot.fingerprint256]);
      const presented = new X509Certificate((fresh.handshakes[0] as { raw: Buffer }).raw);
      const issuer = server.ca.current().issuerChain[0] as X509Certificate;
      expect(signedBy(presented, issuer)).toBe(true);
      expect(presented.subjectAltName).toContain(`URI:${server.settings.sentrySpiffeId}`);
      expect((await signError(stale.sign(request, 5_000))).code).toBe(14); // UNAVAILABLE
    } finally {
      fresh.close();
      stale.close();
    }
  });

  it('/metrics (one registry) counted one issuer change, no refused reload and no failed call, and publishes the one remaining root', () => {
    const value = (line: string): number => {
      const found = metricsText.split('\n').find((l) => l.startsWith(`${line} `));
      return found === undefined ? Number.NaN : Number(found.slice(line.length + 1));
    };
    expect(value('dapr_sentry_issuercert_changed_total')).toBe(1);
    expect(value('warden_trust_reload_failures_total')).toBe(0);
    expect(value('dapr_sentry_cert_sign_success_total')).toBeGreaterThanOrEqual(records.length);
    const failures = metricsText
      .split('\n')
      .filter((l) => l.startsWith('dapr_sentry_cert_sign_failure_total{'))
      .map((l) => Number(l.split(' ')[1]));
    expect(failures.every((n) => n === 0)).toBe(true);
    const rootSeries = metricsText
      .split('\n')
      .filter((l) => l.startsWith('warden_root_expiry_timestamp_seconds{'));
    expect(rootSeries).toEqual([
      `warden_root_expiry_timestamp_seconds{sha256="${newRoot.fingerprint256.replaceAll(':', '').toLowerCase()}"} ${Math.floor(Date.parse(newRoot.validTo) / 1000)}`,
    ]);
    expect(value('dapr_sentry_issuercert_expiry_timestamp')).toBe(
      Math.floor(
        Date.parse((server.ca.current().issuerChain[0] as X509Certificate).validTo) / 1000,
      ),
    );
  });
});
