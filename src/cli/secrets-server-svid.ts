import { X509Certificate } from 'node:crypto';
import { parsePemBlocks } from '../ca/pem.js';
import {
  createSentryClient,
  type TokenValidatorName,
  type WorkloadSvid,
} from '../issuer/sidecar/sentry-client.js';
import {
  startSvidRenewal,
  type RenewalTimer,
  type SvidRenewal,
} from '../issuer/sidecar/svid-renewal.js';
import type { SecretsApiTlsMaterial } from '../secrets/api/secrets-api-server.js';
import type { Clock } from '../shared/clock.js';
import { describeError, WardenError } from '../shared/errors.js';
import type { Logger } from '../shared/logger.js';
import { readInputFile } from './read-input-file.js';

/**
 * The secrets API server's own X.509-SVID, obtained from Warden's CA the way a sidecar
 * obtains one, and kept fresh: renewed at half its lifetime, each renewal handed over as new
 * TLS material (key, chain, and the anchors client certificates must chain to). This is
 * composition: src/secrets knows only TLS material, src/issuer only SVIDs.
 */

export type TokenSource =
  | { readonly kind: 'none' }
  | { readonly kind: 'flag'; readonly token: string }
  /** Re-read for every request, so a projected service-account token that rotates is followed. */
  | { readonly kind: 'file'; readonly file: string };

export interface SecretsServerSvidOptions {
  /** host:port of the CA. */
  readonly sentryAddress: string;
  /** The CA's ca.crt: trusted for the CA's serving certificate and for client certificates. Re-read at each renewal. */
  readonly trustAnchorsFile: string;
  /** The SPIFFE ID the CA's serving certificate must carry. */
  readonly sentrySpiffeId: string;
  readonly appId: string;
  readonly namespace: string;
  /** Trust domain to be issued in (the CA's default, Dapr's `public`, when absent). */
  readonly trustDomain?: string;
  readonly token: TokenSource;
  readonly tokenValidator: TokenValidatorName;
  readonly clock: Clock;
  readonly logger: Logger;
  /** How renewal waits (tests fire it by hand). */
  readonly renewalTimer?: RenewalTimer;
}

export interface SecretsServerSvid {
  /** The SVID in use now. */
  current(): WorkloadSvid;
  /** TLS material for the current SVID. */
  tlsMaterial(): SecretsApiTlsMaterial;
  /** When the next renewal is due (undefined before startRenewal). */
  nextRenewalAt(): Date | undefined;
  /** True while the current SVID is within its validity period. */
  valid(): boolean;
  /** Starts renewing; every renewed SVID's TLS material goes to `onMaterial`. */
  startRenewal(onMaterial: (material: SecretsApiTlsMaterial) => void): void;
  stop(): void;
}


/** Parses a PEM file that must hold only certificates (at least one). */
function certificatesOf(text: string, what: string): X509Certificate[] {
  const parsed = parsePemBlocks(text);
  if (!parsed.ok) throw new WardenError('ERR_CONFIG_INVALID', `${what} ${parsed.problem}`);
  if (parsed.blocks.length === 0)
    throw new WardenError('ERR_CONFIG_INVALID', `${what} holds no certificate`);
  return parsed.blocks.map((block) => {
    if (block.label !== 'CERTIFICATE') {
      throw new WardenError(
        'ERR_CONFIG_INVALID',
        `${what} holds a ${block.label} block, not only certificates`,
      );
    }
    try {
      return new X509Certificate(block.der);
    } catch (err) {
      throw new WardenError(
        'ERR_CONFIG_INVALID',
        `${what} holds a certificate that cannot be parsed`,
        { cause: err },
      );
    }
  });
}

/** Every certificate once (by SHA-256 fingerprint), in first-seen order, as PEM. */
export function mergeAnchors(...sets: ReadonlyArray<readonly X509Certificate[]>): string {
  const seen = new Set<string>();
  const out: string[] = [];
  for (const cert of sets.flat()) {
    if (seen.has(cert.fingerprint256)) continue;
    seen.add(cert.fingerprint256);
    out.push(cert.toString());
  }
  return out.join('');
}

/**
 * Requests the first SVID (failing start-up when the CA refuses or cannot be reached, after
 * the sentry client's retries) and returns the handle that renews it.
 */
export async function obtainSecretsServerSvid(
  options: SecretsServerSvidOptions,
): Promise<SecretsServerSvid> {
  const logger = options.logger.child({ component: 'secrets-server-svid' });
  const anchorsWhat = `trust anchors file ${options.trustAnchorsFile}`;
  let fileAnchors = certificatesOf(
    await readInputFile(options.trustAnchorsFile, 'trust anchors file'),
    anchorsWhat,
  );

  const token = async (): Promise<string> => {
    if (options.token.kind === 'flag') return options.token.token;
    // A token file written by a tool usually ends with a newline that is not part of the token.
    if (options.token.kind === 'file')
      return (await readInputFile(options.token.file, 'token file')).trim();
    return '';
  };

  const request = async (trusted: readonly X509Certificate[]): Promise<WorkloadSvid> => {
    const client = createSentryClient({
      address: options.sentryAddress,
      trustAnchorsPem: mergeAnchors(trusted),
      sentrySpiffeId: options.sentrySpiffeId,
      clock: options.clock,
      logger,
    });
    return client.requestSvid({
      appId: options.appId,
      namespace: options.namespace,
      ...(options.trustDomain === undefined ? {} : { trustDomain: options.trustDomain }),
      token: await token(),
      tokenValidator: options.tokenValidator,
    });
  };

  let current = await request(fileAnchors);
  // The anchors clients must chain to: what the CA returned (it knows about a rotation in
  // progress) plus the file the operator gave (which may list roots the CA does not).
  const materialOf = (svid: WorkloadSvid): SecretsApiTlsMaterial =>
    Object.freeze({
      key: svid.privateKeyPem,
      cert: svid.certificateChainPem,
      ca: mergeAnchors(svid.trustAnchors, fileAnchors),
    });
  logger.info(
    {
      spiffeId: current.spiffeId,
      serial: current.serialNumber,
      notAfter: current.notAfter.toISOString(),
    },
    'obtained the secrets API server SVID from the CA',
  );

  let renewal: SvidRenewal | null = null;
  let stopped = false;
  return {
    current: () => renewal?.current() ?? current,
    tlsMaterial: () => materialOf(renewal?.current() ?? current),
    nextRenewalAt: () => renewal?.nextRenewalAt(),
    valid() {
      const svid = renewal?.current() ?? current;
      const now = options.clock.now().getTime();
      return svid.notBefore.getTime() <= now && now < svid.notAfter.getTime();
    },
    startRenewal(onMaterial) {
      if (renewal !== null || stopped) throw new TypeError('renewal already started or stopped');
      renewal = startSvidRenewal({
        initial: current,
        renew: async () => {
          // A rotation shows up in the anchors file and in what the CA returns: trust both
          // for the call, and keep the file's latest readable content for client checks.
          try {
            fileAnchors = certificatesOf(
              await readInputFile(options.trustAnchorsFile, 'trust anchors file'),
              anchorsWhat,
            );
          } catch (err) {
            logger.warn(
              `re-reading the trust anchors file failed; keeping the anchors read before: ${describeError(err)}`,
            );
          }
          const latest = renewal?.current() ?? current;
          return request([...fileAnchors, ...latest.trustAnchors]);
        },
        onRenewed: (svid) => {
          current = svid;
          onMaterial(materialOf(svid));
        },
        clock: options.clock,
        ...(options.renewalTimer === undefined ? {} : { timer: options.renewalTimer }),
        logger,
      });
    },
    stop() {
      stopped = true;
      renewal?.stop();
    },
  };
}
