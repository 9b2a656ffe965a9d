import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { validateServeInvocation } from '../../src/cli/serve-flags.js';
import { startWardenServer, type WardenServer } from '../../src/cli/warden-server.js';
import type { Clock } from '../../src/shared/clock.js';
import { readEnv } from '../../src/shared/env.js';
import { joseKey, jwks, nodeRs256Key, type JoseSigningKey } from './jwt-fixtures.js';
import { captureLog, type CapturedLog } from './log-capture.js';
import { createSentryTestClient, type SentryTestClient } from './sentry-proto-client.js';

/**
 * A real `warden serve` (the composition root: file CA, signing pool, validators, gRPC/TLS,
 * /healthz, /metrics) started in-process on 127.0.0.1 with ephemeral ports, for the hostile
 * suites. The Configuration enables the insecure validator (the standalone default) and a
 * jwks validator reading a JWKS file written here, so both token paths can be attacked.
 */

export const HOSTILE_NAMESPACE = 'warden-system';
/** Dapr's standalone --trust-domain default; the CA's SPIFFE ID and the token audience use it. */
export const HOSTILE_TRUST_DOMAIN = 'localhost';
export const HOSTILE_AUDIENCE = `spiffe://${HOSTILE_TRUST_DOMAIN}/ns/${HOSTILE_NAMESPACE}/dapr-sentry`;

export interface HostileJwtKeys {
  /** ES256, in the JWKS under kid "es-1". */
  readonly es256: JoseSigningKey;
  /** RS256 (node:crypto), in the JWKS under kid "rsa-1": its public key is the HMAC-confusion secret. */
  readonly rsa: ReturnType<typeof nodeRs256Key>;
  /** ES256 under kid "es-1" but NOT in the JWKS: a token from another issuer reusing a kid. */
  readonly impostor: JoseSigningKey;
}

export interface HostileWardenOptions {
  /** Where the jwks validator reads keys: the JWKS file written here (default) or a URL. */
  readonly jwksSource?: { readonly url: string };
  /** Leave the jwks validator out (insecure only: Warden's bare standalone default). */
  readonly withoutJwks?: boolean;
  readonly clock?: Clock;
  /** More `warden serve` flags, e.g. ['--max-in-flight', '10']. */
  readonly flags?: readonly string[];
  /** An existing credentials directory (default: a fresh one, so material is generated). */
  readonly credentialsDir?: string;
  /** JWKS minRefreshInterval (Go duration; default 10m). */
  readonly jwksMinRefreshInterval?: string;
}

export interface HostileWarden {
  readonly server: WardenServer;
  readonly client: SentryTestClient;
  readonly log: CapturedLog;
  readonly keys: HostileJwtKeys;
  readonly directory: string;
  readonly credentialsDir: string;
  /** Trust anchors (PEM) clients verify the CA's serving certificate with. */
  anchorsPem(): string;
  /** Another client on its own connection. */
  newClient(): SentryTestClient;
  healthz(): Promise<{ status: number; body: unknown }>;
  metricsText(): Promise<string>;
  close(): Promise<void>;
}

let sharedKeys: Promise<HostileJwtKeys> | null = null;

/** One set of JWT keys per test file: RSA generation is slow enough to matter on two cores. */
export function hostileJwtKeys(): Promise<HostileJwtKeys> {
  sharedKeys ??= (async () => ({
    es256: await joseKey('ES256', 'es-1'),
    rsa: nodeRs256Key('rsa-1'),
    impostor: await joseKey('ES256', 'es-1'),
  }))();
  return sharedKeys;
}

/**
 * Writes the Configuration (insecure + jwks validators, unless `withoutJwks`) and the JWKS
 * file the jwks validator reads into `directory`; returns the Configuration's path.
 */
export async function writeHostileConfiguration(
  directory: string,
  keys: HostileJwtKeys,
  options: Pick<HostileWardenOptions, 'jwksSource' | 'withoutJwks' | 'jwksMinRefreshInterval'> = {},
): Promise<string> {
  const jwksFile = path.join(directory, 'jwks.json');
  await writeFile(jwksFile, jwks(keys.es256.publicJwk, keys.rsa.publicJwk));
  const validators = options.withoutJwks
    ? '  mtls: {}\n'
    : `  mtls:
    tokenValidators:
      - name: insecure
      - name: jwks
        options:
          source: ${JSON.stringify(options.jwksSource?.url ?? jwksFile)}
          minRefreshInterval: ${options.jwksMinRefreshInterval ?? '10m'}
          requestTimeout: 2s
`;
  const configFile = path.join(directory, 'config.yaml');
  await writeFile(
    configFile,
    `apiVersion: dapr.io/v1alpha1\nkind: Configuration\nmetadata:\n  name: hostile\nspec:\n${validators}`,
  );
  return configFile;
}

export async function startHostileWarden(
  options: HostileWardenOptions = {},
): Promise<HostileWarden> {
  const directory = await mkdtemp(path.join(tmpdir(), 'warden-hostile-'));
  const credentialsDir = options.credentialsDir ?? path.join(directory, 'credentials');
  const keys = await hostileJwtKeys();
  const configFile = await writeHostileConfiguration(directory, keys, options);
  const argv = [
    '--issuer-credentials',
    credentialsDir,
    '--config',
    configFile,
    '--listen-address',
    '127.0.0.1',
    '--port',
    '0',
    '--healthz-port',
    '0',
    '--metrics-port',
    '0',
    '--workers',
    '1',
    '--trust-domain',
    HOSTILE_TRUST_DOMAIN,
    ...(options.flags ?? []),
  ];
  const result = await validateServeInvocation(argv, readEnv({ NAMESPACE: HOSTILE_NAMESPACE }));
  if (!result.ok) {
    await rm(directory, { recursive: true, force: true });
    throw new Error(`hostile harness settings: ${JSON.stringify(result.problems)}`);
  }
  const log = captureLog();
  let server: WardenServer;
  try {
    server = await startWardenServer(result.settings, {
      logger: log.logger,
      ...(options.clock ? { clock: options.clock } : {}),
    });
  } catch (err) {
    await rm(directory, { recursive: true, force: true });
    throw err;
  }
  const clients: SentryTestClient[] = [];
  const newClient = (): SentryTestClient => {
    const client = createSentryTestClient({
      address: `127.0.0.1:${server.grpc.port}`,
      anchorsPem: server.ca.current().anchorsPem,
      expectedSpiffeId: result.settings.sentrySpiffeId,
    });
    clients.push(client);
    return client;
  };
  const client = newClient();
  return {
    server,
    client,
    log,
    keys,
    directory,
    credentialsDir,
    anchorsPem: () => server.ca.current().anchorsPem,
    newClient,
    async healthz() {
      const response = await fetch(`http://127.0.0.1:${server.health.port}/healthz`);
      const text = await response.text();
      let body: unknown = text;
      try {
        body = JSON.parse(text);
      } catch {
        // not JSON: keep the text
      }
      return { status: response.status, body };
    },
    async metricsText() {
      if (!server.metrics) throw new Error('metrics are disabled');
      return (await fetch(`http://127.0.0.1:${server.metrics.port}/metrics`)).text();
    },
    async close() {
      for (const c of clients) c.close();
      await server.close(2000);
      await rm(directory, { recursive: true, force: true });
    },
  };
}

/** The value of one series in Prometheus text, or NaN when absent. */
export function metricValue(text: string, series: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? Number.NaN : Number(line.slice(series.length + 1));
}
