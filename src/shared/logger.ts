import { pino, type DestinationStream, type Logger, type LevelWithSilent } from 'pino';

export type { Logger } from 'pino';

/**
 * Field names whose values are never written, wherever they appear in a log object.
 * Code must not put secrets in logs at all; this is the second line of defence.
 */
export const REDACTED_PATHS: readonly string[] = [
  'token',
  '*.token',
  'jwt',
  '*.jwt',
  'password',
  '*.password',
  'secret',
  '*.secret',
  'value',
  '*.value',
  'values',
  '*.values',
  'key',
  '*.key',
  'privateKey',
  '*.privateKey',
  'issuerKey',
  '*.issuerKey',
  'authorization',
  '*.authorization',
  'headers.authorization',
  'headers["x-vault-token"]',
  'vaultToken',
  '*.vaultToken',
  'clientToken',
  '*.clientToken',
  'secretId',
  '*.secretId',
];

export interface LoggerOptions {
  level?: LevelWithSilent;
  /** Dapr's --log-as-json; when false, lines are still JSON but without pino's hostname/pid noise. */
  json?: boolean;
  name?: string;
  destination?: DestinationStream;
}

export function createLogger(options: LoggerOptions = {}): Logger {
  const base =
    options.json === false
      ? { name: options.name ?? 'warden' }
      : { name: options.name ?? 'warden', pid: process.pid };
  return pino(
    {
      level: options.level ?? 'info',
      base,
      redact: { paths: [...REDACTED_PATHS], censor: '[REDACTED]' },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    options.destination ?? pino.destination({ dest: 2, sync: true }),
  );
}

/** The REDACTED_PATHS that can match in a flat record: the plain top-level names. */
export const TOP_LEVEL_REDACTED_NAMES: readonly string[] = REDACTED_PATHS.filter((path) =>
  /^[A-Za-z]+$/.test(path),
);

/**
 * A child of `logger` for records whose values are flat (strings, numbers, booleans, null, or
 * arrays of those), such as the audit line written for every certificate: it redacts the same
 * names, at the top level only, which for a flat record is everything the full list can match
 * (the `*.name` and `headers.*` paths need a nested object). Redacting with wildcard paths
 * costs ≈ 13 µs a line, the top-level names ≈ 0.5 µs (issue 7: CPU per certificate).
 */
export function flatRecordLogger(logger: Logger): Logger {
  return logger.child(
    {},
    { redact: { paths: [...TOP_LEVEL_REDACTED_NAMES], censor: '[REDACTED]' } },
  );
}

/** A logger that writes nothing, for library callers and tests that do not look at logs. */
export const silentLogger: Logger = pino({ level: 'silent' });
