import 'reflect-metadata';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { status as GrpcStatus } from '@grpc/grpc-js';
import * as x509 from '@peculiar/x509';
import fc from 'fast-check';
import { createLocalJWKSet, jwtVerify, type JSONWebKeySet } from 'jose';
import {
  HOSTILE_AUDIENCE,
  HOSTILE_NAMESPACE,
  hostileJwtKeys,
  writeHostileConfiguration,
  type HostileJwtKeys,
} from '../support/hostile-warden.js';
import { joseToken, nodeToken } from '../support/jwt-fixtures.js';
import {
  createSentryTestClient,
  type SentryTestClient,
  type WireSignRequest,
} from '../support/sentry-proto-client.js';
import { makePeculiarCsr, pemBody, toPem, type TestCsr } from '../support/signing-test-pki.js';
import { startWardenChild, type WardenChild } from '../support/warden-child.js';
import { laxCsrDer, leafProblems } from './issued-leaf.js';
import { goodClaims, JWKS_APP, JWKS_SUBJECT } from './sign-certificate-corpus.js';
import { attemptSign, statusName, type SignOutcome } from './sign-outcome.js';

/**
 * Property tests against a real `warden serve` child process: mutated CSRs, mutated JWTs,
 * arbitrary identity fields and arbitrary bytes. For every input: an answer before the
 * deadline (DEADLINE_EXCEEDED fails the property), only the statuses a caller's mistake may
 * produce (never INTERNAL or UNKNOWN), and a certificate only when an independent
 * implementation (@peculiar/x509 for the CSR, panva/jose for the token, plain regular
 * expressions for the identity rules) agrees the request was well-formed, validly signed and
 * authorised. After the run the child must still be alive and serving.
 *
 * `npm run fuzz` runs the long mode (WARDEN_FUZZ=long). WARDEN_FUZZ_SEED replays a run.
 * Inputs that ever fail a property become rows in sign-certificate-corpus.ts.
 */
const LONG = process.env.WARDEN_FUZZ === 'long';
const RUNS = LONG ? Number(process.env.WARDEN_FUZZ_RUNS ?? 5000) : 60;
const SEED =
  process.env.WARDEN_FUZZ_SEED === undefined ? undefined : Number(process.env.WARDEN_FUZZ_SEED);
/** Per-input time bound: the call's deadline. A hang shows up as DEADLINE_EXCEEDED. */
const PER_INPUT_DEADLINE_MS = 5000;

const params = (): fc.Parameters<unknown> => ({
  numRuns: RUNS,
  ...(SEED === undefined ? {} : { seed: SEED }),
  // Shrinking re-sends requests; keep it bounded so a failure reports promptly.
  endOnFailure: !LONG,
});

// ---------------------------------------------------------------- mutations

type Mutation =
  | { kind: 'flip'; at: number; bit: number }
  | { kind: 'set'; at: number; value: number }
  | { kind: 'truncate'; at: number }
  | { kind: 'insert'; at: number; bytes: Uint8Array }
  | { kind: 'delete'; at: number; count: number }
  | { kind: 'duplicate'; at: number; count: number };

const mutationArb: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({
    kind: fc.constant('flip' as const),
    at: fc.nat(),
    bit: fc.integer({ min: 0, max: 7 }),
  }),
  fc.record({
    kind: fc.constant('set' as const),
    at: fc.nat(),
    value: fc.integer({ min: 0, max: 255 }),
  }),
  fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
  fc.record({
    kind: fc.constant('insert' as const),
    at: fc.nat(),
    bytes: fc.uint8Array({ minLength: 1, maxLength: 8 }),
  }),
  fc.record({
    kind: fc.constant('delete' as const),
    at: fc.nat(),
    count: fc.integer({ min: 1, max: 8 }),
  }),
  fc.record({
    kind: fc.constant('duplicate' as const),
    at: fc.nat(),
    count: fc.integer({ min: 1, max: 16 }),
  }),
);

function mutate(input: Uint8Array, mutations: readonly Mutation[]): Buffer {
  let bytes = Buffer.from(input);
  for (const m of mutations) {
    if (bytes.length === 0) break;
    const at = m.at % bytes.length;
    switch (m.kind) {
      case 'flip':
        bytes[at] = (bytes[at] as number) ^ (1 << m.bit);
        break;
      case 'set':
        bytes[at] = m.value;
        break;
      case 'truncate':
        bytes = bytes.subarray(0, at);
        break;
      case 'insert':
        bytes = Buffer.concat([bytes.subarray(0, at), m.bytes, bytes.subarray(at)]);
        break;
      case 'delete':
        bytes = Buffer.concat([bytes.subarray(0, at), bytes.subarray(at + m.count)]);
        break;
      case 'duplicate':
        bytes = Buffer.concat([bytes.subarray(0, at + m.count), bytes.subarray(at)]);
        break;
    }
  }
  return bytes;
}

// ---------------------------------------------------------------- independent oracles

/**
 * @peculiar/x509's view of a CSR: its SPKI when the DER inside the PEM parses and its
 * signature verifies. The PEM is read the way RFC 7468's lax grammar (and Go's pem.Decode,
 * which Dapr sidecars use) reads it: whitespace inside the base64 is ignored. @peculiar's own
 * PEM reader refuses such whitespace, which is a formatting choice, not a different CSR
 * (found by this fuzzer; kept as the corpus row "spaces and tabs inside the base64 body").
 */
async function independentlyValidCsr(pem: string): Promise<Buffer | null> {
  const der = laxCsrDer(pem);
  if (!der) return null;
  try {
    const csr = new x509.Pkcs10CertificateRequest(der);
    return (await csr.verify()) ? Buffer.from(csr.publicKey.rawData) : null;
  } catch {
    return null;
  }
}

/** panva/jose's view of a token: verifies against the JWKS, audience and subject. */
async function independentlyValidToken(
  token: string,
  jwks: JSONWebKeySet,
  subject: string,
): Promise<boolean> {
  try {
    await jwtVerify(token, createLocalJWKSet(jwks), {
      audience: HOSTILE_AUDIENCE,
      subject,
      clockTolerance: 300,
    });
    return true;
  } catch {
    return false;
  }
}

// Dapr's and SPIFFE's rules, written independently of src/issuer/request-rules.ts.
const SEGMENT = /^[A-Za-z0-9._-]+$/;
const independentlyValidId = (id: string): boolean =>
  id.length <= 64 && SEGMENT.test(id) && !id.includes('.');
const independentlyValidNamespace = (ns: string): boolean =>
  ns.length <= 63 && SEGMENT.test(ns) && ns !== '.' && ns !== '..';
const independentlyValidTrustDomain = (td: string): boolean =>
  td === '' || (td.length <= 255 && /^[a-z0-9._-]+$/.test(td));
/** Dapr's rule: the injector and operator get their Service's DNS name, in the CA namespace only. */
function webhookDnsNames(id: string, namespace: string): string[] {
  if (namespace !== HOSTILE_NAMESPACE) return [];
  if (id === 'dapr-injector') return [`dapr-sidecar-injector.${namespace}.svc`];
  if (id === 'dapr-operator') return [`dapr-webhook.${namespace}.svc`];
  return [];
}

/** Plainly well-formed values every implementation must accept. */
const PLAIN = /^[a-z][a-z0-9-]{0,20}[a-z0-9]$/;

// ---------------------------------------------------------------- the run

describe(`SignCertificate fuzzing against a warden serve child process (${RUNS} runs per property${LONG ? ', long mode' : ''})`, () => {
  let dir: string;
  let child: WardenChild;
  let client: SentryTestClient;
  let anchorsPem: string;
  let keys: HostileJwtKeys;
  let jwksDocument: JSONWebKeySet;
  let csrs: TestCsr[];
  const stats: Record<string, number> = {};

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'warden-fuzz-'));
    keys = await hostileJwtKeys();
    jwksDocument = { keys: [keys.es256.publicJwk, keys.rsa.publicJwk] } as JSONWebKeySet;
    const config = await writeHostileConfiguration(dir, keys);
    child = await startWardenChild({
      credentialsDir: path.join(dir, 'credentials'),
      flags: ['--config', config, '--trust-domain', 'localhost'],
      env: { NAMESPACE: HOSTILE_NAMESPACE },
    });
    anchorsPem = await child.anchorsPem();
    client = createSentryTestClient({
      address: `127.0.0.1:${child.grpcPort}`,
      anchorsPem,
      expectedSpiffeId: HOSTILE_AUDIENCE,
    });
    csrs = [
      await makePeculiarCsr('P-256'),
      await makePeculiarCsr('Ed25519'),
      await makePeculiarCsr('RSA-2048'),
    ];
  }, 60_000);

  afterAll(async () => {
    client?.close();
    await child?.stop();
    await rm(dir, { recursive: true, force: true });
    process.stdout.write(`fuzz outcomes: ${JSON.stringify(stats)}\n`);
  });

  async function send(request: WireSignRequest): Promise<SignOutcome> {
    const outcome = await attemptSign(client, request, PER_INPUT_DEADLINE_MS);
    const key = outcome.kind === 'issued' ? 'OK' : statusName(outcome.code);
    stats[key] = (stats[key] ?? 0) + 1;
    return outcome;
  }

  /** Fails the property with the reason (fast-check reports the input). */
  function refusedWithOneOf(outcome: SignOutcome, allowed: readonly GrpcStatus[]): void {
    if (outcome.kind === 'refused' && !allowed.includes(outcome.code)) {
      throw new Error(
        `status ${statusName(outcome.code)} (${outcome.details}) is not one a bad request may get`,
      );
    }
  }

  it('mutated CSRs: refused as INVALID_ARGUMENT/RESOURCE_EXHAUSTED, or issued only when the mutated CSR is still valid', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 0, max: 2 }),
        fc.array(mutationArb, { minLength: 1, maxLength: 4 }),
        fc.boolean(),
        async (which, mutations, pemLevel) => {
          const base = csrs[which] as TestCsr;
          const pem = pemLevel
            ? mutate(Buffer.from(base.pem), mutations).toString('latin1')
            : toPem(mutate(pemBody(base.pem), mutations));
          const request: WireSignRequest = {
            id: 'fuzz',
            namespace: 'default',
            token_validator: 'INSECURE',
            certificate_signing_request: Buffer.from(pem, 'latin1'),
          };
          const outcome = await send(request);
          refusedWithOneOf(outcome, [GrpcStatus.INVALID_ARGUMENT, GrpcStatus.RESOURCE_EXHAUSTED]);
          if (outcome.kind === 'issued') {
            if ((await independentlyValidCsr(pem)) === null)
              throw new Error('issued for a CSR @peculiar/x509 does not accept as validly signed');
            const problems = await leafProblems(outcome.response, {
              spiffeId: 'spiffe://public/ns/default/fuzz',
              dnsNames: [],
              csrPem: pem,
              anchorsPem,
            });
            if (problems.length > 0) throw new Error(problems.join('; '));
          }
        },
      ),
      params(),
    );
  }, 120_000);

  it('mutated JWTs: refused as PERMISSION_DENIED, or issued only when jose verifies the mutated token', async () => {
    const now = Math.floor(Date.now() / 1000);
    const bases = [
      await joseToken(keys.es256, goodClaims({ iat: now, exp: now + 3600 })),
      nodeToken(
        { alg: 'RS256', kid: 'rsa-1' },
        goodClaims({ iat: now, exp: now + 3600 }),
        keys.rsa.sign,
      ),
    ];
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.=+/ ';
    const textMutation = fc.oneof(
      fc.record({
        kind: fc.constant('replace' as const),
        at: fc.nat(),
        ch: fc.constantFrom(...alphabet.split('')),
      }),
      fc.record({
        kind: fc.constant('delete' as const),
        at: fc.nat(),
        count: fc.integer({ min: 1, max: 4 }),
      }),
      fc.record({
        kind: fc.constant('insert' as const),
        at: fc.nat(),
        text: fc.string({ maxLength: 4 }),
      }),
      fc.record({
        kind: fc.constant('header' as const),
        patch: fc.dictionary(
          fc.constantFrom('alg', 'kid', 'typ', 'crit', 'jwk', 'jku', 'x5u', 'b64', 'zip'),
          fc.oneof(
            fc.constantFrom(
              'none',
              'HS256',
              'ES256',
              'RS256',
              'PS256',
              'EdDSA',
              'es-1',
              'rsa-1',
              '',
            ),
            fc.jsonValue(),
          ),
        ),
      }),
      fc.record({
        kind: fc.constant('claims' as const),
        patch: fc.dictionary(
          fc.constantFrom('sub', 'aud', 'exp', 'nbf', 'iat', 'iss'),
          fc.oneof(
            fc.constantFrom(
              JWKS_SUBJECT,
              HOSTILE_AUDIENCE,
              [HOSTILE_AUDIENCE],
              now - 7200,
              now + 7200,
              null,
            ),
            fc.jsonValue(),
          ),
        ),
      }),
      fc.record({
        kind: fc.constant('swap' as const),
        a: fc.integer({ min: 0, max: 2 }),
        b: fc.integer({ min: 0, max: 2 }),
      }),
    );
    type TextMutation = typeof textMutation extends fc.Arbitrary<infer T> ? T : never;
    const apply = (token: string, m: TextMutation): string => {
      const at =
        token.length === 0
          ? 0
          : m.kind === 'replace' || m.kind === 'delete' || m.kind === 'insert'
            ? m.at % token.length
            : 0;
      switch (m.kind) {
        case 'replace':
          return token.slice(0, at) + m.ch + token.slice(at + 1);
        case 'delete':
          return token.slice(0, at) + token.slice(at + m.count);
        case 'insert':
          return token.slice(0, at) + m.text + token.slice(at);
        case 'swap': {
          const parts = token.split('.');
          const a = parts[m.a];
          parts[m.a] = parts[m.b] as string;
          parts[m.b] = a as string;
          return parts.join('.');
        }
        case 'header':
        case 'claims': {
          const parts = token.split('.');
          const index = m.kind === 'header' ? 0 : 1;
          let decoded: Record<string, unknown>;
          try {
            decoded = JSON.parse(
              Buffer.from(parts[index] ?? '', 'base64url').toString('utf8'),
            ) as Record<string, unknown>;
          } catch {
            return token;
          }
          parts[index] = Buffer.from(JSON.stringify({ ...decoded, ...m.patch })).toString(
            'base64url',
          );
          return parts.join('.');
        }
      }
    };
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 0, max: 1 }),
        fc.array(textMutation, { minLength: 1, maxLength: 3 }),
        async (which, mutations) => {
          const token = mutations.reduce(apply, bases[which] as string);
          const outcome = await send({
            id: JWKS_APP.id,
            namespace: JWKS_APP.namespace,
            trust_domain: JWKS_APP.trustDomain,
            token,
            token_validator: 'JWKS',
            certificate_signing_request: Buffer.from((csrs[0] as TestCsr).pem),
          });
          refusedWithOneOf(outcome, [GrpcStatus.PERMISSION_DENIED]);
          if (outcome.kind === 'issued') {
            if (!(await independentlyValidToken(token, jwksDocument, JWKS_SUBJECT)))
              throw new Error(`issued for a token jose does not verify: ${token}`);
            const problems = await leafProblems(outcome.response, {
              spiffeId: JWKS_SUBJECT,
              dnsNames: [],
              csrPem: (csrs[0] as TestCsr).pem,
              anchorsPem,
            });
            if (problems.length > 0) throw new Error(problems.join('; '));
          }
        },
      ),
      params(),
    );
  }, 120_000);

  it('arbitrary identity fields: issued exactly as asked only when independently valid, refused as INVALID_ARGUMENT otherwise', async () => {
    const pieces = fc.constantFrom(
      '',
      '.',
      '..',
      '/',
      '%2f',
      '%2e',
      '\u0000',
      '\n',
      ' ',
      'dapr-sentry',
      'dapr-injector',
      HOSTILE_NAMESPACE,
      'a',
      'B',
      '0',
      '-',
      '_',
      '\u0430',
      '\u00e9',
      ':',
      '@',
      'spiffe://',
      'x'.repeat(70),
    );
    const field = fc.oneof(
      fc.stringMatching(PLAIN),
      fc.array(pieces, { maxLength: 4 }).map((p) => p.join('')),
      fc.string({ maxLength: 80, unit: 'grapheme' }),
      fc.string({ maxLength: 20, unit: 'binary' }),
    );
    await fc.assert(
      fc.asyncProperty(
        field,
        field,
        fc.oneof(fc.constant(''), field),
        async (id, namespace, trustDomain) => {
          const outcome = await send({
            id,
            namespace,
            trust_domain: trustDomain,
            token_validator: 'INSECURE',
            certificate_signing_request: Buffer.from((csrs[1] as TestCsr).pem),
          });
          const valid =
            independentlyValidId(id) &&
            independentlyValidNamespace(namespace) &&
            independentlyValidTrustDomain(trustDomain);
          const isCaIdentity = id === 'dapr-sentry' && namespace === HOSTILE_NAMESPACE;
          if (outcome.kind === 'issued') {
            if (!valid || isCaIdentity)
              throw new Error(
                `issued for id ${JSON.stringify(id)} ns ${JSON.stringify(namespace)} td ${JSON.stringify(trustDomain)}`,
              );
            const problems = await leafProblems(outcome.response, {
              spiffeId: `spiffe://${trustDomain || 'public'}/ns/${namespace}/${id}`,
              dnsNames: webhookDnsNames(id, namespace),
              csrPem: (csrs[1] as TestCsr).pem,
              anchorsPem,
            });
            if (problems.length > 0) throw new Error(problems.join('; '));
            return;
          }
          refusedWithOneOf(
            outcome,
            isCaIdentity ? [GrpcStatus.PERMISSION_DENIED] : [GrpcStatus.INVALID_ARGUMENT],
          );
          if (
            PLAIN.test(id) &&
            PLAIN.test(namespace) &&
            (trustDomain === '' || PLAIN.test(trustDomain)) &&
            !isCaIdentity
          )
            throw new Error(`refused plainly valid fields: ${outcome.details}`);
        },
      ),
      params(),
    );
  }, 120_000);

  it('arbitrary bytes in every field: never a certificate, never an internal error', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.record({
          id: fc.string({ maxLength: 100 }),
          namespace: fc.string({ maxLength: 100 }),
          trust_domain: fc.string({ maxLength: 100 }),
          token: fc.string({ maxLength: 2000 }),
          certificate_signing_request: fc
            .uint8Array({ maxLength: 4096 })
            .map((b) => Buffer.from(b)),
          token_validator: fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }),
          jwt_audiences: fc.array(fc.string({ maxLength: 40 }), { maxLength: 20 }),
        }),
        async (request) => {
          const outcome = await send(request);
          if (outcome.kind === 'issued') throw new Error('issued for random bytes');
          refusedWithOneOf(outcome, [
            GrpcStatus.INVALID_ARGUMENT,
            GrpcStatus.PERMISSION_DENIED,
            GrpcStatus.RESOURCE_EXHAUSTED,
          ]);
        },
      ),
      params(),
    );
  }, 120_000);

  it('left the child alive, serving, and free of crash reports', async () => {
    expect(child.alive()).toBe(true);
    const outcome = await send({
      id: 'after-fuzz',
      namespace: 'default',
      certificate_signing_request: Buffer.from((csrs[0] as TestCsr).pem),
    });
    expect(outcome.kind).toBe('issued');
    const health = await fetch(`http://127.0.0.1:${child.healthzPort}/healthz`);
    expect(health.status).toBe(200);
    // Every stderr line is a JSON log line: an unhandled rejection or a stack trace would not be.
    const notJson = child.stderrLines.filter((line) => {
      try {
        JSON.parse(line);
        return false;
      } catch {
        return true;
      }
    });
    expect(notJson).toEqual([]);
    expect(child.stderrLines.filter((l) => /"level":"(error|fatal)"/.test(l))).toEqual([]);
  });
});
