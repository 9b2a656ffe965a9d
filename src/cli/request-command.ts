import type { X509Certificate } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { sentrySpiffeId } from '../issuer/grpc/serving-certificate.js';
import {
  createSentryClient,
  isTokenValidatorName,
  TOKEN_VALIDATOR_NUMBERS,
  type WorkloadSvid,
} from '../issuer/sidecar/sentry-client.js';
import { WORKLOAD_KEY_TYPES, type WorkloadKeyType } from '../issuer/sidecar/workload-csr.js';
import { writeFileAtomic } from '../shared/atomic-file.js';
import { isWardenError, WardenError } from '../shared/errors.js';
import { formatFlagHelp, parseFlags, type FlagSpecs, type ParsedFlags } from '../shared/flags.js';
import type { CliCommand } from './command.js';
import { wantsHelp } from './trust-material-flags.js';
import { readInputFile } from './read-input-file.js';

const FLAGS: FlagSpecs = {
  'sentry-address': {
    kind: 'string',
    description: 'host:port of the CA (Dapr sentryAddress)',
    default: '127.0.0.1:50001',
  },
  'trust-anchors-file': {
    kind: 'string',
    description:
      "PEM file of the CA's trust anchors (its ca.crt); required, the CA is never trusted on first use",
  },
  'sentry-spiffe-id': {
    kind: 'string',
    description:
      "SPIFFE ID the CA's TLS certificate must carry (default spiffe://<control-plane-trust-domain>/ns/<control-plane-namespace>/dapr-sentry)",
  },
  'control-plane-trust-domain': {
    kind: 'string',
    description: "Trust domain of the CA's SPIFFE ID (the CA's --trust-domain)",
    default: 'localhost',
  },
  'control-plane-namespace': {
    kind: 'string',
    description: "Namespace of the CA's SPIFFE ID (the CA's NAMESPACE)",
    default: 'default',
  },
  'app-id': { kind: 'string', description: 'The app id to request a certificate for (required)' },
  namespace: { kind: 'string', description: "The app's namespace", default: 'default' },
  'trust-domain': {
    kind: 'string',
    description: 'Trust domain to be issued in',
    default: 'public',
  },
  token: {
    kind: 'string',
    description:
      'Identity token for the validator (visible in the process list: prefer --token-file)',
  },
  'token-file': { kind: 'string', description: 'File holding the identity token' },
  'token-validator': {
    kind: 'string',
    description: `Validator the CA should use: ${Object.keys(TOKEN_VALIDATOR_NUMBERS).join(' | ')} (unknown = the CA's default)`,
    default: 'unknown',
  },
  'key-type': {
    kind: 'string',
    description: `Key to generate: ${WORKLOAD_KEY_TYPES.join(' | ')}`,
    default: 'ecdsa-p256',
  },
  'out-dir': {
    kind: 'string',
    description:
      'Directory for cert.pem (leaf + chain), key.pem (mode 0600) and ca.pem (anchors); required',
  },
  output: { kind: 'string', description: 'Summary format: text | json', default: 'text' },
};

/** File names written into --out-dir. */
export const REQUEST_OUTPUT_FILES = Object.freeze({
  certificate: 'cert.pem',
  privateKey: 'key.pem',
  trustAnchors: 'ca.pem',
});

interface RequestSettings {
  readonly address: string;
  readonly anchorsFile: string;
  readonly sentrySpiffeId: string;
  readonly appId: string;
  readonly namespace: string;
  readonly trustDomain: string;
  readonly tokenSource:
    | { readonly kind: 'none' }
    | { readonly kind: 'flag'; readonly token: string }
    | { readonly kind: 'file'; readonly file: string };
  readonly tokenValidator: keyof typeof TOKEN_VALIDATOR_NUMBERS;
  readonly keyType: WorkloadKeyType;
  readonly outDir: string;
  readonly output: 'text' | 'json';
}

function text(flags: ParsedFlags, name: string): string | undefined {
  const value = flags.values[name];
  return typeof value === 'string' ? value : undefined;
}

/** Every flag problem at once (ERR_CONFIG_INVALID), or the settings. */
function settingsFrom(flags: ParsedFlags): RequestSettings {
  const problems: string[] = [];
  const required = (name: string): string => {
    const value = text(flags, name);
    if (value === undefined || value.trim() === '') problems.push(`flag -${name} is required`);
    return value ?? '';
  };
  const anchorsFile = required('trust-anchors-file');
  const appId = required('app-id');
  const outDir = required('out-dir');
  const tokenValidator = text(flags, 'token-validator') ?? 'unknown';
  if (!isTokenValidatorName(tokenValidator)) {
    problems.push(
      `flag -token-validator: "${tokenValidator}" is not one of ${Object.keys(TOKEN_VALIDATOR_NUMBERS).join(', ')}`,
    );
  }
  const keyType = text(flags, 'key-type') ?? 'ecdsa-p256';
  if (!(WORKLOAD_KEY_TYPES as readonly string[]).includes(keyType)) {
    problems.push(`flag -key-type: "${keyType}" is not one of ${WORKLOAD_KEY_TYPES.join(', ')}`);
  }
  const output = text(flags, 'output') ?? 'text';
  if (output !== 'text' && output !== 'json')
    problems.push(`flag -output: "${output}" is not one of text, json`);
  const token = text(flags, 'token');
  const tokenFile = text(flags, 'token-file');
  if (token !== undefined && tokenFile !== undefined)
    problems.push('flags -token and -token-file exclude each other');
  let pinned = text(flags, 'sentry-spiffe-id');
  if (pinned === undefined) {
    try {
      pinned = sentrySpiffeId(
        text(flags, 'control-plane-trust-domain') ?? '',
        text(flags, 'control-plane-namespace') ?? '',
      );
    } catch (err) {
      if (!isWardenError(err)) throw err;
      problems.push(`flags -control-plane-trust-domain/-control-plane-namespace: ${err.message}`);
    }
  }
  if (flags.positionals.length > 0)
    problems.push(`unexpected argument "${flags.positionals[0] ?? ''}"`);
  if (problems.length > 0) throw new WardenError('ERR_CONFIG_INVALID', problems.join('; '));
  return {
    address: text(flags, 'sentry-address') ?? '',
    anchorsFile,
    sentrySpiffeId: pinned ?? '',
    appId,
    namespace: text(flags, 'namespace') ?? '',
    trustDomain: text(flags, 'trust-domain') ?? '',
    tokenSource:
      token !== undefined
        ? { kind: 'flag', token }
        : tokenFile !== undefined
          ? { kind: 'file', file: tokenFile }
          : { kind: 'none' },
    tokenValidator: tokenValidator as RequestSettings['tokenValidator'],
    keyType: keyType as WorkloadKeyType,
    outDir,
    output: output as RequestSettings['output'],
  };
}


/**
 * Writes the three files, each atomically (no reader sees half a file), cert.pem last: a
 * process that reloads when cert.pem changes then finds the matching key and anchors.
 */
async function writeSvid(
  outDir: string,
  svid: WorkloadSvid,
): Promise<Record<keyof typeof REQUEST_OUTPUT_FILES, string>> {
  // A new directory is private; an existing one (perhaps ".") keeps the mode its owner chose.
  await mkdir(outDir, { recursive: true, mode: 0o700 });
  const files = {
    certificate: path.join(outDir, REQUEST_OUTPUT_FILES.certificate),
    privateKey: path.join(outDir, REQUEST_OUTPUT_FILES.privateKey),
    trustAnchors: path.join(outDir, REQUEST_OUTPUT_FILES.trustAnchors),
  };
  await writeFileAtomic(files.trustAnchors, svid.trustAnchorsPem, 0o644);
  await writeFileAtomic(files.privateKey, svid.privateKeyPem, 0o600);
  await writeFileAtomic(files.certificate, svid.certificateChainPem, 0o644);
  return files;
}

/** `warden request`: be a sidecar once: key + CSR → SignCertificate → checked files. */
export const requestCommand: CliCommand = {
  name: 'request',
  summary:
    'Be a sidecar: make a key and CSR, get an X.509-SVID from the CA over pinned TLS, write cert/key/anchors files',
  async run(argv, io) {
    if (wantsHelp(argv)) {
      io.stdout.write(
        `Usage: warden request --trust-anchors-file ca.crt --app-id <id> --out-dir <dir> [flags]\n\n${requestCommand.summary}.\n` +
          `Exit codes: 0 written, 1 refused or failed (the gRPC status is printed).\n\n${formatFlagHelp(FLAGS)}\n`,
      );
      return 0;
    }
    const settings = settingsFrom(parseFlags(argv, FLAGS));
    const trustAnchorsPem = await readInputFile(settings.anchorsFile, 'trust anchors file');
    let token = '';
    if (settings.tokenSource.kind === 'flag') token = settings.tokenSource.token;
    // A token file written by a tool usually ends with a newline that is not part of the token.
    if (settings.tokenSource.kind === 'file')
      token = (await readInputFile(settings.tokenSource.file, 'token file')).trim();

    const client = createSentryClient({
      address: settings.address,
      trustAnchorsPem,
      sentrySpiffeId: settings.sentrySpiffeId,
    });
    let svid: WorkloadSvid;
    try {
      svid = await client.requestSvid({
        appId: settings.appId,
        namespace: settings.namespace,
        trustDomain: settings.trustDomain,
        token,
        tokenValidator: settings.tokenValidator,
        keyType: settings.keyType,
      });
    } catch (err) {
      if (!isWardenError(err)) throw err;
      // Every failure of the call itself starts with its gRPC status name; a call refused by
      // the CA already carries it in the message (`PERMISSION_DENIED: ERR_IDENTITY_DENIED: ...`).
      const grpcStatus = err.details['grpcStatus'];
      const detail =
        err.code === 'ERR_SENTRY_REQUEST_FAILED'
          ? err.message
          : `${typeof grpcStatus === 'string' ? `${grpcStatus}: ` : ''}${err.code}: ${err.message}`;
      io.stderr.write(`warden request: ${detail}\n`);
      return 1;
    }
    const files = await writeSvid(settings.outDir, svid);
    const leaf = svid.certificates[0] as X509Certificate;
    const summary = {
      spiffeId: svid.spiffeId,
      trustDomain: svid.identity.trustDomain,
      namespace: svid.identity.namespace,
      appId: svid.identity.appId,
      keyType: svid.keyType,
      serialNumber: svid.serialNumber,
      sha256Fingerprint: leaf.fingerprint256,
      notBefore: svid.notBefore.toISOString(),
      notAfter: svid.notAfter.toISOString(),
      trustAnchors: svid.trustAnchors.map((a) => a.fingerprint256),
      files,
    };
    if (settings.output === 'json') {
      io.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
    } else {
      io.stdout.write(
        `Issued ${summary.spiffeId} (${summary.keyType})\n` +
          `  serial:      ${summary.serialNumber}\n` +
          `  SHA-256:     ${summary.sha256Fingerprint}\n` +
          `  not before:  ${summary.notBefore}\n` +
          `  not after:   ${summary.notAfter}\n` +
          `  certificate: ${files.certificate}\n` +
          `  private key: ${files.privateKey}\n` +
          `  anchors:     ${files.trustAnchors}\n`,
      );
    }
    return 0;
  },
};
