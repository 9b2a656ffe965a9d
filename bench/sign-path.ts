/**
 * The cost of one workload certificate on the signing path, in-thread and through the pool.
 *
 *   node dist/bench/sign-path.js [--scale=1]
 *
 * Every request carries a different pre-generated CSR (a fresh key, as sidecars send), so no
 * per-key work can be reused. Figures are wall µs/op and process CPU µs/op (all threads);
 * the machine is shared with other work, so they are noisy: best of 3 rounds where repeated.
 */
import {
  generateKeyPairSync,
  sign as cryptoSign,
  verify as cryptoVerify,
  type KeyObject,
} from 'node:crypto';
import { MessageChannel as PortChannel } from 'node:worker_threads';
import { ManualClock } from '../src/shared/clock.js';
import { silentLogger } from '../src/shared/logger.js';
import type { WorkloadCertificateRequest } from '../src/issuer/certificate-signer.js';
import { decodeCsrPem, parseCsrDer, verifyCsrSignature } from '../src/issuer/signing/csr.js';
import { createLeafIssuer, createLeafSigner } from '../src/issuer/signing/leaf-signer.js';
import { createLeafTemplate } from '../src/issuer/signing/leaf-template.js';
import {
  signingMaterialOf,
  trustBundleFromMaterial,
} from '../src/issuer/signing/signing-material.js';
import { createSigningPool } from '../src/issuer/signing/signing-pool.js';
import { ALGORITHM_IDS, buildCsrDer } from '../test/support/csr-builder.js';
import { MutableTrustSource } from '../test/support/mutable-trust-source.js';
import { createTestPki, toPem, type TestKeyType, type TestPki } from '../test/support/signing-test-pki.js';
import { formatRow, measureBest, numberFlag, type Measurement } from './bench-util.js';

const PROFILE = { ttlMs: 24 * 3_600_000, skewMs: 15 * 60_000 };
const NOW = Date.now();
const SPIFFE_ID = 'spiffe://example.org/ns/default/bench';
const scale = numberFlag('scale', 1);

function keyPair(type: TestKeyType): { publicKey: KeyObject; privateKey: KeyObject } {
  switch (type) {
    case 'P-256':
      return generateKeyPairSync('ec', { namedCurve: 'P-256' });
    case 'P-384':
      return generateKeyPairSync('ec', { namedCurve: 'P-384' });
    case 'Ed25519':
      return generateKeyPairSync('ed25519');
    case 'RSA-2048':
      return generateKeyPairSync('rsa', { modulusLength: 2048 });
  }
}

const SIG: Record<TestKeyType, { alg: Buffer; hash: string | null }> = {
  'P-256': { alg: ALGORITHM_IDS.ecdsaWithSha256, hash: 'sha256' },
  'P-384': { alg: Buffer.from('300a06082a8648ce3d040303', 'hex'), hash: 'sha384' },
  Ed25519: { alg: ALGORITHM_IDS.ed25519, hash: null },
  'RSA-2048': { alg: ALGORITHM_IDS.sha256WithRsa, hash: 'sha256' },
};

/** Pre-generated CSR PEMs, one fresh key each (RSA keys are slow to make: fewer, cycled). */
function makeCsrs(type: TestKeyType, count: number): Buffer[] {
  const n = type === 'RSA-2048' ? Math.min(count, 50) : count;
  const out: Buffer[] = [];
  for (let i = 0; i < n; i++) {
    const { publicKey, privateKey } = keyPair(type);
    const der = buildCsrDer({
      spki: publicKey.export({ format: 'der', type: 'spki' }),
      signatureAlgorithm: SIG[type].alg,
      signWith: (cri) => cryptoSign(SIG[type].hash, cri, privateKey),
    });
    out.push(Buffer.from(toPem(der)));
  }
  return out;
}

function requests(csrs: Buffer[]): (i: number) => WorkloadCertificateRequest {
  return (i) => ({ csrPem: csrs[i % csrs.length] as Buffer, spiffeId: SPIFFE_ID, dnsNames: [] });
}

async function inThread(pkis: Map<TestKeyType, TestPki>): Promise<Measurement[]> {
  const rows: Measurement[] = [];
  const ops: Record<TestKeyType, number> = {
    'P-256': 1500,
    'P-384': 300,
    Ed25519: 1500,
    'RSA-2048': 500,
  };
  for (const csrType of ['P-256', 'P-384', 'Ed25519', 'RSA-2048'] as const) {
    const n = Math.max(20, Math.round(ops[csrType] * scale));
    const req = requests(makeCsrs(csrType, n));
    for (const [issuerType, pki] of pkis) {
      if (csrType !== 'P-256' && issuerType !== 'P-256') continue; // other issuers: P-256 CSRs only
      const signer = createLeafSigner(pki.bundle, PROFILE, new ManualClock(NOW));
      rows.push(
        await measureBest(`sign in-thread: ${csrType} CSR, ${issuerType} issuer`, n, (i) =>
          signer.sign(req(i)),
        ),
      );
    }
  }
  return rows;
}

/** Where the time of one P-256 certificate goes (P-256 issuer). */
async function stages(pki: TestPki): Promise<Measurement[]> {
  const n = Math.max(20, Math.round(1500 * scale));
  const pems = makeCsrs('P-256', n);
  const ders = pems.map((p) => decodeCsrPem(p));
  const parsed = ders.map((d) => parseCsrDer(d));
  const template = createLeafTemplate(pki.bundle);
  const identity = { spiffeId: SPIFFE_ID, dnsNames: [] };
  const tbs = parsed.map(
    (c) => template.assemble(c.publicKey, identity, NOW, PROFILE).tbsCertificate,
  );
  const key = pki.bundle.issuerKey;
  const issuerPublic = pki.bundle.issuerChain[0]?.publicKey as KeyObject;
  const sigs = tbs.map((t) => cryptoSign('sha256', t, key));
  const at = <T>(list: T[], i: number): T => list[i % list.length] as T;
  return [
    await measureBest('stage: PEM decode (strict)', n, (i) => decodeCsrPem(at(pems, i))),
    await measureBest('stage: CSR DER parse + key rules', n, (i) => parseCsrDer(at(ders, i))),
    await measureBest('stage: key import + CSR signature verify', n, (i) =>
      verifyCsrSignature(at(parsed, i)),
    ),
    await measureBest('stage: TBS assembly (template)', n, (i) =>
      template.assemble(at(parsed, i).publicKey, identity, NOW, PROFILE),
    ),
    await measureBest('stage: sign TBS (issuer P-256)', n, (i) =>
      cryptoSign('sha256', at(tbs, i), key),
    ),
    await measureBest('stage: self-check verify (issuer public key)', n, (i) =>
      cryptoVerify('sha256', at(tbs, i), issuerPublic, at(sigs, i)),
    ),
    await measureBest('stage: wrap + PEM', n, (i) =>
      template.wrap(at(tbs, i), at(sigs, i)).toString('base64'),
    ),
  ];
}

interface PoolFigures {
  readonly workers: number;
  readonly certs: number;
  readonly certsPerSecond: number;
  readonly cpuMsPer1000: number;
  readonly certsPerCpuSecond: number;
}

/** Throughput with `inFlight` requests outstanding at all times, P-256 CSRs, P-256 issuer. */
async function poolThroughput(
  pki: TestPki,
  workers: number,
  csrs: Buffer[],
  inFlight: number,
): Promise<PoolFigures> {
  const pool = createSigningPool({
    source: new MutableTrustSource(pki.bundle),
    profile: PROFILE,
    workers,
    logger: silentLogger,
  });
  await pool.ready();
  const req = requests(csrs);
  // Warm the workers' JIT.
  await Promise.all(Array.from({ length: 100 }, (_, i) => pool.sign(req(i))));
  const total = csrs.length;
  let next = 0;
  const cpu0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  const lane = async (): Promise<void> => {
    while (next < total) await pool.sign(req(next++));
  };
  await Promise.all(Array.from({ length: inFlight }, lane));
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const cpu = process.cpuUsage(cpu0);
  const cpuSeconds = (cpu.user + cpu.system) / 1e6;
  await pool.close();
  return {
    workers,
    certs: total,
    certsPerSecond: total / seconds,
    cpuMsPer1000: (cpuSeconds * 1e6) / total,
    certsPerCpuSecond: total / cpuSeconds,
  };
}

/** What a worker pays when the material changes: from PEM, or from a KeyObject posted to it. */
async function materialCost(pki: TestPki): Promise<Measurement[]> {
  const material = signingMaterialOf(pki.bundle);
  const n = Math.max(10, Math.round(200 * scale));
  const fromPem = await measureBest('material: PEM → TrustBundle → LeafIssuer', n, () =>
    createLeafIssuer(trustBundleFromMaterial(material), PROFILE),
  );
  const { port1, port2 } = new PortChannel();
  const received: KeyObject[] = [];
  port2.on('message', (m: { key: KeyObject }) => received.push(m.key));
  const posted = await measureBest(
    'material: post a KeyObject through a MessagePort',
    n,
    async () => {
      await new Promise<void>((resolve) => {
        port2.once('message', () => resolve());
        port1.postMessage({ key: pki.bundle.issuerKey });
      });
    },
  );
  port1.close();
  // KeyObjects do cross threads: the received copy signs, and the issuer certificate verifies it.
  const probe = Buffer.from('probe');
  const ok =
    received.length > 0 &&
    cryptoVerify(
      'sha256',
      probe,
      pki.bundle.issuerChain[0]?.publicKey as KeyObject,
      cryptoSign('sha256', probe, received[0] as KeyObject),
    );
  console.log(`KeyObject received through a MessagePort signs correctly: ${ok}`);
  return [fromPem, posted];
}

console.log(
  `node ${process.versions.node}, OpenSSL ${process.versions.openssl}, ${(await import('node:os')).availableParallelism()} cores; shared machine: figures are noisy.`,
);
const pkis = new Map<TestKeyType, TestPki>();
for (const type of ['P-256', 'Ed25519', 'RSA-2048'] as const)
  pkis.set(
    type,
    await createTestPki({ issuerKeyType: type, label: type, notBefore: new Date(NOW - 3_600_000) }),
  );
const p256 = pkis.get('P-256') as TestPki;

for (const row of await inThread(pkis)) console.log(formatRow(row, 62));
console.log('');
for (const row of await stages(p256)) console.log(formatRow(row, 62));
console.log('');
const poolCsrs = makeCsrs('P-256', Math.max(500, Math.round(6000 * scale)));
for (const workers of [0, 1, 2]) {
  const f = await poolThroughput(p256, workers, poolCsrs, 64);
  console.log(
    `pool: ${workers} worker(s), 64 in flight, ${f.certs} P-256 certs`.padEnd(62),
    `${f.certsPerSecond.toFixed(0).padStart(7)} certs/s  ${f.cpuMsPer1000.toFixed(0).padStart(6)} CPU-ms/1000 certs  ${f.certsPerCpuSecond.toFixed(0).padStart(6)} certs/CPU-s`,
  );
}
console.log('');
for (const row of await materialCost(p256)) console.log(formatRow(row, 62));
