import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { exportJWK } from 'jose';
import { joseToken } from '../support/jwt-fixtures.js';
import { startHostileWarden, type HostileWarden } from '../support/hostile-warden.js';
import type { WireSignRequest } from '../support/sentry-proto-client.js';
import { makePeculiarCsr, type TestCsr } from '../support/signing-test-pki.js';
import {
  goodClaims,
  insecureRequest,
  jwksRequest,
  JWKS_SUBJECT,
} from './sign-certificate-corpus.js';
import { attemptSign, type SignOutcome } from './sign-outcome.js';

type Line = Record<string, unknown>;
const AUDIT_EVENTS = new Set(['certificate.issued', 'certificate.denied', 'certificate.failed']);

/** The base64 body lines of a PEM text (what would show that a key or CSR reached the log). */
function pemBodyLines(pem: string): string[] {
  return pem
    .split('\n')
    .filter((l) => l.length >= 40 && !l.startsWith('-----'))
    .map((l) => l.trim());
}

/**
 * The audit trail of SignCertificate, read back from a real pino logger with Warden's
 * redaction: one structured line per call, with serial, SPIFFE ID, notAfter, validator and
 * caller address for every certificate, code and reason for every refusal, and never a
 * token, a CSR or a private key.
 */
describe('the SignCertificate audit log', () => {
  let w: HostileWarden;
  let csr: TestCsr;
  const tokens: string[] = [];
  const sent: Array<{ request: WireSignRequest; outcome: SignOutcome }> = [];

  beforeAll(async () => {
    w = await startHostileWarden();
    csr = await makePeculiarCsr('P-256');
    const f = { p256: csr };
    const good = await joseToken(w.keys.es256, goodClaims());
    const expired = await joseToken(
      w.keys.es256,
      goodClaims({ exp: Math.floor(Date.now() / 1000) - 3600 }),
    );
    const foreign = await joseToken(w.keys.impostor, goodClaims());
    tokens.push(good, expired, foreign);
    const requests: WireSignRequest[] = [
      insecureRequest(f),
      jwksRequest(f, good),
      insecureRequest(f, { id: 'bad.id' }),
      insecureRequest(f, { certificate_signing_request: Buffer.from('not a csr') }),
      jwksRequest(f, expired),
      jwksRequest(f, foreign),
      insecureRequest(f, { token_validator: 42 }),
      insecureRequest(f, {
        id: 'dapr-sentry',
        namespace: 'warden-system',
        trust_domain: 'localhost',
      }),
      jwksRequest(f, good, { id: 'someone-else' }),
    ];
    for (const request of requests)
      sent.push({ request, outcome: await attemptSign(w.client, request) });
  });
  afterAll(async () => {
    await w?.close();
  });

  const auditLines = (): Line[] => w.log.lines().filter((l) => AUDIT_EVENTS.has(String(l.event)));

  it('writes exactly one audit line per call, in order', () => {
    const lines = auditLines();
    expect(lines).toHaveLength(sent.length);
    expect(lines.map((l) => l.event)).toEqual(
      sent.map((s) => (s.outcome.kind === 'issued' ? 'certificate.issued' : 'certificate.denied')),
    );
  });

  it('gives every issued certificate its serial, SPIFFE ID, notAfter, validator and caller address', () => {
    const issued = sent.filter((s) => s.outcome.kind === 'issued');
    expect(issued).toHaveLength(2);
    const lines = auditLines().filter((l) => l.event === 'certificate.issued');
    issued.forEach((s, i) => {
      if (s.outcome.kind !== 'issued') throw new Error('unreachable');
      const leaf = new X509Certificate(
        /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/.exec(
          s.outcome.response.workload_certificate.toString(),
        )?.[0] ?? '',
      );
      expect(lines[i]).toMatchObject({
        level: 'info',
        serial: leaf.serialNumber.toLowerCase(),
        spiffeId: leaf.subjectAltName?.replace(/^URI:/, ''),
        notAfter: new Date(leaf.validTo).toISOString(),
        validator: i === 0 ? 'insecure' : 'jwks',
        dnsNames: [],
        generation: 1,
      });
      expect(String(lines[i]?.peer)).toMatch(/^127\.0\.0\.1:\d+$/);
    });
    expect(lines[1]?.spiffeId).toBe(JWKS_SUBJECT);
  });

  it('gives every refusal its code, a reason and the caller address', () => {
    const lines = auditLines().filter((l) => l.event === 'certificate.denied');
    expect(lines.map((l) => [l.code, l.validator])).toEqual([
      ['ERR_REQUEST_INVALID', null],
      ['ERR_CSR_INVALID', 'insecure'],
      ['ERR_IDENTITY_DENIED', 'jwks'],
      ['ERR_IDENTITY_DENIED', 'jwks'],
      ['ERR_VALIDATOR_NOT_ENABLED', null],
      ['ERR_IDENTITY_DENIED', 'insecure'],
      ['ERR_IDENTITY_DENIED', 'jwks'],
    ]);
    for (const line of lines) {
      expect(line.level).toBe('warn');
      expect(String(line.reason).length).toBeGreaterThan(10);
      expect(String(line.peer)).toMatch(/^127\.0\.0\.1:\d+$/);
    }
    expect(lines.map((l) => l.reason)).toContain('jwks validator: the token has expired');
  });

  it('never holds a token, the CSR, the issuer key or a JWT signing key', async () => {
    const text = w.log.text();
    for (const token of tokens) {
      for (const part of token.split('.')) expect(text).not.toContain(part);
    }
    for (const line of pemBodyLines(csr.pem)) expect(text).not.toContain(line);
    const issuerKey = await readFile(path.join(w.credentialsDir, 'issuer.key'), 'utf8');
    for (const line of pemBodyLines(issuerKey)) expect(text).not.toContain(line);
    const { d } = await exportJWK(w.keys.es256.privateKey as Parameters<typeof exportJWK>[0]);
    expect(typeof d).toBe('string');
    expect(text).not.toContain(d as string);
  });
});
