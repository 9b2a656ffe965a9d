import { setFlagsFromString } from 'node:v8';
import { readEnv } from '../shared/env.js';
import { describeError, isWardenError } from '../shared/errors.js';
import { formatFlagHelp } from '../shared/flags.js';
import { createLogger } from '../shared/logger.js';
import type { CliCommand } from './command.js';
import { SERVE_FLAGS, validateServeInvocation } from './serve-flags.js';
import { startWardenServer } from './warden-server.js';

/**
 * V8 lets a heap's old generation grow to up to ≈ 4× what survived the last full GC before
 * collecting again. Under sustained signing load that is tens of MB of dead request objects
 * (and the native memory their key objects keep) per isolate, main thread and workers alike.
 * Growing by 20% keeps peak RSS ≈ 25-30 MB lower (issue 7: ≤ 150 MB under load) for more
 * frequent, mostly concurrent, marking; CPU per certificate did not move measurably
 * (bench/README.md). V8 reads this flag whenever it sets a new limit, so setting it here, for
 * the serving process only, takes effect in every isolate it starts.
 */
const HEAP_GROWING_PERCENT = 20;

/** How long SIGTERM lets in-flight SignCertificate calls finish before cancelling them. */
const SHUTDOWN_GRACE_MS = 10_000;

/** `warden serve`: Dapr Sentry, with its flags. */
export const serveCommand: CliCommand = {
  name: 'serve',
  summary:
    'Run the CA (Dapr Sentry replacement): SignCertificate over gRPC/TLS, /healthz, /metrics',
  async run(argv, io) {
    if (argv.some((a) => a === '--help' || a === '-help' || a === '-h')) {
      io.stdout.write(
        `Usage: warden serve [flags]\n\n${serveCommand.summary}.\n\n${formatFlagHelp(SERVE_FLAGS)}\n`,
      );
      return 0;
    }
    const result = await validateServeInvocation(argv, readEnv(io.env));
    if (!result.ok) {
      io.stderr.write(
        `warden serve: invalid settings:\n${result.problems.map((p) => `  ${p.path}: ${p.message}`).join('\n')}\n`,
      );
      return 1;
    }
    const { settings } = result;
    if (argv.some((a) => /^--?validate(=true)?$/.test(a))) {
      io.stdout.write(`${JSON.stringify(settings, null, 2)}\n`);
      return 0;
    }
    setFlagsFromString(`--heap-growing-percent=${HEAP_GROWING_PERCENT}`);
    const logger = createLogger({
      level: settings.logging.level,
      json: settings.logging.json,
      name: 'warden',
    });
    for (const warning of settings.warnings) logger.warn(warning);
    if (settings.insecureValidatorActive) {
      logger.warn(
        { listenAddress: settings.grpc.listenAddress },
        'the insecure validator is active: any caller that reaches the gRPC port gets any identity it asks for',
      );
    }
    let server;
    try {
      server = await startWardenServer(settings, { logger });
    } catch (err) {
      logger.fatal(
        { code: isWardenError(err) ? err.code : undefined },
        `start-up failed: ${describeError(err)}`,
      );
      io.stderr.write(
        `warden serve: ${isWardenError(err) ? `${err.code}: ${err.message}` : describeError(err)}\n`,
      );
      return 1;
    }
    const running = server;
    const stopped = new Promise<number>((resolve) => {
      let stopping = false;
      const stop = (signal: NodeJS.Signals): void => {
        if (stopping) return;
        stopping = true;
        logger.info({ signal }, 'shutting down: draining in-flight calls');
        running.close(SHUTDOWN_GRACE_MS).then(
          () => {
            logger.info('stopped');
            resolve(0);
          },
          (err: unknown) => {
            logger.error(`shutdown failed: ${describeError(err)}`);
            resolve(1);
          },
        );
      };
      process.once('SIGTERM', stop);
      process.once('SIGINT', stop);
    });
    // Logged once the signal handlers are in place: a supervisor that stops the process as
    // soon as it reads this line gets a graceful shutdown, not the default signal action.
    logger.info(
      {
        grpc: `${server.grpc.listenAddress}:${server.grpc.port}`,
        healthz: `${server.health.address}:${server.health.port}`,
        metrics: server.metrics ? `${server.metrics.address}:${server.metrics.port}` : 'disabled',
        jwt: server.jwt ? server.jwt.keys.current().signingKey.kid : 'disabled',
        oidc: server.oidc ? server.oidc.server.url : 'disabled',
        trustDomain: settings.trustDomain,
        spiffeId: settings.sentrySpiffeId,
        credentials: settings.credentials.directory,
        trustMaterial: server.ca.origin,
        validators: settings.validators,
        workers: settings.workers,
      },
      'warden is serving',
    );
    return stopped;
  },
};
