import { createLogger, type Logger } from '../../src/shared/logger.js';

/** A real pino logger (with Warden's redaction) whose lines a test can read back. */
export interface CapturedLog {
  readonly logger: Logger;
  readonly text: () => string;
  readonly lines: () => Array<Record<string, unknown>>;
}

export function captureLog(): CapturedLog {
  const chunks: string[] = [];
  const logger = createLogger({
    level: 'debug',
    destination: { write: (chunk: string) => void chunks.push(chunk) },
  });
  return {
    logger,
    text: () => chunks.join(''),
    lines: () =>
      chunks
        .join('')
        .split('\n')
        .filter((line) => line.trim().length > 0)
        .map((line) => JSON.parse(line) as Record<string, unknown>),
  };
}
