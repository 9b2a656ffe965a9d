import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { validateServeInvocation } from '../../src/cli/serve-flags.js';
import { startWardenServer, type WardenServer } from '../../src/cli/warden-server.js';
import { readEnv } from '../../src/shared/env.js';
import { silentLogger, type Logger } from '../../src/shared/logger.js';

/** `warden serve` in-process (the composition root itself), for tests where a child process adds nothing. */
export interface InProcessWarden {
  readonly server: WardenServer;
  /** `127.0.0.1:<port>` of the gRPC listener. */
  readonly address: string;
  readonly anchorsFile: string;
  readonly anchorsPem: string;
  readonly sentrySpiffeId: string;
  close(): Promise<void>;
}

/**
 * Starts the CA on `credentialsDir` (created on first start) with every listener on an
 * ephemeral port and one signing worker. `argv` adds `warden serve` flags.
 */
export async function startInProcessWarden(
  credentialsDir: string,
  options: { argv?: readonly string[]; env?: NodeJS.ProcessEnv; logger?: Logger } = {},
): Promise<InProcessWarden> {
  const argv = [
    '--issuer-credentials',
    credentialsDir,
    '--port',
    '0',
    '--healthz-port',
    '0',
    '--metrics-port',
    '0',
    '--workers',
    '1',
    ...(options.argv ?? []),
  ];
  const result = await validateServeInvocation(argv, readEnv(options.env ?? {}));
  if (!result.ok) throw new Error(`invalid test settings: ${JSON.stringify(result.problems)}`);
  const server = await startWardenServer(result.settings, {
    logger: options.logger ?? silentLogger,
  });
  const anchorsFile = path.join(credentialsDir, 'ca.crt');
  return {
    server,
    address: `127.0.0.1:${server.grpc.port}`,
    anchorsFile,
    anchorsPem: await readFile(anchorsFile, 'utf8'),
    sentrySpiffeId: result.settings.sentrySpiffeId,
    close: () => server.close(1000),
  };
}
