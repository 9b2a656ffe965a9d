import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { X509Certificate } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { status as GrpcStatus } from '@grpc/grpc-js';
import { openssl, opensslOk } from '../../support/openssl.js';
import {
  createSentryTestClient,
  signError,
  uriSans,
  type SentryTestClient,
  type WireSignResponse,
} from '../../support/sentry-proto-client.js';
import { makeTempDir, removeTempDir } from '../../support/temp-dir.js';
import { startWardenServe, type ServeChild } from '../../support/warden-process.js';

/**
 * `warden serve` as a child process, spoken to only by tools that share no code with it: a
 * gRPC client generated from the .proto file at run time, CSRs and verification by the
 * openssl CLI, plain HTTP for /healthz and /metrics. One server for the whole file.
 */

const SENTRY_ID = 'spiffe://localhost/ns/default/dapr-sentry';
const CSR_KEY_TYPES = {
  'P-256': ['-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256'],
  'P-384': ['-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-384'],
  Ed25519: ['-algorithm', 'ED25519'],
  'RSA-2048': ['-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048'],
} as const;
type CsrKeyType = keyof typeof CSR_KEY_TYPES;

const CERTIFICATE_RE = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----\n?/g;

function certificatesOf(pem: string): string[] {
  return pem.match(CERTIFICATE_RE) ?? [];
}

function metricValue(text: string, series: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? Number.NaN : Number(line.slice(series.length + 1));
}

describe('warden serve (a child process) with a proto-only gRPC client and the openssl CLI', () => {
  let dir: string;
  let server: ServeChild;
  let anchorsPem: string;
  let client: SentryTestClient;
  let n = 0;
  /** Every CSR sent to the server, so the log check at the end can look for each. */
  const csrsSent: string[] = [];
  const TOKEN = 'tok-3f9c1e7a-never-log-me';

  /** An openssl-made key and CSR (extra `req` arguments can try to smuggle identity). */
  async function opensslCsr(
    type: CsrKeyType,
    reqArgs: readonly string[] = ['-subj', '/'],
  ): Promise<{ keyFile: string; csrPem: string }> {
    const base = path.join(dir, `csr-${++n}`);
    await opensslOk(['genpkey', ...CSR_KEY_TYPES[type], '-out', `${base}.key`]);
    await opensslOk(['req', '-new', '-key', `${base}.key`, ...reqArgs, '-out', `${base}.csr`]);
    const csrPem = await readFile(`${base}.csr`, 'utf8');
    csrsSent.push(csrPem);
    return { keyFile: `${base}.key`, csrPem };
  }

  /** openssl verify -x509_strict for one purpose: the leaf, the rest of the chain untrusted, ca.crt trusted. */
  async function opensslVerify(
    chainPem: string,
    purpose: 'sslclient' | 'sslserver',
  ): Promise<{ code: number; out: string }> {
    const base = path.join(dir, `chain-${++n}`);
    const [leaf] = certificatesOf(chainPem);
    await writeFile(`${base}.leaf.pem`, leaf ?? '');
    await writeFile(`${base}.chain.pem`, chainPem);
    const result = await openssl([
      'verify',
      '-x509_strict',
      '-purpose',
      purpose,
      '-CAfile',
      server.anchorsFile,
      '-untrusted',
      `${base}.chain.pem`,
      `${base}.leaf.pem`,
    ]);
    return { code: result.code, out: `${result.stdout}${result.stderr}`.trim() };
  }

  async function scrapeMetrics(): Promise<string> {
    const response = await fetch(`http://127.0.0.1:${server.metricsPort}/metrics`);
    expect(response.status).toBe(200);
    return response.text();
  }

  beforeAll(async () => {
    dir = await makeTempDir('warden-interop-');
    server = await startWardenServe({ cwd: dir });
    anchorsPem = await readFile(server.anchorsFile, 'utf8');
    client = createSentryTestClient({
      address: server.grpcAddress,
      anchorsPem,
      expectedSpiffeId: SENTRY_ID,
    });
  });
  afterAll(async () => {
    client.close();
    await server.stop('SIGKILL');
    await removeTempDir(dir);
  });

  it('answers /healthz with 200 once it is serving', async () => {
    const response = await fetch(`http://127.0.0.1:${server.healthzPort}/healthz`);
    expect(response.status).toBe(200);
  });

  describe.each(Object.keys(CSR_KEY_TYPES) as CsrKeyType[])('an openssl %s CSR', (type) => {
    let keyFile: string;
    let response: WireSignResponse;

    beforeAll(async () => {
      const csr = await opensslCsr(type);
      keyFile = csr.keyFile;
      response = await client.sign({
        id: `app-${type.toLowerCase()}`,
        namespace: 'interop',
        token: TOKEN,
        token_validator: 'INSECURE',
        certificate_signing_request: Buffer.from(csr.csrPem),
      });
    });

    it("gets a chain over TLS after the client checked the CA's chain (anchors file) and SPIFFE ID", () => {
      const peer = client.handshakes.at(-1);
      expect(peer).toBeDefined();
      expect(uriSans(peer!)).toEqual([SENTRY_ID]);
      const chain = certificatesOf(response.workload_certificate.toString('utf8'));
      expect(chain).toHaveLength(2);
      const leaf = new X509Certificate(chain[0]!);
      expect(leaf.subjectAltName).toBe(`URI:spiffe://public/ns/interop/app-${type.toLowerCase()}`);
      expect(response.trust_chain_certificates.map((b) => b.toString('utf8')).join('')).toBe(
        anchorsPem,
      );
      expect(Number(response.valid_until?.seconds)).toBe(
        Math.floor(Date.parse(leaf.validTo) / 1000),
      );
    });

    it('certifies exactly the key of the CSR (as openssl reads both)', async () => {
      const leafFile = path.join(dir, `leaf-${++n}.pem`);
      await writeFile(leafFile, certificatesOf(response.workload_certificate.toString('utf8'))[0]!);
      const fromLeaf = await opensslOk(['x509', '-in', leafFile, '-noout', '-pubkey']);
      const fromKey = await opensslOk(['pkey', '-in', keyFile, '-pubout']);
      expect(fromLeaf).toBe(fromKey);
    });

    it.each(['sslclient', 'sslserver'] as const)(
      'passes openssl verify -x509_strict -purpose %s against ca.crt',
      async (purpose) => {
        const result = await opensslVerify(response.workload_certificate.toString('utf8'), purpose);
        expect(result.out).toMatch(/leaf\.pem: OK$/);
        expect(result.code).toBe(0);
      },
    );
  });

  it('control: openssl verify refuses a chain that is not from this CA', async () => {
    const foreign = path.join(dir, 'foreign');
    await opensslOk([
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-subj',
      '/CN=stranger',
      '-days',
      '1',
      '-keyout',
      `${foreign}.key`,
      '-out',
      `${foreign}.pem`,
    ]);
    const result = await opensslVerify(await readFile(`${foreign}.pem`, 'utf8'), 'sslclient');
    expect(result.code).not.toBe(0);
  });

  describe('a CSR that tries to smuggle identity (openssl req -addext)', () => {
    let keyFile: string;
    let leafPem: string;
    let leafText: string;

    beforeAll(async () => {
      const csr = await opensslCsr('P-256', [
        '-subj',
        '/CN=dapr-sentry/O=attacker',
        '-addext',
        'subjectAltName=URI:spiffe://evil/ns/default/admin,URI:spiffe://localhost/ns/default/dapr-sentry,DNS:evil.example,DNS:localhost,IP:127.0.0.1',
        '-addext',
        'basicConstraints=critical,CA:TRUE,pathlen:1',
        '-addext',
        'keyUsage=critical,keyCertSign,cRLSign,digitalSignature',
        '-addext',
        'extendedKeyUsage=codeSigning',
      ]);
      keyFile = csr.keyFile;
      // The CSR really carries all of it (checked by openssl), so the test cannot pass vacuously.
      const csrText = await opensslOk(['req', '-noout', '-text'], { input: csr.csrPem });
      for (const smuggled of [
        'CN = dapr-sentry',
        'URI:spiffe://evil/ns/default/admin',
        'DNS:evil.example',
        'CA:TRUE',
        'Certificate Sign',
        'Code Signing',
      ]) {
        expect(csrText).toContain(smuggled);
      }
      const response = await client.sign({
        id: 'plain-app',
        namespace: 'default',
        certificate_signing_request: Buffer.from(csr.csrPem),
      });
      leafPem = certificatesOf(response.workload_certificate.toString('utf8'))[0]!;
      leafText = await opensslOk(['x509', '-noout', '-text'], { input: leafPem });
    });

    it('gets a leaf with an empty subject and only the server-decided SPIFFE ID', () => {
      const leaf = new X509Certificate(leafPem);
      expect(leaf.subject ?? '').toBe(''); // Node 20 reports an empty subject as undefined
      expect(leaf.subjectAltName).toBe('URI:spiffe://public/ns/default/plain-app');
      expect(leafText).toMatch(/\n\s+Subject: *\n/);
      expect(leafText).not.toMatch(/evil|attacker|dapr-sentry|DNS:|IP Address/);
    });

    it('gets a leaf that is not a CA, cannot sign certificates and is for TLS only', () => {
      expect(new X509Certificate(leafPem).ca).toBe(false);
      expect(leafText).toMatch(/X509v3 Basic Constraints: critical\n\s+CA:FALSE\n/);
      expect(leafText).toMatch(/X509v3 Key Usage: critical\n\s+Digital Signature\n/);
      expect(leafText).toMatch(
        /X509v3 Extended Key Usage: *\n\s+TLS Web Server Authentication, TLS Web Client Authentication\n/,
      );
      expect(leafText).not.toContain('Code Signing');
    });

    it('cannot act as a CA: a certificate it signs does not verify under ca.crt', async () => {
      const base = path.join(dir, 'grandchild');
      const leafFile = `${base}.issuer.pem`;
      await writeFile(leafFile, leafPem);
      await opensslOk([
        'req',
        '-new',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:P-256',
        '-nodes',
        '-subj',
        '/CN=grandchild',
        '-keyout',
        `${base}.key`,
        '-out',
        `${base}.csr`,
      ]);
      await opensslOk([
        'x509',
        '-req',
        '-in',
        `${base}.csr`,
        '-CA',
        leafFile,
        '-CAkey',
        keyFile,
        '-CAcreateserial',
        '-days',
        '1',
        '-out',
        `${base}.pem`,
      ]);
      const chainFile = `${base}.chain.pem`;
      await writeFile(
        chainFile,
        leafPem + (await readFile(path.join(server.credentialsDir, 'issuer.crt'), 'utf8')),
      );
      const result = await openssl([
        'verify',
        '-CAfile',
        server.anchorsFile,
        '-untrusted',
        chainFile,
        `${base}.pem`,
      ]);
      expect(result.code).not.toBe(0);
      expect(result.stdout + result.stderr).toMatch(/invalid CA certificate|not a CA|key usage/i);
    });
  });

  it('counts a success and a failure (with its reason) in /metrics', async () => {
    const before = await scrapeMetrics();
    const { csrPem } = await opensslCsr('P-256');
    await client.sign({
      id: 'metrics-ok',
      namespace: 'default',
      certificate_signing_request: Buffer.from(csrPem),
    });
    const refused = await signError(
      client.sign({
        id: 'metrics.bad',
        namespace: 'default',
        certificate_signing_request: Buffer.from(csrPem),
      }),
    );
    expect(refused.code).toBe(GrpcStatus.INVALID_ARGUMENT);
    const after = await scrapeMetrics();
    const failed = 'dapr_sentry_cert_sign_failure_total{reason="request_invalid"}';
    expect(metricValue(after, 'dapr_sentry_cert_sign_success_total')).toBe(
      metricValue(before, 'dapr_sentry_cert_sign_success_total') + 1,
    );
    expect(metricValue(after, failed)).toBe(metricValue(before, failed) + 1);
    expect(metricValue(after, 'dapr_sentry_cert_sign_request_received_total')).toBe(
      metricValue(before, 'dapr_sentry_cert_sign_request_received_total') + 2,
    );
  });

  it('never wrote a private key, a CSR or a token to its logs', () => {
    const logs = server.stderr() + server.stdout();
    expect(logs).toContain('certificate.issued'); // the logs are there to search
    expect(logs).not.toContain('PRIVATE KEY');
    expect(logs).not.toContain('CERTIFICATE REQUEST');
    expect(logs).not.toContain(TOKEN);
    expect(csrsSent.length).toBeGreaterThanOrEqual(6);
    for (const csrPem of csrsSent) {
      const body = csrPem.replace(/-----[A-Z ]+-----/g, '').replace(/\s+/g, '');
      expect(logs).not.toContain(body);
      for (const line of csrPem.split('\n').filter((l) => l.length === 64))
        expect(logs).not.toContain(line);
    }
  });
});
