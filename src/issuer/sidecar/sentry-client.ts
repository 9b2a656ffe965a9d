import { createPublicKey, X509Certificate, type KeyObject } from 'node:crypto';
import { isIP } from 'node:net';
import type { PeerCertificate } from 'node:tls';
import * as grpc from '@grpc/grpc-js';
import { certificateValidity } from '../../ca/certificate-facts.js';
import { parsePemBlocks } from '../../ca/pem.js';
import { systemClock, type Clock } from '../../shared/clock.js';
import { WardenError } from '../../shared/errors.js';
import { silentLogger, type Logger } from '../../shared/logger.js';
import { parseSpiffeId, printable } from '../../shared/spiffe-id.js';
import { uriSubjectAltNames } from '../../shared/subject-alt-names.js';
import {
  loadSentryServiceDefinition,
  SENTRY_SERVICE_NAME,
  type SignCertificateRequestMessage,
} from '../grpc/sentry-proto.js';
import {
  DEFAULT_REQUEST_TRUST_DOMAIN,
  idProblem,
  namespaceProblem,
  requestTrustDomainProblem,
} from '../request-rules.js';
import { workloadSpiffeId } from '../svid-identity.js';
import { generateKeyAndCsr, type WorkloadKeyType } from './workload-csr.js';

/**
 * The sidecar side of `dapr.proto.sentry.v1.CA/SignCertificate`, as daprd does it: make a key
 * and CSR, call the CA over TLS trusting only the given anchors and pinning the CA's SPIFFE ID
 * (not a host name), retry transient failures, then check what came back before handing it
 * out. Used by `warden request`, and by anything in Warden that needs its own X.509-SVID.
 */

/** The proto's SignCertificateRequest.TokenValidator values, by the names the CLI takes. */
export const TOKEN_VALIDATOR_NUMBERS = Object.freeze({
  unknown: 0,
  insecure: 1,
  kubernetes: 2,
  jwks: 3,
} as const);
export type TokenValidatorName = keyof typeof TOKEN_VALIDATOR_NUMBERS;

export function isTokenValidatorName(value: string): value is TokenValidatorName {
  return Object.hasOwn(TOKEN_VALIDATOR_NUMBERS, value);
}

/** Dapr's client: 5 tries of 3 s each. */
export const DEFAULT_ATTEMPTS = 5;
export const DEFAULT_ATTEMPT_TIMEOUT_MS = 3_000;
const DEFAULT_BACKOFF = Object.freeze({ initialMs: 250, maxMs: 2_000 });

/**
 * gRPC statuses that a retry cannot change: the CA has read the request and refused it.
 * Everything else (UNAVAILABLE, DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED from an overloaded CA,
 * INTERNAL) is tried again, as Dapr's client does.
 */
const FINAL_STATUSES: ReadonlySet<grpc.status> = new Set([
  grpc.status.INVALID_ARGUMENT,
  grpc.status.PERMISSION_DENIED,
  grpc.status.UNAUTHENTICATED,
  grpc.status.FAILED_PRECONDITION,
  grpc.status.UNIMPLEMENTED,
  grpc.status.NOT_FOUND,
  grpc.status.OUT_OF_RANGE,
  grpc.status.ALREADY_EXISTS,
]);

/**
 * grpc-js reports a refused TLS handshake only as UNAVAILABLE with the TLS error's text in
 * the details. These are the words of OpenSSL's certificate-verification messages ("unable
 * to get local issuer certificate", "self-signed certificate", "certificate has expired",
 * "unsupported certificate purpose", "permitted subtree violation", ...); no socket or DNS
 * error uses them.
 */
const CERTIFICATE_VERIFY_FAILURE = /certificate|self[- ]signed|subtree|CERT_/i;

export interface SentryClientOptions {
  /** `host:port` of the CA (Dapr's sentryAddress), e.g. `127.0.0.1:50001`. */
  readonly address: string;
  /** PEM of the roots the CA's serving certificate must chain to. Never trust on first use. */
  readonly trustAnchorsPem: string;
  /** The SPIFFE ID the CA's serving certificate must carry, `spiffe://<cp td>/ns/<cp ns>/dapr-sentry`. */
  readonly sentrySpiffeId: string;
  /** Tries per request (default 5). */
  readonly attempts?: number;
  /** Deadline of one try (default 3 s). */
  readonly attemptTimeoutMs?: number;
  /** Pause before the 2nd try, doubling up to maxMs, with ±20 % jitter (default 250 ms → 2 s). */
  readonly backoff?: { readonly initialMs: number; readonly maxMs: number };
  readonly clock?: Clock;
  /** Injected so tests see the pauses without taking them. */
  readonly sleep?: (ms: number) => Promise<void>;
  readonly logger?: Logger;
}

export interface SvidRequest {
  /** Dapr's `id`: the app id (or a control-plane id). */
  readonly appId: string;
  readonly namespace: string;
  /** Trust domain to be issued in; empty or absent means Dapr's `public`. */
  readonly trustDomain?: string;
  /** The identity token the validator checks; never logged. */
  readonly token?: string;
  /** Which validator the CA should use (default unknown: the CA's default). */
  readonly tokenValidator?: TokenValidatorName;
  readonly keyType?: WorkloadKeyType;
  readonly jwtAudiences?: readonly string[];
}

/** An X.509-SVID that was checked before it was returned. */
export interface WorkloadSvid {
  readonly spiffeId: string;
  readonly identity: {
    readonly trustDomain: string;
    readonly namespace: string;
    readonly appId: string;
  };
  readonly keyType: WorkloadKeyType;
  readonly privateKey: KeyObject;
  /** PKCS#8 PEM. */
  readonly privateKeyPem: string;
  /** The leaf, then the issuer chain (no root), as PEM. */
  readonly certificateChainPem: string;
  readonly certificates: readonly X509Certificate[];
  /** The trust anchors the CA returned, as PEM. */
  readonly trustAnchorsPem: string;
  readonly trustAnchors: readonly X509Certificate[];
  readonly notBefore: Date;
  readonly notAfter: Date;
  /** Upper-case hex serial number of the leaf (as Node prints it). */
  readonly serialNumber: string;
}

export interface SentryClient {
  readonly address: string;
  readonly sentrySpiffeId: string;
  /** Obtains an SVID; rejects with ERR_SENTRY_REQUEST_FAILED, ERR_SENTRY_NOT_TRUSTED or ERR_SVID_INVALID. */
  requestSvid(request: SvidRequest): Promise<WorkloadSvid>;
}

interface SignCertificateResponseWire {
  readonly workloadCertificate: Buffer;
  readonly trustChainCertificates: readonly Buffer[];
  readonly validUntil: { readonly seconds: string; readonly nanos: number } | null;
}

type UnaryMethod = (
  request: SignCertificateRequestMessage,
  metadata: grpc.Metadata,
  options: grpc.CallOptions,
  callback: (err: grpc.ServiceError | null, response?: SignCertificateResponseWire) => void,
) => grpc.ClientUnaryCall;

let caClientConstructor: grpc.ServiceClientConstructor | null = null;

/** The generated client for the service the edge serves, from the same loader and options. */
function caClient(): grpc.ServiceClientConstructor {
  caClientConstructor ??= grpc.makeClientConstructor(
    loadSentryServiceDefinition(),
    SENTRY_SERVICE_NAME,
  );
  return caClientConstructor;
}

/** Splits `host:port` / `[v6]:port`; throws ERR_CONFIG_INVALID when there is no port. */
export function parseSentryAddress(address: string): { host: string; port: number } {
  const match = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]\s]+)):(\d{1,5})$/.exec(address);
  const port = match ? Number(match[3]) : NaN;
  if (!match || port < 1 || port > 65535) {
    throw new WardenError(
      'ERR_CONFIG_INVALID',
      `sentry address "${printable(address)}" is not host:port (e.g. 127.0.0.1:50001)`,
    );
  }
  return { host: (match[1] ?? match[2]) as string, port };
}

function parseCertificates(text: string, what: string): X509Certificate[] {
  const parsed = parsePemBlocks(text);
  if (!parsed.ok) throw new WardenError('ERR_SVID_INVALID', `${what} ${parsed.problem}`);
  return parsed.blocks.map((block) => {
    if (block.label !== 'CERTIFICATE') {
      throw new WardenError(
        'ERR_SVID_INVALID',
        `${what} holds a ${block.label} block, not only certificates`,
      );
    }
    try {
      return new X509Certificate(block.der);
    } catch (err) {
      throw new WardenError(
        'ERR_SVID_INVALID',
        `${what} holds a certificate that cannot be parsed`,
        { cause: err },
      );
    }
  });
}

function spkiOf(key: KeyObject): Buffer {
  return (key.type === 'public' ? key : createPublicKey(key)).export({
    format: 'der',
    type: 'spki',
  });
}

function within(cert: X509Certificate, now: Date): boolean {
  const { notBefore, notAfter } = certificateValidity(cert);
  return notBefore.getTime() <= now.getTime() && now.getTime() <= notAfter.getTime();
}

const EKU_SERVER_AUTH = '1.3.6.1.5.5.7.3.1';
const EKU_CLIENT_AUTH = '1.3.6.1.5.5.7.3.2';

/**
 * Never trust what the CA returned blindly: the leaf must carry exactly the SPIFFE ID that
 * was asked for and our public key, be a non-CA certificate for TLS clients and servers,
 * and chain through the returned issuers to one of the returned anchors, all valid now.
 * (Name constraints are left to the TLS stacks that use the SVID.)
 */
export function checkIssuedSvid(input: {
  readonly chain: readonly X509Certificate[];
  readonly anchors: readonly X509Certificate[];
  readonly expectedSpiffeId: string;
  readonly privateKey: KeyObject;
  readonly validUntilSeconds: number | null;
  readonly now: Date;
}): void {
  const fail = (message: string): never => {
    throw new WardenError('ERR_SVID_INVALID', message);
  };
  const [leaf, ...issuers] = input.chain;
  if (!leaf) return fail('workload_certificate holds no certificate');
  if (input.anchors.length === 0) fail('trust_chain_certificates is empty');
  const uris = uriSubjectAltNames(leaf.subjectAltName);
  if (uris === null) fail('the leaf has a subjectAltName that cannot be read');
  if (uris?.length !== 1 || uris[0] !== input.expectedSpiffeId) {
    fail(`the leaf names ${JSON.stringify(uris)}, not exactly ${input.expectedSpiffeId}`);
  }
  if (!spkiOf(leaf.publicKey).equals(spkiOf(input.privateKey))) {
    fail('the leaf does not certify the key this request generated');
  }
  if (leaf.ca) fail('the leaf is a CA certificate');
  const eku = leaf.keyUsage ?? [];
  if (!eku.includes(EKU_SERVER_AUTH) || !eku.includes(EKU_CLIENT_AUTH)) {
    fail('the leaf is not valid for both TLS server and client authentication');
  }
  const { notAfter } = certificateValidity(leaf);
  if (
    input.validUntilSeconds !== null &&
    input.validUntilSeconds !== Math.floor(notAfter.getTime() / 1000)
  ) {
    fail(
      `valid_until (${input.validUntilSeconds}) is not the leaf's notAfter (${notAfter.toISOString()})`,
    );
  }
  for (const anchor of input.anchors) {
    const name = (anchor.subject ?? '').replace(/\n/g, ', ');
    if (!anchor.ca || !anchor.checkIssued(anchor) || !anchor.verify(anchor.publicKey)) {
      fail(`trust anchor ${name} is not a self-signed CA certificate`);
    }
    if (!within(anchor, input.now)) {
      fail(`trust anchor ${name} is not valid at ${input.now.toISOString()}`);
    }
  }
  const anchorPrints = new Set(input.anchors.map((a) => a.fingerprint256));
  let child = leaf;
  for (let depth = 0; ; depth++) {
    if (!within(child, input.now))
      fail(`certificate ${depth} of the chain is not valid at ${input.now.toISOString()}`);
    const anchor = input.anchors.find((a) => child.checkIssued(a) && child.verify(a.publicKey));
    if (anchor) return;
    const parent = issuers[depth];
    if (!parent || anchorPrints.has(parent.fingerprint256)) {
      fail('the chain does not lead to any of the returned trust anchors');
    }
    if (!parent?.ca || !child.checkIssued(parent) || !child.verify(parent.publicKey)) {
      fail(`certificate ${depth} of the chain is not signed by the CA certificate after it`);
    }
    child = parent as X509Certificate;
  }
}

function statusName(code: grpc.status): string {
  return grpc.status[code] ?? String(code);
}

class AttemptFailure {
  constructor(
    readonly code: grpc.status,
    readonly details: string,
    readonly pinnedIdMismatch: string | null,
  ) {}

  get trustFailure(): boolean {
    return (
      this.pinnedIdMismatch !== null ||
      (this.code === grpc.status.UNAVAILABLE && CERTIFICATE_VERIFY_FAILURE.test(this.details))
    );
  }

  get final(): boolean {
    return this.trustFailure || FINAL_STATUSES.has(this.code);
  }
}

export function createSentryClient(options: SentryClientOptions): SentryClient {
  const { host } = parseSentryAddress(options.address);
  const pinned = parseSpiffeId(options.sentrySpiffeId);
  if (!pinned || pinned.segments.length === 0) {
    throw new WardenError(
      'ERR_CONFIG_INVALID',
      `sentry SPIFFE ID "${printable(options.sentrySpiffeId)}" is not a SPIFFE ID with a path`,
    );
  }
  const anchorsParsed = parsePemBlocks(options.trustAnchorsPem);
  if (!anchorsParsed.ok || anchorsParsed.blocks.some((b) => b.label !== 'CERTIFICATE')) {
    throw new WardenError(
      'ERR_CONFIG_INVALID',
      `trust anchors ${anchorsParsed.ok ? 'hold something other than certificates' : anchorsParsed.problem}`,
    );
  }
  const attempts = options.attempts ?? DEFAULT_ATTEMPTS;
  if (!Number.isInteger(attempts) || attempts < 1)
    throw new TypeError('attempts must be a whole number ≥ 1');
  const attemptTimeoutMs = options.attemptTimeoutMs ?? DEFAULT_ATTEMPT_TIMEOUT_MS;
  const backoff = options.backoff ?? DEFAULT_BACKOFF;
  const clock = options.clock ?? systemClock;
  const sleep =
    options.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)));
  const logger = (options.logger ?? silentLogger).child({ component: 'sentry-client' });
  const anchorsBuffer = Buffer.from(options.trustAnchorsPem);

  /** One call on a fresh channel, so a failed connection's backoff state never leaks into the next try. */
  const attempt = (
    message: SignCertificateRequestMessage,
  ): Promise<SignCertificateResponseWire> => {
    let pinnedIdMismatch: string | null = null;
    const credentials = grpc.credentials.createSsl(anchorsBuffer, null, null, {
      // Called by Node only after the chain verified against the anchors; the host name is
      // irrelevant, the CA is known by its SPIFFE ID (as daprd does).
      checkServerIdentity: (_host: string, cert: PeerCertificate) => {
        const uris = uriSubjectAltNames(cert.subjectaltname);
        if (uris?.length === 1 && uris[0] === options.sentrySpiffeId) return undefined;
        pinnedIdMismatch = `it presented ${JSON.stringify(uris)}`;
        return new Error(`server SPIFFE ID mismatch: ${pinnedIdMismatch}`);
      },
    });
    const Client = caClient();
    const client = new Client(options.address, credentials, {
      'grpc.use_local_subchannel_pool': 1,
      // SNI must be a host name (RFC 6066; Node warns about an IP). Any name does: the CA
      // is verified by its SPIFFE ID, and this one is among its serving DNS SANs.
      ...(isIP(host) !== 0 ? { 'grpc.ssl_target_name_override': 'dapr-sentry' } : {}),
    });
    const method = (client as unknown as Record<string, UnaryMethod>)[
      'SignCertificate'
    ] as UnaryMethod;
    return new Promise<SignCertificateResponseWire>((resolve, reject) => {
      method.call(
        client,
        message,
        new grpc.Metadata(),
        { deadline: Date.now() + attemptTimeoutMs },
        (err, response) => {
          client.close();
          if (err) reject(new AttemptFailure(err.code, err.details, pinnedIdMismatch));
          else if (!response)
            reject(new AttemptFailure(grpc.status.INTERNAL, 'empty response', null));
          else resolve(response);
        },
      );
    });
  };

  return Object.freeze({
    address: options.address,
    sentrySpiffeId: options.sentrySpiffeId,
    async requestSvid(request: SvidRequest): Promise<WorkloadSvid> {
      const trustDomain =
        request.trustDomain === undefined || request.trustDomain === ''
          ? DEFAULT_REQUEST_TRUST_DOMAIN
          : request.trustDomain;
      for (const [field, value, problem] of [
        ['app id', request.appId, idProblem(request.appId)],
        ['namespace', request.namespace, namespaceProblem(request.namespace)],
        ['trust domain', trustDomain, requestTrustDomainProblem(trustDomain)],
      ] as const) {
        if (problem)
          throw new WardenError('ERR_REQUEST_INVALID', `${field} "${printable(value)}" ${problem}`);
      }
      const expectedSpiffeId = workloadSpiffeId({
        trustDomain,
        namespace: request.namespace,
        appId: request.appId,
      });
      const keyType = request.keyType ?? 'ecdsa-p256';
      const validatorName = request.tokenValidator ?? 'unknown';
      const tokenValidator = TOKEN_VALIDATOR_NUMBERS[validatorName];
      if (tokenValidator === undefined)
        throw new TypeError(`unknown token validator ${String(validatorName)}`);
      const generated = generateKeyAndCsr(keyType);
      const message: SignCertificateRequestMessage = {
        id: request.appId,
        token: request.token ?? '',
        trustDomain,
        namespace: request.namespace,
        certificateSigningRequest: Buffer.from(generated.csrPem),
        tokenValidator,
        jwtAudiences: [...(request.jwtAudiences ?? [])],
      };

      let last: AttemptFailure | null = null;
      let pause = backoff.initialMs;
      for (let n = 1; n <= attempts; n++) {
        if (n > 1) {
          await sleep(Math.round(pause * (0.8 + 0.4 * Math.random())));
          pause = Math.min(pause * 2, backoff.maxMs);
        }
        let response: SignCertificateResponseWire;
        try {
          response = await attempt(message);
        } catch (err) {
          if (!(err instanceof AttemptFailure)) throw err;
          last = err;
          logger.debug(
            { attempt: n, attempts, status: statusName(err.code), address: options.address },
            'SignCertificate attempt failed',
          );
          if (err.final) break;
          continue;
        }
        return finish(
          response,
          generated.privateKey,
          generated.privateKeyPem,
          keyType,
          expectedSpiffeId,
          {
            trustDomain,
            namespace: request.namespace,
            appId: request.appId,
          },
        );
      }
      const failure = last as AttemptFailure;
      const reason = connectionReason(failure.details);
      if (failure.trustFailure) {
        throw new WardenError(
          'ERR_SENTRY_NOT_TRUSTED',
          failure.pinnedIdMismatch !== null
            ? `the CA at ${options.address} is not ${options.sentrySpiffeId}: ${failure.pinnedIdMismatch}`
            : `the CA at ${options.address} presented a certificate that does not verify against the trust anchors: ${reason}`,
          { details: { grpcStatus: statusName(failure.code) } },
        );
      }
      throw new WardenError(
        'ERR_SENTRY_REQUEST_FAILED',
        `${statusName(failure.code)}: ${reason}${failure.final ? '' : ` (after ${attempts} attempts)`}`,
        { details: { grpcStatus: statusName(failure.code), address: options.address } },
      );
    },
  });

  function finish(
    response: SignCertificateResponseWire,
    privateKey: KeyObject,
    privateKeyPem: string,
    keyType: WorkloadKeyType,
    expectedSpiffeId: string,
    identity: WorkloadSvid['identity'],
  ): WorkloadSvid {
    const chain = parseCertificates(
      response.workloadCertificate.toString('utf8'),
      'workload_certificate',
    );
    const anchors = response.trustChainCertificates.flatMap((pem, i) =>
      parseCertificates(pem.toString('utf8'), `trust_chain_certificates[${i}]`),
    );
    const seconds = response.validUntil === null ? null : Number(response.validUntil.seconds);
    checkIssuedSvid({
      chain,
      anchors,
      expectedSpiffeId,
      privateKey,
      validUntilSeconds: seconds,
      now: clock.now(),
    });
    const leaf = chain[0] as X509Certificate;
    const { notBefore, notAfter } = certificateValidity(leaf);
    return Object.freeze({
      spiffeId: expectedSpiffeId,
      identity: Object.freeze({ ...identity }),
      keyType,
      privateKey,
      privateKeyPem,
      certificateChainPem: chain.map((c) => c.toString()).join(''),
      certificates: Object.freeze(chain),
      trustAnchorsPem: anchors.map((c) => c.toString()).join(''),
      trustAnchors: Object.freeze(anchors),
      notBefore,
      notAfter,
      serialNumber: leaf.serialNumber,
    });
  }
}

/**
 * The connection error out of grpc-js's "No connection established. Last error: Error: <x>.
 * Resolution note: ..." text; any other details (the CA's own answer) unchanged.
 */
function connectionReason(details: string): string {
  const match =
    /^No connection established\. Last error: (?:Error: )?(.*?)\.?(?: Resolution note:.*)?$/s.exec(
      details,
    );
  return (match?.[1] ?? details).trim();
}
